// Window arithmetic of the job, identical to Flink's:
//   SlidingEventTimeWindows.of(Time.hours(1), Time.minutes(10))  (offset 0)
//   EventTimeSessionWindows.withGap(Time.minutes(10))
// A window [start, end) fires when the watermark reaches end - 1
// (TimeWindow.maxTimestamp()).
#pragma once

#include <cstdint>

namespace slipstream {

inline constexpr int64_t kSlideMs = 10 * 60 * 1000;
inline constexpr int64_t kWindowSizeMs = 60 * 60 * 1000;
inline constexpr int64_t kPanesPerWindow = kWindowSizeMs / kSlideMs;  // 6
inline constexpr int64_t kSessionGapMs = 10 * 60 * 1000;
// WatermarkStrategy.forBoundedOutOfOrderness(Duration.ofSeconds(10)).
inline constexpr int64_t kOutOfOrdernessMs = 10 * 1000;

// Flink's TimeWindow.getWindowStartWithOffset(timestamp, 0, slide): floor
// towards negative infinity, also for pre-1970 timestamps.
inline int64_t PaneStart(int64_t timestamp_ms) {
  int64_t remainder = timestamp_ms % kSlideMs;
  if (remainder < 0) remainder += kSlideMs;
  return timestamp_ms - remainder;
}

// Max timestamp of a window ending at `end_ms` (exclusive): when it fires.
inline int64_t FireTime(int64_t end_ms) { return end_ms - 1; }

}  // namespace slipstream
