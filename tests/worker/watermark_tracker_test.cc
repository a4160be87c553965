#include "worker/time/watermark_tracker.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace slipstream {
namespace {

constexpr int64_t kOoo = 10'000;  // forBoundedOutOfOrderness(10 s)

TEST(WatermarkTracker, StartsAtTheMinimum) {
  WatermarkTracker t(kOoo, 5'000);
  EXPECT_EQ(t.watermark(), kMinWatermark);
  t.AddPartition(0, 0);
  EXPECT_EQ(t.PartitionWatermark(0), kMinWatermark);
  EXPECT_EQ(t.Update(0), kMinWatermark);
  EXPECT_EQ(t.watermark(), kMinWatermark);
}

TEST(WatermarkTracker, WithoutPartitionsTheWatermarkHolds) {
  WatermarkTracker t(kOoo, 5'000);
  EXPECT_EQ(t.Update(1'000'000), kMinWatermark);
  WatermarkTracker no_idle(kOoo, 0);
  EXPECT_EQ(no_idle.Update(1'000'000), kMinWatermark);
}

TEST(WatermarkTracker, PartitionWatermarkIsMaxEventTimeMinusOutOfOrdernessMinusOne) {
  WatermarkTracker t(kOoo, 0);
  t.AddPartition(0, 0);
  t.OnRecord(0, 1);
  t.OnEventTime(0, 100'000);
  EXPECT_EQ(t.PartitionWatermark(0), 89'999);
  t.OnRecord(0, 2);
  t.OnEventTime(0, 50'000);  // out of order: the max stays
  EXPECT_EQ(t.PartitionWatermark(0), 89'999);
  EXPECT_EQ(t.Update(3), 89'999);
  t.OnRecord(0, 4);
  t.OnEventTime(0, 100'001);
  EXPECT_EQ(t.Update(5), 90'000);
  EXPECT_EQ(t.watermark(), 90'000);
}

TEST(WatermarkTracker, NegativeEventTimesAndZeroOutOfOrderness) {
  WatermarkTracker t(kOoo, 0);
  t.AddPartition(0, 0);
  t.OnRecord(0, 0);
  t.OnEventTime(0, -5'000);
  EXPECT_EQ(t.Update(0), -15'001);

  WatermarkTracker strict(0, 0);
  strict.AddPartition(3, 0);
  strict.OnRecord(3, 0);
  strict.OnEventTime(3, 1'700'000'000'000);
  EXPECT_EQ(strict.Update(0), 1'699'999'999'999);
}

TEST(WatermarkTracker, EventTimesNearTheMinimumSaturateInsteadOfOverflowing) {
  WatermarkTracker t(kOoo, 0);
  t.AddPartition(0, 0);
  t.OnRecord(0, 0);
  t.OnEventTime(0, kMinWatermark + 5);
  EXPECT_EQ(t.PartitionWatermark(0), kMinWatermark);
  EXPECT_EQ(t.Update(0), kMinWatermark);
  t.OnRecord(0, 0);
  t.OnEventTime(0, kMinWatermark + kOoo + 1);
  EXPECT_EQ(t.PartitionWatermark(0), kMinWatermark);
  t.OnRecord(0, 0);
  t.OnEventTime(0, kMinWatermark + kOoo + 2);
  EXPECT_EQ(t.PartitionWatermark(0), kMinWatermark + 1);
}

TEST(WatermarkTracker, CombinedIsTheMinimumOverPartitions) {
  WatermarkTracker t(kOoo, 0);
  t.AddPartition(0, 0);
  t.AddPartition(1, 0);
  t.AddPartition(2, 0);
  t.OnRecord(0, 0);
  t.OnEventTime(0, 100'000);
  t.OnRecord(1, 0);
  t.OnEventTime(1, 50'000);
  EXPECT_EQ(t.Update(0), kMinWatermark) << "partition 2 has no event yet";
  t.OnRecord(2, 0);
  t.OnEventTime(2, 70'000);
  EXPECT_EQ(t.Update(0), 39'999);
  t.OnRecord(1, 0);
  t.OnEventTime(1, 90'000);
  EXPECT_EQ(t.Update(0), 59'999);
}

TEST(WatermarkTracker, CombinedNeverGoesBackwards) {
  WatermarkTracker t(kOoo, 0);
  t.AddPartition(0, 0);
  t.OnRecord(0, 0);
  t.OnEventTime(0, 100'000);
  EXPECT_EQ(t.Update(0), 89'999);
  // A new partition without events, then one behind: the watermark holds.
  t.AddPartition(1, 0);
  EXPECT_EQ(t.Update(0), 89'999);
  t.OnRecord(1, 0);
  t.OnEventTime(1, 20'000);
  EXPECT_EQ(t.Update(0), 89'999);
  EXPECT_EQ(t.PartitionWatermark(1), 9'999);
  t.OnRecord(1, 0);
  t.OnEventTime(1, 200'000);
  EXPECT_EQ(t.Update(0), 89'999);
  t.OnRecord(0, 0);
  t.OnEventTime(0, 300'000);
  EXPECT_EQ(t.Update(0), 189'999);
}

// Partition 0 is busy with events; partition 1 is the one that may go idle.
class WatermarkTrackerIdleness : public ::testing::Test {
 protected:
  static constexpr int64_t kTimeout = 5'000;
  WatermarkTrackerIdleness() : t_(kOoo, kTimeout) {
    t_.AddPartition(0, 1'000);
    t_.AddPartition(1, 1'000);
    Event0(1'000, 100'000);  // partition 0 at 89'999
  }
  void Event0(int64_t now, int64_t event_time) {
    t_.OnRecord(0, now);
    t_.OnEventTime(0, event_time);
  }
  void Event1(int64_t now, int64_t event_time) {
    t_.OnRecord(1, now);
    t_.OnEventTime(1, event_time);
  }
  WatermarkTracker t_;
};

TEST_F(WatermarkTrackerIdleness, CaughtUpSilentPartitionBecomesIdleAtTheTimeout) {
  t_.SetCaughtUp(1, true);
  EXPECT_EQ(t_.Update(1'000 + kTimeout - 1), kMinWatermark);
  EXPECT_FALSE(t_.IsIdle(1));
  EXPECT_EQ(t_.Update(1'000 + kTimeout), 89'999);  // now - last activity == timeout
  EXPECT_TRUE(t_.IsIdle(1));
  EXPECT_FALSE(t_.IsIdle(0)) << "partition 0 is not caught up";
}

TEST_F(WatermarkTrackerIdleness, BackpressuredPartitionIsNeverIdle) {
  // Not caught up (the default): however long it is silent, it holds the watermark.
  EXPECT_EQ(t_.Update(1'000 + kTimeout), kMinWatermark);
  EXPECT_EQ(t_.Update(1'000'000'000'000), kMinWatermark);
  EXPECT_FALSE(t_.IsIdle(1));
  t_.SetCaughtUp(1, false);
  EXPECT_EQ(t_.Update(std::numeric_limits<int64_t>::max() / 2), kMinWatermark);
  EXPECT_FALSE(t_.IsIdle(1));
}

TEST_F(WatermarkTrackerIdleness, BackpressuredPartitionWithEventsHoldsTheWatermark) {
  Event1(1'000, 40'000);
  EXPECT_EQ(t_.Update(1'000), 29'999);
  Event0(2'000, 500'000);
  EXPECT_EQ(t_.Update(10'000'000), 29'999);
  EXPECT_FALSE(t_.IsIdle(1));
}

TEST(WatermarkTracker, ZeroIdleTimeoutDisablesIdleness) {
  WatermarkTracker t(kOoo, 0);
  t.AddPartition(0, 0);
  t.AddPartition(1, 0);
  t.OnRecord(0, 0);
  t.OnEventTime(0, 100'000);
  t.SetCaughtUp(1, true);
  EXPECT_EQ(t.Update(1'000'000'000), kMinWatermark);
  EXPECT_FALSE(t.IsIdle(1));
}

TEST_F(WatermarkTrackerIdleness, AddPartitionTimeCountsAsActivity) {
  t_.AddPartition(2, 50'000);
  t_.SetCaughtUp(1, true);
  t_.SetCaughtUp(2, true);
  EXPECT_EQ(t_.Update(50'000 + kTimeout - 1), kMinWatermark);  // 1 idle, 2 not yet
  EXPECT_TRUE(t_.IsIdle(1));
  EXPECT_FALSE(t_.IsIdle(2));
  EXPECT_EQ(t_.Update(50'000 + kTimeout), 89'999);
  EXPECT_TRUE(t_.IsIdle(2));
}

TEST_F(WatermarkTrackerIdleness, RecordWithoutEventTimeCountsAsActivity) {
  t_.SetCaughtUp(1, true);
  t_.OnRecord(1, 20'000);  // an invalid record: activity, no timestamp
  EXPECT_EQ(t_.Update(20'000 + kTimeout - 1), kMinWatermark);
  EXPECT_FALSE(t_.IsIdle(1));
  EXPECT_EQ(t_.Update(20'000 + kTimeout), 89'999);
  EXPECT_TRUE(t_.IsIdle(1));
}

TEST_F(WatermarkTrackerIdleness, IdlenessEndsWithANewRecord) {
  t_.SetCaughtUp(1, true);
  EXPECT_EQ(t_.Update(10'000), 89'999);
  ASSERT_TRUE(t_.IsIdle(1));
  // Partition 1 comes back behind: it counts again, but the watermark does
  // not go back.
  Event1(10'001, 50'000);
  EXPECT_EQ(t_.Update(10'001), 89'999);
  EXPECT_FALSE(t_.IsIdle(1));
  EXPECT_EQ(t_.PartitionWatermark(1), 39'999);
  // It now holds the watermark while partition 0 moves on.
  Event0(10'002, 300'000);
  EXPECT_EQ(t_.Update(10'002), 89'999);
  Event1(10'003, 400'000);
  EXPECT_EQ(t_.Update(10'003), 289'999);
  // ... and goes idle again only after a full timeout of silence.
  EXPECT_EQ(t_.Update(10'003 + kTimeout - 1), 289'999);
  EXPECT_FALSE(t_.IsIdle(1));
}

TEST_F(WatermarkTrackerIdleness, IdlenessEndsWhenThePartitionFallsBehind) {
  t_.SetCaughtUp(1, true);
  EXPECT_EQ(t_.Update(10'000), 89'999);
  ASSERT_TRUE(t_.IsIdle(1));
  // The broker got new records for partition 1 that we have not read yet.
  t_.SetCaughtUp(1, false);
  Event0(10'001, 500'000);
  EXPECT_EQ(t_.Update(10'001), 89'999) << "partition 1 (no events) holds the watermark again";
  EXPECT_FALSE(t_.IsIdle(1));
  // Caught up again and still silent for more than the timeout: idle at once.
  t_.SetCaughtUp(1, true);
  EXPECT_EQ(t_.Update(10'002), 489'999);
  EXPECT_TRUE(t_.IsIdle(1));
}

TEST_F(WatermarkTrackerIdleness, AllPartitionsIdleHoldsTheWatermark) {
  Event1(1'000, 60'000);
  EXPECT_EQ(t_.Update(1'000), 49'999);
  t_.SetCaughtUp(0, true);
  t_.SetCaughtUp(1, true);
  EXPECT_EQ(t_.Update(1'000 + kTimeout), 49'999);
  EXPECT_TRUE(t_.IsIdle(0));
  EXPECT_TRUE(t_.IsIdle(1));
  EXPECT_EQ(t_.Update(1'000'000), 49'999);
  EXPECT_EQ(t_.watermark(), 49'999);
  // Partition 0 becomes active again: only it counts.
  Event0(1'000'001, 200'000);
  EXPECT_EQ(t_.Update(1'000'001), 189'999);
  EXPECT_FALSE(t_.IsIdle(0));
  EXPECT_TRUE(t_.IsIdle(1));
}

TEST_F(WatermarkTrackerIdleness, IdlenessDoesNotChangeAPartitionsOwnWatermark) {
  Event1(1'000, 60'000);
  t_.SetCaughtUp(1, true);
  EXPECT_EQ(t_.Update(1'000 + kTimeout), 89'999);
  EXPECT_TRUE(t_.IsIdle(1));
  EXPECT_EQ(t_.PartitionWatermark(1), 49'999);
  EXPECT_EQ(t_.PartitionWatermark(0), 89'999);
}

// Bounded input (BATCH): Flink gives a finished split MAX_WATERMARK, so it
// never holds the others back, and the end of all input fires everything.
TEST(WatermarkTracker, AFinishedPartitionNoLongerHoldsTheWatermarkBack) {
  WatermarkTracker t(kOoo, 0);
  t.AddPartition(0, 0);
  t.AddPartition(1, 0);
  t.OnRecord(0, 1);
  t.OnEventTime(0, 100'000);
  EXPECT_EQ(t.Update(2), kMinWatermark);  // partition 1 has sent nothing yet
  t.SetFinished(1);                        // ... and never will: it is empty
  EXPECT_EQ(t.Update(3), 89'999);
  EXPECT_TRUE(t.IsFinished(1));
  EXPECT_FALSE(t.IsIdle(1));
  EXPECT_FALSE(t.AllIdle());
  EXPECT_FALSE(t.AllFinished());
}

TEST(WatermarkTracker, EveryPartitionFinishedIsTheEndOfTime) {
  WatermarkTracker t(kOoo, 5'000);
  t.AddPartition(0, 0);
  t.AddPartition(1, 0);
  t.OnRecord(0, 1);
  t.OnEventTime(0, 100'000);
  t.OnRecord(1, 1);
  t.OnEventTime(1, 50'000);
  EXPECT_EQ(t.Update(2), 39'999);
  t.SetFinished(0);
  t.SetFinished(1);
  EXPECT_EQ(t.Update(3), kMaxWatermark);
  EXPECT_TRUE(t.AllFinished());
  EXPECT_FALSE(t.AllIdle());  // at its end, not idle: downstream must take the watermark
  EXPECT_EQ(t.Update(1'000'000), kMaxWatermark);  // and it stays there
}

TEST(WatermarkTracker, IdlePartitionsBesideFinishedOnesMakeTheSourceIdle) {
  WatermarkTracker t(kOoo, 5'000);
  t.AddPartition(0, 0);
  t.AddPartition(1, 0);
  t.SetFinished(0);
  t.SetCaughtUp(1, true);
  t.Update(10'000);
  EXPECT_TRUE(t.IsIdle(1));
  EXPECT_TRUE(t.AllIdle());
  EXPECT_FALSE(t.AllFinished());
}

}  // namespace
}  // namespace slipstream
