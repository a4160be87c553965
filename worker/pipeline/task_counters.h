// TaskCounters: what a running FeatureTask reports (heartbeats to the
// coordinator, the worker's /metrics, logs, tests). Each part is filled by
// the probe beside what it measures: SourceProbe (source runner),
// OperatorProbe (operator runner), CheckpointProbe (worker/checkpoint/); the
// sink, dead-letter, gate and channel numbers are read live from those
// components (FeatureTask::counters()).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/prometheus.h"
#include "proto/slipstream.pb.h"

namespace slipstream {

struct PartitionSnapshot {
  int partition;
  int64_t next_offset;
  int64_t high_watermark;
  int64_t watermark_ms;
  bool idle;
};

// Counters readable from any thread (heartbeats, logs, tests).
struct TaskCounters {
  int64_t records_in = 0;
  int64_t events_valid = 0;
  int64_t records_invalid = 0;
  int64_t records_late = 0;
  int64_t dlq_delivery_failures = 0;
  int64_t features_emitted = 0;
  int64_t redis_features_written = 0;
  int64_t redis_errors = 0;
  int64_t redis_pending_features = 0;  // handed to the sink, not yet acknowledged by Redis
  int64_t redis_features_rejected = 0;   // refused for good by Redis: in the dead-letter topic
  int64_t redis_features_kept_newer = 0; // not applied: Redis held a newer version (replays)
  int64_t redis_features_guarded = 0;    // written through the monotonic guard
  std::string redis_last_error;          // the sink's latest error ("" when none)
  int64_t redis_last_error_ms = 0;
  int64_t watermark_ms = 0;
  int64_t sliding_windows_fired = 0;
  int64_t sessions_fired = 0;
  int64_t records_shuffled_out = 0;  // sent to peers
  int64_t records_shuffled_in = 0;   // received from peers
  int64_t gate_queued_bytes = 0;
  int64_t checkpoints_acknowledged = 0;
  int64_t checkpoints_declined = 0;
  int64_t last_alignment_ms = 0;
  int64_t last_sync_ms = 0;
  int64_t state_bytes = 0;  // RocksDB's estimate of the live state
  int64_t users = 0;        // users with window state in memory
  LatencyHistogram redis_batch_latency;
  std::vector<PartitionSnapshot> partitions;
  std::vector<v1::ChannelStatus> channels;
};

}  // namespace slipstream
