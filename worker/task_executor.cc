#include "worker/task_executor.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "spdlog/spdlog.h"
#include "worker/metrics/worker_counters.h"

namespace slipstream {
namespace {

// How long registration keeps trying an unreachable coordinator.
constexpr int64_t kRegisterGiveUpMs = 5 * 60 * 1000;
// How often the lifecycle looks for a new assignment without being woken.
constexpr std::chrono::milliseconds kIdleWait(200);
// How often the leave watcher looks at the leave flag (a signal handler sets it).
constexpr std::chrono::milliseconds kLeavePoll(20);

// The lifecycle, one handler each (TaskExecutor::Impl::On*).
enum class Lifecycle {
  kRegistering,  // at start, and when the coordinator forgot this worker
  kIdle,         // registered: waiting for an assignment of a new attempt
  kRunning,      // deploying and running the task of `deploying`
  kStopped,      // a fatal error
};

}  // namespace

struct TaskExecutor::Impl {
  Impl(TaskExecutorOptions options_in, CoordinatorClient& coordinator_in, TaskFactory& tasks_in,
       const std::atomic<bool>& leave_in)
      : options(std::move(options_in)),
        clock(*options.clock),
        coordinator(coordinator_in),
        tasks(tasks_in),
        leave(leave_in),
        last_answered_ms(clock.SteadyMs()) {}

  const TaskExecutorOptions options;
  const Clock& clock;
  CoordinatorClient& coordinator;
  TaskFactory& tasks;
  const std::atomic<bool>& leave;

  // What the heartbeats and the lifecycle share.
  mutable std::mutex mu;
  std::condition_variable cv;
  std::string worker_id;          // "" until registered
  bool need_register = true;      // at start, and when the coordinator forgot us
  v1::Assignment assignment;      // latest from the coordinator (attempt 0: none)
  int64_t running_attempt = 0;    // attempt whose task runs or restores (0: idle)
  DeployedTask* task = nullptr;   // the running task (for counters)
  int64_t failed_attempt = 0;     // a failure to report, with its cause
  // A bounded attempt whose task finished its input: reported in every
  // heartbeat while idle after it (HeartbeatRequest.finished_attempt).
  int64_t finished_attempt = 0;
  std::string failure_cause;
  std::atomic<bool> task_stop{false};  // stops the running task
  bool stopping = false;          // Run() is ending
  int64_t restores = 0;           // tasks started from a checkpoint or savepoint
  bool heartbeat_now = false;     // CancelTask arrived, or the task ended: ask the coordinator at once
  int64_t cancelled_attempt = 0;  // the attempt whose cancellation was logged
  std::atomic<bool> deregistered{false};  // leaving on purpose (SIGTERM): see Deregister

  // Heartbeats' own (one heartbeat at a time).
  int64_t heartbeat_failures = 0;
  int64_t last_answered_ms;

  // The lifecycle's own.
  int64_t last_attempt = 0;  // the attempt last deployed since registering
  v1::Assignment deploying;
  std::string deploying_worker_id;
  TaskCounters last_counters;  // of the last task, for the goodbye
  absl::Status fatal;

  Lifecycle OnRegistering();
  Lifecycle OnIdle();
  Lifecycle OnRunning();
  [[nodiscard]] absl::Status Register(v1::RegisterWorkerResponse* registration);
  [[nodiscard]] absl::Status DeployAndRun(bool* failure_recorded);

  void HeartbeatLoop();
  void SendHeartbeat(std::unique_lock<std::mutex>& lock);
  void OnHeartbeatFailed(const absl::Status& status);
  void OnHeartbeatAnswered(const v1::HeartbeatResponse& response, int64_t reporting_failure);
  void CancelTaskLocked();

  void WatchLeave();
  void Deregister(const TaskCounters& counters, int64_t attempt);
};

// --- Lifecycle ---------------------------------------------------------------

// Registers (the coordinator may start after us, or have restarted), retrying.
absl::Status TaskExecutor::Impl::Register(v1::RegisterWorkerResponse* registration) {
  const int64_t deadline_ms = clock.SteadyMs() + kRegisterGiveUpMs;
  const std::string& address = coordinator.address();
  for (int attempt = 0;; ++attempt) {
    if (leave.load()) return absl::CancelledError("stopping");
    absl::StatusOr<v1::RegisterWorkerResponse> response = coordinator.RegisterWorker(options.registration);
    if (response.ok()) {
      *registration = *std::move(response);
      return absl::OkStatus();
    }
    const absl::Status& status = response.status();
    if (absl::IsUnauthenticated(status)) {
      return absl::UnauthenticatedError(absl::StrCat("security.internal-token: the coordinator at ", address,
                                                     " refused this worker: ", status.message()));
    }
    if (absl::IsFailedPrecondition(status) || absl::IsInvalidArgument(status)) {
      return absl::FailedPreconditionError(
          absl::StrCat("the coordinator at ", address, " refused this worker: ", status.message()));
    }
    if (clock.SteadyMs() > deadline_ms) {
      return absl::UnavailableError(absl::StrCat("jobmanager.rpc.address: no coordinator reachable at ", address,
                                                 " after 5 min: ", status.message()));
    }
    if (attempt % 10 == 0) spdlog::info("waiting for the coordinator at {}: {}", address, status.message());
    std::this_thread::sleep_for(std::chrono::milliseconds(options.register_retry_ms));
  }
}

Lifecycle TaskExecutor::Impl::OnRegistering() {
  v1::RegisterWorkerResponse registration;
  if (absl::Status s = Register(&registration); !s.ok()) {
    if (!leave.load()) fatal = s;
    return Lifecycle::kStopped;
  }
  std::lock_guard lock(mu);
  worker_id = registration.worker_id();
  need_register = false;
  last_attempt = 0;  // attempt numbers restart with a restarted coordinator
  assignment = registration.assignment();
  spdlog::info("registered as {} (data endpoint {}:{})", worker_id, options.registration.host(),
               options.registration.data_port());
  return Lifecycle::kIdle;
}

// Waits for an assignment of a new attempt (a standby, or a worker whose
// attempt failed, waits here).
Lifecycle TaskExecutor::Impl::OnIdle() {
  std::unique_lock lock(mu);
  cv.wait_for(lock, kIdleWait, [&] {
    return leave.load() || need_register || (assignment.attempt() != 0 && assignment.attempt() != last_attempt);
  });
  if (need_register) return Lifecycle::kRegistering;
  if (leave.load() || assignment.attempt() == 0 || assignment.attempt() == last_attempt) return Lifecycle::kIdle;
  deploying = assignment;
  deploying_worker_id = worker_id;
  finished_attempt = 0;
  task_stop.store(false);
  // Reported from now on, while the state is restored too: a restoring
  // worker is never taken for an idle one.
  running_attempt = deploying.attempt();
  return Lifecycle::kRunning;
}

Lifecycle TaskExecutor::Impl::OnRunning() {
  last_attempt = deploying.attempt();
  bool failure_recorded = false;  // the task failed and its report is queued
  const absl::Status run_status = DeployAndRun(&failure_recorded);
  {
    std::lock_guard lock(mu);
    if (running_attempt != 0) {  // ended before its task ran
      running_attempt = 0;
      heartbeat_now = true;
      cv.notify_all();
    }
  }
  if (!run_status.ok() && !leave.load()) {
    spdlog::error("attempt {} failed: {}", deploying.attempt(), std::string(run_status.message()));
    std::lock_guard lock(mu);
    if (!failure_recorded) {  // failed before its task ran
      failed_attempt = deploying.attempt();
      failure_cause = std::string(run_status.message());
      cv.notify_all();
    }
  }
  return Lifecycle::kIdle;
}

// Restores and runs the task of `deploying` until it stops, is cancelled or
// fails (returned).
absl::Status TaskExecutor::Impl::DeployAndRun(bool* failure_recorded) {
  const int64_t attempt = deploying.attempt();
  absl::StatusOr<std::unique_ptr<DeployedTask>> deployed =
      tasks.Deploy(deploying, deploying_worker_id, task_stop, [this] {
        std::lock_guard lock(mu);
        ++restores;
      });
  if (!deployed.ok()) return deployed.status();
  std::unique_ptr<DeployedTask> deployed_task = *std::move(deployed);
  {
    std::lock_guard lock(mu);
    task = deployed_task.get();
    running_attempt = attempt;
  }
  absl::Status status = deployed_task->Run(task_stop);
  // Stopped or cancelled tasks did not finish, even when their input did.
  const bool finished = status.ok() && deployed_task->finished() && !task_stop.load();
  const int64_t run_ended_us = clock.SteadyUs();
  last_counters = deployed_task->counters();
  {
    std::lock_guard lock(mu);
    task = nullptr;  // heartbeats stop reading its counters
  }
  // Every thread has joined and nothing of this attempt reaches Redis or a
  // peer any more; the window state is freed in the background, and the
  // Kafka clients and the sink are closed here.
  deployed_task->Close();
  {
    std::lock_guard lock(mu);
    // The failure goes out with the "idle" report that follows at once.
    if (!status.ok() && !leave.load()) {
      failed_attempt = attempt;
      failure_cause = std::string(status.message());
      *failure_recorded = true;
    }
    if (finished) finished_attempt = attempt;
    running_attempt = 0;
    heartbeat_now = true;  // report "idle" at once: the next deployment waits for it
    cv.notify_all();
  }
  deployed_task.reset();  // hands its state to be freed in the background
  spdlog::info("attempt {} {}: {} records in, {} invalid, {} late, {} features written (task closed in {} "
               "ms; its state is freed in the background)",
               attempt, finished ? "finished its bounded input" : "stopped", last_counters.records_in,
               last_counters.records_invalid, last_counters.records_late,
               last_counters.redis_features_written, (clock.SteadyUs() - run_ended_us) / 1000);
  return status;
}

// --- Heartbeats ----------------------------------------------------------------

// Heartbeats for the life of the executor, so a busy task never looks dead:
// counters of the running task (or attempt 0 when idle), a failure to
// report, and back the current assignment. Faster while idle, so a
// deployment starts promptly.
void TaskExecutor::Impl::HeartbeatLoop() {
  std::unique_lock lock(mu);
  while (!stopping) {
    const bool idle = running_attempt == 0;
    cv.wait_for(lock,
                std::chrono::milliseconds(idle ? std::min<int64_t>(100, options.heartbeat_interval_ms)
                                               : options.heartbeat_interval_ms),
                [&] { return stopping || heartbeat_now; });
    heartbeat_now = false;
    if (stopping) break;
    SendHeartbeat(lock);
  }
}

void TaskExecutor::Impl::SendHeartbeat(std::unique_lock<std::mutex>& lock) {
  if (need_register || worker_id.empty() || deregistered.load()) return;
  v1::HeartbeatRequest request;
  request.set_worker_id(worker_id);
  if (task != nullptr) FillWorkerCounters(task->counters(), request.mutable_counters());
  request.mutable_counters()->set_attempt(running_attempt);
  // A failure is reported by an idle worker (the coordinator takes the
  // report as "idle"); once a newer attempt runs here, the old one's failure
  // no longer matters (that attempt is over).
  if (failed_attempt != 0 && running_attempt != 0) failed_attempt = 0;
  // Bounded: the finished attempt, while idle after it (the worker stays
  // registered, as a TaskManager does after its job finished).
  if (finished_attempt != 0 && running_attempt == 0) request.set_finished_attempt(finished_attempt);
  const int64_t reporting_failure = failed_attempt;
  if (reporting_failure != 0) {
    request.mutable_counters()->set_attempt(reporting_failure);
    request.set_failure_cause(failure_cause);
  }
  lock.unlock();
  absl::StatusOr<v1::HeartbeatResponse> response = coordinator.Heartbeat(request);
  lock.lock();
  if (!response.ok()) {
    OnHeartbeatFailed(response.status());
    return;
  }
  OnHeartbeatAnswered(*response, reporting_failure);
  cv.notify_all();
}

// The coordinator gives a worker up after heartbeat.timeout without a
// heartbeat, and deploys its work elsewhere. A worker that has not reached
// it for that long cancels its task by itself (as Flink's TaskManager does),
// so two tasks do not go on writing the same keys (the Redis fence stops
// whatever is still in flight: RedisSink).
void TaskExecutor::Impl::OnHeartbeatFailed(const absl::Status& status) {
  if (heartbeat_failures++ % 10 == 0) {
    spdlog::warn("heartbeat to {} failed: {}", coordinator.address(), status.message());
  }
  const int64_t silent_ms = clock.SteadyMs() - last_answered_ms;
  if (running_attempt != 0 && silent_ms >= options.heartbeat_timeout_ms && cancelled_attempt != running_attempt) {
    spdlog::error("no heartbeat answered by {} for {} ms (heartbeat.timeout {} ms): the coordinator has given "
                  "this worker up; cancelling attempt {} and registering again once it answers",
                  coordinator.address(), silent_ms, options.heartbeat_timeout_ms, running_attempt);
    cancelled_attempt = running_attempt;
    need_register = true;
    assignment.Clear();
    CancelTaskLocked();
    cv.notify_all();
  }
}

void TaskExecutor::Impl::OnHeartbeatAnswered(const v1::HeartbeatResponse& response, int64_t reporting_failure) {
  last_answered_ms = clock.SteadyMs();
  if (heartbeat_failures > 0) spdlog::info("heartbeats to {} are back", coordinator.address());
  heartbeat_failures = 0;
  if (reporting_failure != 0 && failed_attempt == reporting_failure) failed_attempt = 0;
  if (!response.known()) {
    // The coordinator restarted or timed us out: stop the task and register
    // again (a new worker id).
    spdlog::warn("the coordinator does not know worker {} ({}); registering again", worker_id, response.reason());
    need_register = true;
    assignment.Clear();
    CancelTaskLocked();
    return;
  }
  assignment = response.assignment();
  if (running_attempt != 0 && assignment.attempt() != running_attempt) {
    if (cancelled_attempt != running_attempt) {
      cancelled_attempt = running_attempt;
      spdlog::warn("attempt {} was cancelled by the coordinator: {}", running_attempt,
                   response.reason().empty() ? std::string("another attempt is deployed") : response.reason());
    }
    CancelTaskLocked();
  }
}

void TaskExecutor::Impl::CancelTaskLocked() {
  task_stop.store(true);
  if (task != nullptr) task->Cancel();
}

// --- Leaving -------------------------------------------------------------------

// A signal only sets `leave`: deregister (naming the running attempt), then
// cancel the running task.
void TaskExecutor::Impl::WatchLeave() {
  while (!leave.load()) {
    {
      std::lock_guard lock(mu);
      if (stopping) return;
    }
    std::this_thread::sleep_for(kLeavePoll);
  }
  TaskCounters counters;
  int64_t attempt = 0;
  {
    std::lock_guard lock(mu);
    if (task != nullptr) {
      counters = task->counters();
      attempt = running_attempt;
    }
  }
  if (attempt != 0) Deregister(counters, attempt);
  task_stop.store(true);
  std::lock_guard lock(mu);
  if (attempt != 0 && task != nullptr) task->Cancel();
  cv.notify_all();
}

// Leaving on purpose (SIGTERM) is two calls. First, while the task still
// runs, DeregisterWorker naming its attempt: the coordinator ends the attempt
// as "left" (not a failure) before this worker's data endpoint stops taking
// its peers' records, which they would report as a broken channel (a
// failure), and it waits for this worker's task before it deploys the next
// attempt. Then the task is cancelled (the next attempt replays from the
// checkpoint, as after any cancel) and the second call, naming no attempt,
// says it has stopped. Heartbeats stop after the first.
void TaskExecutor::Impl::Deregister(const TaskCounters& counters, int64_t attempt) {
  std::string id;
  {
    std::lock_guard lock(mu);
    id = worker_id;
  }
  if (id.empty()) return;
  deregistered.store(true);
  v1::DeregisterWorkerRequest request;
  request.set_worker_id(id);
  FillWorkerCounters(counters, request.mutable_counters());
  request.mutable_counters()->set_attempt(attempt);
  if (absl::Status s = coordinator.DeregisterWorker(request); !s.ok()) {
    spdlog::warn("could not deregister from {}: {}", coordinator.address(), s.message());
  }
}

// --- TaskExecutor ----------------------------------------------------------------

TaskExecutor::TaskExecutor(TaskExecutorOptions options, CoordinatorClient& coordinator, TaskFactory& tasks,
                           const std::atomic<bool>& leave)
    : impl_(std::make_unique<Impl>(std::move(options), coordinator, tasks, leave)) {}

TaskExecutor::~TaskExecutor() = default;

absl::Status TaskExecutor::Run() {
  Impl& w = *impl_;
  w.last_answered_ms = w.clock.SteadyMs();
  std::thread heartbeats;
  if (w.options.heartbeat_thread) heartbeats = std::thread([&w] { w.HeartbeatLoop(); });
  std::thread leave_watcher([&w] { w.WatchLeave(); });
  for (Lifecycle state = Lifecycle::kRegistering; state != Lifecycle::kStopped;) {
    // Leaving ends the lifecycle between attempts; a deployed attempt runs
    // on until its task stops (WatchLeave cancels it).
    if (state != Lifecycle::kRunning && w.leave.load()) break;
    switch (state) {
      case Lifecycle::kRegistering: state = w.OnRegistering(); break;
      case Lifecycle::kIdle: state = w.OnIdle(); break;
      case Lifecycle::kRunning: state = w.OnRunning(); break;
      case Lifecycle::kStopped: break;
    }
  }
  {
    std::lock_guard lock(w.mu);
    w.stopping = true;
    w.cv.notify_all();
  }
  if (heartbeats.joinable()) heartbeats.join();
  leave_watcher.join();
  if (w.fatal.ok()) w.Deregister(w.last_counters, /*attempt=*/0);
  return w.fatal;
}

void TaskExecutor::Heartbeat() {
  std::unique_lock lock(impl_->mu);
  impl_->heartbeat_now = false;
  impl_->SendHeartbeat(lock);
}

// The coordinator's CancelTask only makes the next heartbeat happen now: its
// answer (no assignment for this attempt) cancels the task, so a delayed
// CancelTask can never stop a newer attempt.
void TaskExecutor::OnCancelTask(const v1::CancelTaskRequest& request) {
  std::lock_guard lock(impl_->mu);
  if (impl_->running_attempt == 0 || request.attempt() != impl_->running_attempt) return;
  spdlog::info("the coordinator cancels attempt {}: {}", request.attempt(), request.reason());
  impl_->heartbeat_now = true;
  impl_->cv.notify_all();
}

WorkerMetricsInput TaskExecutor::MetricsInput() const {
  WorkerMetricsInput input;
  {
    std::lock_guard lock(impl_->mu);
    input.worker_id = impl_->worker_id;
    input.attempt = impl_->running_attempt;
    input.restores = impl_->restores;
    if (impl_->task != nullptr) input.task = impl_->task->counters();
  }
  input.now_ms = impl_->clock.WallMs();
  input.rss_bytes = ResidentBytes();
  return input;
}

}  // namespace slipstream
