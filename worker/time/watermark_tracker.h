// WatermarkTracker: event-time watermarks of the Kafka partitions one task
// reads, with Flink's semantics:
//  - per partition, forBoundedOutOfOrderness(10 s): max event time - 10 s - 1 ms
//    (Long.MIN_VALUE before the first event);
//  - the task's watermark is the minimum over partitions that are not idle,
//    and never goes backwards;
//  - a partition is idle when it has delivered no record for
//    `source.idle-timeout` AND its consumer is caught up (position >= the
//    broker's high watermark). A partition that is merely not polled yet, e.g.
//    under backpressure, is never idle: Flink's timeout-only rule lost data.
//  - when every partition is idle the watermark holds (Flink: the output is
//    marked idle; downstream ignores it).
//  - bounded input (execution.runtime-mode=BATCH): a partition that reached
//    its stopping offset is finished. It no longer holds the watermark back
//    (nor is it idle), and once every partition finished the watermark is
//    kMaxWatermark: Flink's end of input, Watermark.MAX_WATERMARK, which
//    fires every window.
// Used from the task thread only.
#pragma once

#include <cstdint>
#include <limits>
#include <map>

namespace slipstream {

inline constexpr int64_t kMinWatermark = std::numeric_limits<int64_t>::min();
inline constexpr int64_t kMaxWatermark = std::numeric_limits<int64_t>::max();

class WatermarkTracker {
 public:
  // idle_timeout_ms == 0 disables idleness.
  WatermarkTracker(int64_t out_of_orderness_ms, int64_t idle_timeout_ms);

  void AddPartition(int partition, int64_t now_ms);
  // A partition restored from a checkpoint: its watermark (kMinWatermark:
  // none yet) and idleness at the barrier. An idle one stays idle while it is
  // caught up and silent, as it would have without the restore.
  void RestorePartition(int partition, int64_t watermark_ms, bool idle, int64_t now_ms);
  // Any record (valid or not) counts as activity; only valid events carry a
  // timestamp.
  void OnRecord(int partition, int64_t now_ms);
  void OnEventTime(int partition, int64_t event_time_ms);
  void SetCaughtUp(int partition, bool caught_up);
  // Bounded input: the partition reached its stopping offset (for good).
  void SetFinished(int partition);

  // Recomputes idleness and the combined watermark at `now_ms`.
  int64_t Update(int64_t now_ms);

  int64_t watermark() const { return watermark_; }
  // True when every partition is idle, or there are none (a source without
  // partitions never produces a watermark, so downstream must ignore it).
  bool AllIdle() const;
  int64_t PartitionWatermark(int partition) const;
  bool IsIdle(int partition) const;
  bool IsFinished(int partition) const;
  // At least one partition, and every one finished.
  bool AllFinished() const;

 private:
  struct PartitionState {
    int64_t max_event_time = kMinWatermark;
    int64_t last_activity_ms = 0;
    bool caught_up = false;
    bool idle = false;
    bool finished = false;
  };
  int64_t PartitionWatermarkOf(const PartitionState& p) const;

  int64_t out_of_orderness_ms_;
  int64_t idle_timeout_ms_;
  std::map<int, PartitionState> partitions_;
  int64_t watermark_ = kMinWatermark;
};

}  // namespace slipstream
