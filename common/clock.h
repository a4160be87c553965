// Time, from one place: the wall clock (epoch milliseconds, for what is
// shown to people and stored: checkpoint times, error dates) and the steady
// clock (for timeouts, intervals and durations, which must not jump with the
// wall clock). Components take a `const Clock&` so tests can drive time
// themselves (ManualClock) instead of sleeping; everything else uses
// Clock::Real().
#pragma once

#include <atomic>
#include <cstdint>

namespace slipstream {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t WallMs() const = 0;    // milliseconds since the Unix epoch
  virtual int64_t SteadyUs() const = 0;  // a monotonic clock, in microseconds
  int64_t SteadyMs() const { return SteadyUs() / 1000; }

  // The process's clocks (std::chrono::system_clock and steady_clock).
  static const Clock& Real();
};

// A clock that moves only when told to: both readings advance together.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t wall_ms = 1'700'000'000'000, int64_t steady_us = 1'000'000)
      : wall_ms_(wall_ms), steady_us_(steady_us) {}
  int64_t WallMs() const override { return wall_ms_.load(); }
  int64_t SteadyUs() const override { return steady_us_.load(); }
  void AdvanceMs(int64_t ms) {
    wall_ms_ += ms;
    steady_us_ += ms * 1000;
  }

 private:
  std::atomic<int64_t> wall_ms_;
  std::atomic<int64_t> steady_us_;
};

}  // namespace slipstream
