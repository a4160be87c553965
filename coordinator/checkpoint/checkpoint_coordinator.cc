#include "coordinator/checkpoint/checkpoint_coordinator.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/absl_compat.h"
#include "coordinator/checkpoint/savepoint_requests.h"
#include "spdlog/spdlog.h"

namespace slipstream {

namespace {

int64_t MsToUs(int64_t ms) { return ms * 1000; }

}  // namespace

struct CheckpointCoordinator::Impl {
  Impl(CheckpointCoordinatorOptions opts, CheckpointStore checkpoint_store)
      : options(std::move(opts)),
        store(std::move(checkpoint_store)),
        client(options.make_stub, options.settings.rpc_timeout_ms),
        savepoints(options.job_id) {}

  CheckpointCoordinatorOptions options;
  const CheckpointStore store;
  TaskControlClient client;  // the driver's only
  std::thread thread;

  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  int64_t attempt = 0;  // running attempt; 0: none (nothing is triggered)
  std::vector<v1::PeerEndpoint> workers;
  int num_partitions = 0;
  int64_t next_trigger_us = 0;  // on options.clock's steady clock
  int64_t last_id = 0;
  std::optional<PendingCheckpoint> pending;
  int64_t consecutive_failures = 0;
  CheckpointStatistics statistics;
  std::optional<CompletedCheckpoint> latest_completed;
  // The checkpoint `protected_attempt` restored: not deleted by retention
  // until a checkpoint of that attempt or a later one completes.
  std::string protected_path;
  int64_t protected_attempt = 0;
  SavepointRequests savepoints;
  bool terminated = false;          // canceled or finished: never trigger again
  bool discard_checkpoints = false; // DELETE_ON_CANCELLATION still to do
  bool trigger_soon = false;        // RequestCheckpoint: trigger without waiting for the interval
  // CancelTask calls to send (the driver owns the client): attempts that ended.
  std::vector<std::pair<v1::CancelTaskRequest, std::vector<v1::PeerEndpoint>>> cancel_orders;

  const CheckpointSettings& settings() const { return options.settings; }
  const Clock& clock() const { return *options.clock; }

  // Flink: the next periodic trigger comes one interval after the previous
  // trigger, but never sooner than min-pause after the previous checkpoint
  // ended (completed or failed).
  void ScheduleAfterEnd() {
    next_trigger_us = std::max(next_trigger_us, clock().SteadyUs() + MsToUs(settings().min_pause_ms));
  }

  // The pending checkpoint is the one (`checkpoint_id`, `attempt_id`) of this job and still runs.
  absl::Status CheckInProgress(const std::string& job_id, int64_t attempt_id, int64_t checkpoint_id) const {
    if (job_id != options.job_id) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint ", checkpoint_id, " of job \"", job_id,
                                                     "\": this coordinator runs job ", options.job_id));
    }
    if (!pending || !pending->Accepts(checkpoint_id, attempt_id)) {
      std::string now;
      if (pending && !pending->failed()) {
        now = absl::StrCat(" (checkpoint ", pending->id(), " of attempt ", pending->attempt(), " is)");
      }
      return absl::NotFoundError(absl::StrCat("checkpoint ", checkpoint_id, " of attempt ", attempt_id,
                                              " is not in progress: it completed, failed, or never existed", now));
    }
    return absl::OkStatus();
  }

  // Queues CancelTask for every worker of an attempt that ended (under `mu`).
  void OrderCancel(int64_t ended_attempt, std::string_view cause) {
    if (ended_attempt == 0 || workers.empty()) return;
    v1::CancelTaskRequest request;
    request.set_job_id(options.job_id);
    request.set_attempt(ended_attempt);
    request.set_reason(std::string(cause));
    cancel_orders.emplace_back(std::move(request), workers);
  }

  // Nothing more is triggered in the running attempt (it ended or is failing over).
  void ForgetAttempt() {
    attempt = 0;
    workers.clear();
  }

  // What one step of the driver did: something (look again at once), or
  // nothing until `wake_at_us` (steady clock; nullopt: until notified).
  struct StepResult {
    bool worked = false;
    std::optional<int64_t> wake_at_us;

    static StepResult Worked() { return StepResult{true, std::nullopt}; }
    static StepResult WaitUntil(int64_t steady_us) { return StepResult{false, steady_us}; }
    static StepResult WaitForNews() { return StepResult{false, std::nullopt}; }
  };

  // One step of the driver, under `lock` (released while it does I/O or RPCs).
  StepResult Step(std::unique_lock<std::mutex>& lock) {
    if (!cancel_orders.empty()) {
      auto orders = std::move(cancel_orders);
      cancel_orders.clear();
      lock.unlock();
      // Tells the workers of ended attempts at once, instead of at their
      // next heartbeat (heartbeat.interval), that their task is to stop: this
      // is most of the pause of a rescale or a recovery. Best effort;
      // heartbeats remain the authority.
      for (const auto& [request, targets] : orders) client.CancelTasks(targets, request);
      lock.lock();
      return StepResult::Worked();
    }
    const int64_t now_us = clock().SteadyUs();
    if (pending) return StepPending(lock, now_us);
    if (savepoints.queued() && attempt != 0 && !workers.empty()) {
      TriggerCheckpoint(lock, savepoints.TakeQueued());
      return StepResult::Worked();
    }
    if (discard_checkpoints) {
      discard_checkpoints = false;
      lock.unlock();
      DiscardCheckpoints();
      lock.lock();
      return StepResult::Worked();
    }
    if (attempt != 0 && !workers.empty() && (settings().interval_ms > 0 || trigger_soon)) {
      if (!trigger_soon && now_us < next_trigger_us) return StepResult::WaitUntil(next_trigger_us);
      trigger_soon = false;
      TriggerCheckpoint(lock);
      return StepResult::Worked();
    }
    return StepResult::WaitForNews();
  }

  // The pending checkpoint: abort it, finish it, expire it, or wait for it.
  StepResult StepPending(std::unique_lock<std::mutex>& lock, int64_t now_us) {
    if (pending->failed()) {
      AbortPending(lock);
    } else if (pending->acknowledged_by_all()) {
      CompletePending(lock);
    } else if (now_us >= pending->deadline_us()) {
      pending->Expire(settings().timeout_ms);
    } else {
      return StepResult::WaitUntil(pending->deadline_us());
    }
    return StepResult::Worked();
  }

  void Run() {
    std::unique_lock lock(mu);
    while (!stopping) {
      const StepResult step = Step(lock);
      if (step.worked) continue;
      if (step.wake_at_us) {
        cv.wait_for(lock, std::chrono::microseconds(*step.wake_at_us - clock().SteadyUs()));
      } else {
        cv.wait(lock);
      }
    }
  }

  // Makes the next periodic checkpoint, or `savepoint`, the pending one (under `mu`).
  const PendingCheckpoint& StartPending(std::optional<QueuedSavepoint> savepoint) {
    PendingCheckpointSpec spec;
    spec.id = ++last_id;
    spec.attempt = attempt;
    spec.trigger_time_ms = clock().WallMs();
    const int64_t now_us = clock().SteadyUs();
    spec.deadline_us = now_us + MsToUs(settings().timeout_ms);
    spec.workers = workers;
    spec.num_partitions = num_partitions;
    if (savepoint) {
      // A savepoint does not move the periodic schedule.
      spec.savepoint = true;
      spec.stop = savepoint->stop;
      spec.request_id = savepoint->request_id;
      spec.dir = savepoint->dir;
      savepoints.Started(spec.request_id, spec.id, static_cast<int32_t>(spec.workers.size()));
      spdlog::info("triggering {} {} of job {} (attempt {}, request {}) into {}",
                   spec.stop ? "stop-with-savepoint" : "savepoint", spec.id, options.job_id, spec.attempt,
                   spec.request_id, spec.dir);
    } else {
      spec.dir = store.CheckpointDir(spec.id);
      next_trigger_us = now_us + MsToUs(settings().interval_ms);
    }
    return pending.emplace(std::move(spec));
  }

  v1::TriggerCheckpointRequest TriggerRequest(const PendingCheckpoint& p) const {
    v1::TriggerCheckpointRequest request;
    request.set_job_id(options.job_id);
    request.set_attempt(p.attempt());
    request.set_checkpoint_id(p.id());
    request.set_timestamp_ms(p.trigger_time_ms());
    request.set_target_dir(p.dir());
    request.set_exactly_once(settings().exactly_once);
    request.set_savepoint(p.savepoint());
    request.set_stop_after(p.stop());
    return request;
  }

  // Triggers the next periodic checkpoint, or `savepoint`: creates its
  // directory and waits for every worker's answer to TriggerCheckpoint.
  void TriggerCheckpoint(std::unique_lock<std::mutex>& lock, std::optional<QueuedSavepoint> savepoint = std::nullopt) {
    const PendingCheckpoint& p = StartPending(std::move(savepoint));
    const int64_t id = p.id();
    const std::vector<v1::PeerEndpoint> targets = p.workers();
    const std::string dir = p.dir();
    const v1::TriggerCheckpointRequest request = TriggerRequest(p);
    lock.unlock();

    spdlog::debug("triggering checkpoint {} of job {} (attempt {}) on {} workers", id, options.job_id,
                  request.attempt(), targets.size());
    std::vector<std::string> errors;
    bool not_all_running = false;
    if (absl::Status created = store.CreateDirectory(dir); !created.ok()) {
      errors.emplace_back(created.message());
    } else {
      TaskControlClient::TriggerResult result = client.TriggerAll(targets, request);
      errors = std::move(result.errors);
      not_all_running = !errors.empty() && result.not_running == errors.size();
    }

    lock.lock();
    if (errors.empty() || !pending || pending->id() != id) return;
    // A task that has not started yet (just deployed, still restoring) or
    // already stopped: Flink's NOT_ALL_REQUIRED_TASKS_RUNNING, which does
    // not count towards the tolerable failures either. A worker that is
    // gone fails the attempt through its heartbeats.
    std::string failure = absl::StrJoin(errors, "; ");
    if (not_all_running) failure = "not all tasks are running: " + failure;
    pending->FailUnlessAcknowledged(std::move(failure), pending->counts_towards_tolerable() && !not_all_running);
  }

  // Writes the `_metadata` of the pending checkpoint every worker
  // acknowledged: from then on it is completed. Called and returns with
  // `lock` held.
  void CompletePending(std::unique_lock<std::mutex>& lock) {
    absl::StatusOr<v1::CheckpointMetadata> metadata =
        pending->ToMetadata(options.job_id, options.topic, options.max_parallelism, clock().WallMs());
    if (!metadata.ok()) {
      pending->Fail(std::string(metadata.status().message()));
      return;
    }
    metadata->set_feature_definition(options.feature_definition);
    metadata->set_feature_fingerprint(options.feature_fingerprint);
    const std::string dir = pending->dir();
    const std::vector<v1::PeerEndpoint> targets = pending->workers();
    const bool savepoint = pending->savepoint();
    const bool stop = pending->stop();
    const std::string request_id = pending->request_id();
    // Nobody changes an acknowledged-by-all pending checkpoint but the
    // driver, so it can be finished without the lock.
    lock.unlock();

    if (absl::Status written = store.WriteMetadata(dir, *metadata); !written.ok()) {
      lock.lock();
      pending->Fail(absl::StrCat("cannot write _metadata: ", written.message()));
      return;
    }
    v1::CheckpointStats stats = CheckpointStatsFromMetadata(*metadata, dir);
    stats.set_checkpoint_type(CheckpointTypeName(savepoint, stop));
    if (savepoint) {
      FinishSavepoint(lock, *metadata, stats, stop, request_id);
    } else {
      FinishCheckpoint(lock, *metadata, stats);
    }
    v1::CheckpointNotification note;
    note.set_job_id(options.job_id);
    note.set_attempt(metadata->attempt());
    note.set_checkpoint_id(metadata->checkpoint_id());
    client.NotifyCompleteAll(targets, note);
    lock.lock();
  }

  // Savepoints are the user's: not used for recovery, never retained or
  // deleted here, and not the "latest completed checkpoint". Called and
  // returns without the lock.
  void FinishSavepoint(std::unique_lock<std::mutex>& lock, const v1::CheckpointMetadata& metadata,
                       const v1::CheckpointStats& stats, bool stop, const std::string& request_id) {
    lock.lock();
    statistics.AddCompleted(stats, /*savepoint=*/true);
    pending.reset();
    ScheduleAfterEnd();
    lock.unlock();
    spdlog::info("{} {} of job {} (attempt {}) completed in {} ms: {} bytes from {} workers, max alignment {} ms, "
                 "sync {} ms, async {} ms ({})",
                 stop ? "stop-with-savepoint" : "savepoint", stats.id(), options.job_id, metadata.attempt(),
                 stats.end_to_end_ms(), stats.state_bytes(), metadata.workers_size(), stats.alignment_ms(),
                 stats.sync_ms(), stats.async_ms(), stats.path());
    // The job ends before the operation reads COMPLETED, so a client that
    // sees COMPLETED sees the job FINISHED (unless it failed meanwhile).
    // Nothing is triggered in between: the driver is the one that would.
    if (stop && options.on_stopped) options.on_stopped(metadata.attempt(), stats.path());
    lock.lock();
    savepoints.Completed(request_id, stats.path(), metadata.completion_time_ms(), metadata.workers_size(),
                         stats.state_bytes());
    lock.unlock();
  }

  // A checkpoint is completed from here on (it has a _metadata): recovery
  // may use it before older checkpoints are deleted. Called and returns
  // without the lock.
  void FinishCheckpoint(std::unique_lock<std::mutex>& lock, const v1::CheckpointMetadata& metadata,
                        const v1::CheckpointStats& stats) {
    lock.lock();
    latest_completed = CompletedCheckpoint{metadata, stats.path()};
    if (!protected_path.empty() && metadata.attempt() >= protected_attempt) protected_path.clear();
    const std::string keep = protected_path;
    lock.unlock();
    store.DeleteSubsumed(metadata.checkpoint_id(), settings().num_retained, keep);

    lock.lock();
    statistics.AddCompleted(stats, /*savepoint=*/false);
    consecutive_failures = 0;
    pending.reset();
    ScheduleAfterEnd();
    lock.unlock();
    spdlog::info("checkpoint {} of job {} (attempt {}) completed in {} ms: {} bytes from {} workers, max alignment "
                 "{} ms, sync {} ms, async {} ms ({})",
                 stats.id(), options.job_id, metadata.attempt(), stats.end_to_end_ms(), stats.state_bytes(),
                 metadata.workers_size(), stats.alignment_ms(), stats.sync_ms(), stats.async_ms(), stats.path());
  }

  // Counts the failure of `p` (under `mu`); returns the cause to fail the
  // attempt with when there were more than tolerable-failed-checkpoints in
  // a row, "" otherwise.
  std::string CountFailure(const PendingCheckpoint& p) {
    if (!p.counts_towards_tolerable()) return "";
    ++consecutive_failures;
    if (consecutive_failures <= settings().tolerable_failed) return "";
    consecutive_failures = 0;
    // The attempt is failing over: nothing more to trigger in it.
    if (attempt == p.attempt()) ForgetAttempt();
    // Flink's CheckpointFailureManager message.
    return absl::StrCat("Exceeded checkpoint tolerable failure threshold "
                        "(execution.checkpointing.tolerable-failed-checkpoints=",
                        settings().tolerable_failed, "): checkpoint ", p.id(), " failed: ", p.failure());
  }

  // Aborts the failed pending checkpoint: AbortCheckpoint to its workers,
  // its directory removed. Called and returns with `lock` held.
  void AbortPending(std::unique_lock<std::mutex>& lock) {
    PendingCheckpoint p = std::move(*pending);
    pending.reset();
    const v1::CheckpointStats stats = p.FailedStats(clock().WallMs());
    statistics.AddFailed(stats);
    if (p.savepoint()) savepoints.Failed(p.request_id(), p.failure(), clock().WallMs());
    const std::string job_failure = CountFailure(p);
    ScheduleAfterEnd();
    lock.unlock();

    spdlog::log(p.counts_towards_tolerable() || p.savepoint() ? spdlog::level::warn : spdlog::level::info,
                "{} {} of job {} (attempt {}) failed after {} ms ({} of {} workers acknowledged): {}",
                p.savepoint() ? (p.stop() ? "stop-with-savepoint" : "savepoint") : "checkpoint", p.id(),
                options.job_id, p.attempt(), stats.end_to_end_ms(), p.acknowledged(), p.workers().size(),
                p.failure());
    v1::CheckpointNotification note;
    note.set_job_id(options.job_id);
    note.set_attempt(p.attempt());
    note.set_checkpoint_id(p.id());
    note.set_reason(p.failure());
    client.AbortAll(p.workers(), note);
    if (absl::Status removed = store.Remove(p.dir()); !removed.ok()) {
      spdlog::warn("cannot delete aborted checkpoint {}: {}", p.dir(), removed.message());
    }
    if (!job_failure.empty()) {
      spdlog::error("job {} attempt {}: {}", options.job_id, p.attempt(), job_failure);
      if (options.on_failure) options.on_failure(p.attempt(), job_failure);
    }
    lock.lock();
  }

  // DELETE_ON_CANCELLATION: every checkpoint directory of the job goes
  // (completed or not); savepoints live elsewhere and stay.
  void DiscardCheckpoints() {
    const size_t deleted = store.DeleteAll();
    spdlog::info("job {} canceled with DELETE_ON_CANCELLATION: deleted {} checkpoint directories in {}",
                 options.job_id, deleted, store.job_dir());
    std::lock_guard lock(mu);
    latest_completed.reset();
    statistics.SetLatestCompleted(std::nullopt);
  }
};

CheckpointCoordinator::CheckpointCoordinator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<CheckpointCoordinator>> CheckpointCoordinator::Start(
    CheckpointCoordinatorOptions options) {
  absl::StatusOr<CheckpointStore> store = CheckpointStore::Open(options.job_dir);
  if (!store.ok()) return store.status();
  absl::StatusOr<CheckpointStore::Contents> found = store->Scan();
  if (!found.ok()) return found.status();
  auto impl = std::make_unique<Impl>(std::move(options), *std::move(store));
  impl->last_id = found->last_id;
  impl->latest_completed = std::move(found->latest_completed);
  const std::string& job_id = impl->options.job_id;
  const std::string& job_dir = impl->store.job_dir();
  if (impl->latest_completed) {
    impl->statistics.SetLatestCompleted(
        CheckpointStatsFromMetadata(impl->latest_completed->metadata, impl->latest_completed->path));
    spdlog::info("checkpoints of job {} in {}: latest completed is {}; new checkpoints start at {}", job_id, job_dir,
                 impl->latest_completed->path, impl->last_id + 1);
  } else if (impl->last_id > 0) {
    spdlog::info("checkpoints of job {} in {}: none completed; new checkpoints start at {}", job_id, job_dir,
                 impl->last_id + 1);
  }
  if (impl->options.background_thread) {
    Impl* raw = impl.get();
    impl->thread = std::thread([raw] { raw->Run(); });
  }
  return std::unique_ptr<CheckpointCoordinator>(new CheckpointCoordinator(std::move(impl)));
}

CheckpointCoordinator::~CheckpointCoordinator() { Stop(); }

void CheckpointCoordinator::OnAttemptDeployed(int64_t attempt, std::vector<v1::PeerEndpoint> workers,
                                              int num_partitions, std::string restored_path, int64_t restored_id) {
  std::lock_guard lock(impl_->mu);
  if (impl_->terminated) return;
  impl_->last_id = std::max(impl_->last_id, restored_id);
  const std::optional<QueuedSavepoint>& queued = impl_->savepoints.queued();
  if (queued && queued->attempt != attempt) {
    impl_->savepoints.FailQueued(absl::StrCat("attempt ", queued->attempt, " was replaced by attempt ", attempt,
                                              " before the savepoint started"),
                                 impl_->clock().WallMs());
  }
  if (!restored_path.empty()) {
    impl_->protected_path = std::move(restored_path);
    impl_->protected_attempt = attempt;
  }
  if (impl_->pending) {
    impl_->pending->FailUnlessAcknowledged(
        absl::StrCat("attempt ", impl_->pending->attempt(), " was replaced by attempt ", attempt),
        /*counts_towards_tolerable=*/false);
  }
  impl_->attempt = attempt;
  impl_->workers = std::move(workers);
  impl_->num_partitions = num_partitions;
  impl_->next_trigger_us = impl_->clock().SteadyUs() + MsToUs(impl_->settings().interval_ms);
  impl_->cv.notify_all();
}

void CheckpointCoordinator::OnAttemptEnded(int64_t attempt, std::string_view cause) {
  std::lock_guard lock(impl_->mu);
  if (impl_->attempt == attempt) {
    impl_->OrderCancel(attempt, cause);
    impl_->trigger_soon = false;
    impl_->ForgetAttempt();
  }
  const std::optional<QueuedSavepoint>& queued = impl_->savepoints.queued();
  if (queued && queued->attempt == attempt) {
    impl_->savepoints.FailQueued(absl::StrCat("attempt ", attempt, " ended before the savepoint started",
                                              cause.empty() ? "" : ": ", ToAbsl(cause)),
                                 impl_->clock().WallMs());
  }
  // Flink aborts pending checkpoints on failover (JOB_FAILOVER_REGION) and
  // does not count that towards the tolerable failures. A checkpoint every
  // worker acknowledged is complete already: it is still written.
  if (impl_->pending && impl_->pending->attempt() == attempt) {
    impl_->pending->FailUnlessAcknowledged(
        absl::StrCat("attempt ", attempt, " ended", cause.empty() ? "" : ": ", ToAbsl(cause)),
        /*counts_towards_tolerable=*/false);
  }
  impl_->cv.notify_all();
}

absl::Status CheckpointCoordinator::Acknowledge(const v1::AcknowledgeCheckpointRequest& request) {
  std::lock_guard lock(impl_->mu);
  if (absl::Status s = impl_->CheckInProgress(request.job_id(), request.attempt(), request.checkpoint_id()); !s.ok()) {
    return s;
  }
  if (absl::Status s = impl_->pending->Acknowledge(request); !s.ok()) return s;
  if (impl_->pending->acknowledged_by_all()) impl_->cv.notify_all();
  return absl::OkStatus();
}

absl::Status CheckpointCoordinator::Decline(const v1::DeclineCheckpointRequest& request) {
  std::lock_guard lock(impl_->mu);
  if (absl::Status s = impl_->CheckInProgress(request.job_id(), request.attempt(), request.checkpoint_id()); !s.ok()) {
    return s;
  }
  if (absl::Status s = impl_->pending->Decline(request); !s.ok()) return s;
  impl_->cv.notify_all();
  return absl::OkStatus();
}

absl::StatusOr<v1::SavepointOperation> CheckpointCoordinator::TriggerSavepoint(std::string directory, bool stop) {
  std::lock_guard lock(impl_->mu);
  if (impl_->terminated || impl_->attempt == 0 || impl_->workers.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot take a ", stop ? "stop-with-savepoint" : "savepoint",
                                                      " of job ", impl_->options.job_id, ": no attempt is running"));
  }
  const std::string running = impl_->pending && impl_->pending->savepoint() ? impl_->pending->request_id() : "";
  absl::StatusOr<v1::SavepointOperation> op =
      impl_->savepoints.Queue(impl_->attempt, std::move(directory), stop, static_cast<int32_t>(impl_->workers.size()),
                              running, impl_->clock().WallMs());
  if (op.ok()) impl_->cv.notify_all();
  return op;
}

absl::StatusOr<v1::SavepointOperation> CheckpointCoordinator::GetSavepoint(std::string_view request_id) const {
  std::lock_guard lock(impl_->mu);
  const std::string id(request_id);
  std::optional<v1::SavepointOperation> op = impl_->savepoints.Get(id);
  if (!op) {
    return absl::NotFoundError(absl::StrCat("no savepoint request ", id, " for job ", impl_->options.job_id));
  }
  if (impl_->savepoints.StatusOf(id) == SavepointStatus::kInProgress && impl_->pending &&
      impl_->pending->request_id() == id) {
    op->set_acknowledged(static_cast<int32_t>(impl_->pending->acknowledged()));
  }
  return *op;
}

void CheckpointCoordinator::OnJobTerminated(std::string_view cause, bool delete_checkpoints) {
  std::lock_guard lock(impl_->mu);
  impl_->terminated = true;
  impl_->OrderCancel(impl_->attempt, cause);
  impl_->trigger_soon = false;
  impl_->ForgetAttempt();
  impl_->savepoints.FailQueued(std::string(cause), impl_->clock().WallMs());
  if (impl_->pending) impl_->pending->FailUnlessAcknowledged(std::string(cause), /*counts_towards_tolerable=*/false);
  // Completing after the job ended would delete the checkpoint CancelJob
  // reported as retained: fails even when acknowledged (not the final stop).
  if (impl_->pending && !impl_->pending->stop() && !impl_->pending->failed()) impl_->pending->Fail(std::string(cause));
  impl_->discard_checkpoints = delete_checkpoints;
  impl_->cv.notify_all();
}

bool CheckpointCoordinator::RequestCheckpoint(int64_t attempt) {
  std::lock_guard lock(impl_->mu);
  if (impl_->terminated || attempt == 0 || impl_->attempt != attempt || impl_->workers.empty()) return false;
  if (impl_->pending || impl_->savepoints.queued() || impl_->trigger_soon) return true;
  impl_->trigger_soon = true;
  impl_->cv.notify_all();
  return true;
}

void CheckpointCoordinator::FillOverview(v1::CheckpointOverview* overview) const {
  std::lock_guard lock(impl_->mu);
  std::optional<v1::CheckpointStats> in_progress;
  if (impl_->pending) in_progress = impl_->pending->Stats(impl_->clock().WallMs());
  impl_->statistics.Fill(in_progress ? &*in_progress : nullptr, overview);
}

std::optional<CompletedCheckpoint> CheckpointCoordinator::LatestCompleted() const {
  std::lock_guard lock(impl_->mu);
  return impl_->latest_completed;
}

void CheckpointCoordinator::Tick() {
  if (impl_->options.background_thread) return;  // the internal thread drives
  std::unique_lock lock(impl_->mu);
  while (!impl_->stopping && impl_->Step(lock).worked) {
  }
}

void CheckpointCoordinator::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->client.CancelInFlight();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->client.WaitIdle();
  std::optional<PendingCheckpoint> abandoned;
  {
    std::lock_guard lock(impl_->mu);
    abandoned.swap(impl_->pending);
    impl_->attempt = 0;
    const std::string cause = "the coordinator is stopping";
    const int64_t now_ms = impl_->clock().WallMs();
    impl_->savepoints.FailQueued(cause, now_ms);
    if (abandoned && abandoned->savepoint()) impl_->savepoints.Failed(abandoned->request_id(), cause, now_ms);
  }
  if (abandoned) {
    spdlog::info("checkpoint {} of job {} abandoned: the coordinator is stopping", abandoned->id(),
                 impl_->options.job_id);
    (void)impl_->store.Remove(abandoned->dir());  // best effort, as retention would remove it later
  }
}

}  // namespace slipstream
