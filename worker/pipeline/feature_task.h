// FeatureTask: the task one worker runs for its assignment, on one thread:
//   Kafka source -> parse + validate -> per-partition watermarks
//   -> key by user_id into key groups -> WindowEngine (RocksDB)
//   -> Redis sink; invalid and late records -> dead-letter topic.
// Records are processed in source batches; after each batch the state batch
// is committed, the watermark recomputed, due windows fired and their
// features handed to the sink (which applies backpressure).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/key_groups.h"

namespace slipstream {

class KafkaSource;
class DeadLetterProducer;
class RedisSink;
class StateStore;

struct FeatureTaskOptions {
  int max_parallelism = 128;
  KeyGroupRange owned_key_groups;
  int64_t idle_timeout_ms = 30000;
  int poll_batch = 2000;
  int poll_timeout_ms = 100;
};

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
  int64_t watermark_ms = 0;
  int64_t sliding_windows_fired = 0;
  int64_t sessions_fired = 0;
  std::vector<PartitionSnapshot> partitions;
};

class FeatureTask {
 public:
  // Takes ownership of its parts.
  static absl::StatusOr<std::unique_ptr<FeatureTask>> Create(const FeatureTaskOptions& options,
                                                             std::unique_ptr<KafkaSource> source,
                                                             std::unique_ptr<DeadLetterProducer> dead_letters,
                                                             std::unique_ptr<RedisSink> sink,
                                                             std::unique_ptr<StateStore> state);
  ~FeatureTask();

  // Runs until `stop` becomes true or a non-recoverable error (returned).
  // On stop, flushes the sink and the dead-letter producer.
  [[nodiscard]] absl::Status Run(const std::atomic<bool>& stop);

  TaskCounters counters() const;

 private:
  struct Impl;
  explicit FeatureTask(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
