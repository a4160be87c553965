// Window arithmetic, identical to Flink's:
//   TumblingEventTimeWindows / SlidingEventTimeWindows (offset 0) and
//   EventTimeSessionWindows.withGap; a window [start, end) fires when the
//   watermark reaches end - 1 (TimeWindow.maxTimestamp()).
#pragma once

#include <cstdint>

namespace slipstream {

// WatermarkStrategy.forBoundedOutOfOrderness(Duration.ofSeconds(10)).
inline constexpr int64_t kOutOfOrdernessMs = 10 * 1000;

// Flink's TimeWindow.getWindowStartWithOffset(timestamp, 0, size): floor
// towards negative infinity, also for pre-1970 timestamps.
inline int64_t WindowStart(int64_t timestamp_ms, int64_t size_ms) {
  int64_t remainder = timestamp_ms % size_ms;
  if (remainder < 0) remainder += size_ms;
  return timestamp_ms - remainder;
}

// Max timestamp of a window ending at `end_ms` (exclusive): when it fires.
inline int64_t FireTime(int64_t end_ms) { return end_ms - 1; }

}  // namespace slipstream
