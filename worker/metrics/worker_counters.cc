#include "worker/metrics/worker_counters.h"

#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <string>

#include "common/prometheus.h"

namespace slipstream {

void FillWorkerCounters(const TaskCounters& c, v1::WorkerCounters* out) {
  out->set_records_in(c.records_in);
  out->set_events_valid(c.events_valid);
  out->set_records_invalid(c.records_invalid);
  out->set_records_late(c.records_late);
  out->set_dlq_delivery_failures(c.dlq_delivery_failures);
  out->set_features_emitted(c.features_emitted);
  out->set_redis_features_written(c.redis_features_written);
  out->set_redis_errors(c.redis_errors);
  out->set_redis_pending_features(c.redis_pending_features);
  out->set_redis_features_rejected(c.redis_features_rejected);
  out->set_redis_features_kept_newer(c.redis_features_kept_newer);
  out->set_redis_features_guarded(c.redis_features_guarded);
  out->set_redis_last_error(c.redis_last_error);
  out->set_redis_last_error_ms(c.redis_last_error_ms);
  out->set_watermark_ms(c.watermark_ms);
  out->set_sliding_windows_fired(c.sliding_windows_fired);
  out->set_sessions_fired(c.sessions_fired);
  for (const v1::ChannelStatus& channel : c.channels) *out->add_channels() = channel;
  out->set_gate_queued_bytes(c.gate_queued_bytes);
  out->set_records_shuffled_out(c.records_shuffled_out);
  out->set_records_shuffled_in(c.records_shuffled_in);
  v1::LatencyHistogramSnapshot* latency = out->mutable_redis_write_latency();
  for (double bound : LatencyHistogram::kBoundsMs) latency->add_bounds_ms(bound);
  for (int64_t n : c.redis_batch_latency.bucket_counts) latency->add_bucket_counts(n);
  latency->set_count(c.redis_batch_latency.count);
  latency->set_sum_ms(c.redis_batch_latency.sum_ms);
  // Resident memory from /proc/self/status (kB).
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    int64_t kb = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %" SCNd64, &kb) == 1) out->set_rss_bytes(kb * 1024);
    if (std::sscanf(line.c_str(), "VmHWM: %" SCNd64, &kb) == 1) out->set_peak_rss_bytes(kb * 1024);
  }
  for (const PartitionSnapshot& p : c.partitions) {
    v1::PartitionProgress* pp = out->add_partitions();
    pp->set_partition(p.partition);
    pp->set_next_offset(p.next_offset);
    pp->set_high_watermark(p.high_watermark);
    pp->set_watermark_ms(p.watermark_ms);
    pp->set_idle(p.idle);
  }
}

int64_t ResidentBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    int64_t kb = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %" SCNd64, &kb) == 1) return kb * 1024;
  }
  return 0;
}

}  // namespace slipstream
