// Barrier alignment (Flink's CheckpointBarrierHandler): a snapshot once
// barrier n arrived on every channel (ended channels count), channels past
// the barrier blocked only with EXACTLY_ONCE, stale and overtaken barriers,
// aborts, and a source that ended before its barrier.
#include "worker/checkpoint/barrier_aligner.h"

#include <gtest/gtest.h>

#include <string>

namespace slipstream {
namespace {

constexpr int kLocal = 0;

InboundBatch Barrier(int channel, int64_t id, std::string dir = "") {
  InboundBatch b;
  b.channel = channel;
  b.barrier_id = id;
  b.checkpoint_dir = std::move(dir);
  return b;
}

InboundBatch Records(int channel, std::string records) {
  InboundBatch b;
  b.channel = channel;
  b.records = std::move(records);
  return b;
}

InboundBatch EndOfInput(int channel) {
  InboundBatch b;
  b.channel = channel;
  b.end_of_input = true;
  return b;
}

TEST(BarrierAligner, OneChannelAlignsAtOnceWithTheLocalSourcesPositions) {
  BarrierAligner aligner(1, kLocal, /*exactly_once=*/true);
  InboundBatch barrier = Barrier(kLocal, 7, "/chk/chk-7");
  barrier.offsets = {SourcePosition{3, 42, 1000, false}};
  BarrierAligner::Step step = aligner.OnBatchProcessed(barrier, false, /*now_ms=*/500);
  ASSERT_TRUE(step.aligned);
  EXPECT_EQ(step.aligned->checkpoint_id, 7);
  EXPECT_EQ(step.aligned->started_ms, 500);
  EXPECT_EQ(step.aligned->checkpoint_dir, "/chk/chk-7");
  ASSERT_EQ(step.aligned->offsets.size(), 1u);
  EXPECT_EQ(step.aligned->offsets[0].partition, 3);
  EXPECT_EQ(step.aligned->offsets[0].next_offset, 42);
  EXPECT_FALSE(step.superseded);
  EXPECT_FALSE(step.declined);
  EXPECT_EQ(aligner.checkpoint_id(), 0);
}

TEST(BarrierAligner, WaitsForEveryChannelAndHoldsThoseBeyondTheBarrier) {
  BarrierAligner aligner(3, kLocal, /*exactly_once=*/true);
  BarrierAligner::Step step = aligner.OnBatchProcessed(Barrier(1, 5), false, 100);
  EXPECT_FALSE(step.aligned);
  EXPECT_EQ(aligner.checkpoint_id(), 5);
  EXPECT_TRUE(aligner.Blocks(1));
  EXPECT_FALSE(aligner.Blocks(0));
  EXPECT_FALSE(aligner.Blocks(2));
  aligner.Hold(Records(1, "a"));
  aligner.Hold(Records(1, "b"));
  step = aligner.OnBatchProcessed(Barrier(kLocal, 5, "/chk-5"), false, 200);
  EXPECT_FALSE(step.aligned);
  EXPECT_TRUE(aligner.Blocks(kLocal));
  aligner.Hold(Records(kLocal, "c"));
  step = aligner.OnBatchProcessed(Barrier(2, 5), false, 300);
  ASSERT_TRUE(step.aligned);
  EXPECT_EQ(step.aligned->checkpoint_id, 5);
  EXPECT_EQ(step.aligned->started_ms, 100) << "alignment time counts from the first barrier";
  EXPECT_EQ(step.aligned->checkpoint_dir, "/chk-5");
  // Held batches come back by channel, each channel in order.
  ASSERT_EQ(step.released.size(), 3u);
  EXPECT_EQ(step.released[0].records, "c");
  EXPECT_EQ(step.released[1].records, "a");
  EXPECT_EQ(step.released[2].records, "b");
  EXPECT_FALSE(aligner.Blocks(1));
  EXPECT_EQ(aligner.checkpoint_id(), 0);
}

TEST(BarrierAligner, AtLeastOnceNeverBlocks) {
  BarrierAligner aligner(2, kLocal, /*exactly_once=*/false);
  (void)aligner.OnBatchProcessed(Barrier(1, 5), false, 0);
  EXPECT_EQ(aligner.checkpoint_id(), 5);
  EXPECT_FALSE(aligner.Blocks(1));
  BarrierAligner::Step step = aligner.OnBatchProcessed(Barrier(kLocal, 5), false, 0);
  EXPECT_TRUE(step.aligned);
}

TEST(BarrierAligner, AnEndedChannelCountsAsArrived) {
  BarrierAligner aligner(3, kLocal, true);
  // Channel 2 ended before any barrier: it will send none.
  BarrierAligner::Step step = aligner.OnBatchProcessed(EndOfInput(2), false, 0);
  EXPECT_FALSE(step.aligned);
  EXPECT_EQ(aligner.checkpoint_id(), 0);
  (void)aligner.OnBatchProcessed(Barrier(kLocal, 4), false, 0);
  step = aligner.OnBatchProcessed(Barrier(1, 4), false, 0);
  ASSERT_TRUE(step.aligned);
  EXPECT_EQ(step.aligned->checkpoint_id, 4);
}

TEST(BarrierAligner, AChannelEndingDuringTheAlignmentCompletesIt) {
  BarrierAligner aligner(2, kLocal, true);
  (void)aligner.OnBatchProcessed(Barrier(kLocal, 4), false, 0);
  aligner.Hold(Records(kLocal, "x"));
  BarrierAligner::Step step = aligner.OnBatchProcessed(EndOfInput(1), false, 0);
  ASSERT_TRUE(step.aligned);
  ASSERT_EQ(step.released.size(), 1u);
}

TEST(BarrierAligner, DeclinesWhenTheLocalSourceEndedBeforeItsBarrier) {
  BarrierAligner aligner(2, kLocal, true);
  (void)aligner.OnBatchProcessed(Barrier(1, 9), false, 0);
  aligner.Hold(Records(1, "held"));
  BarrierAligner::Step step = aligner.OnBatchProcessed(EndOfInput(kLocal), false, 0);
  EXPECT_FALSE(step.aligned);
  ASSERT_TRUE(step.declined);
  EXPECT_EQ(step.declined->checkpoint_id, 9);
  EXPECT_EQ(step.declined->reason, "this worker's source ended before the barrier");
  ASSERT_EQ(step.released.size(), 1u);
  EXPECT_EQ(aligner.checkpoint_id(), 0);
}

TEST(BarrierAligner, ABarrierWithTheEndOfItsChannelCountsOnce) {
  BarrierAligner aligner(2, kLocal, true);
  InboundBatch last = Barrier(kLocal, 3);
  last.end_of_input = true;
  EXPECT_FALSE(aligner.OnBatchProcessed(last, false, 0).aligned);
  BarrierAligner::Step step = aligner.OnBatchProcessed(Barrier(1, 3), false, 0);
  ASSERT_TRUE(step.aligned);
  EXPECT_FALSE(step.declined);
}

TEST(BarrierAligner, ANewerBarrierSupersedesAnIncompleteAlignment) {
  BarrierAligner aligner(2, kLocal, true);
  (void)aligner.OnBatchProcessed(Barrier(1, 5), false, 10);
  aligner.Hold(Records(1, "after-5"));
  BarrierAligner::Step step = aligner.OnBatchProcessed(Barrier(kLocal, 6), false, 20);
  ASSERT_TRUE(step.superseded);
  EXPECT_EQ(step.superseded->checkpoint_id, 5);
  EXPECT_EQ(step.superseded->reason, "superseded by checkpoint 6");
  ASSERT_EQ(step.released.size(), 1u);
  EXPECT_EQ(step.released[0].records, "after-5");
  EXPECT_FALSE(step.aligned);
  EXPECT_EQ(aligner.checkpoint_id(), 6);
  EXPECT_TRUE(aligner.Blocks(kLocal));
  EXPECT_FALSE(aligner.Blocks(1)) << "channel 1 has not delivered barrier 6";
  step = aligner.OnBatchProcessed(Barrier(1, 6), false, 30);
  ASSERT_TRUE(step.aligned);
  EXPECT_EQ(step.aligned->started_ms, 20);
}

TEST(BarrierAligner, StaleAndAbortedBarriersAreIgnored) {
  BarrierAligner aligner(2, kLocal, true);
  EXPECT_FALSE(aligner.OnBatchProcessed(Barrier(1, 5), /*barrier_aborted=*/true, 0).aligned);
  EXPECT_EQ(aligner.checkpoint_id(), 0) << "an aborted checkpoint starts no alignment";
  (void)aligner.OnBatchProcessed(Barrier(1, 6), false, 0);
  BarrierAligner::Step step = aligner.OnBatchProcessed(Barrier(kLocal, 5), false, 0);
  EXPECT_FALSE(step.aligned);
  EXPECT_FALSE(step.superseded);
  EXPECT_EQ(aligner.checkpoint_id(), 6);
  EXPECT_FALSE(aligner.Blocks(kLocal)) << "an older barrier does not count for the newer alignment";
}

TEST(BarrierAligner, AbortReleasesTheHeldBatchesAndForgetsTheAlignment) {
  BarrierAligner aligner(2, kLocal, true);
  (void)aligner.OnBatchProcessed(Barrier(1, 5), false, 0);
  aligner.Hold(Records(1, "a"));
  std::deque<InboundBatch> released = aligner.Abort();
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0].records, "a");
  EXPECT_EQ(aligner.checkpoint_id(), 0);
  EXPECT_FALSE(aligner.Blocks(1));
  // The next checkpoint aligns from scratch.
  EXPECT_FALSE(aligner.OnBatchProcessed(Barrier(kLocal, 6), false, 0).aligned);
  EXPECT_TRUE(aligner.OnBatchProcessed(Barrier(1, 6), false, 0).aligned);
}

}  // namespace
}  // namespace slipstream
