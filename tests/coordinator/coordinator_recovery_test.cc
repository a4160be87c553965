// Recovery in the coordinator, through its gRPC API with fake workers:
// in-place failover (the failed attempt's other workers stay registered,
// cancel, and report attempt 0 before the next attempt is deployed), the
// restart strategies (fixed-delay, exponential-delay, none, the job FAILED
// when they give up), heartbeat failure causes, the cancellation timeout, and
// restoring the latest completed checkpoint or a savepoint
// (Assignment.restore with every snapshot and each worker's offsets). Waits
// poll with generous deadlines; lower bounds on delays are exact.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/coordinator_server.h"
#include "tests/coordinator/coordinator_fixture.h"
#include "tests/coordinator/fake_task_control.h"

namespace slipstream {
namespace {

namespace fs = std::filesystem;
using test_support::Eventually;
using test_support::FakeTaskControl;
using Clock = std::chrono::steady_clock;

constexpr char kJobId[] = "0123456789abcdef0123456789abcdef";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t ElapsedMs(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
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
  // Registers `n` plain workers that join one deployment (stabilization).
  std::vector<std::string> StartWithWorkers(int n, int min_workers = 1) {
    StartServer(heartbeat_timeout_ms_, 4, min_workers, /*stabilization_ms=*/200);
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) ids.push_back(MustRegister(7001 + i));
    const v1::JobStatus job = WaitForJob([&](const v1::JobStatus& j) { return j.state() == "RUNNING"; });
    EXPECT_EQ(job.state(), "RUNNING");
    EXPECT_EQ(job.workers_size(), n);
    return ids;
  }

  // Heartbeats every worker as idle until the job runs `attempt` (or 10 s).
  v1::JobStatus IdleUntilAttempt(const std::vector<std::string>& workers, int64_t attempt) {
    return WaitForJob([&](const v1::JobStatus& j) {
      for (const std::string& w : workers) BeatAs(w, 0);
      return j.attempt() >= attempt && j.state() == "RUNNING";
    });
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

  // a still runs attempt 1: nothing is deployed, however long it takes.
  const auto until = Clock::now() + std::chrono::milliseconds(500);
  while (Clock::now() < until) {
    EXPECT_FALSE(BeatAs(w[0], 1).has_assignment());
    EXPECT_FALSE(BeatAs(w[1], 0).has_assignment());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(GetJob().attempt(), 1);
  EXPECT_EQ(GetJob().state(), "RESTARTING");

  // a stops; d has not beaten since: still nothing.
  EXPECT_FALSE(BeatAs(w[1], 0).has_assignment());
  EXPECT_FALSE(BeatAs(w[0], 0).has_assignment());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // several reaper ticks
  EXPECT_EQ(GetJob().attempt(), 1);
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
  UseManualClock();
  restart_.fixed_delay_ms = 600;
  StartServer(heartbeat_timeout_ms_, 4, /*min_workers=*/1, /*stabilization_ms=*/200);
  const std::vector<std::string> w = {MustRegister(7001), MustRegister(7002)};
  AdvanceAndTick(200);  // the stabilization timeout: attempt 1 on both
  ASSERT_EQ(GetJob().attempt(), 1);
  ASSERT_EQ(GetJob().workers_size(), 2);
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

  ASSERT_EQ(IdleUntilAttempt(w, 2).attempt(), 2);
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
    ASSERT_EQ(IdleUntilAttempt(w, attempt + 1).attempt(), attempt + 1);
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
  const auto until = Clock::now() + std::chrono::milliseconds(400);
  while (Clock::now() < until) {
    const v1::HeartbeatResponse beat = BeatAs(w[0], 0);
    EXPECT_TRUE(beat.known());
    EXPECT_FALSE(beat.has_assignment());
    EXPECT_NE(beat.reason().find("FAILED"), std::string::npos) << beat.reason();
    EXPECT_FALSE(BeatAs(late, 0).has_assignment());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
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
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
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
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // several reaper ticks
  EXPECT_EQ(BeatAs(w[0], 0).assignment().attempt(), 0) << "deployed while the leaving worker's task still ran";
  EXPECT_EQ(BeatAs(w[1], 0).assignment().attempt(), 0);
  Deregister(w[2]);  // its task has stopped
  ASSERT_TRUE(Eventually([&] { return BeatAs(w[0], 0).assignment().attempt() == 2; }, std::chrono::seconds(5)));
  job = GetJob();
  EXPECT_EQ(job.state(), "RUNNING");
  EXPECT_EQ(job.failures(), 0) << job.failure_cause();
  EXPECT_EQ(job.workers_size(), 2);
}

// A leaving worker that never says its task stopped (it died) holds the next
// attempt back for heartbeat.timeout at most.
TEST_F(CoordinatorRecoveryTest, LeavingWorkerThatNeverFinishesIsGivenUpAfterTheHeartbeatTimeout) {
  heartbeat_timeout_ms_ = 1500;
  const std::vector<std::string> w = StartWithWorkers(2);
  Deregister(w[1], "", /*running_attempt=*/1);
  const Clock::time_point left_at = Clock::now();
  ASSERT_TRUE(Eventually([&] { return BeatAs(w[0], 0).assignment().attempt() == 2; }, std::chrono::seconds(10)));
  EXPECT_GE(ElapsedMs(left_at), 1500);
  EXPECT_EQ(GetJob().failures(), 0);
}

// A worker reports its task's failure once the task has ended: from then on
// it is listed as idle, not as running the failed attempt.
TEST_F(CoordinatorRecoveryTest, FailureReportLeavesTheWorkerIdle) {
  const std::vector<std::string> w = StartWithWorkers(2);
  BeatAs(w[1], 1, "boom");
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "RESTARTING");
  for (const v1::WorkerStatus& worker : job.workers()) {
    if (worker.worker_id() == w[1]) EXPECT_EQ(worker.counters().attempt(), 0) << "listed as running attempt 1";
  }
  EXPECT_EQ(IdleUntilAttempt(w, 2).attempt(), 2);
}

// Exponential delay: 100, 200, 400, 400 ms (max 400) between each failure
// and the next deployment, with every worker idle at once.
TEST_F(CoordinatorRecoveryTest, ExponentialDelaysGrow) {
  restart_.type = RestartStrategySettings::Type::kExponentialDelay;
  restart_.initial_backoff_ms = 100;
  restart_.max_backoff_ms = 400;
  restart_.backoff_multiplier = 2.0;
  restart_.reset_backoff_threshold_ms = 3600000;
  const std::vector<std::string> w = StartWithWorkers(1);
  const std::vector<int64_t> expected = {100, 200, 400, 400};
  std::vector<int64_t> measured;
  for (size_t i = 0; i < expected.size(); ++i) {
    const int64_t attempt = static_cast<int64_t>(i) + 1;
    const Clock::time_point failed_at = Clock::now();
    BeatAs(w[0], attempt, "crash");
    ASSERT_TRUE(Eventually([&] { return BeatAs(w[0], 0).assignment().attempt() == attempt + 1; },
                           std::chrono::seconds(10)));
    measured.push_back(ElapsedMs(failed_at));
  }
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_GE(measured[i], expected[i]) << "restart " << i + 1;
    EXPECT_LT(measured[i], expected[i] + 3000) << "restart " << i + 1;
  }
  EXPECT_EQ(GetJob().restarts(), 4);
}

// A worker told to cancel that keeps reporting its old attempt is dropped
// after task.cancellation.timeout; the next attempt goes on without it.
TEST_F(CoordinatorRecoveryTest, WorkerThatDoesNotCancelIsDroppedAfterTheCancellationTimeout) {
  cancellation_timeout_ms_ = 300;
  const std::vector<std::string> w = StartWithWorkers(2);
  ASSERT_EQ(BeatAs(w[0], 1).assignment().attempt(), 1);
  BeatAs(w[1], 1, "crash");
  v1::HeartbeatResponse stuck;
  ASSERT_TRUE(Eventually([&] {
    BeatAs(w[1], 0);
    stuck = BeatAs(w[0], 1);
    return !stuck.known();
  })) << stuck.reason();
  EXPECT_NE(stuck.reason().find("task.cancellation.timeout"), std::string::npos) << stuck.reason();
  const v1::JobStatus job = IdleUntilAttempt({w[1]}, 2);
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
  job = IdleUntilAttempt(w, 2);
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
  StartServer(10000, 4, /*min_workers=*/1, /*stabilization_ms=*/300);
  FakeTaskControl& a = AddFakeWorker();
  FakeTaskControl& b = AddFakeWorker();
  ASSERT_EQ(WaitForJob([](const v1::JobStatus& j) { return j.state() == "RUNNING"; }).workers_size(), 2);
  EXPECT_EQ(GetJob().checkpoints().restored(), 0);
  a.set_reply(FakeTaskControl::Reply::kAck);
  b.set_reply(FakeTaskControl::Reply::kAck);
  ASSERT_GE(WaitForJob([](const v1::JobStatus& j) { return j.checkpoints().completed() >= 1; })
                .checkpoints()
                .completed(),
            1);
  // No further checkpoint completes from here on (attempt 2 included).
  a.set_reply(FakeTaskControl::Reply::kSilent);
  b.set_reply(FakeTaskControl::Reply::kSilent);
  const int64_t latest_before = GetJob().checkpoints().latest_completed().id();
  BeatAs(a.worker_id(), 1, "task crashed");
  const v1::JobStatus job = IdleUntilAttempt({a.worker_id(), b.worker_id()}, 2);
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
  StartServer(10000, 4, /*min_workers=*/1, /*stabilization_ms=*/300);
  FakeTaskControl& a = AddFakeWorker();
  FakeTaskControl& b = AddFakeWorker();
  ASSERT_EQ(WaitForJob([](const v1::JobStatus& j) { return j.state() == "RUNNING"; }).workers_size(), 2);
  a.set_reply(FakeTaskControl::Reply::kAck);
  b.set_reply(FakeTaskControl::Reply::kAck);
  ASSERT_GE(WaitForJob([](const v1::JobStatus& j) { return j.checkpoints().completed() >= 2; })
                .checkpoints()
                .completed(),
            2);
  a.set_reply(FakeTaskControl::Reply::kSilent);
  b.set_reply(FakeTaskControl::Reply::kSilent);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // acks in flight use stub_
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
  ASSERT_EQ(IdleUntilAttempt(w, 2).attempt(), 2);
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
