#include "worker/metrics/worker_metrics.h"

#include <limits>

#include "common/prometheus.h"

namespace slipstream {

namespace {
constexpr int64_t kNoWatermark = std::numeric_limits<int64_t>::min();
}  // namespace

std::string RenderWorkerMetrics(const WorkerMetricsInput& in) {
  PrometheusWriter w;
  const MetricLabels worker = {{"worker", in.worker_id}};
  w.Gauge("slipstream_worker_task_attempt", "Attempt whose task this worker runs (0: idle).",
          static_cast<double>(in.attempt), worker);
  w.Counter("slipstream_worker_restores_total",
            "Tasks this process started from a checkpoint or savepoint (Flink's restored count, per worker).",
            static_cast<double>(in.restores), worker);
  w.Gauge("process_resident_memory_bytes", "Resident memory of the worker process.",
          static_cast<double>(in.rss_bytes), worker);
  if (!in.task) return w.text();
  const TaskCounters& c = *in.task;
  w.Counter("slipstream_records_in_total", "Kafka records read by this worker's source.",
            static_cast<double>(c.records_in), worker);
  w.Counter("slipstream_events_valid_total", "Records that parsed into valid events.",
            static_cast<double>(c.events_valid), worker);
  w.Counter("slipstream_records_invalid_total", "Malformed or invalid records sent to the dead-letter topic.",
            static_cast<double>(c.records_invalid), worker);
  w.Counter("slipstream_records_late_total", "Events late for all their windows, sent to the dead-letter topic.",
            static_cast<double>(c.records_late), worker);
  w.Counter("slipstream_dlq_delivery_failures_total", "Dead-letter records Kafka did not accept.",
            static_cast<double>(c.dlq_delivery_failures), worker);
  w.Counter("slipstream_features_emitted_total", "Features (window and session results) computed.",
            static_cast<double>(c.features_emitted), worker);
  w.Counter("slipstream_redis_features_written_total", "Features Redis acknowledged.",
            static_cast<double>(c.redis_features_written), worker);
  w.Counter("slipstream_redis_errors_total", "Redis error replies and connection errors.",
            static_cast<double>(c.redis_errors), worker);
  w.Counter("slipstream_redis_features_rejected_total",
            "Features Redis refused for good (e.g. WRONGTYPE), sent to the dead-letter topic.",
            static_cast<double>(c.redis_features_rejected), worker);
  w.Counter("slipstream_redis_features_kept_newer_total",
            "Features not applied because Redis held a newer version of the key (replays after a restore).",
            static_cast<double>(c.redis_features_kept_newer), worker);
  w.Counter("slipstream_redis_features_guarded_total", "Features written through the monotonic guard script.",
            static_cast<double>(c.redis_features_guarded), worker);
  if (!c.redis_last_error.empty()) {
    w.Gauge("slipstream_redis_last_error_timestamp_seconds", "When the Redis sink last met an error, and its text.",
            static_cast<double>(c.redis_last_error_ms) / 1000.0,
            {{"worker", in.worker_id}, {"error", c.redis_last_error}});
  }
  w.Histogram("slipstream_redis_write_latency_seconds",
              "Redis write latency per pipelined batch (first send to last reply).", c.redis_batch_latency, worker);
  w.Counter("slipstream_windows_fired_total", "Windows fired, by kind.", static_cast<double>(c.sliding_windows_fired),
            {{"worker", in.worker_id}, {"kind", "sliding"}});
  w.Counter("slipstream_windows_fired_total", "Windows fired, by kind.", static_cast<double>(c.sessions_fired),
            {{"worker", in.worker_id}, {"kind", "session"}});
  if (c.watermark_ms != kNoWatermark && c.watermark_ms > 0) {
    w.Gauge("slipstream_watermark_milliseconds", "The window operator's event-time watermark (epoch ms).",
            static_cast<double>(c.watermark_ms), worker);
    w.Gauge("slipstream_watermark_lag_seconds", "Wall-clock time minus the operator's watermark.",
            static_cast<double>(in.now_ms - c.watermark_ms) / 1000.0, worker);
  }
  w.Counter("slipstream_records_shuffled_out_total", "Records sent to the worker owning their key group.",
            static_cast<double>(c.records_shuffled_out), worker);
  w.Counter("slipstream_records_shuffled_in_total", "Records received from other workers.",
            static_cast<double>(c.records_shuffled_in), worker);
  w.Gauge("slipstream_redis_pending_features", "Features handed to the Redis sink and not yet acknowledged.",
          static_cast<double>(c.redis_pending_features), worker);
  w.Gauge("slipstream_input_gate_queued_bytes", "Bytes of batches waiting for the window operator.",
          static_cast<double>(c.gate_queued_bytes), worker);
  w.Gauge("slipstream_state_users", "Users with window state.", static_cast<double>(c.users), worker);
  w.Gauge("slipstream_state_rocksdb_bytes", "RocksDB's estimate of the live window state.",
          static_cast<double>(c.state_bytes), worker);
  w.Counter("slipstream_checkpoints_acknowledged_total", "Checkpoints this worker acknowledged.",
            static_cast<double>(c.checkpoints_acknowledged), worker);
  w.Counter("slipstream_checkpoints_declined_total", "Checkpoints this worker declined.",
            static_cast<double>(c.checkpoints_declined), worker);
  w.Gauge("slipstream_checkpoint_alignment_milliseconds", "Barrier alignment of the latest checkpoint.",
          static_cast<double>(c.last_alignment_ms), worker);
  w.Gauge("slipstream_checkpoint_sync_milliseconds", "Synchronous part of the latest checkpoint.",
          static_cast<double>(c.last_sync_ms), worker);
  for (const PartitionSnapshot& p : c.partitions) {
    const MetricLabels labels = {{"worker", in.worker_id}, {"partition", std::to_string(p.partition)}};
    if (p.high_watermark >= 0 && p.next_offset >= 0) {
      w.Gauge("slipstream_partition_lag_records", "Records behind the partition's end (consumer lag).",
              static_cast<double>(std::max<int64_t>(0, p.high_watermark - p.next_offset)), labels);
    }
  }
  for (const PartitionSnapshot& p : c.partitions) {
    if (p.watermark_ms == kNoWatermark || p.watermark_ms <= 0) continue;
    const MetricLabels labels = {{"worker", in.worker_id}, {"partition", std::to_string(p.partition)}};
    w.Gauge("slipstream_partition_watermark_milliseconds", "Event-time watermark of the partition (epoch ms).",
            static_cast<double>(p.watermark_ms), labels);
  }
  for (const PartitionSnapshot& p : c.partitions) {
    const MetricLabels labels = {{"worker", in.worker_id}, {"partition", std::to_string(p.partition)}};
    w.Gauge("slipstream_partition_idle", "1 when the partition is idle (caught up and silent).", p.idle ? 1 : 0,
            labels);
  }
  for (const v1::ChannelStatus& ch : c.channels) {
    const MetricLabels labels = {{"worker", in.worker_id},
                                 {"peer", ch.peer_worker_id()},
                                 {"direction", ch.outbound() ? "out" : "in"}};
    w.Counter("slipstream_shuffle_bytes_total", "Bytes of record batches on a data channel.",
              static_cast<double>(ch.bytes()), labels);
  }
  for (const v1::ChannelStatus& ch : c.channels) {
    if (!ch.outbound()) continue;
    const MetricLabels labels = {{"worker", in.worker_id}, {"peer", ch.peer_worker_id()}};
    w.Counter("slipstream_shuffle_backpressure_seconds_total", "Time the sender waited for credit (backpressure).",
              static_cast<double>(ch.backpressure_ms()) / 1000.0, labels);
  }
  for (const v1::ChannelStatus& ch : c.channels) {
    const MetricLabels labels = {{"worker", in.worker_id},
                                 {"peer", ch.peer_worker_id()},
                                 {"direction", ch.outbound() ? "out" : "in"}};
    w.Gauge("slipstream_shuffle_channel_connected", "1 when the data channel is connected.", ch.connected() ? 1 : 0,
            labels);
  }
  return w.text();
}

}  // namespace slipstream
