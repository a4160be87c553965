// RestartStrategy: Flink's fixed-delay, exponential-delay and none
// strategies, with exact delays (no clock: failure times are given).
#include "coordinator/restart_strategy.h"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

namespace slipstream {
namespace {

using Type = RestartStrategySettings::Type;

TEST(RestartStrategy, FixedDelayRestartsUpToItsAttemptsThenGivesUp) {
  RestartStrategySettings settings;
  settings.type = Type::kFixedDelay;
  settings.fixed_delay_attempts = 2;
  settings.fixed_delay_ms = 50;
  RestartStrategy strategy(settings);
  EXPECT_EQ(strategy.OnFailure(0), std::optional<int64_t>(50));
  EXPECT_EQ(strategy.OnFailure(10), std::optional<int64_t>(50));
  EXPECT_EQ(strategy.OnFailure(20), std::nullopt);
  EXPECT_NE(strategy.GiveUpReason().find("restart-strategy.fixed-delay.attempts=2"), std::string::npos)
      << strategy.GiveUpReason();
}

TEST(RestartStrategy, FixedDelayWithoutAttemptsFailsOnTheFirstFailure) {
  RestartStrategySettings settings;
  settings.fixed_delay_attempts = 0;
  RestartStrategy strategy(settings);
  EXPECT_EQ(strategy.OnFailure(0), std::nullopt);
}

TEST(RestartStrategy, NoneNeverRestarts) {
  RestartStrategySettings settings;
  settings.type = Type::kNone;
  RestartStrategy strategy(settings);
  EXPECT_EQ(strategy.OnFailure(0), std::nullopt);
  EXPECT_NE(strategy.GiveUpReason().find("restart-strategy.type=none"), std::string::npos);
}

TEST(RestartStrategy, ExponentialDelayGrowsToItsMaximumAndResetsAfterAQuietPeriod) {
  RestartStrategySettings settings;
  settings.type = Type::kExponentialDelay;
  settings.initial_backoff_ms = 100;
  settings.max_backoff_ms = 1000;
  settings.backoff_multiplier = 2.0;
  settings.reset_backoff_threshold_ms = 10000;
  RestartStrategy strategy(settings);
  std::vector<int64_t> delays;
  for (int64_t t = 0; t < 6; ++t) delays.push_back(*strategy.OnFailure(t * 1000));
  EXPECT_EQ(delays, (std::vector<int64_t>{100, 200, 400, 800, 1000, 1000}));
  // 10 s after the previous failure: back to the initial backoff.
  EXPECT_EQ(strategy.OnFailure(5000 + 10000), std::optional<int64_t>(100));
  EXPECT_EQ(strategy.OnFailure(15001), std::optional<int64_t>(200));
  // Just under the threshold: keeps growing.
  EXPECT_EQ(strategy.OnFailure(15001 + 9999), std::optional<int64_t>(400));
}

TEST(RestartStrategy, ExponentialDelayWithAFractionalMultiplier) {
  RestartStrategySettings settings;
  settings.type = Type::kExponentialDelay;
  settings.initial_backoff_ms = 100;
  settings.max_backoff_ms = 300;
  settings.backoff_multiplier = 1.5;
  RestartStrategy strategy(settings);
  EXPECT_EQ(strategy.OnFailure(0), std::optional<int64_t>(100));
  EXPECT_EQ(strategy.OnFailure(1), std::optional<int64_t>(150));
  EXPECT_EQ(strategy.OnFailure(2), std::optional<int64_t>(225));
  EXPECT_EQ(strategy.OnFailure(3), std::optional<int64_t>(300));
}

TEST(RestartStrategy, ParsesTheConfiguredType) {
  EXPECT_EQ(*ParseRestartStrategyType("fixed-delay"), Type::kFixedDelay);
  EXPECT_EQ(*ParseRestartStrategyType("exponential-delay"), Type::kExponentialDelay);
  EXPECT_EQ(*ParseRestartStrategyType("none"), Type::kNone);
  const absl::StatusOr<Type> bad = ParseRestartStrategyType("failure-rate");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("restart-strategy.type"), std::string::npos);
}

}  // namespace
}  // namespace slipstream
