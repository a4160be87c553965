// The operator watermark over several input channels (Flink's
// StatusWatermarkValve): minimum over active channels, idle and finished
// channels excluded, never backwards, silent channels hold it back.
#include "worker/time/input_watermarks.h"

#include <gtest/gtest.h>

#include <limits>

namespace slipstream {
namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

TEST(InputWatermarks, NothingBeforeAnyStatus) {
  InputWatermarks w(3);
  // Three silent channels are active with the minimum watermark.
  EXPECT_EQ(w.Combined(), kMin);
}

TEST(InputWatermarks, MinimumOverChannelsAndSilentChannelHoldsBack) {
  InputWatermarks w(3);
  w.Update(0, 1000, false, false);
  w.Update(1, 500, false, false);
  EXPECT_EQ(w.Combined(), kMin) << "channel 2 has sent nothing yet";
  w.Update(2, 700, false, false);
  EXPECT_EQ(w.Combined(), 500);
  w.Update(1, 2000, false, false);
  EXPECT_EQ(w.Combined(), 700);
}

TEST(InputWatermarks, IdleChannelsAreExcludedAndRejoinOnceAligned) {
  InputWatermarks w(2);
  w.Update(0, 1000, false, false);
  w.Update(1, 100, true, false);
  EXPECT_EQ(w.Combined(), 1000);
  // Back from idle behind the output: not aligned, so it does not hold the
  // other channel back (Flink's StatusWatermarkValve) ...
  w.Update(1, 200, false, false);
  EXPECT_EQ(w.Combined(), 1000);
  w.Update(0, 5000, false, false);
  EXPECT_EQ(w.Combined(), 5000);
  // ... until its own watermark catches up with the output.
  w.Update(1, 6000, false, false);
  w.Update(0, 9000, false, false);
  EXPECT_EQ(w.Combined(), 6000);
}

TEST(InputWatermarks, BackFromIdleAheadIsAlignedAtOnce) {
  InputWatermarks w(2);
  w.Update(0, 1000, false, false);
  w.Update(1, 2000, false, false);
  EXPECT_EQ(w.Combined(), 1000);
  w.Update(1, 2000, true, false);
  w.Update(0, 3000, false, false);
  EXPECT_EQ(w.Combined(), 3000);
  w.Update(1, 4000, false, false);
  w.Update(0, 8000, false, false);
  EXPECT_EQ(w.Combined(), 4000);
}

TEST(InputWatermarks, AllIdleHolds) {
  InputWatermarks w(2);
  w.Update(0, 1000, false, false);
  w.Update(1, 3000, false, false);
  EXPECT_EQ(w.Combined(), 1000);
  w.Update(0, 1000, true, false);
  EXPECT_EQ(w.Combined(), 3000) << "the idle channel no longer holds the other back";
  w.Update(1, 3000, true, false);
  EXPECT_EQ(w.Combined(), 3000) << "every channel idle: the watermark holds";
}

TEST(InputWatermarks, StoppedChannelsHoldTheWatermark) {
  // A channel that ended stopped reading, with records left in Kafka for the
  // next attempt: windows must not fire on the other channels alone.
  InputWatermarks w(2);
  w.Update(0, 1000, false, false);
  w.Update(1, 100, false, true);
  EXPECT_TRUE(w.ended(1));
  EXPECT_FALSE(w.ended(0));
  EXPECT_EQ(w.Combined(), 100);
  w.Update(0, 5000, false, false);
  EXPECT_EQ(w.Combined(), 100) << "the stopped channel still holds the watermark";
  // Ended is final.
  w.Update(1, 100, false, false);
  EXPECT_TRUE(w.ended(1));
}

TEST(InputWatermarks, StoppedIdleChannelsDoNotHoldBack) {
  InputWatermarks w(2);
  w.Update(0, 1000, false, false);
  w.Update(1, 100, true, true);  // a source without partitions stops
  EXPECT_EQ(w.Combined(), 1000);
}

TEST(InputWatermarks, ChannelWatermarkNeverGoesBack) {
  InputWatermarks w(1);
  w.Update(0, 1000, false, false);
  w.Update(0, 10, false, false);
  EXPECT_EQ(w.Combined(), 1000);
}

TEST(InputWatermarks, BoundedInputEndsWhenEveryChannelEndedAtTheEndOfTime) {
  constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();
  InputWatermarks w(2);
  w.Update(0, 1000, false, false);
  w.Update(1, 500, false, false);
  w.Update(0, kEnd, false, true);  // this worker's source finished its partitions
  EXPECT_TRUE(w.ended(0));
  EXPECT_FALSE(w.AllEnded());
  EXPECT_EQ(w.Combined(), 500);  // the peer still holds it
  w.Update(1, kEnd, false, true);
  EXPECT_TRUE(w.AllEnded());
  EXPECT_EQ(w.Combined(), kEnd);  // every window fires
}

}  // namespace
}  // namespace slipstream
