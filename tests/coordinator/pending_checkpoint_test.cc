// PendingCheckpoint on its own: acknowledgements and declines of the workers
// of an attempt, the `_metadata` they make, and the statistics shown while
// the checkpoint runs and once it failed or completed. No gRPC, no files.
#include "coordinator/checkpoint/pending_checkpoint.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace slipstream {
namespace {

constexpr char kJobId[] = "0123456789abcdef0123456789abcdef";

v1::PeerEndpoint Worker(int index, int first, int last) {
  v1::PeerEndpoint w;
  w.set_index(index);
  w.set_worker_id(absl::StrCat("worker-", index));
  w.mutable_key_groups()->set_first(first);
  w.mutable_key_groups()->set_last(last);
  return w;
}

PendingCheckpointSpec Spec(bool savepoint = false) {
  PendingCheckpointSpec spec;
  spec.id = 7;
  spec.attempt = 2;
  spec.trigger_time_ms = 1'000'000;
  spec.deadline_us = 5'000'000;
  spec.workers = {Worker(0, 0, 63), Worker(1, 64, 127)};
  spec.num_partitions = 4;
  spec.dir = savepoint ? "/savepoints/savepoint-012345-abc" : "/checkpoints/job/chk-7";
  spec.savepoint = savepoint;
  spec.request_id = savepoint ? "req" : "";
  return spec;
}

v1::AcknowledgeCheckpointRequest Ack(int index, int first, int last, int64_t bytes, int64_t alignment_ms) {
  v1::AcknowledgeCheckpointRequest ack;
  ack.set_worker_id(absl::StrCat("worker-", index));
  ack.set_job_id(kJobId);
  ack.set_attempt(2);
  ack.set_checkpoint_id(7);
  v1::WorkerSnapshot* s = ack.mutable_snapshot();
  s->set_worker_id(ack.worker_id());
  s->mutable_key_groups()->set_first(first);
  s->mutable_key_groups()->set_last(last);
  s->set_state_path(absl::StrCat("worker-", first));
  s->set_state_bytes(bytes);
  s->set_alignment_ms(alignment_ms);
  s->set_sync_ms(10 * (index + 1));
  s->set_async_ms(100 - index);
  return ack;
}

v1::DeclineCheckpointRequest Decline(int index) {
  v1::DeclineCheckpointRequest d;
  d.set_worker_id(absl::StrCat("worker-", index));
  d.set_job_id(kJobId);
  d.set_attempt(2);
  d.set_checkpoint_id(7);
  d.set_reason("disk full");
  return d;
}

TEST(PendingCheckpoint, AcceptsOnlyItsOwnIdAndAttemptWhileItRuns) {
  PendingCheckpoint p(Spec());
  EXPECT_TRUE(p.Accepts(7, 2));
  EXPECT_FALSE(p.Accepts(7, 1));
  EXPECT_FALSE(p.Accepts(8, 2));
  p.Fail("broken");
  EXPECT_FALSE(p.Accepts(7, 2)) << "a failed checkpoint takes no more acknowledgements";
}

TEST(PendingCheckpoint, EveryWorkersAcknowledgementMakesTheMetadataInWorkerOrder) {
  PendingCheckpoint p(Spec());
  ASSERT_TRUE(p.Acknowledge(Ack(1, 64, 127, 2000, 5)).ok());
  EXPECT_FALSE(p.acknowledged_by_all());
  EXPECT_EQ(p.MissingWorkers(), "worker-0");
  ASSERT_TRUE(p.Acknowledge(Ack(0, 0, 63, 1000, 9)).ok());
  EXPECT_TRUE(p.acknowledged_by_all());
  EXPECT_EQ(p.MissingWorkers(), "");

  absl::StatusOr<v1::CheckpointMetadata> m = p.ToMetadata(kJobId, "events", 128, 1'000'250);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->job_id(), kJobId);
  EXPECT_EQ(m->checkpoint_id(), 7);
  EXPECT_EQ(m->attempt(), 2);
  EXPECT_EQ(m->trigger_time_ms(), 1'000'000);
  EXPECT_EQ(m->completion_time_ms(), 1'000'250);
  EXPECT_EQ(m->topic(), "events");
  EXPECT_EQ(m->max_parallelism(), 128);
  EXPECT_EQ(m->num_partitions(), 4);
  EXPECT_FALSE(m->savepoint());
  ASSERT_EQ(m->workers_size(), 2);
  EXPECT_EQ(m->workers(0).SerializeAsString(), Ack(0, 0, 63, 1000, 9).snapshot().SerializeAsString());
  EXPECT_EQ(m->workers(1).SerializeAsString(), Ack(1, 64, 127, 2000, 5).snapshot().SerializeAsString());

  const v1::CheckpointStats stats = CheckpointStatsFromMetadata(*m, "/checkpoints/job/chk-7");
  EXPECT_EQ(stats.id(), 7);
  EXPECT_EQ(stats.status(), "COMPLETED");
  EXPECT_EQ(stats.checkpoint_type(), "CHECKPOINT");
  EXPECT_EQ(stats.end_to_end_ms(), 250);
  EXPECT_EQ(stats.state_bytes(), 3000);
  EXPECT_EQ(stats.alignment_ms(), 9);
  EXPECT_EQ(stats.sync_ms(), 20);
  EXPECT_EQ(stats.async_ms(), 100);
  EXPECT_EQ(stats.acknowledged(), 2);
  EXPECT_EQ(stats.expected(), 2);
  EXPECT_EQ(stats.path(), "/checkpoints/job/chk-7");
}

TEST(PendingCheckpoint, ARepeatedAcknowledgementChangesNothing) {
  PendingCheckpoint p(Spec());
  ASSERT_TRUE(p.Acknowledge(Ack(0, 0, 63, 1000, 9)).ok());
  ASSERT_TRUE(p.Acknowledge(Ack(0, 0, 63, 5555, 1)).ok());
  EXPECT_EQ(p.acknowledged(), 1u);
  EXPECT_EQ(p.Stats(1'000'000).state_bytes(), 1000) << "the first acknowledgement stands";
}

TEST(PendingCheckpoint, ForeignOrMismatchedAcknowledgementsAreRejected) {
  PendingCheckpoint p(Spec());
  v1::AcknowledgeCheckpointRequest stranger = Ack(0, 0, 63, 1, 1);
  stranger.set_worker_id("somebody-else");
  stranger.mutable_snapshot()->set_worker_id("somebody-else");
  EXPECT_TRUE(absl::IsInvalidArgument(p.Acknowledge(stranger)));
  v1::AcknowledgeCheckpointRequest borrowed = Ack(0, 0, 63, 1, 1);
  borrowed.mutable_snapshot()->set_worker_id("worker-1");
  EXPECT_TRUE(absl::IsInvalidArgument(p.Acknowledge(borrowed)));
  const absl::Status wrong_range = p.Acknowledge(Ack(0, 0, 127, 1, 1));
  EXPECT_TRUE(absl::IsInvalidArgument(wrong_range));
  EXPECT_NE(std::string(wrong_range.message()).find("owns 0-63"), std::string::npos) << wrong_range;
  EXPECT_EQ(p.acknowledged(), 0u);
}

TEST(PendingCheckpoint, ASnapshotWithoutKeyGroupsOrWorkerIdGetsTheWorkers) {
  PendingCheckpoint p(Spec());
  v1::AcknowledgeCheckpointRequest ack = Ack(1, 64, 127, 1, 1);
  ack.mutable_snapshot()->clear_key_groups();
  ack.mutable_snapshot()->clear_worker_id();
  ASSERT_TRUE(p.Acknowledge(ack).ok());
  ASSERT_TRUE(p.Acknowledge(Ack(0, 0, 63, 1, 1)).ok());
  absl::StatusOr<v1::CheckpointMetadata> m = p.ToMetadata(kJobId, "events", 128, 1'000'001);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->workers(1).worker_id(), "worker-1");
  EXPECT_EQ(m->workers(1).key_groups().first(), 64);
  EXPECT_EQ(m->workers(1).key_groups().last(), 127);
}

TEST(PendingCheckpoint, ADeclineFailsItUnlessThatWorkerAcknowledged) {
  PendingCheckpoint p(Spec());
  ASSERT_TRUE(p.Acknowledge(Ack(0, 0, 63, 1, 1)).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(p.Decline(Decline(0))));
  EXPECT_FALSE(p.failed());
  v1::DeclineCheckpointRequest stranger = Decline(1);
  stranger.set_worker_id("somebody-else");
  EXPECT_TRUE(absl::IsInvalidArgument(p.Decline(stranger)));
  ASSERT_TRUE(p.Decline(Decline(1)).ok());
  EXPECT_TRUE(p.failed());
  EXPECT_EQ(p.failure(), "worker worker-1 declined checkpoint 7: disk full");
  EXPECT_TRUE(p.counts_towards_tolerable());
}

TEST(PendingCheckpoint, AFullyAcknowledgedCheckpointNoLongerFailsForItsAttempt) {
  PendingCheckpoint p(Spec());
  EXPECT_TRUE(p.FailUnlessAcknowledged("attempt 2 ended", /*counts_towards_tolerable=*/false));
  EXPECT_EQ(p.failure(), "attempt 2 ended");
  EXPECT_FALSE(p.counts_towards_tolerable());
  EXPECT_FALSE(p.FailUnlessAcknowledged("later cause", true)) << "the first failure stands";
  EXPECT_EQ(p.failure(), "attempt 2 ended");

  PendingCheckpoint complete(Spec());
  ASSERT_TRUE(complete.Acknowledge(Ack(0, 0, 63, 1, 1)).ok());
  ASSERT_TRUE(complete.Acknowledge(Ack(1, 64, 127, 1, 1)).ok());
  EXPECT_FALSE(complete.FailUnlessAcknowledged("attempt 2 ended", false));
  EXPECT_FALSE(complete.failed()) << "complete already: it is still written";
}

TEST(PendingCheckpoint, ExpiryNamesTheWorkersThatDidNotAcknowledge) {
  PendingCheckpoint p(Spec());
  ASSERT_TRUE(p.Acknowledge(Ack(0, 0, 63, 1000, 3)).ok());
  p.Expire(/*timeout_ms=*/300);
  EXPECT_NE(p.failure().find("expired"), std::string::npos) << p.failure();
  EXPECT_NE(p.failure().find("(300 ms) by worker-1"), std::string::npos) << p.failure();
  const v1::CheckpointStats failed = p.FailedStats(1'000'300);
  EXPECT_EQ(failed.status(), "FAILED");
  EXPECT_EQ(failed.failure_reason(), p.failure());
  EXPECT_EQ(failed.end_to_end_ms(), 300);
  EXPECT_EQ(failed.acknowledged(), 1);
  EXPECT_EQ(failed.expected(), 2);
  EXPECT_EQ(failed.state_bytes(), 1000);
  EXPECT_EQ(p.Stats(1'000'300).status(), "IN_PROGRESS") << "until it is aborted";
}

TEST(PendingCheckpoint, ASavepointMustBeSelfContainedAndIsNotATolerableFailure) {
  PendingCheckpointSpec spec = Spec(/*savepoint=*/true);
  spec.stop = true;
  PendingCheckpoint p(spec);
  EXPECT_FALSE(p.counts_towards_tolerable());
  EXPECT_EQ(p.Stats(1'000'000).checkpoint_type(), "SYNC_SAVEPOINT");
  EXPECT_TRUE(p.Stats(1'000'000).is_savepoint());
  ASSERT_TRUE(p.Acknowledge(Ack(0, 0, 63, 1, 1)).ok());
  v1::AcknowledgeCheckpointRequest outside = Ack(1, 64, 127, 1, 1);
  outside.mutable_snapshot()->set_state_path("../chk-6/worker-64");
  ASSERT_TRUE(p.Acknowledge(outside).ok());
  absl::StatusOr<v1::CheckpointMetadata> m = p.ToMetadata(kJobId, "events", 128, 1'000'001);
  EXPECT_TRUE(absl::IsFailedPrecondition(m.status())) << m.status();
  EXPECT_NE(std::string(m.status().message()).find("not inside the savepoint directory"), std::string::npos);

  PendingCheckpoint absolute(Spec(/*savepoint=*/true));
  ASSERT_TRUE(absolute.Acknowledge(Ack(0, 0, 63, 1, 1)).ok());
  v1::AcknowledgeCheckpointRequest abs_ack = Ack(1, 64, 127, 1, 1);
  abs_ack.mutable_snapshot()->set_state_path("/elsewhere/worker-64");
  ASSERT_TRUE(absolute.Acknowledge(abs_ack).ok());
  EXPECT_FALSE(absolute.ToMetadata(kJobId, "events", 128, 1'000'001).ok());

  PendingCheckpoint fine(Spec(/*savepoint=*/true));
  ASSERT_TRUE(fine.Acknowledge(Ack(0, 0, 63, 1, 1)).ok());
  ASSERT_TRUE(fine.Acknowledge(Ack(1, 64, 127, 1, 1)).ok());
  absl::StatusOr<v1::CheckpointMetadata> ok = fine.ToMetadata(kJobId, "events", 128, 1'000'001);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->savepoint());
}

TEST(PendingCheckpoint, CheckpointTypesHaveFlinksNames) {
  EXPECT_STREQ(CheckpointTypeName(false, false), "CHECKPOINT");
  EXPECT_STREQ(CheckpointTypeName(true, false), "SAVEPOINT");
  EXPECT_STREQ(CheckpointTypeName(true, true), "SYNC_SAVEPOINT");
}

TEST(CheckpointStatistics, CountsTheLatestCheckpointAndABoundedNewestFirstHistory) {
  CheckpointStatistics statistics;
  auto stats = [](int64_t id, const char* status) {
    v1::CheckpointStats s;
    s.set_id(id);
    s.set_status(status);
    return s;
  };
  for (int64_t id = 1; id <= 24; ++id) statistics.AddCompleted(stats(id, "COMPLETED"), /*savepoint=*/false);
  statistics.AddCompleted(stats(25, "COMPLETED"), /*savepoint=*/true);
  statistics.AddFailed(stats(26, "FAILED"));
  const v1::CheckpointStats running = stats(27, "IN_PROGRESS");
  v1::CheckpointOverview o;
  statistics.Fill(&running, &o);
  EXPECT_EQ(o.completed(), 25);
  EXPECT_EQ(o.failed(), 1);
  EXPECT_EQ(o.in_progress(), 1);
  EXPECT_EQ(o.latest_completed().id(), 24) << "a savepoint is not the latest completed checkpoint";
  ASSERT_EQ(o.history_size(), static_cast<int>(CheckpointStatistics::kHistorySize));
  for (int i = 0; i < o.history_size(); ++i) EXPECT_EQ(o.history(i).id(), 27 - i);

  statistics.SetLatestCompleted(std::nullopt);
  v1::CheckpointOverview after;
  statistics.Fill(nullptr, &after);
  EXPECT_FALSE(after.has_latest_completed());
  EXPECT_EQ(after.in_progress(), 0);
  EXPECT_EQ(after.history(0).id(), 26);
}

}  // namespace
}  // namespace slipstream
