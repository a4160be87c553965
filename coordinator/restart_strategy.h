// RestartStrategy: Flink's RestartBackoffTimeStrategy for the one job of a
// coordinator (restart-strategy.*). After each failure of the running attempt
// it says whether the job may restart and how long to wait first:
//  - fixed-delay: up to `fixed_delay_attempts` restarts, each `fixed_delay_ms`
//    after its failure (Flink's FixedDelayRestartBackoffTimeStrategy: with
//    attempts=2 the third failure fails the job);
//  - exponential-delay: unlimited restarts; the first waits `initial_backoff_ms`,
//    each further one `backoff_multiplier` times the previous, capped at
//    `max_backoff_ms`; a failure more than `reset_backoff_threshold_ms` after the
//    previous one starts again from `initial_backoff_ms` (Flink's
//    ExponentialDelayRestartBackoffTimeStrategy without jitter);
//  - none: the first failure fails the job.
// An attempt that ends without a failure (a worker leaving on purpose) is not
// reported here. Not thread-safe (the server calls it under its lock).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace slipstream {

struct RestartStrategySettings {
  enum class Type { kFixedDelay, kExponentialDelay, kNone };
  Type type = Type::kFixedDelay;
  int64_t fixed_delay_attempts = INT32_MAX;  // restart-strategy.fixed-delay.attempts
  int64_t fixed_delay_ms = 1000;             // restart-strategy.fixed-delay.delay
  int64_t initial_backoff_ms = 1000;         // restart-strategy.exponential-delay.initial-backoff
  int64_t max_backoff_ms = 60000;            // restart-strategy.exponential-delay.max-backoff
  double backoff_multiplier = 2.0;           // restart-strategy.exponential-delay.backoff-multiplier
  int64_t reset_backoff_threshold_ms = 3600000;  // restart-strategy.exponential-delay.reset-backoff-threshold
};

// "fixed-delay" / "exponential-delay" / "none" (restart-strategy.type).
absl::StatusOr<RestartStrategySettings::Type> ParseRestartStrategyType(std::string_view text);

class RestartStrategy {
 public:
  explicit RestartStrategy(RestartStrategySettings settings) : settings_(settings) {}

  // The running attempt failed at `now_ms`: the delay before the next attempt
  // may be deployed, or nullopt when the strategy gives up (the job fails).
  std::optional<int64_t> OnFailure(int64_t now_ms);

  // Why the strategy gave up, for the job's failure cause (after OnFailure
  // returned nullopt).
  std::string GiveUpReason() const;
  // "fixed-delay (3 attempts, 1 s delay)", for logs.
  std::string Describe() const;

  const RestartStrategySettings& settings() const { return settings_; }

 private:
  RestartStrategySettings settings_;
  int64_t failures_ = 0;
  int64_t current_backoff_ms_ = 0;
  int64_t last_failure_ms_ = INT64_MIN;
};

}  // namespace slipstream
