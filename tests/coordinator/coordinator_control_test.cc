// The coordinator's control API (the `slipstream` CLI's RPCs) through real
// gRPC, with fake workers that acknowledge or decline barriers: savepoints
// as asynchronous operations into self-contained savepoint-<job>-<hex>/
// directories (never retained away, not used for recovery, relocatable),
// stop-with-savepoint (the barrier says stop_after; FINISHED once complete,
// the job runs on if it fails), cancel (CANCELED, workers idle but
// registered, checkpoints retained or deleted per
// externalized-checkpoint-retention), dispose, and the error codes.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/checkpoint/checkpoint_coordinator.h"
#include "tests/coordinator/coordinator_fixture.h"
#include "tests/coordinator/fake_task_control.h"

namespace slipstream {
namespace {

namespace fs = std::filesystem;
using test_support::FakeTaskControl;

constexpr char kJobId[] = "0123456789abcdef0123456789abcdef";

// The suite runs on the manual clock: the lifecycle and the checkpoint
// coordinator move only when a test ticks, so "nothing happened" is checked
// over clock time, not by sleeping.
class CoordinatorControlTest : public test_support::CoordinatorFixture {
 protected:
  void SetUp() override {
    CoordinatorFixture::SetUp();
    UseManualClock();
  }

  // Moves the clock 10 ms and ticks until `done`. The coordinator's abort and
  // cancel calls to the workers are asynchronous RPCs: each step also yields
  // a millisecond of real time for them to arrive.
  bool Eventually(const std::function<bool()>& done, int max_steps = 3000) {
    for (int i = 0; i < max_steps; ++i) {
      if (done()) return true;
      AdvanceAndTick(10);
      std::this_thread::sleep_for(std::chrono::microseconds(1000));
    }
    return done();
  }
  v1::JobStatus WaitForJob(const std::function<bool(const v1::JobStatus&)>& done) {
    v1::JobStatus job = GetJob();
    Eventually([&] {
      job = GetJob();
      return done(job);
    });
    return job;
  }
  // `ms` of clock time in 10 ms ticks, for checks that nothing happens.
  void Pass(int64_t ms) {
    for (int64_t t = 0; t < ms; t += 10) AdvanceAndTick(10);
  }

  // Checkpointing with a periodic interval long enough not to interfere
  // unless a test wants it, savepoints into <tmp>/savepoints by default.
  void SetUpJob(int workers, int64_t interval_ms = 600000, int64_t tolerable = 0) {
    EnableCheckpoints(interval_ms, /*timeout_ms=*/20000, tolerable);
    savepoints_dir_ = (checkpoints_root_ / "savepoints").string();
    StartServer(10000, 4, /*min_workers=*/workers);
    for (int i = 0; i < workers; ++i) AddFakeWorker().set_reply(FakeTaskControl::Reply::kAck);
    ASSERT_EQ(GetJob().state(), "RUNNING");
  }

  grpc::Status Trigger(const std::string& job_id, const std::string& dir, v1::SavepointOperation* op,
                       bool stop = false) {
    grpc::ClientContext ctx;
    if (stop) {
      v1::StopWithSavepointRequest request;
      request.set_job_id(job_id);
      request.set_target_dir(dir);
      return stub_->StopWithSavepoint(&ctx, request, op);
    }
    v1::TriggerSavepointRequest request;
    request.set_job_id(job_id);
    request.set_target_dir(dir);
    return stub_->TriggerSavepoint(&ctx, request, op);
  }

  grpc::Status Get(const std::string& job_id, const std::string& request_id, v1::SavepointOperation* op) {
    grpc::ClientContext ctx;
    v1::GetSavepointRequest request;
    request.set_job_id(job_id);
    request.set_request_id(request_id);
    return stub_->GetSavepoint(&ctx, request, op);
  }

  // Polls the operation until it is no longer IN_PROGRESS.
  v1::SavepointOperation WaitDone(const v1::SavepointOperation& started) {
    v1::SavepointOperation op = started;
    EXPECT_TRUE(Eventually([&] {
      EXPECT_TRUE(Get(kJobId, started.request_id(), &op).ok());
      return op.status() != "IN_PROGRESS";
    })) << op.DebugString();
    return op;
  }

  grpc::Status Cancel(const std::string& job_id, v1::CancelJobResponse* response) {
    grpc::ClientContext ctx;
    v1::CancelJobRequest request;
    request.set_job_id(job_id);
    return stub_->CancelJob(&ctx, request, response);
  }

  grpc::Status Dispose(const std::string& path, v1::DisposeSavepointResponse* response = nullptr) {
    grpc::ClientContext ctx;
    v1::DisposeSavepointRequest request;
    request.set_path(path);
    v1::DisposeSavepointResponse ignored;
    return stub_->DisposeSavepoint(&ctx, request, response ? response : &ignored);
  }

  std::vector<fs::path> CheckpointDirs() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(job_dir_)) {
      if (e.path().filename().string().rfind("chk-", 0) == 0) out.push_back(e.path());
    }
    return out;
  }

  const v1::TriggerCheckpointRequest* FindTrigger(const FakeTaskControl& w, int64_t id) {
    last_triggers_ = w.triggers();
    for (const auto& t : last_triggers_) {
      if (t.request.checkpoint_id() == id) return &t.request;
    }
    return nullptr;
  }

  std::vector<FakeTaskControl::Trigger> last_triggers_;
};

TEST_F(CoordinatorControlTest, SavepointIsAnAsynchronousOperationIntoItsOwnSelfContainedDirectory) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob(2));
  v1::SavepointOperation started;
  ASSERT_TRUE(Trigger(kJobId, "", &started).ok());
  EXPECT_EQ(started.status(), "IN_PROGRESS");
  EXPECT_EQ(started.request_id().size(), 32u);
  EXPECT_FALSE(started.stop());
  const v1::SavepointOperation op = WaitDone(started);
  ASSERT_EQ(op.status(), "COMPLETED") << op.failure_cause();
  const fs::path location(op.location());
  EXPECT_EQ(location.parent_path(), fs::path(savepoints_dir_));
  EXPECT_TRUE(std::regex_match(location.filename().string(), std::regex("savepoint-012345-[0-9a-f]{12}")))
      << location;
  EXPECT_EQ(op.acknowledged(), 2);
  EXPECT_EQ(op.state_bytes(), 2000);  // the fakes' made-up sizes
  EXPECT_GT(op.checkpoint_id(), 0);
  EXPECT_GE(op.end_time_ms(), op.trigger_time_ms());

  // Every worker was asked for a savepoint into that directory, no stop.
  for (const auto& fake : fakes_) {
    const v1::TriggerCheckpointRequest* t = FindTrigger(*fake, op.checkpoint_id());
    ASSERT_NE(t, nullptr);
    EXPECT_TRUE(t->savepoint());
    EXPECT_FALSE(t->stop_after());
    EXPECT_EQ(t->target_dir(), op.location());
  }
  // _metadata says savepoint, state paths are relative.
  absl::StatusOr<CompletedCheckpoint> read = ReadCompletedCheckpoint(op.location());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->metadata.savepoint());
  EXPECT_EQ(read->metadata.checkpoint_id(), op.checkpoint_id());
  ASSERT_EQ(read->metadata.workers_size(), 2);
  for (const auto& w : read->metadata.workers()) EXPECT_FALSE(fs::path(w.state_path()).is_absolute());

  // History shows it as a savepoint; it is not the job's latest checkpoint
  // (savepoints are not used for recovery), and the job runs on.
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "RUNNING");
  ASSERT_GE(job.checkpoints().history_size(), 1);
  const v1::CheckpointStats& h = job.checkpoints().history(0);
  EXPECT_EQ(h.id(), op.checkpoint_id());
  EXPECT_TRUE(h.is_savepoint());
  EXPECT_EQ(h.checkpoint_type(), "SAVEPOINT");
  EXPECT_EQ(h.status(), "COMPLETED");
  EXPECT_EQ(h.path(), op.location());
  EXPECT_NE(job.checkpoints().latest_completed().id(), op.checkpoint_id());
  EXPECT_TRUE(CheckpointDirs().empty()) << "a savepoint is not a chk-<n> of the job";
}

TEST_F(CoordinatorControlTest, CheckpointRetentionNeverRemovesASavepoint) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob(1, /*interval_ms=*/100));
  v1::SavepointOperation started;
  const std::string target = (checkpoints_root_ / "elsewhere").string();
  ASSERT_TRUE(Trigger(kJobId, "file://" + target, &started).ok());
  const v1::SavepointOperation op = WaitDone(started);
  ASSERT_EQ(op.status(), "COMPLETED") << op.failure_cause();
  EXPECT_EQ(fs::path(op.location()).parent_path(), fs::path(target));
  // Checkpoints go on; with num-retained=1 older ones go, the savepoint stays.
  const int64_t completed = GetJob().checkpoints().completed();
  const v1::JobStatus job =
      WaitForJob([&](const v1::JobStatus& j) { return j.checkpoints().completed() >= completed + 3; });
  ASSERT_GE(job.checkpoints().completed(), completed + 3);
  EXPECT_GT(job.checkpoints().latest_completed().id(), op.checkpoint_id());
  EXPECT_TRUE(fs::exists(fs::path(op.location()) / "_metadata"));
  EXPECT_LE(CheckpointDirs().size(), 2u);  // one retained, maybe one in progress
}

// The savepoint directory moved elsewhere restores: its _metadata addresses
// state relative to itself, and new checkpoint ids continue after its id.
TEST_F(CoordinatorControlTest, MovedSavepointRestoresAndIdsContinueAfterIt) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob(1));
  v1::SavepointOperation started;
  ASSERT_TRUE(Trigger(kJobId, "", &started).ok());
  const v1::SavepointOperation op = WaitDone(started);
  ASSERT_EQ(op.status(), "COMPLETED") << op.failure_cause();
  for (auto& w : fakes_) w->Shutdown();
  fakes_.clear();
  server_.reset();

  const fs::path moved = checkpoints_root_ / "moved" / "my-savepoint";
  fs::create_directories(moved.parent_path());
  fs::rename(op.location(), moved);
  savepoint_path_ = moved.string();
  EnableCheckpoints(/*interval_ms=*/100, /*timeout_ms=*/20000, /*tolerable=*/0);
  job_dir_ = (checkpoints_root_ / "other-run" / kJobId).string();  // no checkpoints of its own
  StartServer();
  FakeTaskControl& w = AddFakeWorker();
  w.set_reply(FakeTaskControl::Reply::kAck);
  const v1::JobStatus job = WaitForJob([](const v1::JobStatus& j) { return j.state() == "RUNNING"; });
  EXPECT_EQ(job.restored_from(), moved.string());
  EXPECT_EQ(job.checkpoints().restored(), 1);
  EXPECT_EQ(job.checkpoints().latest_restored().id(), op.checkpoint_id());
  EXPECT_TRUE(job.checkpoints().latest_restored().is_savepoint());
  ASSERT_TRUE(Eventually([&] { return !w.triggers().empty(); }));
  EXPECT_GT(w.triggers()[0].request.checkpoint_id(), op.checkpoint_id());
}

TEST_F(CoordinatorControlTest, SavepointErrorsAreClearGrpcCodes) {
  EnableCheckpoints(600000, 20000, 0);
  StartServer(10000, 4, /*min_workers=*/2);
  FakeTaskControl& a = AddFakeWorker();
  v1::SavepointOperation op;
  // CREATED: one of two workers.
  grpc::Status s = Trigger(kJobId, (checkpoints_root_ / "sp").string(), &op);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_NE(s.error_message().find("CREATED"), std::string::npos) << s.error_message();
  FakeTaskControl& b = AddFakeWorker();
  ASSERT_EQ(GetJob().state(), "RUNNING");
  // No state.savepoints.dir and no directory in the request.
  s = Trigger(kJobId, "", &op);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("state.savepoints.dir"), std::string::npos) << s.error_message();
  // Unknown job, relative directory, a file in the way.
  s = Trigger("ffffffffffffffffffffffffffffffff", (checkpoints_root_ / "sp").string(), &op);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_NE(s.error_message().find(kJobId), std::string::npos) << s.error_message();
  s = Trigger(kJobId, "relative/dir", &op);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("absolute"), std::string::npos) << s.error_message();
  std::ofstream(checkpoints_root_ / "a-file") << "x";
  s = Trigger(kJobId, (checkpoints_root_ / "a-file" / "sub").string(), &op);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  s = Trigger(kJobId, "hdfs://namenode/savepoints", &op);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_TRUE(a.triggers().empty());

  // One savepoint at a time: the workers stay silent, so the first one is
  // still in progress when the second is asked for.
  ASSERT_TRUE(Trigger(kJobId, (checkpoints_root_ / "sp").string(), &op).ok());
  v1::SavepointOperation second;
  s = Trigger(kJobId, (checkpoints_root_ / "sp").string(), &second);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_NE(s.error_message().find(op.request_id()), std::string::npos) << s.error_message();
  s = Trigger(kJobId, (checkpoints_root_ / "sp").string(), &second, /*stop=*/true);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();

  // Status of an unknown request, or of another job.
  v1::SavepointOperation got;
  EXPECT_EQ(Get(kJobId, "nope", &got).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Get("ffffffffffffffffffffffffffffffff", op.request_id(), &got).error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(Get(kJobId, op.request_id(), &got).ok());
  EXPECT_EQ(got.status(), "IN_PROGRESS");
  EXPECT_TRUE(Eventually([&] { return !a.triggers().empty() && !b.triggers().empty(); }));
  ASSERT_TRUE(Get(kJobId, op.request_id(), &got).ok());
  EXPECT_EQ(got.expected(), 2);
  EXPECT_EQ(got.acknowledged(), 0);
}

// At most one checkpoint at a time: a savepoint requested while checkpoint n
// runs waits (IN_PROGRESS, no id yet) and becomes n + 1 once n is done.
TEST_F(CoordinatorControlTest, SavepointWaitsForTheRunningCheckpoint) {
  EnableCheckpoints(/*interval_ms=*/100, /*timeout_ms=*/20000, /*tolerable=*/0);
  savepoints_dir_ = (checkpoints_root_ / "savepoints").string();
  StartServer();
  FakeTaskControl& w = AddFakeWorker();  // silent: checkpoint 1 stays pending
  ASSERT_TRUE(Eventually([&] { return !w.triggers().empty(); }));
  const v1::TriggerCheckpointRequest first = w.triggers()[0].request;
  EXPECT_FALSE(first.savepoint());
  v1::SavepointOperation started;
  ASSERT_TRUE(Trigger(kJobId, "", &started).ok());
  Pass(300);
  v1::SavepointOperation got;
  ASSERT_TRUE(Get(kJobId, started.request_id(), &got).ok());
  EXPECT_EQ(got.status(), "IN_PROGRESS");
  EXPECT_EQ(got.checkpoint_id(), 0) << "not triggered while checkpoint " << first.checkpoint_id() << " runs";
  EXPECT_EQ(w.triggers().size(), 1u);
  w.set_reply(FakeTaskControl::Reply::kAck);
  {
    grpc::ClientContext ctx;
    v1::AcknowledgeCheckpointResponse response;
    ASSERT_TRUE(stub_->AcknowledgeCheckpoint(&ctx, w.MakeAck(first), &response).ok());
  }
  const v1::SavepointOperation op = WaitDone(started);
  ASSERT_EQ(op.status(), "COMPLETED") << op.failure_cause();
  EXPECT_EQ(op.checkpoint_id(), first.checkpoint_id() + 1);
  const v1::TriggerCheckpointRequest* t = FindTrigger(w, op.checkpoint_id());
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->savepoint());
}

// Cancelling while a savepoint runs fails it (and removes its directory).
TEST_F(CoordinatorControlTest, CancelFailsTheSavepointInProgress) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob(1));
  fakes_[0]->set_reply(FakeTaskControl::Reply::kSilent);
  v1::SavepointOperation started;
  ASSERT_TRUE(Trigger(kJobId, "", &started).ok());
  ASSERT_TRUE(Eventually([&] { return !fakes_[0]->triggers().empty(); }));
  v1::CancelJobResponse canceled;
  ASSERT_TRUE(Cancel(kJobId, &canceled).ok());
  const v1::SavepointOperation op = WaitDone(started);
  EXPECT_EQ(op.status(), "FAILED");
  EXPECT_NE(op.failure_cause().find("canceled"), std::string::npos) << op.failure_cause();
  EXPECT_TRUE(Eventually([&] { return fakes_[0]->WasAborted(op.checkpoint_id()); }));
  EXPECT_TRUE(Eventually([&] { return fs::is_empty(savepoints_dir_); }));
}

TEST_F(CoordinatorControlTest, ControlRpcsWithoutCheckpointingAreRefused) {
  StartServer();
  MustRegister(7001);
  v1::SavepointOperation op;
  const grpc::Status s = Trigger(kJobId, (checkpoints_root_ / "sp").string(), &op);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_NE(s.error_message().find("checkpointing is disabled"), std::string::npos) << s.error_message();
}

// A declined savepoint fails its operation with the worker's reason, is
// cleaned up, and does not count towards the tolerable checkpoint failures.
TEST_F(CoordinatorControlTest, FailedSavepointIsReportedAndTheJobRunsOn) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob(2, 600000, /*tolerable=*/0));
  fakes_[1]->set_reply(FakeTaskControl::Reply::kDecline);
  v1::SavepointOperation started;
  ASSERT_TRUE(Trigger(kJobId, "", &started).ok());
  const v1::SavepointOperation op = WaitDone(started);
  EXPECT_EQ(op.status(), "FAILED");
  EXPECT_NE(op.failure_cause().find("disk full"), std::string::npos) << op.failure_cause();
  EXPECT_TRUE(op.location().empty());
  EXPECT_TRUE(Eventually([&] { return fakes_[0]->WasAborted(op.checkpoint_id()); }));
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "RUNNING");
  EXPECT_EQ(job.failures(), 0);
  EXPECT_EQ(job.checkpoints().history(0).status(), "FAILED");
  EXPECT_TRUE(job.checkpoints().history(0).is_savepoint());
  EXPECT_TRUE(fs::is_empty(savepoints_dir_)) << "the failed savepoint's directory is removed";
}

TEST_F(CoordinatorControlTest, StopWithSavepointFinishesTheJobAndWorkersStayIdle) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob(2, /*interval_ms=*/150));
  v1::SavepointOperation started;
  ASSERT_TRUE(Trigger(kJobId, "", &started, /*stop=*/true).ok());
  EXPECT_TRUE(started.stop());
  const v1::SavepointOperation op = WaitDone(started);
  ASSERT_EQ(op.status(), "COMPLETED") << op.failure_cause();
  // COMPLETED is reported only once the job has ended.
  v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "FINISHED");
  for (const auto& fake : fakes_) {
    const v1::TriggerCheckpointRequest* t = FindTrigger(*fake, op.checkpoint_id());
    ASSERT_NE(t, nullptr);
    EXPECT_TRUE(t->stop_after());
    EXPECT_TRUE(t->savepoint());
  }
  ASSERT_EQ(job.workers_size(), 2) << "workers stay registered";
  for (const auto& fake : fakes_) {
    const v1::HeartbeatResponse beat = BeatAs(fake->worker_id(), 1);
    EXPECT_TRUE(beat.known());
    EXPECT_FALSE(beat.has_assignment());
    EXPECT_NE(beat.reason().find("FINISHED"), std::string::npos) << beat.reason();
    EXPECT_NE(beat.reason().find(op.location()), std::string::npos) << beat.reason();
  }
  EXPECT_EQ(job.checkpoints().history(0).checkpoint_type(), "SYNC_SAVEPOINT");
  // Nothing is triggered any more, nothing is deployed, nothing can be done.
  const size_t triggers = fakes_[0]->triggers().size();
  for (const auto& fake : fakes_) BeatAs(fake->worker_id(), 0);
  Pass(500);
  EXPECT_EQ(fakes_[0]->triggers().size(), triggers);
  job = GetJob();
  EXPECT_EQ(job.state(), "FINISHED");
  EXPECT_EQ(job.attempt(), 1);
  v1::CancelJobResponse canceled;
  EXPECT_EQ(Cancel(kJobId, &canceled).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  v1::SavepointOperation again;
  EXPECT_EQ(Trigger(kJobId, "", &again).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

// Flink: when the savepoint of a stop fails, the job keeps running; the
// workers are told to abort it (which resumes their sources).
TEST_F(CoordinatorControlTest, FailedStopWithSavepointLeavesTheJobRunning) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob(2));
  fakes_[0]->set_reply(FakeTaskControl::Reply::kDecline);
  v1::SavepointOperation started;
  ASSERT_TRUE(Trigger(kJobId, "", &started, /*stop=*/true).ok());
  EXPECT_EQ(GetJob().job_state(), v1::JOB_STATE_STOPPING);
  EXPECT_EQ(GetJob().state(), "RUNNING") << "Flink's name while stopping";
  const v1::SavepointOperation op = WaitDone(started);
  EXPECT_EQ(op.status(), "FAILED");
  EXPECT_TRUE(Eventually([&] { return fakes_[1]->WasAborted(op.checkpoint_id()); }));
  Tick();  // the stopping job sees its savepoint failed
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "RUNNING");
  EXPECT_EQ(job.job_state(), v1::JOB_STATE_RUNNING) << "the job runs on";
  EXPECT_EQ(job.failures(), 0);
  EXPECT_EQ(BeatAs(fakes_[1]->worker_id(), 1).assignment().attempt(), 1);
}

TEST_F(CoordinatorControlTest, CancelRetainsTheLatestCheckpointAndWorkersStayRegisteredIdle) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob(2, /*interval_ms=*/100));
  const auto completed_two = [](const v1::JobStatus& j) { return j.checkpoints().completed() >= 2; };
  ASSERT_GE(WaitForJob(completed_two).checkpoints().completed(), 2);
  v1::CancelJobResponse response;
  EXPECT_EQ(Cancel("ffffffffffffffffffffffffffffffff", &response).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Cancel("", &response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(Cancel(kJobId, &response).ok());
  EXPECT_EQ(response.state(), "CANCELED");
  EXPECT_EQ(response.checkpoint_retention(), "RETAIN_ON_CANCELLATION");
  ASSERT_FALSE(response.retained_checkpoint().empty());
  EXPECT_TRUE(fs::exists(fs::path(response.retained_checkpoint()) / "_metadata"));
  v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "CANCELED");
  EXPECT_EQ(job.workers_size(), 2);
  for (const auto& fake : fakes_) {
    const v1::HeartbeatResponse beat = BeatAs(fake->worker_id(), 1);
    EXPECT_TRUE(beat.known());
    EXPECT_FALSE(beat.has_assignment());
    EXPECT_NE(beat.reason().find("CANCELED"), std::string::npos) << beat.reason();
  }
  // Idle workers and a newcomer get nothing; no more checkpoints.
  const size_t triggers = fakes_[0]->triggers().size();
  const std::string newcomer = MustRegister(7100);
  for (const auto& fake : fakes_) BeatAs(fake->worker_id(), 0);
  EXPECT_FALSE(BeatAs(newcomer, 0).has_assignment());
  Pass(400);
  EXPECT_EQ(fakes_[0]->triggers().size(), triggers);
  job = GetJob();
  EXPECT_EQ(job.state(), "CANCELED");
  EXPECT_EQ(job.attempt(), 1);
  EXPECT_TRUE(fs::exists(fs::path(response.retained_checkpoint()) / "_metadata"));
  EXPECT_EQ(Cancel(kJobId, &response).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(CoordinatorControlTest, CancelWithDeleteOnCancellationRemovesTheCheckpoints) {
  delete_checkpoints_on_cancel_ = true;
  ASSERT_NO_FATAL_FAILURE(SetUpJob(1, /*interval_ms=*/100));
  const auto completed_one = [](const v1::JobStatus& j) { return j.checkpoints().completed() >= 1; };
  ASSERT_GE(WaitForJob(completed_one).checkpoints().completed(), 1);
  v1::SavepointOperation started;
  ASSERT_TRUE(Trigger(kJobId, "", &started).ok());
  const v1::SavepointOperation savepoint = WaitDone(started);
  ASSERT_EQ(savepoint.status(), "COMPLETED");
  v1::CancelJobResponse response;
  ASSERT_TRUE(Cancel(kJobId, &response).ok());
  EXPECT_EQ(response.checkpoint_retention(), "DELETE_ON_CANCELLATION");
  EXPECT_TRUE(response.retained_checkpoint().empty());
  EXPECT_TRUE(Eventually([&] { return CheckpointDirs().empty(); })) << CheckpointDirs().size() << " left";
  EXPECT_TRUE(fs::exists(fs::path(savepoint.location()) / "_metadata")) << "savepoints are the user's";
}

TEST_F(CoordinatorControlTest, DisposeDeletesSavepointsOnly) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob(1, /*interval_ms=*/100));
  v1::SavepointOperation started;
  ASSERT_TRUE(Trigger(kJobId, "", &started).ok());
  const v1::SavepointOperation op = WaitDone(started);
  ASSERT_EQ(op.status(), "COMPLETED");
  const v1::JobStatus job =
      WaitForJob([](const v1::JobStatus& j) { return j.checkpoints().latest_completed().id() > 0; });
  const std::string checkpoint = job.checkpoints().latest_completed().path();
  ASSERT_FALSE(checkpoint.empty());

  grpc::Status s = Dispose(checkpoint);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("not a savepoint"), std::string::npos) << s.error_message();
  s = Dispose("relative/savepoint");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  s = Dispose((checkpoints_root_ / "no-such-savepoint").string());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  fs::create_directories(checkpoints_root_ / "empty-dir");
  s = Dispose((checkpoints_root_ / "empty-dir").string());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_TRUE(fs::exists(checkpoints_root_ / "empty-dir"));

  v1::DisposeSavepointResponse disposed;
  ASSERT_TRUE(Dispose("file://" + op.location() + "/_metadata", &disposed).ok());
  EXPECT_EQ(disposed.path(), op.location());
  EXPECT_FALSE(fs::exists(op.location()));
  EXPECT_EQ(Dispose(op.location()).error_code(), grpc::StatusCode::NOT_FOUND);
}

// A job restored from a savepoint needs it until one of its own
// checkpoints completes: disposing it before is refused.
TEST_F(CoordinatorControlTest, DisposeRefusesTheSavepointTheJobStillNeeds) {
  const fs::path dir = checkpoints_root_ / "savepoint-012345-aaaaaaaaaaaa";
  v1::CheckpointMetadata m;
  m.set_job_id(kJobId);
  m.set_checkpoint_id(7);
  m.set_topic("events");
  m.set_max_parallelism(128);
  m.set_savepoint(true);
  v1::WorkerSnapshot* w = m.add_workers();
  w->mutable_key_groups()->set_first(0);
  w->mutable_key_groups()->set_last(127);
  w->set_state_path("kg-0-127");
  WriteMetadata(dir, m);
  savepoint_path_ = dir.string();
  EnableCheckpoints(600000, 20000, 0);
  StartServer();
  AddFakeWorker();
  ASSERT_EQ(GetJob().restored_from(), dir.string());
  const grpc::Status s = Dispose(dir.string());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_TRUE(fs::exists(dir / "_metadata"));
}

TEST_F(CoordinatorControlTest, ListsTheJobWorkersAndCheckpoints) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob(2, /*interval_ms=*/100));
  const std::string standby = MustRegister(7200);
  {
    grpc::ClientContext ctx;
    v1::ListJobsResponse jobs;
    ASSERT_TRUE(stub_->ListJobs(&ctx, v1::ListJobsRequest(), &jobs).ok());
    ASSERT_EQ(jobs.jobs_size(), 1);
    EXPECT_EQ(jobs.jobs(0).job_id(), kJobId);
    EXPECT_EQ(jobs.jobs(0).state(), "RUNNING");
    EXPECT_EQ(jobs.jobs(0).workers_size(), 3);
  }
  {
    grpc::ClientContext ctx;
    v1::ListWorkersResponse workers;
    ASSERT_TRUE(stub_->ListWorkers(&ctx, v1::ListWorkersRequest(), &workers).ok());
    ASSERT_EQ(workers.workers_size(), 3);
    EXPECT_EQ(workers.workers(0).assignment().key_groups(0).first(), 0);
    EXPECT_EQ(workers.workers(0).assignment().key_groups(0).last(), 63);
    EXPECT_EQ(workers.workers(1).assignment().key_groups(0).first(), 64);
    EXPECT_EQ(workers.workers(0).assignment().partitions_size(), 2);
    EXPECT_EQ(workers.workers(2).worker_id(), standby);
    EXPECT_TRUE(workers.workers(2).standby());
    EXPECT_GE(workers.workers(0).heartbeat_age_ms(), 0);
  }
  WaitForJob([](const v1::JobStatus& j) { return j.checkpoints().completed() >= 1; });
  {
    grpc::ClientContext ctx;
    v1::GetCheckpointsRequest request;
    request.set_job_id(kJobId);
    v1::CheckpointOverview overview;
    ASSERT_TRUE(stub_->GetCheckpoints(&ctx, request, &overview).ok());
    EXPECT_GE(overview.completed(), 1);
    ASSERT_GE(overview.history_size(), 1);
    EXPECT_EQ(overview.history(0).checkpoint_type(), "CHECKPOINT");
    EXPECT_FALSE(overview.history(0).is_savepoint());
  }
  {
    grpc::ClientContext ctx;
    v1::GetCheckpointsRequest request;
    request.set_job_id("0123");
    v1::CheckpointOverview overview;
    EXPECT_EQ(stub_->GetCheckpoints(&ctx, request, &overview).error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

}  // namespace
}  // namespace slipstream
