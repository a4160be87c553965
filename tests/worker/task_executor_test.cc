// TaskExecutor against a fake coordinator and fake tasks: registration,
// deployment, cancellation, the self-cancel after heartbeat.timeout, leaving
// and failure reports. Heartbeats are sent by the test (no heartbeat
// thread), time is a ManualClock.
#include "worker/task_executor.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace slipstream {
namespace {

// Polls `condition` (set by the executor's threads) for up to 20 s.
bool Eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

v1::Assignment AssignmentOf(int64_t attempt, std::string checkpoint_path = "") {
  v1::Assignment assignment;
  assignment.set_job_id("job");
  assignment.set_attempt(attempt);
  assignment.set_topic("events");
  assignment.mutable_restore()->set_checkpoint_path(std::move(checkpoint_path));
  return assignment;
}

class FakeCoordinator final : public CoordinatorClient {
 public:
  explicit FakeCoordinator(ManualClock& clock) : clock_(clock) {}

  const std::string& address() const override { return address_; }

  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(const v1::RegisterWorkerRequest& request) override {
    std::lock_guard lock(mu);
    ++registrations;
    registered_host = request.host();
    clock_.AdvanceMs(advance_per_registration_ms);
    if (!register_error.ok()) return register_error;
    if (unreachable_registrations > 0) {
      --unreachable_registrations;
      return absl::UnavailableError("connection refused");
    }
    v1::RegisterWorkerResponse response;
    response.set_worker_id(absl::StrCat("worker-", registrations));
    *response.mutable_assignment() = register_assignment;
    return response;
  }

  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override {
    std::lock_guard lock(mu);
    heartbeats.push_back(request);
    if (!heartbeat_error.ok()) return heartbeat_error;
    return heartbeat_answer;
  }

  absl::Status DeregisterWorker(const v1::DeregisterWorkerRequest& request) override {
    std::lock_guard lock(mu);
    deregistrations.push_back(request);
    return absl::OkStatus();
  }

  absl::Status AcknowledgeCheckpoint(const v1::AcknowledgeCheckpointRequest&) override { return absl::OkStatus(); }
  void DeclineCheckpoint(const v1::DeclineCheckpointRequest&) override {}

  // Answers every heartbeat with `assignment` (attempt 0: none).
  void Assign(const v1::Assignment& assignment) {
    std::lock_guard lock(mu);
    heartbeat_answer.set_known(true);
    if (assignment.attempt() == 0) {
      heartbeat_answer.clear_assignment();
    } else {
      *heartbeat_answer.mutable_assignment() = assignment;
    }
  }
  int Registrations() const {
    std::lock_guard lock(mu);
    return registrations;
  }
  v1::HeartbeatRequest LastHeartbeat() const {
    std::lock_guard lock(mu);
    return heartbeats.empty() ? v1::HeartbeatRequest() : heartbeats.back();
  }
  std::vector<v1::DeregisterWorkerRequest> Deregistrations() const {
    std::lock_guard lock(mu);
    return deregistrations;
  }

  mutable std::mutex mu;
  int unreachable_registrations = 0;  // answered UNAVAILABLE before the first success
  absl::Status register_error;        // answers every registration when set
  int64_t advance_per_registration_ms = 0;
  v1::Assignment register_assignment;
  absl::Status heartbeat_error;
  v1::HeartbeatResponse heartbeat_answer;
  int registrations = 0;
  std::string registered_host;
  std::vector<v1::HeartbeatRequest> heartbeats;
  std::vector<v1::DeregisterWorkerRequest> deregistrations;

 private:
  ManualClock& clock_;
  const std::string address_ = "coordinator:6123";
};

// What the test sees of one deployed fake task.
struct FakeTaskProbe {
  int64_t attempt = 0;
  std::string worker_id;
  std::atomic<bool> running{false};
  std::atomic<bool> cancelled{false};
  std::atomic<bool> finished{false};
  std::atomic<bool> closed{false};
  std::atomic<bool> destroyed{false};
  std::mutex mu;
  std::optional<absl::Status> fail_with;  // Run() returns this at once
  std::atomic<bool> finish_input{false};  // a bounded task: Run() returns OK, its input finished
};

class FakeTask final : public DeployedTask {
 public:
  explicit FakeTask(std::shared_ptr<FakeTaskProbe> probe) : probe_(std::move(probe)) {}
  ~FakeTask() override { probe_->destroyed = true; }

  absl::Status Run(const std::atomic<bool>& stop) override {
    probe_->running = true;
    absl::Status result;
    while (!stop.load() && !probe_->cancelled.load()) {
      if (probe_->finish_input.load()) {
        input_finished_ = true;
        break;
      }
      {
        std::lock_guard lock(probe_->mu);
        if (probe_->fail_with) {
          result = *probe_->fail_with;
          break;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    probe_->running = false;
    probe_->finished = true;
    return result;
  }
  void Cancel() override { probe_->cancelled = true; }
  TaskCounters counters() const override {
    TaskCounters counters;
    counters.records_in = 42;
    return counters;
  }
  void Close() override { probe_->closed = true; }
  bool finished() const override { return input_finished_; }

 private:
  std::shared_ptr<FakeTaskProbe> probe_;
  bool input_finished_ = false;
};

class FakeTaskFactory final : public TaskFactory {
 public:
  absl::StatusOr<std::unique_ptr<DeployedTask>> Deploy(const v1::Assignment& assignment, const std::string& worker_id,
                                                       const std::atomic<bool>& stop,
                                                       const std::function<void()>& on_state_restored) override {
    std::unique_lock lock(mu_);
    ++deploying_;
    cv_.wait(lock, [&] { return !hold_ || stop.load(); });
    if (!assignment.restore().checkpoint_path().empty()) on_state_restored();
    if (!deploy_error_.ok()) return deploy_error_;
    auto probe = std::make_shared<FakeTaskProbe>();
    probe->attempt = assignment.attempt();
    probe->worker_id = worker_id;
    tasks_.push_back(probe);
    return std::make_unique<FakeTask>(probe);
  }

  // Deployments wait until Release() (or the attempt is cancelled).
  void Hold() {
    std::lock_guard lock(mu_);
    hold_ = true;
  }
  void Release() {
    std::lock_guard lock(mu_);
    hold_ = false;
    cv_.notify_all();
  }
  void FailDeployments(absl::Status error) {
    std::lock_guard lock(mu_);
    deploy_error_ = std::move(error);
  }
  int Deploying() const {
    std::lock_guard lock(mu_);
    return deploying_;
  }
  size_t Deployed() const {
    std::lock_guard lock(mu_);
    return tasks_.size();
  }
  std::shared_ptr<FakeTaskProbe> Task(size_t i) const {
    std::lock_guard lock(mu_);
    return tasks_.at(i);
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false;
  int deploying_ = 0;
  absl::Status deploy_error_;
  std::vector<std::shared_ptr<FakeTaskProbe>> tasks_;
};

class TaskExecutorTest : public ::testing::Test {
 protected:
  TaskExecutorTest() : coordinator_(clock_) { coordinator_.Assign(v1::Assignment()); }
  ~TaskExecutorTest() override { (void)Leave(); }  // a test that failed early still stops it

  void Start() {
    TaskExecutorOptions options;
    options.registration.set_host("10.0.0.7");
    options.registration.set_data_port(6124);
    options.heartbeat_interval_ms = 1000;
    options.heartbeat_timeout_ms = 5000;
    options.register_retry_ms = 1;
    options.heartbeat_thread = false;
    options.clock = &clock_;
    executor_ = std::make_unique<TaskExecutor>(std::move(options), coordinator_, tasks_, leave_);
    run_ = std::async(std::launch::async, [this] { return executor_->Run(); });
  }
  // The registration's answer and every heartbeat's carry `assignment`.
  void AssignFromTheStart(const v1::Assignment& assignment) {
    coordinator_.register_assignment = assignment;
    coordinator_.Assign(assignment);
  }
  // The SIGTERM path; returns what Run() returned.
  absl::Status Leave() {
    if (!run_.valid()) return absl::OkStatus();
    leave_ = true;
    return run_.get();
  }
  bool Registered(int times = 1) {
    return Eventually([&] { return !executor_->MetricsInput().worker_id.empty() && coordinator_.Registrations() >= times; });
  }
  // The executor's own report, sent now.
  v1::HeartbeatRequest Heartbeat() {
    executor_->Heartbeat();
    return coordinator_.LastHeartbeat();
  }
  bool Idle() {
    return Eventually([&] { return executor_->MetricsInput().attempt == 0; });
  }

  ManualClock clock_;
  FakeCoordinator coordinator_;
  FakeTaskFactory tasks_;
  std::atomic<bool> leave_{false};
  std::unique_ptr<TaskExecutor> executor_;
  std::future<absl::Status> run_;
};

TEST_F(TaskExecutorTest, RetriesRegistrationUntilTheCoordinatorAnswers) {
  coordinator_.unreachable_registrations = 3;
  Start();
  ASSERT_TRUE(Registered(4));
  EXPECT_EQ(coordinator_.registered_host, "10.0.0.7");
  EXPECT_EQ(executor_->MetricsInput().worker_id, "worker-4");
  const v1::HeartbeatRequest heartbeat = Heartbeat();
  EXPECT_EQ(heartbeat.worker_id(), "worker-4");
  EXPECT_EQ(heartbeat.counters().attempt(), 0) << "idle";
  EXPECT_TRUE(Leave().ok());
  EXPECT_EQ(tasks_.Deployed(), 0u);
}

TEST_F(TaskExecutorTest, RefusedRegistrationIsFatal) {
  coordinator_.register_error = absl::FailedPreconditionError("job FINISHED");
  Start();
  const absl::Status status = run_.get();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "the coordinator at coordinator:6123 refused this worker: job FINISHED");
  EXPECT_TRUE(coordinator_.Deregistrations().empty()) << "never registered: nothing to leave";
}

TEST_F(TaskExecutorTest, RefusedTokenIsFatal) {
  coordinator_.register_error = absl::UnauthenticatedError("bad token");
  Start();
  const absl::Status status = run_.get();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(status.message(),
            "security.internal-token: the coordinator at coordinator:6123 refused this worker: bad token");
}

TEST_F(TaskExecutorTest, GivesUpRegisteringAfterFiveMinutes) {
  coordinator_.unreachable_registrations = 1000;
  coordinator_.advance_per_registration_ms = 60'000;
  Start();
  const absl::Status status = run_.get();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(),
            "jobmanager.rpc.address: no coordinator reachable at coordinator:6123 after 5 min: connection refused");
  EXPECT_EQ(coordinator_.Registrations(), 6) << "0..5 min: six tries a minute apart; the sixth is past the deadline";
}

TEST_F(TaskExecutorTest, AssignmentDeploysTheTask) {
  AssignFromTheStart(AssignmentOf(1));
  Start();
  ASSERT_TRUE(Eventually([&] { return tasks_.Deployed() == 1 && tasks_.Task(0)->running; }));
  EXPECT_EQ(tasks_.Task(0)->attempt, 1);
  EXPECT_EQ(tasks_.Task(0)->worker_id, "worker-1");
  const v1::HeartbeatRequest heartbeat = Heartbeat();
  EXPECT_EQ(heartbeat.counters().attempt(), 1);
  EXPECT_EQ(heartbeat.counters().records_in(), 42) << "the running task's counters";
  EXPECT_EQ(executor_->MetricsInput().attempt, 1);
  ASSERT_TRUE(executor_->MetricsInput().task.has_value());
  EXPECT_EQ(executor_->MetricsInput().restores, 0);
  EXPECT_FALSE(tasks_.Task(0)->cancelled) << "the coordinator still assigns attempt 1";
}

TEST_F(TaskExecutorTest, AssignmentFromAHeartbeatDeploysTheTask) {
  Start();
  ASSERT_TRUE(Registered());
  coordinator_.Assign(AssignmentOf(3));
  Heartbeat();
  ASSERT_TRUE(Eventually([&] { return tasks_.Deployed() == 1 && tasks_.Task(0)->running; }));
  EXPECT_EQ(tasks_.Task(0)->attempt, 3);
}

TEST_F(TaskExecutorTest, ReportsTheAttemptWhileRestoringAndCountsRestores) {
  tasks_.Hold();
  AssignFromTheStart(AssignmentOf(2, "/checkpoints/job/chk-4"));
  Start();
  ASSERT_TRUE(Eventually([&] { return tasks_.Deploying() == 1; }));
  EXPECT_EQ(Heartbeat().counters().attempt(), 2) << "a restoring worker is never taken for an idle one";
  tasks_.Release();
  ASSERT_TRUE(Eventually([&] { return tasks_.Deployed() == 1 && tasks_.Task(0)->running; }));
  EXPECT_EQ(executor_->MetricsInput().restores, 1);
}

TEST_F(TaskExecutorTest, ClearedAssignmentCancelsTheTask) {
  AssignFromTheStart(AssignmentOf(1));
  Start();
  ASSERT_TRUE(Eventually([&] { return tasks_.Deployed() == 1 && tasks_.Task(0)->running; }));
  coordinator_.Assign(v1::Assignment());  // the attempt ended elsewhere
  Heartbeat();
  const std::shared_ptr<FakeTaskProbe> task = tasks_.Task(0);
  ASSERT_TRUE(Eventually([&] { return task->destroyed.load(); }));
  EXPECT_TRUE(task->cancelled);
  EXPECT_TRUE(task->closed);
  ASSERT_TRUE(Idle());
  const v1::HeartbeatRequest heartbeat = Heartbeat();
  EXPECT_EQ(heartbeat.counters().attempt(), 0) << "idle, ready for the next attempt";
  EXPECT_EQ(heartbeat.failure_cause(), "") << "a cancelled task is no failure";
  EXPECT_EQ(tasks_.Deployed(), 1u) << "the same attempt is not deployed again";
}

TEST_F(TaskExecutorTest, ChangedAssignmentRedeploys) {
  AssignFromTheStart(AssignmentOf(1));
  Start();
  ASSERT_TRUE(Eventually([&] { return tasks_.Deployed() == 1 && tasks_.Task(0)->running; }));
  coordinator_.Assign(AssignmentOf(2));
  Heartbeat();
  ASSERT_TRUE(Eventually([&] { return tasks_.Deployed() == 2 && tasks_.Task(1)->running; }));
  EXPECT_TRUE(tasks_.Task(0)->cancelled);
  EXPECT_TRUE(tasks_.Task(0)->destroyed);
  EXPECT_EQ(tasks_.Task(1)->attempt, 2);
  EXPECT_EQ(Heartbeat().counters().attempt(), 2);
}

TEST_F(TaskExecutorTest, CancelTaskOnlyAsksTheCoordinatorAtOnce) {
  AssignFromTheStart(AssignmentOf(1));
  Start();
  ASSERT_TRUE(Eventually([&] { return tasks_.Deployed() == 1 && tasks_.Task(0)->running; }));
  v1::CancelTaskRequest cancel;
  cancel.set_attempt(1);
  executor_->OnCancelTask(cancel);
  Heartbeat();
  EXPECT_FALSE(tasks_.Task(0)->cancelled) << "the coordinator still assigns attempt 1: it runs on";
}

TEST_F(TaskExecutorTest, SilentCoordinatorCancelsTheTaskAfterHeartbeatTimeoutThenRegistersAgain) {
  AssignFromTheStart(AssignmentOf(1));
  Start();
  ASSERT_TRUE(Eventually([&] { return tasks_.Deployed() == 1 && tasks_.Task(0)->running; }));
  Heartbeat();  // answered: the silence starts here
  {
    std::lock_guard lock(coordinator_.mu);
    coordinator_.heartbeat_error = absl::UnavailableError("connection refused");
    coordinator_.register_error = absl::UnavailableError("connection refused");
  }
  clock_.AdvanceMs(4999);
  Heartbeat();
  EXPECT_FALSE(tasks_.Task(0)->cancelled) << "1 ms short of heartbeat.timeout";
  clock_.AdvanceMs(1);
  Heartbeat();
  EXPECT_TRUE(tasks_.Task(0)->cancelled) << "heartbeat.timeout without an answer";
  ASSERT_TRUE(Eventually([&] { return tasks_.Task(0)->destroyed.load(); }));
  ASSERT_TRUE(Eventually([&] { return coordinator_.Registrations() >= 2; })) << "registers again, retrying";
  coordinator_.Assign(v1::Assignment());  // it has redeployed attempt 1 elsewhere
  {
    std::lock_guard lock(coordinator_.mu);
    coordinator_.heartbeat_error = absl::OkStatus();
    coordinator_.register_error = absl::OkStatus();
    coordinator_.register_assignment = v1::Assignment();
  }
  ASSERT_TRUE(Eventually([&] { return executor_->MetricsInput().worker_id != "worker-1" &&
                                      !executor_->MetricsInput().worker_id.empty(); }));
  EXPECT_EQ(Heartbeat().worker_id(), executor_->MetricsInput().worker_id) << "heartbeats under its new id";
  EXPECT_EQ(tasks_.Deployed(), 1u);
}

TEST_F(TaskExecutorTest, UnknownToTheCoordinatorCancelsAndRegistersAgain) {
  AssignFromTheStart(AssignmentOf(1));
  Start();
  ASSERT_TRUE(Eventually([&] { return tasks_.Deployed() == 1 && tasks_.Task(0)->running; }));
  {
    std::lock_guard lock(coordinator_.mu);
    coordinator_.heartbeat_answer.set_known(false);
    coordinator_.register_assignment = v1::Assignment();
  }
  Heartbeat();
  EXPECT_TRUE(tasks_.Task(0)->cancelled);
  ASSERT_TRUE(Registered(2));
  ASSERT_TRUE(Eventually([&] { return executor_->MetricsInput().worker_id == "worker-2"; }));
}

TEST_F(TaskExecutorTest, LeaveDeregistersNamingTheRunningAttemptThenStops) {
  AssignFromTheStart(AssignmentOf(1));
  Start();
  ASSERT_TRUE(Eventually([&] { return tasks_.Deployed() == 1 && tasks_.Task(0)->running; }));
  EXPECT_TRUE(Leave().ok());
  const std::vector<v1::DeregisterWorkerRequest> goodbyes = coordinator_.Deregistrations();
  ASSERT_EQ(goodbyes.size(), 2u);
  EXPECT_EQ(goodbyes[0].worker_id(), "worker-1");
  EXPECT_EQ(goodbyes[0].counters().attempt(), 1) << "first while the task still runs";
  EXPECT_EQ(goodbyes[0].counters().records_in(), 42);
  EXPECT_EQ(goodbyes[0].failure_cause(), "");
  EXPECT_EQ(goodbyes[1].counters().attempt(), 0) << "then once it has stopped";
  EXPECT_EQ(goodbyes[1].counters().records_in(), 42) << "with the last task's counters";
  EXPECT_TRUE(tasks_.Task(0)->cancelled);
  EXPECT_TRUE(tasks_.Task(0)->destroyed);
}

TEST_F(TaskExecutorTest, LeaveWhileIdleDeregistersOnce) {
  Start();
  ASSERT_TRUE(Registered());
  EXPECT_TRUE(Leave().ok());
  const std::vector<v1::DeregisterWorkerRequest> goodbyes = coordinator_.Deregistrations();
  ASSERT_EQ(goodbyes.size(), 1u);
  EXPECT_EQ(goodbyes[0].counters().attempt(), 0);
}

TEST_F(TaskExecutorTest, FailedTaskIsReportedWithItsCause) {
  AssignFromTheStart(AssignmentOf(1));
  Start();
  ASSERT_TRUE(Eventually([&] { return tasks_.Deployed() == 1 && tasks_.Task(0)->running; }));
  {
    std::lock_guard lock(tasks_.Task(0)->mu);
    tasks_.Task(0)->fail_with = absl::InternalError("redis: connection lost");
  }
  ASSERT_TRUE(Eventually([&] { return tasks_.Task(0)->destroyed.load(); }));
  ASSERT_TRUE(Idle());
  const v1::HeartbeatRequest report = Heartbeat();
  EXPECT_EQ(report.counters().attempt(), 1) << "names the failed attempt";
  EXPECT_EQ(report.failure_cause(), "redis: connection lost");
  coordinator_.Assign(v1::Assignment());  // the coordinator fails the attempt
  const v1::HeartbeatRequest after = Heartbeat();
  EXPECT_EQ(after.counters().attempt(), 0) << "reported once: idle from then on";
  EXPECT_EQ(after.failure_cause(), "");
  EXPECT_EQ(tasks_.Deployed(), 1u) << "a failed attempt is not deployed again";
}

TEST_F(TaskExecutorTest, AFinishedBoundedTaskIsReportedWhileIdleAndNotDeployedAgain) {
  v1::Assignment bounded = AssignmentOf(1);
  bounded.set_bounded(true);
  AssignFromTheStart(bounded);
  Start();
  ASSERT_TRUE(Eventually([&] { return tasks_.Deployed() == 1 && tasks_.Task(0)->running; }));
  EXPECT_EQ(Heartbeat().finished_attempt(), 0) << "still reading";
  tasks_.Task(0)->finish_input = true;
  ASSERT_TRUE(Eventually([&] { return tasks_.Task(0)->destroyed.load(); }));
  ASSERT_TRUE(Idle());
  // Until the coordinator ends the job, every heartbeat says so (a lost
  // answer loses nothing); the worker stays registered and idle.
  for (int i = 0; i < 2; ++i) {
    const v1::HeartbeatRequest report = Heartbeat();
    EXPECT_EQ(report.counters().attempt(), 0);
    EXPECT_EQ(report.finished_attempt(), 1);
    EXPECT_EQ(report.failure_cause(), "");
  }
  coordinator_.Assign(v1::Assignment());  // FINISHED: no assignment any more
  EXPECT_EQ(Heartbeat().finished_attempt(), 1);
  EXPECT_EQ(tasks_.Deployed(), 1u) << "a finished attempt is not deployed again";
  EXPECT_EQ(coordinator_.Registrations(), 1);
}

TEST_F(TaskExecutorTest, FailedDeploymentIsReportedWithItsCause) {
  tasks_.FailDeployments(absl::UnavailableError("kafka.dlq.topic: unknown topic"));
  AssignFromTheStart(AssignmentOf(1));
  Start();
  ASSERT_TRUE(Eventually([&] { return tasks_.Deploying() == 1; }));
  ASSERT_TRUE(Eventually([&] { return !Heartbeat().failure_cause().empty(); }));
  const v1::HeartbeatRequest report = coordinator_.LastHeartbeat();
  EXPECT_EQ(report.counters().attempt(), 1);
  EXPECT_EQ(report.failure_cause(), "kafka.dlq.topic: unknown topic");
}

}  // namespace
}  // namespace slipstream
