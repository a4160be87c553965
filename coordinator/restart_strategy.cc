#include "coordinator/restart_strategy.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"

namespace slipstream {

absl::StatusOr<RestartStrategySettings::Type> ParseRestartStrategyType(std::string_view text) {
  using Type = RestartStrategySettings::Type;
  if (text == "fixed-delay") return Type::kFixedDelay;
  if (text == "exponential-delay") return Type::kExponentialDelay;
  if (text == "none") return Type::kNone;
  return absl::InvalidArgumentError(absl::StrCat("restart-strategy.type: \"", ToAbsl(text),
                                                 "\" must be one of fixed-delay, exponential-delay, none"));
}

std::optional<int64_t> RestartStrategy::OnFailure(int64_t now_ms) {
  ++failures_;
  switch (settings_.type) {
    case RestartStrategySettings::Type::kNone:
      return std::nullopt;
    case RestartStrategySettings::Type::kFixedDelay:
      if (failures_ > settings_.fixed_delay_attempts) return std::nullopt;
      return settings_.fixed_delay_ms;
    case RestartStrategySettings::Type::kExponentialDelay: {
      const int64_t initial = std::max<int64_t>(settings_.initial_backoff_ms, 0);
      const int64_t cap = std::max(settings_.max_backoff_ms, initial);
      if (last_failure_ms_ == INT64_MIN || now_ms - last_failure_ms_ >= settings_.reset_backoff_threshold_ms) {
        current_backoff_ms_ = initial;
      } else {
        const double next = static_cast<double>(current_backoff_ms_) * settings_.backoff_multiplier;
        current_backoff_ms_ = next >= static_cast<double>(cap) ? cap : std::max<int64_t>(std::llround(next), 0);
      }
      last_failure_ms_ = now_ms;
      return current_backoff_ms_;
    }
  }
  return std::nullopt;
}

std::string RestartStrategy::GiveUpReason() const {
  switch (settings_.type) {
    case RestartStrategySettings::Type::kNone:
      return "restart-strategy.type=none: the job is not restarted after a failure";
    case RestartStrategySettings::Type::kFixedDelay:
      return absl::StrCat("the fixed-delay restart strategy is exhausted: restart-strategy.fixed-delay.attempts=",
                          settings_.fixed_delay_attempts, " and this was failure ", failures_);
    case RestartStrategySettings::Type::kExponentialDelay:
      break;
  }
  return "the restart strategy gave up";
}

std::string RestartStrategy::Describe() const {
  switch (settings_.type) {
    case RestartStrategySettings::Type::kNone:
      return "none (a failure fails the job)";
    case RestartStrategySettings::Type::kFixedDelay:
      return absl::StrCat("fixed-delay (", settings_.fixed_delay_attempts, " attempts, ", settings_.fixed_delay_ms,
                          " ms delay)");
    case RestartStrategySettings::Type::kExponentialDelay:
      return absl::StrCat("exponential-delay (initial backoff ", settings_.initial_backoff_ms, " ms, max ",
                          settings_.max_backoff_ms, " ms, multiplier ", settings_.backoff_multiplier,
                          ", reset after ", settings_.reset_backoff_threshold_ms, " ms without failure)");
  }
  return "unknown";
}

}  // namespace slipstream
