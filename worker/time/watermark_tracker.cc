#include "worker/time/watermark_tracker.h"

#include <algorithm>

namespace slipstream {

WatermarkTracker::WatermarkTracker(int64_t out_of_orderness_ms, int64_t idle_timeout_ms)
    : out_of_orderness_ms_(out_of_orderness_ms), idle_timeout_ms_(idle_timeout_ms) {}

void WatermarkTracker::AddPartition(int partition, int64_t now_ms) {
  PartitionState& p = partitions_[partition];
  p.last_activity_ms = now_ms;
}

void WatermarkTracker::RestorePartition(int partition, int64_t watermark_ms, bool idle, int64_t now_ms) {
  PartitionState& p = partitions_[partition];
  // The inverse of PartitionWatermarkOf.
  p.max_event_time = watermark_ms == kMinWatermark ? kMinWatermark : watermark_ms + out_of_orderness_ms_ + 1;
  p.last_activity_ms = idle ? now_ms - idle_timeout_ms_ : now_ms;
  p.idle = idle;
}

void WatermarkTracker::OnRecord(int partition, int64_t now_ms) {
  PartitionState& p = partitions_[partition];
  p.last_activity_ms = now_ms;
  p.idle = false;
}

void WatermarkTracker::OnEventTime(int partition, int64_t event_time_ms) {
  PartitionState& p = partitions_[partition];
  p.max_event_time = std::max(p.max_event_time, event_time_ms);
}

void WatermarkTracker::SetCaughtUp(int partition, bool caught_up) { partitions_[partition].caught_up = caught_up; }

void WatermarkTracker::SetFinished(int partition) {
  PartitionState& p = partitions_[partition];
  p.finished = true;
  p.idle = false;
}

int64_t WatermarkTracker::PartitionWatermarkOf(const PartitionState& p) const {
  if (p.max_event_time == kMinWatermark) return kMinWatermark;
  // Flink: maxTimestamp - outOfOrdernessMillis - 1, saturating at MIN.
  if (p.max_event_time < kMinWatermark + out_of_orderness_ms_ + 1) return kMinWatermark;
  return p.max_event_time - out_of_orderness_ms_ - 1;
}

int64_t WatermarkTracker::Update(int64_t now_ms) {
  bool any_active = false;
  int64_t combined = std::numeric_limits<int64_t>::max();
  for (auto& [partition, p] : partitions_) {
    // Flink: a finished split's watermark is MAX_WATERMARK, which never
    // holds the minimum back.
    if (p.finished) continue;
    // Not sticky: a partition that falls behind again (new data on the
    // broker, not yet fetched) holds the watermark back again.
    p.idle = idle_timeout_ms_ > 0 && p.caught_up && now_ms - p.last_activity_ms >= idle_timeout_ms_;
    if (p.idle) continue;
    any_active = true;
    combined = std::min(combined, PartitionWatermarkOf(p));
  }
  if (any_active) watermark_ = std::max(watermark_, combined);
  if (AllFinished()) watermark_ = kMaxWatermark;
  return watermark_;
}

int64_t WatermarkTracker::PartitionWatermark(int partition) const {
  auto it = partitions_.find(partition);
  return it == partitions_.end() ? kMinWatermark : PartitionWatermarkOf(it->second);
}

bool WatermarkTracker::AllIdle() const {
  // Finished partitions are neither: the others decide; all finished is
  // not idle (the watermark is at its end).
  bool any_unfinished = false;
  for (const auto& [partition, p] : partitions_) {
    if (p.finished) continue;
    any_unfinished = true;
    if (!p.idle) return false;
  }
  return any_unfinished || partitions_.empty();
}

bool WatermarkTracker::IsFinished(int partition) const {
  auto it = partitions_.find(partition);
  return it != partitions_.end() && it->second.finished;
}

bool WatermarkTracker::AllFinished() const {
  return !partitions_.empty() &&
         std::all_of(partitions_.begin(), partitions_.end(), [](const auto& entry) { return entry.second.finished; });
}

bool WatermarkTracker::IsIdle(int partition) const {
  auto it = partitions_.find(partition);
  return it != partitions_.end() && it->second.idle;
}

}  // namespace slipstream
