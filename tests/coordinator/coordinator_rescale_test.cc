// Reactive scale-out (scheduler-mode=reactive): a worker joining a RUNNING
// job makes the coordinator take a checkpoint, end the attempt without a
// failure, and deploy the next attempt over every worker from that
// checkpoint; joins within the stabilization window make one rescale. Fake
// workers acknowledge barriers and report idle through heartbeats, as real
// ones do; the ended attempt's workers are told at once with CancelTask.
// The lifecycle runs on the test's clock and moves at ticks: a test asks for
// the rescale with a tick, waits (polling) for the CheckpointCoordinator's
// thread to complete the checkpoint, and sees the attempt end at the next
// tick.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/coordinator/coordinator_fixture.h"
#include "tests/coordinator/fake_task_control.h"

namespace slipstream {
namespace {

using test_support::Eventually;
using test_support::FakeTaskControl;

class CoordinatorRescaleTest : public test_support::CoordinatorFixture {
 protected:
  // Starts a job on `workers` fake workers that acknowledge every barrier.
  // The periodic interval is long: any checkpoint a test sees was requested
  // by the rescale.
  void StartJob(int workers, int64_t stabilization_ms, int64_t tolerable = 0) {
    UseManualClock();
    EnableCheckpoints(/*interval_ms=*/600000, /*timeout_ms=*/20000, tolerable);
    rescale_on_join_ = true;
    StartServer(10000, 4, /*min_workers=*/workers, stabilization_ms);
    for (int i = 0; i < workers; ++i) AddFakeWorker().set_reply(FakeTaskControl::Reply::kAck);
    AdvanceAndTick(stabilization_ms);
    const v1::JobStatus job = GetJob();
    ASSERT_EQ(job.state(), "RUNNING");
    ASSERT_EQ(job.attempt(), 1);
  }

  // Polls until the CheckpointCoordinator completed `n` checkpoints (or failed
  // `n`, with `failed`).
  v1::JobStatus WaitForCheckpoints(int64_t n, bool failed = false) {
    const v1::JobStatus job = WaitForJob([&](const v1::JobStatus& j) {
      return (failed ? j.checkpoints().failed() : j.checkpoints().completed()) >= n;
    });
    EXPECT_GE(failed ? job.checkpoints().failed() : job.checkpoints().completed(), n) << job.DebugString();
    return job;
  }

  FakeTaskControl& Join() {
    FakeTaskControl& w = AddFakeWorker();
    w.set_reply(FakeTaskControl::Reply::kAck);
    return w;
  }

  // Every fake reports that it runs no task (as a worker that cancelled).
  void AllReportIdle() {
    for (const auto& fake : fakes_) BeatAs(fake->worker_id(), 0);
  }

  // The running attempt's key-group ranges cover 0..max-1 exactly once.
  static void ExpectKeyGroupsOwnedOnce(const v1::JobStatus& job) {
    std::vector<int> owners(job.max_parallelism(), 0);
    for (const v1::WorkerStatus& w : job.workers()) {
      if (w.standby()) continue;
      for (const v1::KeyGroupRange& r : w.assignment().key_groups()) {
        for (int k = r.first(); k <= r.last(); ++k) ++owners[k];
      }
    }
    for (int k = 0; k < job.max_parallelism(); ++k) EXPECT_EQ(owners[k], 1) << "key group " << k;
  }
};

TEST_F(CoordinatorRescaleTest, JoiningWorkerRescalesThroughACheckpointWithoutAFailure) {
  ASSERT_NO_FATAL_FAILURE(StartJob(2, /*stabilization_ms=*/0));
  FakeTaskControl& joined = Join();
  Tick();  // asks for the rescale checkpoint
  // The rescale checkpoint is taken on the two running workers only; the
  // attempt runs on until the next tick.
  v1::JobStatus job = WaitForCheckpoints(1);
  EXPECT_EQ(job.rescales(), 0);
  EXPECT_EQ(job.state(), "RUNNING") << "Flink's name while rescaling";
  EXPECT_EQ(job.job_state(), v1::JOB_STATE_RESCALING);
  Tick();
  job = GetJob();
  ASSERT_EQ(job.rescales(), 1) << job.DebugString();
  EXPECT_EQ(job.state(), "RESTARTING");
  EXPECT_EQ(job.job_state(), v1::JOB_STATE_RESTARTING);
  EXPECT_EQ(job.failures(), 0);
  EXPECT_EQ(job.checkpoints().completed(), 1);
  EXPECT_NE(job.failure_cause().find("rescale from 2 to 3 workers"), std::string::npos) << job.failure_cause();
  EXPECT_TRUE(joined.triggers().empty());
  // The ended attempt's workers are told at once, not at their next heartbeat.
  EXPECT_TRUE(Eventually([&] { return fakes_[0]->WasCancelled(1) && fakes_[1]->WasCancelled(1); }));
  EXPECT_FALSE(joined.WasCancelled(1));

  // Once every worker reports idle (the last report deploys), attempt 2 runs
  // on 3 workers from the rescale checkpoint.
  AllReportIdle();
  job = GetJob();
  EXPECT_EQ(job.state(), "RUNNING");
  ASSERT_EQ(job.attempt(), 2) << job.DebugString();
  EXPECT_EQ(job.restarts(), 0);
  EXPECT_EQ(job.failures(), 0);
  EXPECT_NE(job.restored_from().find("chk-1"), std::string::npos) << job.restored_from();
  int running = 0;
  for (const v1::WorkerStatus& w : job.workers()) {
    if (w.standby()) continue;
    ++running;
    EXPECT_EQ(w.assignment().attempt(), 2);
    EXPECT_EQ(w.assignment().restore().checkpoint_id(), 1);
    EXPECT_EQ(w.assignment().restore().snapshots_size(), 2);  // taken by 2, restored by 3
  }
  EXPECT_EQ(running, 3);
  ExpectKeyGroupsOwnedOnce(job);
  // No further rescale: nobody else joined.
  for (int second = 1; second <= 3; ++second) {
    AdvanceAndTick(1000);
    AllReportIdle();  // stay alive (heartbeat.timeout is 10 s)
  }
  EXPECT_EQ(GetJob().rescales(), 1);
  EXPECT_EQ(GetJob().attempt(), 2);
}

TEST_F(CoordinatorRescaleTest, WorkersJoiningWithinTheStabilizationWindowMakeOneRescale) {
  ASSERT_NO_FATAL_FAILURE(StartJob(1, /*stabilization_ms=*/400));
  Join();
  AdvanceAndTick(150);
  Join();
  // Nothing happens while the window is open (400 ms after the second join).
  AdvanceAndTick(399);
  EXPECT_EQ(GetJob().rescales(), 0);
  AdvanceAndTick(1);  // the window closes: the rescale asks for a checkpoint now
  v1::JobStatus job = WaitForCheckpoints(1);
  EXPECT_EQ(job.rescales(), 0);
  AdvanceAndTick(5);
  job = GetJob();
  ASSERT_EQ(job.rescales(), 1);
  // Asked for at the tick that closed the window, not a millisecond before.
  EXPECT_NE(job.failure_cause().find("rescale from 1 to 3 workers after checkpoint 1 (5 ms after it was requested)"),
            std::string::npos)
      << job.failure_cause();
  AllReportIdle();
  job = GetJob();
  EXPECT_EQ(job.state(), "RUNNING");
  ASSERT_EQ(job.attempt(), 2);
  int running = 0;
  for (const v1::WorkerStatus& w : job.workers()) running += w.standby() ? 0 : 1;
  EXPECT_EQ(running, 3);
  ExpectKeyGroupsOwnedOnce(job);
  for (int window = 1; window <= 3; ++window) {
    AdvanceAndTick(400);
    AllReportIdle();
  }
  EXPECT_EQ(GetJob().rescales(), 1);
  EXPECT_EQ(GetJob().attempt(), 2);
}

TEST_F(CoordinatorRescaleTest, RescaleWaitsForACheckpointThatCompletes) {
  ASSERT_NO_FATAL_FAILURE(StartJob(2, /*stabilization_ms=*/0, /*tolerable=*/5));
  // Worker 1 declines the first barrier: that checkpoint fails, the job runs
  // on, and the rescale asks again.
  fakes_[1]->set_policy([](int64_t id) { return id == 1 ? FakeTaskControl::Reply::kDecline : FakeTaskControl::Reply::kAck; });
  Join();
  Tick();  // asks for checkpoint 1
  v1::JobStatus job = WaitForCheckpoints(1, /*failed=*/true);
  EXPECT_EQ(job.rescales(), 0);
  EXPECT_EQ(job.state(), "RUNNING");
  Tick();  // asks again
  job = WaitForCheckpoints(1);
  EXPECT_EQ(job.rescales(), 0);
  Tick();
  job = GetJob();
  ASSERT_EQ(job.rescales(), 1) << job.DebugString();
  EXPECT_EQ(job.checkpoints().failed(), 1);
  EXPECT_EQ(job.checkpoints().completed(), 1);
  EXPECT_NE(job.failure_cause().find("after checkpoint 2"), std::string::npos) << job.failure_cause();
  EXPECT_EQ(job.failures(), 0);
}

TEST_F(CoordinatorRescaleTest, WithoutReactiveModeAJoiningWorkerStaysAStandby) {
  EnableCheckpoints(/*interval_ms=*/100, /*timeout_ms=*/20000, /*tolerable=*/0);
  StartServer(10000, 4, /*min_workers=*/1, 0);
  AddFakeWorker().set_reply(FakeTaskControl::Reply::kAck);
  ASSERT_EQ(WaitForJob([](const v1::JobStatus& j) { return j.state() == "RUNNING"; }).state(), "RUNNING");
  Join();
  const v1::JobStatus job = WaitForJob([](const v1::JobStatus& j) { return j.checkpoints().completed() >= 3; });
  EXPECT_GE(job.checkpoints().completed(), 3);
  EXPECT_EQ(job.rescales(), 0);
  EXPECT_EQ(job.attempt(), 1);
  EXPECT_TRUE(job.workers(1).standby());
}

TEST_F(CoordinatorRescaleTest, CancelledJobIsRecordedAsEnded) {
  ASSERT_NO_FATAL_FAILURE(StartJob(1, /*stabilization_ms=*/0));
  grpc::ClientContext ctx;
  v1::CancelJobRequest request;
  request.set_job_id(GetJob().job_id());
  v1::CancelJobResponse response;
  ASSERT_TRUE(stub_->CancelJob(&ctx, request, &response).ok());
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(job_dir_) / "_job_ended"));
  Tick();  // the checkpoint coordinator sends the workers CancelTask
  EXPECT_TRUE(Eventually([&] { return fakes_[0]->WasCancelled(1); }));
}

}  // namespace
}  // namespace slipstream
