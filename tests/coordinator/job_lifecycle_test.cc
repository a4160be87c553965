// The job's state machine driven synchronously: events and a ManualClock,
// no gRPC, no threads, no sleeps. Each test asserts the state right at the
// boundary where it changes.
#include "coordinator/job/job_lifecycle.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <utility>
#include <vector>
#include <sstream>
#include <string>

#include "common/clock.h"
#include "coordinator/job/job_state.h"

namespace slipstream {
namespace {

class JobLifecycleTest : public ::testing::Test {
 protected:
  JobLifecycleTest() {
    options_.clock = &clock_;
    options_.job_id = "job-1";
    options_.topic = "events";
    options_.max_parallelism = 8;
    options_.min_workers = 2;
    options_.stabilization_ms = 1000;
    options_.heartbeat_timeout_ms = 3000;
    options_.restart.fixed_delay_ms = 500;
    options_.partition_count = [] { return 4; };
  }

  JobLifecycle& lifecycle() {
    if (!lifecycle_) {
      lifecycle_ = std::make_unique<JobLifecycle>(options_);
      lifecycle_->job().num_partitions = 4;
    }
    return *lifecycle_;
  }
  JobContext& job() { return lifecycle().job(); }
  int64_t now() const { return clock_.WallMs(); }

  std::string Register(int port) {
    v1::RegisterWorkerRequest request;
    request.set_host("127.0.0.1");
    request.set_data_port(port);
    const std::string id = job().workers.Register(request, now()).id;
    Event(JobEventKind::kWorkersChanged);
    return id;
  }
  // A heartbeat saying which attempt the worker runs (0: none).
  void Report(const std::string& id, int64_t attempt) {
    v1::HeartbeatRequest request;
    request.set_worker_id(id);
    request.mutable_counters()->set_attempt(attempt);
    ASSERT_TRUE(job().workers.RecordHeartbeat(request, now()).has_value()) << id;
    Event(JobEventKind::kWorkersChanged);
  }
  void Event(JobEventKind kind, std::string cause = "", bool failure = true, int64_t attempt = 0) {
    lifecycle().Dispatch(JobEvent{kind, now(), std::move(cause), failure, attempt, ""});
  }
  void AdvanceAndTick(int64_t ms) {
    clock_.AdvanceMs(ms);
    Event(JobEventKind::kTick);
  }
  // Two workers registered together and attempt 1 deployed over them.
  void StartRunning() {
    a_ = Register(7001);
    b_ = Register(7002);
    AdvanceAndTick(options_.stabilization_ms);
    ASSERT_EQ(lifecycle().state(), JobState::kRunning);
    Report(a_, 1);
    Report(b_, 1);
  }

  ManualClock clock_;
  CoordinatorOptions options_;
  std::unique_ptr<JobLifecycle> lifecycle_;
  std::string a_, b_;
};

TEST_F(JobLifecycleTest, CreatedDeploysOnceMinWorkersAreRegisteredAndStable) {
  a_ = Register(7001);
  AdvanceAndTick(5000);
  EXPECT_EQ(lifecycle().state(), JobState::kCreated) << "one of cluster.min-workers=2";
  b_ = Register(7002);
  AdvanceAndTick(999);
  EXPECT_EQ(lifecycle().state(), JobState::kCreated) << "the second joined 999 ms ago";
  AdvanceAndTick(1);
  EXPECT_EQ(lifecycle().state(), JobState::kRunning);
  EXPECT_EQ(job().attempt, 1);
  const WorkerEntry* first = job().workers.Find(a_);
  const WorkerEntry* second = job().workers.Find(b_);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(first->assignment.worker_index(), 0);
  EXPECT_EQ(second->assignment.worker_index(), 1);
  EXPECT_EQ(first->assignment.partitions_size() + second->assignment.partitions_size(), 4);
  EXPECT_EQ(first->assignment.key_groups(0).first(), 0);
  EXPECT_EQ(second->assignment.key_groups(0).last(), 7);
}

TEST_F(JobLifecycleTest, AnEndedAttemptRestartsAfterTheDelayOnceEveryWorkerIsIdle) {
  StartRunning();
  Event(JobEventKind::kAttemptEnded, "worker lost");
  EXPECT_EQ(lifecycle().state(), JobState::kRestarting);
  EXPECT_EQ(job().failures, 1);
  EXPECT_FALSE(job().workers.Find(a_)->in_attempt());
  Report(a_, 0);
  AdvanceAndTick(600);
  EXPECT_EQ(lifecycle().state(), JobState::kRestarting) << "worker b still runs attempt 1";
  Report(b_, 0);
  EXPECT_EQ(lifecycle().state(), JobState::kRunning) << "the delay had passed: deployed on b's report";
  EXPECT_EQ(job().attempt, 2);
  EXPECT_EQ(job().restarts, 1);
}

TEST_F(JobLifecycleTest, TheRestartDelayIsExact) {
  StartRunning();
  Event(JobEventKind::kAttemptEnded, "worker failed");
  Report(a_, 0);
  Report(b_, 0);
  AdvanceAndTick(499);
  EXPECT_EQ(lifecycle().state(), JobState::kRestarting);
  AdvanceAndTick(1);
  EXPECT_EQ(lifecycle().state(), JobState::kRunning);
}

TEST_F(JobLifecycleTest, AnAttemptThatIsOverAlreadyIsNotEndedAgain) {
  StartRunning();
  Event(JobEventKind::kAttemptEnded, "checkpoints of an old attempt gave up", true, /*attempt=*/7);
  EXPECT_EQ(lifecycle().state(), JobState::kRunning);
  EXPECT_EQ(job().failures, 0);
}

TEST_F(JobLifecycleTest, ALeavingWorkerEndsTheAttemptWithoutAFailure) {
  StartRunning();
  Event(JobEventKind::kAttemptEnded, "worker left", /*failure=*/false);
  EXPECT_EQ(lifecycle().state(), JobState::kRestarting);
  EXPECT_EQ(job().failures, 0);
  Report(a_, 0);
  Report(b_, 0);
  EXPECT_EQ(lifecycle().state(), JobState::kRunning) << "no restart delay without a failure";
  EXPECT_EQ(job().restarts, 0);
}

TEST_F(JobLifecycleTest, TheRestartStrategyGivingUpFailsTheJob) {
  options_.restart.type = RestartStrategySettings::Type::kNone;
  StartRunning();
  Event(JobEventKind::kAttemptEnded, "worker lost");
  EXPECT_EQ(lifecycle().state(), JobState::kFailed);
  EXPECT_NE(job().failure_cause.find("not restarted"), std::string::npos) << job().failure_cause;
  Report(a_, 0);
  AdvanceAndTick(60000);
  EXPECT_EQ(lifecycle().state(), JobState::kFailed) << "terminal";
  EXPECT_EQ(job().attempt, 1);
}

TEST_F(JobLifecycleTest, CancelEndsEveryTaskAndIsTerminal) {
  StartRunning();
  Event(JobEventKind::kCancel);
  EXPECT_EQ(lifecycle().state(), JobState::kCanceled);
  EXPECT_FALSE(job().workers.Find(a_)->in_attempt());
  EXPECT_FALSE(job().workers.Find(b_)->in_attempt());
  Report(a_, 0);
  Report(b_, 0);
  AdvanceAndTick(60000);
  EXPECT_EQ(lifecycle().state(), JobState::kCanceled);
}

TEST_F(JobLifecycleTest, ATopicThatShrankFailsTheJobInEveryLiveState) {
  a_ = Register(7001);
  Event(JobEventKind::kTopicChanged, "the input topic shrank");
  EXPECT_EQ(lifecycle().state(), JobState::kFailed) << "from CREATED";
  lifecycle_.reset();
  StartRunning();
  Event(JobEventKind::kTopicChanged, "the input topic vanished");
  EXPECT_EQ(lifecycle().state(), JobState::kFailed) << "from RUNNING";
  EXPECT_EQ(job().failure_cause, "the input topic vanished");
}

TEST_F(JobLifecycleTest, StoppingEndsFinishedWhenItsSavepointCompletes) {
  StartRunning();
  Event(JobEventKind::kStopRequested);
  EXPECT_EQ(lifecycle().state(), JobState::kStopping);
  lifecycle().Dispatch(JobEvent{JobEventKind::kStopCompleted, now(), "", true, /*attempt=*/2, "/sp/old"});
  EXPECT_EQ(lifecycle().state(), JobState::kStopping) << "a savepoint of another attempt";
  lifecycle().Dispatch(JobEvent{JobEventKind::kStopCompleted, now(), "", true, /*attempt=*/1, "/sp/1"});
  EXPECT_EQ(lifecycle().state(), JobState::kFinished);
  EXPECT_NE(job().end_reason.find("/sp/1"), std::string::npos) << job().end_reason;
}

TEST_F(JobLifecycleTest, AStopWithoutCheckpointingRunsOnAtTheNextTick) {
  StartRunning();
  Event(JobEventKind::kStopRequested);
  ASSERT_EQ(lifecycle().state(), JobState::kStopping);
  AdvanceAndTick(1);
  EXPECT_EQ(lifecycle().state(), JobState::kRunning) << "no savepoint can complete without checkpointing";
}

TEST_F(JobLifecycleTest, TopicGrowthWithoutCheckpointingRedeploysWithEveryPartition) {
  StartRunning();
  job().pending_partition_count = 6;
  AdvanceAndTick(1);
  EXPECT_EQ(lifecycle().state(), JobState::kRestarting);
  EXPECT_EQ(job().failures, 0);
  Report(a_, 0);
  Report(b_, 0);
  ASSERT_EQ(lifecycle().state(), JobState::kRunning);
  EXPECT_EQ(job().num_partitions, 6);
  const WorkerEntry* first = job().workers.Find(a_);
  const WorkerEntry* second = job().workers.Find(b_);
  EXPECT_EQ(first->assignment.earliest_partitions_size() + second->assignment.earliest_partitions_size(), 2);
}

// --- Bounded jobs (execution.runtime-mode=BATCH) ------------------------------

class BoundedJobLifecycleTest : public JobLifecycleTest {
 protected:
  BoundedJobLifecycleTest() {
    options_.bounded = true;
    options_.starting_timestamp_ms = 1'700'000'000'000;
    options_.on_bounded_finished = [this](int64_t attempt, int num_workers) {
      finished_calls_.push_back({attempt, num_workers});
      return finish_result_;
    };
  }
  // Decided by the coordinator service at the first registration.
  void DecideStoppingOffsets() { job().stopping_offsets = std::map<int, int64_t>{{0, 10}, {1, 0}, {2, 7}, {3, 3}}; }
  // The worker's heartbeat once its task of `attempt` finished: idle, and
  // finished_attempt says so.
  void ReportFinished(const std::string& id, int64_t attempt) {
    v1::HeartbeatRequest request;
    request.set_worker_id(id);
    request.mutable_counters()->set_attempt(0);
    request.set_finished_attempt(attempt);
    ASSERT_TRUE(job().workers.RecordHeartbeat(request, now()).has_value()) << id;
    Event(JobEventKind::kWorkersChanged);
  }

  std::vector<std::pair<int64_t, int>> finished_calls_;
  absl::Status finish_result_;
};

TEST_F(BoundedJobLifecycleTest, NothingIsDeployedBeforeTheStoppingOffsetsAreDecided) {
  a_ = Register(7001);
  b_ = Register(7002);
  AdvanceAndTick(options_.stabilization_ms);
  EXPECT_EQ(lifecycle().state(), JobState::kCreated);
  DecideStoppingOffsets();
  AdvanceAndTick(1);
  EXPECT_EQ(lifecycle().state(), JobState::kRunning);
}

TEST_F(BoundedJobLifecycleTest, EveryAssignmentCarriesItsPartitionsStoppingOffsets) {
  DecideStoppingOffsets();
  StartRunning();
  std::map<int, int64_t> shipped;
  for (const std::string& id : {a_, b_}) {
    const v1::Assignment& a = job().workers.Find(id)->assignment;
    EXPECT_TRUE(a.bounded());
    ASSERT_TRUE(a.has_starting_timestamp_ms());
    EXPECT_EQ(a.starting_timestamp_ms(), 1'700'000'000'000);
    EXPECT_EQ(a.stopping_offsets_size(), a.partitions_size());
    for (int p : a.partitions()) shipped[p] = a.stopping_offsets().at(p);
  }
  EXPECT_EQ(shipped, (std::map<int, int64_t>{{0, 10}, {1, 0}, {2, 7}, {3, 3}}));
}

TEST_F(BoundedJobLifecycleTest, FinishedOnceEveryWorkerFinishedItsInput) {
  DecideStoppingOffsets();
  StartRunning();
  ReportFinished(a_, 1);
  EXPECT_EQ(lifecycle().state(), JobState::kRunning) << "worker b still reads";
  AdvanceAndTick(options_.heartbeat_timeout_ms / 2);
  EXPECT_EQ(lifecycle().state(), JobState::kRunning);
  EXPECT_TRUE(finished_calls_.empty());
  ReportFinished(b_, 1);
  EXPECT_EQ(lifecycle().state(), JobState::kFinished);
  ASSERT_EQ(finished_calls_.size(), 1u);
  EXPECT_EQ(finished_calls_[0], (std::pair<int64_t, int>{1, 2}));
  EXPECT_NE(job().end_reason.find("bounded input"), std::string::npos) << job().end_reason;
  EXPECT_EQ(job().workers.size(), 2) << "workers stay registered, idle";
  EXPECT_FALSE(job().workers.Find(a_)->in_attempt());
}

TEST_F(BoundedJobLifecycleTest, AFinishReportOfAnOlderAttemptDoesNotCount) {
  DecideStoppingOffsets();
  StartRunning();
  Event(JobEventKind::kAttemptEnded, "worker b failed");
  ASSERT_EQ(lifecycle().state(), JobState::kRestarting);
  Report(a_, 0);
  Report(b_, 0);
  AdvanceAndTick(options_.restart.fixed_delay_ms);
  ASSERT_EQ(lifecycle().state(), JobState::kRunning);
  ASSERT_EQ(job().attempt, 2);
  EXPECT_FALSE(job().workers.Find(a_)->assignment.has_restore()) << "BATCH restarts from the start";
  ReportFinished(a_, 1);
  ReportFinished(b_, 1);
  EXPECT_EQ(lifecycle().state(), JobState::kRunning);
  ReportFinished(a_, 2);
  ReportFinished(b_, 2);
  EXPECT_EQ(lifecycle().state(), JobState::kFinished);
}

TEST_F(BoundedJobLifecycleTest, AFailingFinishHookFailsTheAttemptInstead) {
  DecideStoppingOffsets();
  finish_result_ = absl::UnavailableError("cannot commit the output");
  StartRunning();
  ReportFinished(a_, 1);
  ReportFinished(b_, 1);
  EXPECT_EQ(lifecycle().state(), JobState::kRestarting);
  EXPECT_EQ(job().failures, 1);
  EXPECT_NE(job().failure_cause.find("cannot commit the output"), std::string::npos) << job().failure_cause;
}

TEST_F(JobLifecycleTest, AStreamingJobIgnoresFinishReports) {
  StartRunning();
  v1::HeartbeatRequest request;
  request.set_worker_id(a_);
  request.set_finished_attempt(1);
  ASSERT_TRUE(job().workers.RecordHeartbeat(request, now()).has_value());
  request.set_worker_id(b_);
  ASSERT_TRUE(job().workers.RecordHeartbeat(request, now()).has_value());
  AdvanceAndTick(1);
  EXPECT_EQ(lifecycle().state(), JobState::kRunning);
}

// docs/architecture.md draws the job's states; the drawing must be the code's.
TEST(JobStateDiagram, TheArchitectureDocumentHasTheCodesDiagram) {
  std::ifstream in(std::string(SLIPSTREAM_SOURCE_DIR) + "/docs/architecture.md");
  ASSERT_TRUE(in) << "docs/architecture.md";
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const std::string marker = "<!-- job states: JobStateDiagram() in coordinator/job/job_state.cc -->\n```mermaid\n";
  const size_t start = doc.find(marker);
  ASSERT_NE(start, std::string::npos) << "marker not found: " << marker;
  const size_t body = start + marker.size();
  const size_t end = doc.find("```", body);
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(doc.substr(body, end - body), JobStateDiagram()) << "paste this into docs/architecture.md:\n"
                                                             << JobStateDiagram();
}

TEST(JobStateDiagram, EveryStateIsReachableAndTerminalStatesAreFinal) {
  for (const JobTransition& t : JobTransitions()) {
    EXPECT_FALSE(IsTerminal(t.from)) << JobStateName(t.from) << " is terminal but has a way out";
    EXPECT_NE(t.to, JobState::kCreated) << "nothing goes back to CREATED";
  }
  for (JobState s : {JobState::kRunning, JobState::kRescaling, JobState::kStopping, JobState::kRestarting,
                     JobState::kFinished, JobState::kCanceled, JobState::kFailed}) {
    bool reached = false;
    for (const JobTransition& t : JobTransitions()) reached |= t.to == s;
    EXPECT_TRUE(reached) << JobStateName(s);
  }
  EXPECT_EQ(std::string(FlinkJobStatus(JobState::kRescaling)), "RUNNING");
  EXPECT_EQ(std::string(FlinkJobStatus(JobState::kStopping)), "RUNNING");
  EXPECT_EQ(ToProto(JobState::kRescaling), v1::JOB_STATE_RESCALING);
}

}  // namespace
}  // namespace slipstream
