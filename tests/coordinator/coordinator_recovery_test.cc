// Recovery in the coordinator, through its gRPC API with fake workers:
// in-place failover (the failed attempt's other workers stay registered,
// cancel, and report attempt 0 before the next attempt is deployed), the
// restart strategies (fixed-delay, exponential-delay, none, the job FAILED
// when they give up), heartbeat failure causes, the cancellation timeout, and
// restoring the latest completed checkpoint or a savepoint
// (Assignment.restore with every snapshot and each worker's offsets). The
// lifecycle runs on the test's clock: time moves only when a test advances
// it and ticks, so every delay and timeout is checked at its boundary (not
// yet 1 ms before, done at it), without sleeping. Only checkpoints taken by
// the job come from the CheckpointCoordinator's own timer: those are polled
// for, with generous deadlines.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/coordinator_server.h"
#include "tests/coordinator/coordinator_fixture.h"
#include "tests/coordinator/fake_task_control.h"

namespace slipstream {
namespace {

namespace fs = std::filesystem;
using test_support::FakeTaskControl;

constexpr char kJobId[] = "0123456789abcdef0123456789abcdef";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

v1::PartitionOffset Offset(int partition, int64_t next) {
  v1::PartitionOffset o;
  o.set_partition(partition);
  o.set_next_offset(next);
  return o;
}

// A checkpoint of an earlier run on two workers (key groups 0-63 and
// 64-127) whose sources read partitions {0, 3, 5} and {1, 2}; partition 2 had
// nothing read yet (-1) and partition 5 no longer exists.
v1::CheckpointMetadata TwoWorkerMetadata(int64_t id, int64_t completion_time_ms) {
  v1::CheckpointMetadata m;
  m.set_job_id(kJobId);
  m.set_checkpoint_id(id);
  m.set_trigger_time_ms(completion_time_ms - 100);
  m.set_completion_time_ms(completion_time_ms);
  m.set_topic("events");
  m.set_max_parallelism(128);
  m.set_num_partitions(6);
  m.set_attempt(3);
  v1::WorkerSnapshot* a = m.add_workers();
  a->set_worker_id("old-0");
  a->mutable_key_groups()->set_first(0);
  a->mutable_key_groups()->set_last(63);
  a->set_state_path("kg-0-63");
  a->set_state_bytes(1234);
  *a->add_offsets() = Offset(0, 100);
  *a->add_offsets() = Offset(3, 400);
  *a->add_offsets() = Offset(5, 900);
  v1::WorkerSnapshot* b = m.add_workers();
  b->set_worker_id("old-1");
  b->mutable_key_groups()->set_first(64);
  b->mutable_key_groups()->set_last(127);
  b->set_state_path("kg-64-127");
  b->set_state_bytes(4321);
  *b->add_offsets() = Offset(1, 200);
  *b->add_offsets() = Offset(2, -1);
  return m;
}

std::vector<std::pair<int, int64_t>> Offsets(const v1::RestoreInfo& r) {
  std::vector<std::pair<int, int64_t>> out;
  for (const v1::PartitionOffset& o : r.offsets()) out.emplace_back(o.partition(), o.next_offset());
  return out;
}

class CoordinatorRecoveryTest : public test_support::CoordinatorFixture {
 protected:
  static constexpr int64_t kStabilizationMs = 200;

  void SetUp() override {
    CoordinatorFixture::SetUp();
    UseManualClock();
  }

  // Registers `n` plain workers (at one instant) that join one deployment:
  // attempt 1 is deployed once the stabilization timeout has passed.
  std::vector<std::string> StartWithWorkers(int n, int min_workers = 1) {
    StartServer(heartbeat_timeout_ms_, 4, min_workers, kStabilizationMs);
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) ids.push_back(MustRegister(7001 + i));
    AdvanceAndTick(kStabilizationMs);
    const v1::JobStatus job = GetJob();
    EXPECT_EQ(job.state(), "RUNNING");
    EXPECT_EQ(job.attempt(), 1);
    EXPECT_EQ(job.workers_size(), n);
    return ids;
  }

  // Every worker reports that it runs no task. With no restart delay left,
  // the last of these heartbeats deploys the next attempt (no tick needed).
  v1::JobStatus ReportIdle(const std::vector<std::string>& workers) {
    for (const std::string& w : workers) BeatAs(w, 0);
    return GetJob();
  }

  fs::path JobDir() const { return fs::path(job_dir_); }

  int64_t heartbeat_timeout_ms_ = 10000;
};

// Attempt 1 runs on a, b, c; d is a standby. c fails: a and b stay
// registered, their heartbeats carry no assignment but the cause, and
// attempt 2 is deployed only when every registered worker has reported, after
// the failure, that it runs no task: a keeps running attempt 1 for a while,
// and the standby d must beat once more.
TEST_F(CoordinatorRecoveryTest, SurvivorsStayAndTheNextAttemptWaitsUntilEveryWorkerIsIdle) {
  const std::vector<std::string> w = StartWithWorkers(3, /*min_workers=*/2);
  const std::string d = MustRegister(7010);
  for (const std::string& id : w) ASSERT_EQ(BeatAs(id, 1).assignment().attempt(), 1);
  ASSERT_FALSE(BeatAs(d, 0).has_assignment());
  Deregister(w[2], "boom: the sink broke");

  const v1::HeartbeatResponse a_beat = BeatAs(w[0], 1);
  EXPECT_TRUE(a_beat.known());
  EXPECT_FALSE(a_beat.has_assignment());
  EXPECT_NE(a_beat.reason().find("boom: the sink broke"), std::string::npos) << a_beat.reason();
  v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "RESTARTING");
  EXPECT_EQ(job.failures(), 1);
  ASSERT_EQ(job.workers_size(), 3);  // a, b, d
  for (const v1::WorkerStatus& s : job.workers()) {
    EXPECT_TRUE(s.standby()) << s.worker_id();
    EXPECT_FALSE(s.has_assignment()) << s.worker_id();
  }

  // a still runs attempt 1: nothing is deployed, however long it takes
  // (here 6 s, within heartbeat.timeout for the silent d).
  for (int second = 1; second <= 6; ++second) {
    AdvanceAndTick(1000);
    EXPECT_FALSE(BeatAs(w[0], 1).has_assignment()) << second << " s after the failure";
    EXPECT_FALSE(BeatAs(w[1], 0).has_assignment()) << second << " s after the failure";
  }
  EXPECT_EQ(GetJob().attempt(), 1);
  EXPECT_EQ(GetJob().state(), "RESTARTING");

  // a stops; d has not beaten since: still nothing.
  EXPECT_FALSE(BeatAs(w[1], 0).has_assignment());
  EXPECT_FALSE(BeatAs(w[0], 0).has_assignment());
  AdvanceAndTick(1000);
  EXPECT_EQ(GetJob().attempt(), 1);
  EXPECT_EQ(GetJob().state(), "RESTARTING");
  // d's heartbeat completes the picture: attempt 2 over a, b, d.
  const v1::Assignment d_assignment = BeatAs(d, 0).assignment();
  EXPECT_EQ(d_assignment.attempt(), 2);
  EXPECT_EQ(d_assignment.worker_index(), 2);
  ASSERT_EQ(d_assignment.workers_size(), 3);
  EXPECT_EQ(d_assignment.workers(0).worker_id(), w[0]);
  EXPECT_EQ(d_assignment.workers(1).worker_id(), w[1]);
  EXPECT_EQ(d_assignment.workers(2).worker_id(), d);
  EXPECT_EQ(BeatAs(w[0], 0).assignment().attempt(), 2);
  job = GetJob();
  EXPECT_EQ(job.state(), "RUNNING");
  EXPECT_EQ(job.attempt(), 2);
  EXPECT_EQ(job.restarts(), 1);
  EXPECT_EQ(job.failures(), 1);
  EXPECT_FALSE(d_assignment.has_restore()) << "no checkpoint: empty state, starting offsets";
  EXPECT_EQ(job.restored_from(), "");
}

// On the test's own clock: the next attempt is deployed at the restart
// delay exactly, not a millisecond before.
TEST_F(CoordinatorRecoveryTest, NextAttemptWaitsForTheRestartDelay) {
  restart_.fixed_delay_ms = 600;
  const std::vector<std::string> w = StartWithWorkers(2);
  EXPECT_FALSE(BeatAs(w[1], 1, "task crashed").has_assignment());
  for (const std::string& id : w) BeatAs(id, 0);  // both stopped their task
  AdvanceAndTick(599);
  EXPECT_EQ(GetJob().state(), "RESTARTING");
  EXPECT_EQ(GetJob().attempt(), 1);
  AdvanceAndTick(1);
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "RUNNING");
  ASSERT_EQ(job.attempt(), 2);
  EXPECT_EQ(job.workers_size(), 2);
  EXPECT_EQ(job.restarts(), 1);
}

// HeartbeatRequest.failure_cause fails the attempt it names when that is the
// running one; a late report about an attempt that is over changes nothing.
TEST_F(CoordinatorRecoveryTest, HeartbeatFailureCauseFailsTheRunningAttemptOnly) {
  const std::vector<std::string> w = StartWithWorkers(2);
  const v1::HeartbeatResponse failed = BeatAs(w[1], 1, "sink exploded");
  EXPECT_TRUE(failed.known());
  EXPECT_FALSE(failed.has_assignment());
  EXPECT_NE(failed.reason().find("sink exploded"), std::string::npos) << failed.reason();
  v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "RESTARTING");
  EXPECT_EQ(job.failures(), 1);
  EXPECT_NE(job.failure_cause().find("sink exploded"), std::string::npos) << job.failure_cause();
  EXPECT_NE(job.failure_cause().find(w[1]), std::string::npos) << job.failure_cause();
  EXPECT_EQ(job.workers_size(), 2) << "the failing worker stays registered";

  ASSERT_EQ(ReportIdle(w).attempt(), 2);
  const v1::HeartbeatResponse late = BeatAs(w[0], 1, "late news about attempt 1");
  EXPECT_EQ(late.assignment().attempt(), 2);
  job = GetJob();
  EXPECT_EQ(job.state(), "RUNNING");
  EXPECT_EQ(job.failures(), 1);

  BeatAs(w[0], 2, "attempt 2 broke too");
  job = GetJob();
  EXPECT_EQ(job.state(), "RESTARTING");
  EXPECT_EQ(job.failures(), 2);
  EXPECT_NE(job.failure_cause().find("attempt 2 broke too"), std::string::npos) << job.failure_cause();
}

TEST_F(CoordinatorRecoveryTest, FixedDelayAttemptsExhaustedFailsTheJob) {
  restart_.fixed_delay_attempts = 2;
  const std::vector<std::string> w = StartWithWorkers(1);
  for (int attempt = 1; attempt <= 2; ++attempt) {
    BeatAs(w[0], attempt, absl::StrCat("crash ", attempt));
    ASSERT_EQ(ReportIdle(w).attempt(), attempt + 1);
  }
  BeatAs(w[0], 3, "crash 3");
  v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "FAILED");
  EXPECT_EQ(job.attempt(), 3);
  EXPECT_EQ(job.failures(), 3);
  EXPECT_EQ(job.restarts(), 2);
  EXPECT_NE(job.failure_cause().find("crash 3"), std::string::npos) << job.failure_cause();
  EXPECT_NE(job.failure_cause().find("restart-strategy.fixed-delay.attempts=2"), std::string::npos)
      << job.failure_cause();
  // Terminal: the worker stays registered and idle, so does a newcomer.
  const std::string late = MustRegister(7100);
  for (int second = 1; second <= 3; ++second) {
    AdvanceAndTick(1000);
    const v1::HeartbeatResponse beat = BeatAs(w[0], 0);
    EXPECT_TRUE(beat.known());
    EXPECT_FALSE(beat.has_assignment());
    EXPECT_NE(beat.reason().find("FAILED"), std::string::npos) << beat.reason();
    EXPECT_FALSE(BeatAs(late, 0).has_assignment());
  }
  job = GetJob();
  EXPECT_EQ(job.state(), "FAILED");
  EXPECT_EQ(job.attempt(), 3);
  EXPECT_EQ(job.workers_size(), 2);
}

TEST_F(CoordinatorRecoveryTest, NoneRestartStrategyFailsTheJobAtOnce) {
  restart_.type = RestartStrategySettings::Type::kNone;
  const std::vector<std::string> w = StartWithWorkers(2);
  Deregister(w[1], "out of memory");
  EXPECT_EQ(GetJob().state(), "FAILED");
  AdvanceAndTick(1000);
  EXPECT_FALSE(BeatAs(w[0], 0).has_assignment());
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "FAILED");
  EXPECT_EQ(job.attempt(), 1);
  EXPECT_EQ(job.failures(), 1);
  EXPECT_EQ(job.restarts(), 0);
  EXPECT_NE(job.failure_cause().find("out of memory"), std::string::npos) << job.failure_cause();
  EXPECT_NE(job.failure_cause().find("restart-strategy.type=none"), std::string::npos) << job.failure_cause();
  ASSERT_EQ(job.workers_size(), 1);
  EXPECT_EQ(job.workers(0).worker_id(), w[0]);
}

// A worker leaving on purpose ends the attempt without a failure: no restart
// attempt is used, no delay waited (even with restart-strategy none), and the
// redeployment is not counted as a restart.
TEST_F(CoordinatorRecoveryTest, LeavingOnPurposeIsNotAFailure) {
  restart_.type = RestartStrategySettings::Type::kNone;
  const std::vector<std::string> w = StartWithWorkers(2);
  Deregister(w[1]);
  v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "RESTARTING");
  EXPECT_EQ(job.failures(), 0);
  EXPECT_NE(job.failure_cause().find("left"), std::string::npos) << job.failure_cause();
  EXPECT_EQ(BeatAs(w[0], 0).assignment().attempt(), 2);
  job = GetJob();
  EXPECT_EQ(job.state(), "RUNNING");
  EXPECT_EQ(job.restarts(), 0);
  ASSERT_EQ(job.workers_size(), 1);
}

// SIGTERM: the worker deregisters while its task still stops. The attempt
// ends at once and not as a failure, so its peers' reports of the broken
// channels to it that follow are ignored; but no attempt is deployed until
// the leaving worker says its task has stopped: two attempts' tasks never
// run at once.
TEST_F(CoordinatorRecoveryTest, LeavingWorkerIsWaitedForUntilItsTaskStopped) {
  const std::vector<std::string> w = StartWithWorkers(3);
  Deregister(w[2], "", /*running_attempt=*/1);
  v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "RESTARTING");
  EXPECT_EQ(job.workers_size(), 2);
  // A peer's channel to the leaving worker broke: too late to be a failure.
  BeatAs(w[0], 1, "the data channel to worker " + w[2] + " broke; records in flight may be lost");
  BeatAs(w[1], 0);
  AdvanceAndTick(heartbeat_timeout_ms_ / 2);
  EXPECT_EQ(BeatAs(w[0], 0).assignment().attempt(), 0) << "deployed while the leaving worker's task still ran";
  EXPECT_EQ(BeatAs(w[1], 0).assignment().attempt(), 0);
  Deregister(w[2]);  // its task has stopped: the next attempt is deployed at once
  EXPECT_EQ(GetJob().attempt(), 2);
  EXPECT_EQ(BeatAs(w[0], 0).assignment().attempt(), 2);
  job = GetJob();
  EXPECT_EQ(job.state(), "RUNNING");
  EXPECT_EQ(job.failures(), 0) << job.failure_cause();
  EXPECT_EQ(job.workers_size(), 2);
}

// A leaving worker that never says its task stopped (it died) holds the next
// attempt back for heartbeat.timeout exactly: given up the first tick after.
TEST_F(CoordinatorRecoveryTest, LeavingWorkerThatNeverFinishesIsGivenUpAfterTheHeartbeatTimeout) {
  heartbeat_timeout_ms_ = 1500;
  const std::vector<std::string> w = StartWithWorkers(2);
  Deregister(w[1], "", /*running_attempt=*/1);
  EXPECT_EQ(BeatAs(w[0], 0).assignment().attempt(), 0);
  AdvanceAndTick(1500);
  EXPECT_EQ(BeatAs(w[0], 0).assignment().attempt(), 0) << "left exactly heartbeat.timeout ago: still waited for";
  EXPECT_EQ(GetJob().state(), "RESTARTING");
  AdvanceAndTick(1);
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "RUNNING");
  EXPECT_EQ(job.attempt(), 2);
  EXPECT_EQ(BeatAs(w[0], 0).assignment().attempt(), 2);
  EXPECT_EQ(job.failures(), 0);
}

// A worker reports its task's failure once the task has ended: from then on
// it is listed as idle, not as running the failed attempt.
TEST_F(CoordinatorRecoveryTest, FailureReportLeavesTheWorkerIdle) {
  const std::vector<std::string> w = StartWithWorkers(2);
  BeatAs(w[1], 1, "boom");
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "RESTARTING");
  for (const v1::WorkerStatus& worker : job.workers()) {
    if (worker.worker_id() == w[1]) {
      EXPECT_EQ(worker.counters().attempt(), 0) << "listed as running attempt 1";
    }
  }
  EXPECT_EQ(ReportIdle(w).attempt(), 2);
}

// Exponential delay: 100, 200, 400, 400 ms (max 400) between each failure
// and the next deployment, with every worker idle at once: not deployed 1 ms
// before, deployed at the delay.
TEST_F(CoordinatorRecoveryTest, ExponentialDelaysGrow) {
  restart_.type = RestartStrategySettings::Type::kExponentialDelay;
  restart_.initial_backoff_ms = 100;
  restart_.max_backoff_ms = 400;
  restart_.backoff_multiplier = 2.0;
  restart_.reset_backoff_threshold_ms = 3600000;
  const std::vector<std::string> w = StartWithWorkers(1);
  const std::vector<int64_t> expected = {100, 200, 400, 400};
  for (size_t i = 0; i < expected.size(); ++i) {
    const int64_t attempt = static_cast<int64_t>(i) + 1;
    BeatAs(w[0], attempt, "crash");
    AdvanceAndTick(expected[i] - 1);
    EXPECT_FALSE(BeatAs(w[0], 0).has_assignment()) << "restart " << attempt << ", 1 ms before its delay";
    EXPECT_EQ(GetJob().attempt(), attempt);
    AdvanceAndTick(1);
    EXPECT_EQ(GetJob().attempt(), attempt + 1) << "restart " << attempt << ", at its delay";
    ASSERT_EQ(BeatAs(w[0], 0).assignment().attempt(), attempt + 1);
  }
  EXPECT_EQ(GetJob().restarts(), 4);
}

// A worker told to cancel that keeps reporting its old attempt is dropped
// the first tick after task.cancellation.timeout; the next attempt goes on
// without it.
TEST_F(CoordinatorRecoveryTest, WorkerThatDoesNotCancelIsDroppedAfterTheCancellationTimeout) {
  cancellation_timeout_ms_ = 300;
  const std::vector<std::string> w = StartWithWorkers(2);
  ASSERT_EQ(BeatAs(w[0], 1).assignment().attempt(), 1);
  BeatAs(w[1], 1, "crash");  // the attempt ends: w[0] is told to cancel now
  EXPECT_FALSE(BeatAs(w[0], 1).has_assignment());
  AdvanceAndTick(300);
  BeatAs(w[1], 0);
  const v1::HeartbeatResponse still = BeatAs(w[0], 1);
  EXPECT_TRUE(still.known()) << "told to cancel exactly task.cancellation.timeout ago: " << still.reason();
  EXPECT_EQ(GetJob().attempt(), 1);
  AdvanceAndTick(1);
  const v1::HeartbeatResponse stuck = BeatAs(w[0], 1);
  EXPECT_FALSE(stuck.known());
  EXPECT_NE(stuck.reason().find("task.cancellation.timeout"), std::string::npos) << stuck.reason();
  // Dropping it was all the next attempt waited for.
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "RUNNING");
  ASSERT_EQ(job.attempt(), 2);
  ASSERT_EQ(job.workers_size(), 1);
  EXPECT_EQ(job.workers(0).worker_id(), w[1]);
}

// A known worker reporting the running attempt without being part of it gets
// no assignment (it cancels); an unknown one is told to register again.
TEST_F(CoordinatorRecoveryTest, WorkerRunningAnAttemptItIsNotPartOfGetsNoAssignment) {
  StartServer();
  const std::string a = MustRegister(7001);
  const std::string standby = MustRegister(7002);
  ASSERT_EQ(BeatAs(a, 1).assignment().attempt(), 1);
  const v1::HeartbeatResponse beat = BeatAs(standby, 1);
  EXPECT_TRUE(beat.known());
  EXPECT_FALSE(beat.has_assignment());
  EXPECT_NE(beat.reason().find("standby"), std::string::npos) << beat.reason();
  EXPECT_FALSE(BeatAs("127.0.0.1:7003-abcdef", 1).known());
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "RUNNING");
  EXPECT_EQ(job.failures(), 0);
}

// A completed checkpoint in the job directory (found on start): every
// deployment restores it, with all of its snapshots and, for each worker, the
// offsets of the partitions it now reads.
TEST_F(CoordinatorRecoveryTest, RestoresTheLatestCheckpointWithEachWorkersOffsets) {
  EnableCheckpoints(/*interval_ms=*/600000, /*timeout_ms=*/10000, /*tolerable=*/0);
  WriteMetadata(JobDir() / "chk-3", TwoWorkerMetadata(3, NowMs() - 5000));
  WriteMetadata(JobDir() / "chk-7", TwoWorkerMetadata(7, NowMs() - 1000));
  fs::create_directories(JobDir() / "chk-8");  // abandoned: no _metadata
  const std::vector<std::string> w = StartWithWorkers(2);
  const std::string chk7 = (JobDir() / "chk-7").string();

  const v1::Assignment a0 = BeatAs(w[0], 0).assignment();
  const v1::Assignment a1 = BeatAs(w[1], 0).assignment();
  ASSERT_TRUE(a0.has_restore());
  ASSERT_TRUE(a1.has_restore());
  EXPECT_EQ(a0.restore().checkpoint_path(), chk7);
  EXPECT_EQ(a0.restore().checkpoint_id(), 7);
  ASSERT_EQ(a0.restore().snapshots_size(), 2);
  EXPECT_EQ(a0.restore().snapshots(0).state_path(), "kg-0-63");
  EXPECT_EQ(a0.restore().snapshots(1).state_path(), "kg-64-127");
  EXPECT_EQ(a1.restore().snapshots(1).key_groups().first(), 64);
  // Worker 0 reads partitions 0 and 2 (2 had nothing read: starting offsets),
  // worker 1 reads 1 and 3.
  EXPECT_EQ(std::vector<int>(a0.partitions().begin(), a0.partitions().end()), (std::vector<int>{0, 2}));
  EXPECT_EQ(Offsets(a0.restore()), (std::vector<std::pair<int, int64_t>>{{0, 100}}));
  EXPECT_EQ(Offsets(a1.restore()), (std::vector<std::pair<int, int64_t>>{{1, 200}, {3, 400}}));

  v1::JobStatus job = GetJob();
  EXPECT_EQ(job.restored_from(), chk7);
  EXPECT_EQ(job.checkpoints().restored(), 1);
  EXPECT_EQ(job.checkpoints().latest_restored().id(), 7);
  EXPECT_EQ(job.checkpoints().latest_restored().path(), chk7);
  EXPECT_EQ(job.checkpoints().latest_restored().state_bytes(), 1234 + 4321);

  // The next attempt (no checkpoint since) restores it again.
  BeatAs(w[0], 1, "crash");
  job = ReportIdle(w);
  ASSERT_EQ(job.attempt(), 2);
  EXPECT_EQ(BeatAs(w[1], 0).assignment().restore().checkpoint_id(), 7);
  EXPECT_EQ(job.checkpoints().restored(), 2);
  EXPECT_EQ(job.restored_from(), chk7);
  EXPECT_TRUE(fs::exists(JobDir() / "chk-7" / "_metadata"));
}

// Checkpoints taken by this coordinator: after a failure the next attempt
// restores the newest one, which is still on disk when it is deployed.
TEST_F(CoordinatorRecoveryTest, RestoresACheckpointTheJobTook) {
  EnableCheckpoints(/*interval_ms=*/100, /*timeout_ms=*/10000, /*tolerable=*/100);
  StartServer(10000, 4, /*min_workers=*/1, kStabilizationMs);
  FakeTaskControl& a = AddFakeWorker();
  FakeTaskControl& b = AddFakeWorker();
  AdvanceAndTick(kStabilizationMs);
  ASSERT_EQ(GetJob().state(), "RUNNING");
  ASSERT_EQ(GetJob().workers_size(), 2);
  EXPECT_EQ(GetJob().checkpoints().restored(), 0);
  a.set_reply(FakeTaskControl::Reply::kAck);
  b.set_reply(FakeTaskControl::Reply::kAck);
  ASSERT_GE(TickUntil([](const v1::JobStatus& j) { return j.checkpoints().completed() >= 1; }, 100)
                .checkpoints()
                .completed(),
            1);
  // No further checkpoint completes from here on (attempt 2 included).
  a.set_reply(FakeTaskControl::Reply::kSilent);
  b.set_reply(FakeTaskControl::Reply::kSilent);
  const int64_t latest_before = GetJob().checkpoints().latest_completed().id();
  BeatAs(a.worker_id(), 1, "task crashed");
  const v1::JobStatus job = ReportIdle({a.worker_id(), b.worker_id()});
  ASSERT_EQ(job.attempt(), 2);
  const v1::RestoreInfo restore = BeatAs(a.worker_id(), 0).assignment().restore();
  // (A checkpoint every worker had acknowledged when the attempt failed may
  // still complete: it can be the one restored.)
  EXPECT_GE(restore.checkpoint_id(), latest_before);
  EXPECT_EQ(restore.checkpoint_path(), (JobDir() / absl::StrCat("chk-", restore.checkpoint_id())).string());
  EXPECT_TRUE(fs::exists(fs::path(restore.checkpoint_path()) / "_metadata"));
  ASSERT_EQ(restore.snapshots_size(), 2);
  EXPECT_EQ(restore.snapshots(0).worker_id(), a.worker_id());
  EXPECT_EQ(restore.snapshots(1).worker_id(), b.worker_id());
  // The fakes report partition (first key group % 4) = 0 at 10 x the id; a
  // reads partitions 0 and 2 now.
  EXPECT_EQ(Offsets(restore), (std::vector<std::pair<int, int64_t>>{{0, restore.checkpoint_id() * 10}}));
  EXPECT_TRUE(BeatAs(b.worker_id(), 0).assignment().restore().offsets().empty());
  EXPECT_EQ(job.checkpoints().restored(), 1);
  EXPECT_EQ(job.checkpoints().latest_restored().id(), restore.checkpoint_id());
  EXPECT_EQ(job.restored_from(), restore.checkpoint_path());
}

// A restarted coordinator (same job directory) restores its latest
// completed checkpoint on the first deployment.
TEST_F(CoordinatorRecoveryTest, RestartedCoordinatorRestoresItsLatestCheckpoint) {
  EnableCheckpoints(/*interval_ms=*/100, /*timeout_ms=*/10000, /*tolerable=*/100);
  StartServer(10000, 4, /*min_workers=*/1, kStabilizationMs);
  FakeTaskControl& a = AddFakeWorker();
  FakeTaskControl& b = AddFakeWorker();
  AdvanceAndTick(kStabilizationMs);
  ASSERT_EQ(GetJob().state(), "RUNNING");
  ASSERT_EQ(GetJob().workers_size(), 2);
  a.set_reply(FakeTaskControl::Reply::kAck);
  b.set_reply(FakeTaskControl::Reply::kAck);
  ASSERT_GE(TickUntil([](const v1::JobStatus& j) { return j.checkpoints().completed() >= 2; }, 100)
                .checkpoints()
                .completed(),
            2);
  // The fakes acknowledge through stub_, which StartServer replaces: shutting
  // them down waits for every acknowledgement in flight.
  for (auto& fake : fakes_) fake->Shutdown();
  server_.reset();
  int64_t latest = 0;
  for (const auto& entry : fs::directory_iterator(JobDir())) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("chk-", 0) == 0 && fs::exists(entry.path() / "_metadata")) {
      latest = std::max<int64_t>(latest, std::stoll(name.substr(4)));
    }
  }
  ASSERT_GT(latest, 0);

  StartServer();
  v1::RegisterWorkerResponse response;
  ASSERT_TRUE(Register(&response, 7050).ok());
  // Attempt numbers go on (they fence older attempts out of Redis).
  ASSERT_EQ(response.assignment().attempt(), 2);
  EXPECT_EQ(response.assignment().restore().checkpoint_id(), latest);
  EXPECT_EQ(response.assignment().restore().checkpoint_path(), (JobDir() / absl::StrCat("chk-", latest)).string());
  EXPECT_EQ(response.assignment().restore().snapshots_size(), 2);
  EXPECT_EQ(Offsets(response.assignment().restore()), (std::vector<std::pair<int, int64_t>>{{0, latest * 10}}));
  EXPECT_EQ(GetJob().checkpoints().restored(), 1);
}

TEST_F(CoordinatorRecoveryTest, CheckpointOfAnotherMaxParallelismFailsTheJob) {
  EnableCheckpoints(/*interval_ms=*/600000, /*timeout_ms=*/10000, /*tolerable=*/0);
  v1::CheckpointMetadata m = TwoWorkerMetadata(4, NowMs());
  m.set_max_parallelism(64);
  WriteMetadata(JobDir() / "chk-4", m);
  StartServer();
  const std::string a = MustRegister(7001);
  const v1::HeartbeatResponse beat = BeatAs(a, 0);
  EXPECT_FALSE(beat.has_assignment());
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "FAILED");
  EXPECT_EQ(job.attempt(), 0);
  EXPECT_NE(job.failure_cause().find("pipeline.max-parallelism"), std::string::npos) << job.failure_cause();
  EXPECT_NE(job.failure_cause().find("chk-4"), std::string::npos) << job.failure_cause();
  EXPECT_NE(beat.reason().find("pipeline.max-parallelism"), std::string::npos) << beat.reason();
  EXPECT_EQ(job.checkpoints().restored(), 0);
}

TEST_F(CoordinatorRecoveryTest, CheckpointOfAnotherTopicFailsTheJob) {
  EnableCheckpoints(/*interval_ms=*/600000, /*timeout_ms=*/10000, /*tolerable=*/0);
  v1::CheckpointMetadata m = TwoWorkerMetadata(4, NowMs());
  m.set_topic("other-events");
  WriteMetadata(JobDir() / "chk-4", m);
  StartServer();
  MustRegister(7001);
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "FAILED");
  EXPECT_NE(job.failure_cause().find("kafka.topic"), std::string::npos) << job.failure_cause();
}

TEST_F(CoordinatorRecoveryTest, CheckpointMissingKeyGroupsFailsTheJob) {
  EnableCheckpoints(/*interval_ms=*/600000, /*timeout_ms=*/10000, /*tolerable=*/0);
  v1::CheckpointMetadata m = TwoWorkerMetadata(4, NowMs());
  m.mutable_workers()->RemoveLast();
  WriteMetadata(JobDir() / "chk-4", m);
  StartServer();
  MustRegister(7001);
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "FAILED");
  EXPECT_NE(job.failure_cause().find("key group 64"), std::string::npos) << job.failure_cause();
}

TEST_F(CoordinatorRecoveryTest, SavepointPathMustHoldMetadata) {
  savepoint_path_ = (checkpoints_root_ / "nowhere").string();
  absl::Status started = TryStartServer();
  ASSERT_FALSE(started.ok());
  EXPECT_NE(std::string(started.message()).find("execution.savepoint.path"), std::string::npos) << started;

  fs::create_directories(checkpoints_root_ / "empty");
  savepoint_path_ = (checkpoints_root_ / "empty").string();
  started = TryStartServer();
  ASSERT_FALSE(started.ok());
  EXPECT_NE(std::string(started.message()).find("execution.savepoint.path"), std::string::npos) << started;
  EXPECT_NE(std::string(started.message()).find("_metadata"), std::string::npos) << started;

  fs::create_directories(checkpoints_root_ / "garbage");
  std::ofstream(checkpoints_root_ / "garbage" / "_metadata") << "{ not json";
  savepoint_path_ = (checkpoints_root_ / "garbage").string();
  started = TryStartServer();
  ASSERT_FALSE(started.ok());
  EXPECT_NE(std::string(started.message()).find("execution.savepoint.path"), std::string::npos) << started;
}

// Without checkpoints of its own, the job restores the savepoint on every
// deployment (also after a failure: until a checkpoint completes, it is the
// newest state there is). The path may name the _metadata file.
TEST_F(CoordinatorRecoveryTest, SavepointIsRestoredUntilTheJobHasANewerCheckpoint) {
  const fs::path savepoint = checkpoints_root_ / "savepoints" / "savepoint-1a2b";
  v1::CheckpointMetadata m = TwoWorkerMetadata(42, NowMs() - 1000);
  m.set_job_id("ffffffffffffffffffffffffffffffff");
  m.set_savepoint(true);
  WriteMetadata(savepoint, m);
  savepoint_path_ = (savepoint / "_metadata").string();
  const std::vector<std::string> w = StartWithWorkers(2);
  v1::Assignment a1 = BeatAs(w[1], 0).assignment();
  EXPECT_EQ(a1.restore().checkpoint_path(), savepoint.string());
  EXPECT_EQ(a1.restore().checkpoint_id(), 42);
  EXPECT_EQ(Offsets(a1.restore()), (std::vector<std::pair<int, int64_t>>{{1, 200}, {3, 400}}));
  EXPECT_EQ(GetJob().restored_from(), savepoint.string());

  BeatAs(w[1], 1, "crash");
  ASSERT_EQ(ReportIdle(w).attempt(), 2);
  a1 = BeatAs(w[1], 0).assignment();
  EXPECT_EQ(a1.restore().checkpoint_path(), savepoint.string());
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.checkpoints().restored(), 2);
  EXPECT_EQ(job.checkpoints().latest_restored().id(), 42);
}

TEST_F(CoordinatorRecoveryTest, NewerCheckpointOfTheJobWinsOverTheSavepoint) {
  EnableCheckpoints(/*interval_ms=*/600000, /*timeout_ms=*/10000, /*tolerable=*/0);
  const fs::path savepoint = checkpoints_root_ / "savepoint-old";
  WriteMetadata(savepoint, TwoWorkerMetadata(42, NowMs() - 60000));
  WriteMetadata(JobDir() / "chk-5", TwoWorkerMetadata(5, NowMs() - 1000));
  savepoint_path_ = savepoint.string();
  StartServer();
  v1::RegisterWorkerResponse response;
  ASSERT_TRUE(Register(&response).ok());
  EXPECT_EQ(response.assignment().restore().checkpoint_id(), 5);
  EXPECT_EQ(response.assignment().restore().checkpoint_path(), (JobDir() / "chk-5").string());
}

TEST_F(CoordinatorRecoveryTest, SavepointWinsOverOlderCheckpointsOfTheJob) {
  EnableCheckpoints(/*interval_ms=*/600000, /*timeout_ms=*/10000, /*tolerable=*/0);
  const fs::path savepoint = checkpoints_root_ / "savepoint-new";
  WriteMetadata(savepoint, TwoWorkerMetadata(42, NowMs() - 1000));
  WriteMetadata(JobDir() / "chk-5", TwoWorkerMetadata(5, NowMs() - 60000));
  savepoint_path_ = savepoint.string();
  StartServer();
  v1::RegisterWorkerResponse response;
  ASSERT_TRUE(Register(&response).ok());
  EXPECT_EQ(response.assignment().restore().checkpoint_id(), 42);
  EXPECT_EQ(response.assignment().restore().checkpoint_path(), savepoint.string());
}

}  // namespace
}  // namespace slipstream
