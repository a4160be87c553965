#include "coordinator/coordinator_server.h"

#include <grpcpp/grpcpp.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <set>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/absl_compat.h"
#include "common/config.h"
#include "common/grpc_security.h"
#include "common/grpc_status.h"
#include "common/random_id.h"
#include "coordinator/assignment.h"
#include "coordinator/job_id.h"
#include "proto/slipstream.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace slipstream {

namespace {




struct WorkerEntry {
  std::string id;
  int64_t sequence = 0;  // registration order: stable worker indices
  v1::RegisterWorkerRequest registration;
  v1::Assignment assignment;  // empty (attempt 0) unless in the running attempt
  v1::WorkerCounters counters;  // counters.attempt: the task it runs (0: idle)
  int64_t registered_at_ms = 0;
  int64_t last_heartbeat_ms = 0;
  int64_t report_seq = 0;       // event sequence of its last registration or heartbeat
  int64_t stale_since_ms = 0;   // runs a task it should cancel since then (0: it does not)
  bool in_attempt() const { return assignment.attempt() != 0; }
  // Runs a task, and not the one it is assigned.
  bool runs_stale_task() const {
    return counters.attempt() != 0 && !(in_attempt() && assignment.attempt() == counters.attempt());
  }
};

std::string JoinInts(const google::protobuf::RepeatedField<int32_t>& values) {
  std::string out;
  for (int v : values) absl::StrAppend(&out, out.empty() ? "" : ",", v);
  return out;
}

// True when host:port actively refuses a TCP connection: no process listens
// there any more (a worker that died, or restarted on another port). False
// when it accepts, or when the outcome is unknown within `timeout_ms` (a hung
// or partitioned worker: the heartbeat timeout decides about those).
bool ConnectionRefused(const std::string& host, int port, int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || found == nullptr) return false;
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, &freeaddrinfo);
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool refused = false;
  if (connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
    if (errno == ECONNREFUSED) {
      refused = true;
    } else if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, timeout_ms) == 1) {
        int error = 0;
        socklen_t length = sizeof(error);
        refused = getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == ECONNREFUSED;
      }
    }
  }
  close(fd);
  return refused;
}

// Silence after which a worker's data port is probed (heartbeat.interval
// defaults to 2 s).
constexpr int64_t kProbeAfterSilenceMs = 2500;

constexpr char kCreated[] = "CREATED";
constexpr char kRunning[] = "RUNNING";
constexpr char kRestarting[] = "RESTARTING";
constexpr char kFailed[] = "FAILED";
// Flink's names: CancelJob ends a job CANCELED, stop-with-savepoint FINISHED.
constexpr char kCanceled[] = "CANCELED";
constexpr char kFinished[] = "FINISHED";
constexpr size_t kMaxForgotten = 1000;
constexpr int64_t kWaitLogIntervalMs = 10000;

class CoordinatorService final : public v1::Coordinator::Service {
 public:
  explicit CoordinatorService(CoordinatorOptions options)
      : options_(std::move(options)), start_time_ms_(NowMs()), restart_strategy_(options_.restart) {
    // A restarted coordinator goes on counting attempts (they are the Redis
    // sink's fencing tokens: job_id.h).
    if (!options_.job_dir.empty()) attempt_ = LastRecordedAttempt(options_.job_dir);
  }

  // The lifecycle's time: all of it from options_.clock.
  int64_t NowMs() const { return options_.clock->WallMs(); }
  // Restart delays are measured on the monotonic clock, to the microsecond
  // (a delay must never be a millisecond short, nor change with the wall clock).
  int64_t SteadyUs() const { return options_.clock->SteadyUs(); }

  // Set once before the service is served (null: checkpointing disabled).
  void SetCheckpoints(std::unique_ptr<CheckpointCoordinator> checkpoints) {
    checkpoints_ = std::move(checkpoints);
    if (std::optional<CompletedCheckpoint> latest = checkpoints_->LatestCompleted()) {
      latest_at_start_id_ = latest->metadata.checkpoint_id();
    }
  }
  CheckpointCoordinator* checkpoints() { return checkpoints_.get(); }

  // Set once before the service is served: execution.savepoint.path.
  void SetSavepoint(CompletedCheckpoint savepoint) { savepoint_ = std::move(savepoint); }

  // Logs where the first deployment will restore from.
  void LogRestoreSource() {
    std::lock_guard lock(mu_);
    const std::optional<CompletedCheckpoint> source = RestoreSource();
    if (savepoint_) {
      if (source && source->path != savepoint_->path) {
        spdlog::warn("execution.savepoint.path {} (checkpoint {} of job {}) is not used: checkpoint {} of job {} "
                     "({}) is newer",
                     savepoint_->path, savepoint_->metadata.checkpoint_id(), savepoint_->metadata.job_id(),
                     source->metadata.checkpoint_id(), options_.job_id, source->path);
      } else {
        spdlog::info("job {} will restore savepoint {} (checkpoint {} of job {}, {} worker snapshots)",
                     options_.job_id, savepoint_->path, savepoint_->metadata.checkpoint_id(),
                     savepoint_->metadata.job_id(), savepoint_->metadata.workers_size());
      }
    } else if (source) {
      spdlog::info("job {} will restore its latest completed checkpoint {} ({})", options_.job_id,
                   source->metadata.checkpoint_id(), source->path);
    }
    spdlog::info("restart strategy: {}", restart_strategy_.Describe());
  }

  // The checkpoint coordinator gave up on `attempt` (too many failed
  // checkpoints in a row): fail it like a lost worker, unless it is over.
  void FailAttemptForCheckpoints(int64_t attempt, const std::string& cause) {
    std::lock_guard lock(mu_);
    if (state_ != kRunning || attempt_ != attempt) return;
    FailAttempt(cause, /*failed=*/true, NowMs());
  }

  grpc::Status RegisterWorker(grpc::ServerContext* context, const v1::RegisterWorkerRequest* request,
                              v1::RegisterWorkerResponse* response) override {
    if (grpc::Status denied = Authorize(*context, Access::kInternal, "RegisterWorker"); !denied.ok()) return denied;
    if (request->host().empty() || request->data_port() <= 0 || request->data_port() > 65535) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("a worker must register with its host and data port (got host \"",
                                       request->host(), "\", data port ", request->data_port(), ")"));
    }
    std::lock_guard lock(mu_);
    if (num_partitions_ <= 0) {
      absl::StatusOr<int> count = options_.partition_count();
      if (!count.ok()) {
        return ToGrpcStatus(absl::UnavailableError(absl::StrCat("waiting for the input topic: ", count.status().message())));
      }
      num_partitions_ = *count;
      spdlog::info("topic {} has {} partitions", options_.topic, num_partitions_);
    }
    const int64_t now = NowMs();
    WorkerEntry entry;
    entry.id = absl::StrCat(request->host(), ":", request->data_port(), "-", RandomHex(6));
    entry.sequence = ++registrations_;
    entry.registration = *request;
    entry.registered_at_ms = now;
    entry.last_heartbeat_ms = now;
    entry.report_seq = ++events_;  // a registering worker runs no task
    const std::string id = entry.id;
    workers_.emplace(id, std::move(entry));
    last_registration_ms_ = now;
    if (state_ == kRunning) {
      spdlog::info("worker {} registered (pid {}, data {}:{}) while attempt {} of job {} runs on {} workers: {}", id,
                   request->pid(), request->host(), request->data_port(), attempt_, options_.job_id,
                   AttemptWorkerCount(),
                   CanRescale() ? absl::StrCat("rescaling once no worker joined for ", options_.stabilization_ms,
                                               " ms (cluster.stabilization-timeout)")
                                : std::string(WhyNoRescale()));
    } else if (IsTerminal()) {
      spdlog::warn("worker {} registered (pid {}, data {}:{}) but {}; it stays idle", id, request->pid(),
                   request->host(), request->data_port(), end_reason_);
    } else {
      spdlog::info("worker {} registered (pid {}, data {}:{}); {} of cluster.min-workers={} registered", id,
                   request->pid(), request->host(), request->data_port(), workers_.size(), options_.min_workers);
      MaybeDeploy(now);
    }
    response->set_worker_id(id);
    const WorkerEntry& registered = workers_.at(id);
    if (registered.in_attempt()) *response->mutable_assignment() = registered.assignment;
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override {
    if (grpc::Status denied = Authorize(*context, Access::kInternal, "Heartbeat"); !denied.ok()) return denied;
    std::lock_guard lock(mu_);
    auto it = workers_.find(request->worker_id());
    if (it == workers_.end()) {
      response->set_known(false);
      auto reason = forgotten_.find(request->worker_id());
      response->set_reason(reason != forgotten_.end()
                               ? reason->second
                               : "unknown worker (the coordinator restarted or timed it out)");
      return grpc::Status::OK;
    }
    const int64_t now = NowMs();
    WorkerEntry& w = it->second;
    w.last_heartbeat_ms = now;
    w.report_seq = ++events_;
    ReportChannelChanges(w, request->counters());
    const int64_t previous_attempt = w.counters.attempt();
    w.counters = request->counters();
    // A failure report names the failed attempt in counters.attempt; its
    // task has ended by then (a worker reports a failure only after that),
    // so the worker runs nothing: kept as attempt 0, it is not taken for a
    // task of an old attempt still running.
    const int64_t failed_attempt = request->failure_cause().empty() ? 0 : w.counters.attempt();
    if (!request->failure_cause().empty()) w.counters.set_attempt(0);
    if (previous_attempt != w.counters.attempt() && w.counters.attempt() == 0 && state_ != kRunning) {
      spdlog::info("worker {} stopped its task of attempt {}", w.id, previous_attempt);
    }
    UpdateStale(w, now);
    if (!request->failure_cause().empty()) OnReportedFailure(w, request->failure_cause(), failed_attempt, now);
    if (state_ == kCreated || state_ == kRestarting) MaybeDeploy(now);
    response->set_known(true);
    // `w` is still registered: nothing above removes a worker.
    if (w.in_attempt()) {
      *response->mutable_assignment() = w.assignment;
    } else {
      response->set_reason(WhyNoAssignment());
    }
    return grpc::Status::OK;
  }

  // A worker leaving on purpose names in `counters.attempt` the task it still
  // runs: the attempt ends now (before its peers report the channels to it
  // broken, which would count as a failure) and the next one waits until a
  // second call (attempt 0) says that task has stopped.
  grpc::Status DeregisterWorker(grpc::ServerContext* context, const v1::DeregisterWorkerRequest* request,
                                v1::DeregisterWorkerResponse*) override {
    if (grpc::Status denied = Authorize(*context, Access::kInternal, "DeregisterWorker"); !denied.ok()) return denied;
    std::lock_guard lock(mu_);
    const int64_t now = NowMs();
    const int64_t still_running = request->counters().attempt();
    if (still_running == 0 && leaving_.erase(request->worker_id()) > 0) {
      spdlog::info("worker {} left: its task has stopped", request->worker_id());
      if (state_ == kCreated || state_ == kRestarting) MaybeDeploy(now);
      return grpc::Status::OK;
    }
    auto it = workers_.find(request->worker_id());
    if (it == workers_.end()) return grpc::Status::OK;
    const bool in_attempt = it->second.in_attempt();
    if (!request->failure_cause().empty()) {
      spdlog::error("worker {} failed: {}", request->worker_id(), request->failure_cause());
    } else if (still_running != 0) {
      spdlog::info("worker {} leaves: {} records in, {} features written; its task of attempt {} is stopping",
                   request->worker_id(), request->counters().records_in(),
                   request->counters().redis_features_written(), still_running);
      leaving_[request->worker_id()] = now;
    } else {
      spdlog::info("worker {} left: {} records in, {} features written", request->worker_id(),
                   request->counters().records_in(), request->counters().redis_features_written());
    }
    workers_.erase(it);
    if (in_attempt && state_ == kRunning) {
      const bool failed = !request->failure_cause().empty();
      FailAttempt(failed ? absl::StrCat("worker ", request->worker_id(), " failed: ", request->failure_cause())
                         : absl::StrCat("worker ", request->worker_id(), " left the running attempt"),
                  failed, now);
    }
    if (state_ == kCreated || state_ == kRestarting) MaybeDeploy(now);
    return grpc::Status::OK;
  }

  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest*, v1::JobStatus* response) override {
    if (grpc::Status denied = Authorize(*context, Access::kRead, "GetJob"); !denied.ok()) return denied;
    std::lock_guard lock(mu_);
    FillJob(response);
    return grpc::Status::OK;
  }

  // --- Operator control API -------------------------------------------------

  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest*, v1::ListJobsResponse* response) override {
    if (grpc::Status denied = Authorize(*context, Access::kRead, "ListJobs"); !denied.ok()) return denied;
    std::lock_guard lock(mu_);
    FillJob(response->add_jobs());
    return grpc::Status::OK;
  }

  grpc::Status TriggerSavepoint(grpc::ServerContext* context, const v1::TriggerSavepointRequest* request,
                                v1::SavepointOperation* response) override {
    if (grpc::Status denied = Authorize(*context, Access::kAdmin, "TriggerSavepoint"); !denied.ok()) return denied;
    return ToGrpcStatus(StartSavepoint(request->job_id(), request->target_dir(), /*stop=*/false, response));
  }

  grpc::Status StopWithSavepoint(grpc::ServerContext* context, const v1::StopWithSavepointRequest* request,
                                 v1::SavepointOperation* response) override {
    if (grpc::Status denied = Authorize(*context, Access::kAdmin, "StopWithSavepoint"); !denied.ok()) return denied;
    return ToGrpcStatus(StartSavepoint(request->job_id(), request->target_dir(), /*stop=*/true, response));
  }

  grpc::Status GetSavepoint(grpc::ServerContext* context, const v1::GetSavepointRequest* request,
                            v1::SavepointOperation* response) override {
    if (grpc::Status denied = Authorize(*context, Access::kRead, "GetSavepoint"); !denied.ok()) return denied;
    std::lock_guard lock(mu_);
    if (absl::Status s = CheckJobId(request->job_id()); !s.ok()) return ToGrpcStatus(s);
    if (!checkpoints_) return CheckpointingDisabled();
    absl::StatusOr<v1::SavepointOperation> op = checkpoints_->GetSavepoint(request->request_id());
    if (!op.ok()) return ToGrpcStatus(op.status());
    *response = *std::move(op);
    return grpc::Status::OK;
  }

  grpc::Status CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                         v1::CancelJobResponse* response) override {
    if (grpc::Status denied = Authorize(*context, Access::kAdmin, "CancelJob"); !denied.ok()) return denied;
    std::lock_guard lock(mu_);
    if (absl::Status s = CheckJobId(request->job_id()); !s.ok()) return ToGrpcStatus(s);
    if (IsTerminal()) {
      return ToGrpcStatus(absl::FailedPreconditionError(
          absl::StrCat("job ", options_.job_id, " is already ", state_, ": there is nothing to cancel")));
    }
    const bool discard = options_.delete_checkpoints_on_cancel;
    std::string retained;
    if (checkpoints_ && !discard) {
      if (std::optional<CompletedCheckpoint> latest = checkpoints_->LatestCompleted()) retained = latest->path;
    }
    const std::string previous = state_;
    state_ = kCanceled;
    end_reason_ = absl::StrCat("job ", options_.job_id, " was CANCELED");
    EndAllTasks(NowMs());
    if (checkpoints_) checkpoints_->OnJobTerminated(absl::StrCat("job ", options_.job_id, " was canceled"), discard);
    RecordEnded();
    response->set_state(state_);
    response->set_checkpoint_retention(discard ? "DELETE_ON_CANCELLATION" : "RETAIN_ON_CANCELLATION");
    response->set_retained_checkpoint(retained);
    spdlog::info("job {} CANCELED (was {}, attempt {}); its {} workers stop their tasks and stay registered; "
                 "checkpoints: {}",
                 options_.job_id, previous, attempt_, workers_.size(),
                 discard ? std::string("DELETE_ON_CANCELLATION, deleting them")
                         : absl::StrCat("RETAIN_ON_CANCELLATION, ", retained.empty() ? "none completed" : retained));
    return grpc::Status::OK;
  }

  grpc::Status GetCheckpoints(grpc::ServerContext* context, const v1::GetCheckpointsRequest* request,
                              v1::CheckpointOverview* response) override {
    if (grpc::Status denied = Authorize(*context, Access::kRead, "GetCheckpoints"); !denied.ok()) return denied;
    std::lock_guard lock(mu_);
    if (absl::Status s = CheckJobId(request->job_id()); !s.ok()) return ToGrpcStatus(s);
    FillCheckpoints(response);
    return grpc::Status::OK;
  }

  grpc::Status ListWorkers(grpc::ServerContext* context, const v1::ListWorkersRequest*,
                           v1::ListWorkersResponse* response) override {
    if (grpc::Status denied = Authorize(*context, Access::kRead, "ListWorkers"); !denied.ok()) return denied;
    std::lock_guard lock(mu_);
    const int64_t now = NowMs();
    for (const WorkerEntry* w : WorkersInOrder()) FillWorker(*w, now, response->add_workers());
    return grpc::Status::OK;
  }

  grpc::Status DisposeSavepoint(grpc::ServerContext* context, const v1::DisposeSavepointRequest* request,
                                v1::DisposeSavepointResponse* response) override {
    if (grpc::Status denied = Authorize(*context, Access::kAdmin, "DisposeSavepoint"); !denied.ok()) return denied;
    return ToGrpcStatus(Dispose(request->path(), response));
  }

  // The stop-with-savepoint of `attempt` completed: the job is FINISHED.
  void FinishJob(int64_t attempt, const std::string& savepoint_path) {
    std::lock_guard lock(mu_);
    if (state_ != kRunning || attempt_ != attempt) {
      spdlog::warn("stop-with-savepoint {} of attempt {} completed, but the job is {} in attempt {}: not finished",
                   savepoint_path, attempt, state_, attempt_);
      return;
    }
    state_ = kFinished;
    end_reason_ = absl::StrCat("job ", options_.job_id, " FINISHED: stopped with savepoint ", savepoint_path);
    EndAllTasks(NowMs());
    if (checkpoints_) checkpoints_->OnJobTerminated(end_reason_, /*delete_checkpoints=*/false);
    RecordEnded();
    spdlog::info("{}; its {} workers stop their tasks and stay registered", end_reason_, workers_.size());
  }

  void FillJob(v1::JobStatus* response) {
    const int64_t now = NowMs();
    response->set_job_id(options_.job_id);
    response->set_state(state_);
    response->set_start_time_ms(start_time_ms_);
    response->set_topic(options_.topic);
    response->set_num_partitions(num_partitions_);
    response->set_max_parallelism(options_.max_parallelism);
    response->set_attempt(attempt_);
    response->set_min_workers(options_.min_workers);
    response->set_failure_cause(failure_cause_);
    response->set_failures(failures_);
    response->set_restarts(restarts_);
    response->set_restored_from(restored_from_);
    response->set_rescales(rescales_);
    FillCheckpoints(response->mutable_checkpoints());
    for (const WorkerEntry* w : WorkersInOrder()) FillWorker(*w, now, response->add_workers());
  }

  void FillCheckpoints(v1::CheckpointOverview* overview) const {
    if (checkpoints_) checkpoints_->FillOverview(overview);
    overview->set_restored(restored_count_);
    if (latest_restored_) *overview->mutable_latest_restored() = *latest_restored_;
  }

  static void FillWorker(const WorkerEntry& w, int64_t now, v1::WorkerStatus* s) {
    s->set_worker_id(w.id);
    s->set_host(w.registration.host());
    s->set_data_port(w.registration.data_port());
    s->set_heartbeat_age_ms(now - w.last_heartbeat_ms);
    s->set_registered_at_ms(w.registered_at_ms);
    s->set_standby(!w.in_attempt());
    if (w.in_attempt()) *s->mutable_assignment() = w.assignment;
    *s->mutable_counters() = w.counters;
  }

  // Checkpoint acknowledgements go straight to the checkpoint coordinator,
  // which knows the attempt and workers of its pending checkpoint.
  grpc::Status AcknowledgeCheckpoint(grpc::ServerContext* context, const v1::AcknowledgeCheckpointRequest* request,
                                     v1::AcknowledgeCheckpointResponse*) override {
    if (grpc::Status denied = Authorize(*context, Access::kInternal, "AcknowledgeCheckpoint"); !denied.ok()) return denied;
    if (!checkpoints_) return CheckpointingDisabled();
    return ToGrpcStatus(checkpoints_->Acknowledge(*request));
  }

  grpc::Status DeclineCheckpoint(grpc::ServerContext* context, const v1::DeclineCheckpointRequest* request,
                                 v1::DeclineCheckpointResponse*) override {
    if (grpc::Status denied = Authorize(*context, Access::kInternal, "DeclineCheckpoint"); !denied.ok()) return denied;
    if (!checkpoints_) return CheckpointingDisabled();
    return ToGrpcStatus(checkpoints_->Decline(*request));
  }

  // Flink notices a TaskManager whose connection is gone without waiting for
  // its heartbeat timeout. Here: a worker silent for a while, or one the
  // coordinator waits for (a failed attempt's worker that has not reported
  // its task stopped), is probed with a TCP connection to its data port; a
  // refused connection means the process is gone, and the worker is lost at
  // once. Called by the prober thread, never under the lock during probes.
  void ProbeWorkers() {
    struct Candidate {
      std::string id;
      std::string host;
      int port;
      int64_t last_heartbeat_ms;
    };
    std::vector<Candidate> candidates;
    {
      std::lock_guard lock(mu_);
      const int64_t now = NowMs();
      for (const auto& [id, w] : workers_) {
        const bool awaited = state_ == kRestarting && (w.runs_stale_task() || w.stale_since_ms != 0);
        if (now - w.last_heartbeat_ms >= kProbeAfterSilenceMs || awaited) {
          candidates.push_back({id, w.registration.host(), w.registration.data_port(), w.last_heartbeat_ms});
        }
      }
    }
    for (const Candidate& c : candidates) {
      if (!ConnectionRefused(c.host, c.port, 300)) continue;
      std::lock_guard lock(mu_);
      auto it = workers_.find(c.id);
      if (it == workers_.end() || it->second.last_heartbeat_ms != c.last_heartbeat_ms) continue;  // it spoke since
      const std::string cause = absl::StrCat("worker ", c.id, " lost: its data endpoint ", c.host, ":", c.port,
                                             " refuses connections (the process is gone)");
      spdlog::warn("{}", cause);
      const bool in_attempt = it->second.in_attempt();
      Forget(c.id, cause);
      workers_.erase(it);
      const int64_t now = NowMs();
      if (in_attempt && state_ == kRunning) FailAttempt(cause, /*failed=*/true, now);
      if (state_ == kCreated || state_ == kRestarting) MaybeDeploy(now);
    }
  }

  // Reads the topic's partition count again (partition discovery). Called by
  // the discovery thread, never under the lock while it asks the broker.
  void DiscoverPartitions() {
    {
      std::lock_guard lock(mu_);
      if (num_partitions_ <= 0 || IsTerminal()) return;  // not started, or over
    }
    absl::StatusOr<int> count = options_.partition_count();
    std::lock_guard lock(mu_);
    if (num_partitions_ <= 0 || IsTerminal()) return;
    const int known = std::max(num_partitions_, pending_partition_count_);
    std::string cause;
    if (!count.ok() && absl::IsNotFound(count.status())) {
      cause = absl::StrCat("the input topic ", options_.topic, " vanished (", count.status().message(), ")");
    } else if (!count.ok()) {
      spdlog::warn("partition discovery: cannot read the partitions of {}: {}", options_.topic,
                   count.status().message());
      return;
    } else if (*count < num_partitions_) {
      cause = absl::StrCat("the input topic ", options_.topic, " shrank from ", num_partitions_, " to ", *count,
                           " partitions (Kafka cannot remove partitions: was it deleted and created again?)");
    } else if (*count > known) {
      spdlog::info("partition discovery: topic {} grew from {} to {} partitions; the new ones are read from their "
                   "earliest offset once the job is redeployed",
                   options_.topic, known, *count);
      pending_partition_count_ = *count;
    }
    if (cause.empty()) return;
    const int64_t now = NowMs();
    if (state_ == kRunning) FailAttempt(cause, /*failed=*/false, now);
    if (!IsTerminal()) FailJob(cause);
  }

  // Reaper tick: expires silent workers and workers that do not cancel their
  // task, and deploys when it is time.
  void Tick() {
    std::lock_guard lock(mu_);
    const int64_t now = NowMs();
    for (auto it = workers_.begin(); it != workers_.end();) {
      WorkerEntry& w = it->second;
      const int64_t age = now - w.last_heartbeat_ms;
      std::string cause;
      if (age > options_.heartbeat_timeout_ms) {
        cause = absl::StrCat("worker ", w.id, " lost: no heartbeat for ", age, " ms (heartbeat.timeout ",
                             options_.heartbeat_timeout_ms, " ms)");
        spdlog::warn("{}", cause);
      } else if (w.stale_since_ms != 0 && options_.cancellation_timeout_ms > 0 &&
                 now - w.stale_since_ms > options_.cancellation_timeout_ms) {
        cause = absl::StrCat("worker ", w.id, " still runs its task of attempt ", w.counters.attempt(), " ",
                             now - w.stale_since_ms, " ms after it was told to cancel it (task.cancellation.timeout ",
                             options_.cancellation_timeout_ms, " ms)");
        spdlog::error("{}: dropping the worker (its next heartbeat is answered known=false)", cause);
      } else {
        ++it;
        continue;
      }
      const bool in_attempt = w.in_attempt();
      Forget(w.id, cause);
      it = workers_.erase(it);  // FailAttempt below erases nothing: `it` stays valid
      if (in_attempt && state_ == kRunning) FailAttempt(cause, /*failed=*/true, now);
    }
    for (auto it = leaving_.begin(); it != leaving_.end();) {
      if (now - it->second <= options_.heartbeat_timeout_ms) {
        ++it;
        continue;
      }
      spdlog::warn("worker {} left {} ms ago and never said its task stopped (heartbeat.timeout {} ms): not waiting "
                   "for it any more",
                   it->first, now - it->second, options_.heartbeat_timeout_ms);
      it = leaving_.erase(it);
    }
    if (state_ == kCreated || state_ == kRestarting) MaybeDeploy(now);
    if (state_ == kRunning) MaybeRescale(now);
    if (state_ == kRunning) MaybeReadNewPartitions(now);
  }

 private:
  // Every RPC starts here: the job must not change, nor be read, for a
  // caller without the token its kind of access needs (AccessControl).
  grpc::Status Authorize(const grpc::ServerContext& context, Access access, const char* method) const {
    const absl::Status s = options_.access.Check(access, AuthorizationOf(context));
    if (s.ok()) return grpc::Status::OK;
    spdlog::warn("refused {} from {}: {}", method, context.peer(), s.message());
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(s.message()));
  }

  // Workers registered but not in the running attempt, that the next
  // deployment would use (it takes at most max_parallelism workers).
  int JoinedWorkerCount() const {
    const int in_attempt = AttemptWorkerCount();
    const int usable = std::min<int>(static_cast<int>(workers_.size()), options_.max_parallelism);
    return std::max(0, usable - in_attempt);
  }

  bool CanRescale() const { return options_.rescale_on_join && checkpoints_ != nullptr; }

  const char* WhyNoRescale() const {
    if (!options_.rescale_on_join) return "it waits as a standby (scheduler-mode is not reactive)";
    return "it waits as a standby (rescaling needs checkpoints: state.checkpoints.dir)";
  }

  // Reactive mode: workers joined the running attempt. Once none joined for
  // `stabilization_ms`, ask for a checkpoint; once a checkpoint of this
  // attempt newer than the request completed, end the attempt (not a
  // failure) so the next one is deployed over every worker from it. The
  // workers keep processing while the checkpoint is written; what they do
  // after its barrier is replayed by the next attempt, as in a recovery.
  void MaybeRescale(int64_t now) {
    const int joined = JoinedWorkerCount();
    if (joined == 0 || !CanRescale()) {
      rescale_requested_at_ms_ = 0;
      return;
    }
    if (now - last_registration_ms_ < options_.stabilization_ms) return;
    // New workers must be ready (idle and heard from since they registered).
    for (const auto& [id, w] : workers_) {
      if (!w.in_attempt() && !ReadyForDeployment(w)) return;
    }
    const std::optional<CompletedCheckpoint> latest = checkpoints_->LatestCompleted();
    const int64_t latest_id = latest ? latest->metadata.checkpoint_id() : 0;
    if (rescale_requested_at_ms_ == 0) {
      rescale_requested_at_ms_ = now;
      rescale_after_checkpoint_ = latest_id;
      spdlog::info("rescale of job {}: {} worker(s) joined attempt {} on {} workers; taking a checkpoint, then "
                   "redeploying on {} workers",
                   options_.job_id, joined, attempt_, AttemptWorkerCount(), AttemptWorkerCount() + joined);
    }
    if (latest && latest_id > rescale_after_checkpoint_ && latest->metadata.attempt() == attempt_) {
      const int from = AttemptWorkerCount();
      ++rescales_;
      rescale_attempt_ = attempt_ + 1;
      const std::string cause =
          absl::StrCat("rescale from ", from, " to ", from + joined, " workers after checkpoint ", latest_id, " (",
                       now - rescale_requested_at_ms_, " ms after it was requested)");
      rescale_requested_at_ms_ = 0;
      FailAttempt(cause, /*failed=*/false, now);
      MaybeDeploy(now);
      return;
    }
    // Asks again while a checkpoint or savepoint in progress delays it, or
    // after one failed.
    checkpoints_->RequestCheckpoint(attempt_);
  }

  // Partition discovery found more partitions: as for a rescale, end the
  // attempt (not a failure) once a checkpoint of it newer than the discovery
  // completed; the next attempt (Deploy) reads every partition. Without
  // checkpointing the attempt ends at once.
  void MaybeReadNewPartitions(int64_t now) {
    if (pending_partition_count_ <= num_partitions_) {
      grow_requested_at_ms_ = 0;
      return;
    }
    const std::string cause = absl::StrCat("topic ", options_.topic, " grew from ", num_partitions_, " to ",
                                           pending_partition_count_, " partitions");
    if (checkpoints_ == nullptr) {
      FailAttempt(cause, /*failed=*/false, now);
      MaybeDeploy(now);
      return;
    }
    const std::optional<CompletedCheckpoint> latest = checkpoints_->LatestCompleted();
    const int64_t latest_id = latest ? latest->metadata.checkpoint_id() : 0;
    if (grow_requested_at_ms_ == 0) {
      grow_requested_at_ms_ = now;
      grow_after_checkpoint_ = latest_id;
      spdlog::info("{}: taking a checkpoint of attempt {}, then redeploying with every partition", cause, attempt_);
    }
    if (latest && latest_id > grow_after_checkpoint_ && latest->metadata.attempt() == attempt_) {
      grow_requested_at_ms_ = 0;
      FailAttempt(absl::StrCat(cause, " (redeployed after checkpoint ", latest_id, ")"), /*failed=*/false, now);
      MaybeDeploy(now);
      return;
    }
    checkpoints_->RequestCheckpoint(attempt_);
  }

  static grpc::Status CheckpointingDisabled() {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "checkpointing is disabled on this coordinator (no state.checkpoints.dir job directory)");
  }

  bool IsTerminal() const { return state_ == kFailed || state_ == kCanceled || state_ == kFinished; }

  // Flink answers an unknown job id with NOT_FOUND ("Job ... not found").
  absl::Status CheckJobId(const std::string& job_id) const {
    if (job_id.empty()) return absl::InvalidArgumentError("a job id is required (slipstream list shows it)");
    if (job_id != options_.job_id) {
      return absl::NotFoundError(
          absl::StrCat("job ", job_id, " not found: this coordinator runs job ", options_.job_id));
    }
    return absl::OkStatus();
  }

  // A restarted coordinator must not resume a job that ended for good: a
  // marker in the job directory makes it start a new job instead. A small
  // local write, done under the lock so no request sees the job ended
  // before it is recorded.
  void RecordEnded() {
    if (options_.job_dir.empty()) return;
    if (absl::Status s = RecordJobEnded(options_.job_dir, state_, end_reason_); !s.ok()) {
      spdlog::error("job {} is {}, but {}: a restarted coordinator would resume it", options_.job_id, state_,
                    std::string(s.message()));
    }
  }

  // Every worker's task ends (CANCELED, FINISHED): assignments cleared, so
  // heartbeat answers tell them to cancel with `end_reason_`.
  void EndAllTasks(int64_t now) {
    ended_at_ms_ = now;
    end_seq_ = ++events_;
    for (auto& [id, w] : workers_) {
      w.assignment.Clear();
      UpdateStale(w, now);
    }
  }

  absl::Status StartSavepoint(const std::string& job_id, const std::string& target_dir, bool stop,
                              v1::SavepointOperation* out) {
    const std::string what = stop ? "stop-with-savepoint" : "savepoint";
    auto check = [&]() -> absl::Status {
      if (absl::Status s = CheckJobId(job_id); !s.ok()) return s;
      if (!checkpoints_) {
        return absl::FailedPreconditionError(
            "checkpointing is disabled on this coordinator (no state.checkpoints.dir job directory)");
      }
      if (state_ != kRunning) {
        return absl::FailedPreconditionError(absl::StrCat("job ", options_.job_id, " is ", state_, ": a ", what,
                                                          " needs a RUNNING job"));
      }
      return absl::OkStatus();
    };
    {
      std::lock_guard lock(mu_);
      if (absl::Status s = check(); !s.ok()) return s;
    }
    // Creating and probing the directory is I/O: outside the lock.
    absl::StatusOr<std::string> dir = NewSavepointDirectory(target_dir, options_.savepoints_dir, options_.job_id);
    if (!dir.ok()) return dir.status();
    std::lock_guard lock(mu_);
    if (absl::Status s = check(); !s.ok()) return s;
    absl::StatusOr<v1::SavepointOperation> op = checkpoints_->TriggerSavepoint(*dir, stop);
    if (!op.ok()) return op.status();
    spdlog::info("{} of job {} requested (request {}) into {}", what, options_.job_id, op->request_id(), *dir);
    *out = *std::move(op);
    return absl::OkStatus();
  }

  absl::Status Dispose(const std::string& path_text, v1::DisposeSavepointResponse* response) {
    if (path_text.empty()) return absl::InvalidArgumentError("a savepoint path is required");
    absl::StatusOr<std::string> local = LocalPathFromUri("savepoint path", path_text);
    if (!local.ok()) return local.status();
    if (!std::filesystem::path(*local).is_absolute()) {
      return absl::InvalidArgumentError(absl::StrCat("savepoint path \"", path_text,
                                                     "\" is not absolute; give an absolute path or a file:/// URI"));
    }
    absl::StatusOr<CompletedCheckpoint> savepoint = ReadCompletedCheckpoint(*local);
    if (!savepoint.ok()) {
      if (savepoint.status().code() == absl::StatusCode::kNotFound) return savepoint.status();
      return absl::InvalidArgumentError(
          absl::StrCat("cannot dispose ", *local, ": not a readable savepoint: ", savepoint.status().message()));
    }
    if (!savepoint->metadata.savepoint()) {
      return absl::InvalidArgumentError(absl::StrCat(
          savepoint->path, " is checkpoint ", savepoint->metadata.checkpoint_id(), " of job ",
          savepoint->metadata.job_id(), ", not a savepoint (checkpoints are removed by state.checkpoints.num-retained "
                                        "and externalized-checkpoint-retention)"));
    }
    {
      std::lock_guard lock(mu_);
      const std::optional<CompletedCheckpoint> source = RestoreSource();
      std::error_code ec_a, ec_b;
      if (!IsTerminal() && source && savepoint_ && source->path == savepoint_->path &&
          std::filesystem::weakly_canonical(source->path, ec_a) ==
              std::filesystem::weakly_canonical(savepoint->path, ec_b)) {
        return absl::FailedPreconditionError(
            absl::StrCat("job ", options_.job_id, " restored savepoint ", savepoint->path,
                         " and needs it to recover until one of its own checkpoints completes; try again later"));
      }
    }
    std::error_code ec;
    std::filesystem::remove_all(savepoint->path, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot delete ", savepoint->path, ": ", ec.message()));
    spdlog::info("disposed savepoint {} (checkpoint {} of job {})", savepoint->path,
                 savepoint->metadata.checkpoint_id(), savepoint->metadata.job_id());
    response->set_path(savepoint->path);
    return absl::OkStatus();
  }

  void Forget(const std::string& id, const std::string& reason) {
    if (forgotten_.size() >= kMaxForgotten) forgotten_.clear();
    forgotten_[id] = reason;
  }

  int AttemptWorkerCount() const {
    int n = 0;
    for (const auto& [id, w] : workers_) n += w.in_attempt() ? 1 : 0;
    return n;
  }

  // Attempt workers by index, then standbys by registration order.
  std::vector<const WorkerEntry*> WorkersInOrder() const {
    std::vector<const WorkerEntry*> out;
    for (const auto& [id, w] : workers_) out.push_back(&w);
    std::sort(out.begin(), out.end(), [](const WorkerEntry* a, const WorkerEntry* b) {
      if (a->in_attempt() != b->in_attempt()) return a->in_attempt();
      if (a->in_attempt()) return a->assignment.worker_index() < b->assignment.worker_index();
      return a->sequence < b->sequence;
    });
    return out;
  }

  // The reason in a heartbeat answer without an assignment.
  std::string WhyNoAssignment() const {
    if (state_ == kRunning) {
      return absl::StrCat("standby: attempt ", attempt_, " of job ", options_.job_id, " runs on ",
                          AttemptWorkerCount(), " workers");
    }
    if (state_ == kCreated) {
      return absl::StrCat("job ", options_.job_id, " waits for cluster.min-workers=", options_.min_workers,
                          " workers");
    }
    return end_reason_;
  }

  void UpdateStale(WorkerEntry& w, int64_t now) {
    if (!w.runs_stale_task()) {
      w.stale_since_ms = 0;
    } else if (w.stale_since_ms == 0) {
      w.stale_since_ms = now;
    }
  }

  // A heartbeat's failure_cause: fails the running attempt when it is the
  // failure of this worker's task in it.
  void OnReportedFailure(const WorkerEntry& w, const std::string& cause, int64_t attempt, int64_t now) {
    if (state_ == kRunning && w.in_attempt() && (attempt == attempt_ || attempt == 0)) {
      spdlog::error("worker {}: its task of attempt {} failed: {}", w.id, attempt_, cause);
      FailAttempt(absl::StrCat("worker ", w.id, " failed: ", cause), /*failed=*/true, now);
      return;
    }
    spdlog::warn("worker {}: its task of attempt {} failed: {} (ignored: attempt {} is {})", w.id, attempt, cause,
                 attempt_, state_ == kRunning ? "running without it" : "over");
  }

  // Idle for the next deployment: its latest report came after the last
  // attempt ended and says it runs no task.
  bool ReadyForDeployment(const WorkerEntry& w) const {
    return w.counters.attempt() == 0 && w.report_seq > end_seq_;
  }

  void MaybeDeploy(int64_t now) {
    if (static_cast<int>(workers_.size()) < options_.min_workers) return;
    if (now - last_registration_ms_ < options_.stabilization_ms) return;
    if (SteadyUs() < restart_at_us_) return;
    std::vector<std::string> busy;
    for (const auto& [id, since] : leaving_) busy.push_back(absl::StrCat(id, " (left, its task still stopping)"));
    for (const auto& [id, w] : workers_) {
      if (ReadyForDeployment(w)) continue;
      busy.push_back(w.counters.attempt() != 0
                         ? absl::StrCat(id, " (still runs attempt ", w.counters.attempt(), ")")
                         : absl::StrCat(id, " (no heartbeat since attempt ", attempt_, " ended)"));
    }
    if (!busy.empty()) {
      if (now - last_wait_log_ms_ >= kWaitLogIntervalMs) {
        last_wait_log_ms_ = now;
        spdlog::info("job {}: attempt {} waits for its workers to stop their tasks: {}", options_.job_id,
                     attempt_ + 1, absl::StrJoin(busy, ", "));
      }
      return;
    }
    Deploy(now);
  }

  // Where the next attempt starts from: the newest completed checkpoint of
  // the job, or execution.savepoint.path while no checkpoint of the job is
  // newer than it (completed after it, or during this run).
  std::optional<CompletedCheckpoint> RestoreSource() const {
    std::optional<CompletedCheckpoint> latest;
    if (checkpoints_) latest = checkpoints_->LatestCompleted();
    if (!savepoint_) return latest;
    if (!latest) return savepoint_;
    if (latest->metadata.checkpoint_id() > latest_at_start_id_ ||
        latest->metadata.completion_time_ms() > savepoint_->metadata.completion_time_ms()) {
      return latest;
    }
    return savepoint_;
  }

  // A checkpoint can be restored into this job: same key groups and topic,
  // and its snapshots cover every key group.
  absl::Status CheckRestorable(const CompletedCheckpoint& c) const {
    const v1::CheckpointMetadata& m = c.metadata;
    const std::string what = absl::StrCat("cannot restore checkpoint ", m.checkpoint_id(), " from ", c.path);
    if (m.max_parallelism() != options_.max_parallelism) {
      return absl::FailedPreconditionError(absl::StrCat(
          what, ": it was taken with pipeline.max-parallelism=", m.max_parallelism(),
          " but the job runs with pipeline.max-parallelism=", options_.max_parallelism,
          " (state is stored by key group: keep pipeline.max-parallelism unchanged, or start without the "
          "checkpoint)"));
    }
    if (m.topic() != options_.topic) {
      return absl::FailedPreconditionError(absl::StrCat(what, ": it read kafka.topic \"", m.topic(),
                                                        "\" but the job reads kafka.topic \"", options_.topic,
                                                        "\" (its offsets belong to the other topic)"));
    }
    std::vector<std::pair<int, int>> ranges;
    for (const v1::WorkerSnapshot& s : m.workers()) {
      ranges.emplace_back(s.key_groups().first(), s.key_groups().last());
    }
    std::sort(ranges.begin(), ranges.end());
    int next = 0;  // first key group not covered so far
    for (const auto& [first, last] : ranges) {
      if (first > next) break;
      next = std::max(next, last + 1);
    }
    if (next < options_.max_parallelism) {
      return absl::FailedPreconditionError(absl::StrCat(what, ": its worker snapshots do not cover key group ",
                                                        next, " of 0-", options_.max_parallelism - 1));
    }
    return absl::OkStatus();
  }

  // The restart strategy gave up, or the job cannot be restored: terminal.
  void FailJob(const std::string& cause) {
    state_ = kFailed;
    failure_cause_ = cause;
    end_reason_ = absl::StrCat("job ", options_.job_id, " FAILED: ", cause);
    spdlog::error("job {} FAILED (terminal; its {} registered workers stay idle): {}", options_.job_id,
                  workers_.size(), cause);
  }

  // Deploys the next attempt over every registered worker, in registration
  // order (so indices, and with them partitions and key-group ranges, are
  // stable for workers that stay), restoring the newest completed checkpoint.
  void Deploy(int64_t now) {
    std::optional<CompletedCheckpoint> restore = RestoreSource();
    if (restore) {
      if (absl::Status s = CheckRestorable(*restore); !s.ok()) {
        FailJob(std::string(s.message()));
        return;
      }
    }
    // Partitions discovered since the last deployment are read from now on,
    // from their earliest offset until a checkpoint has theirs.
    if (pending_partition_count_ > num_partitions_) {
      for (int p = num_partitions_; p < pending_partition_count_; ++p) discovered_partitions_.insert(p);
      num_partitions_ = pending_partition_count_;
    }
    std::vector<WorkerEntry*> ordered;
    for (auto& [id, w] : workers_) ordered.push_back(&w);
    std::sort(ordered.begin(), ordered.end(),
              [](const WorkerEntry* a, const WorkerEntry* b) { return a->sequence < b->sequence; });
    // More workers than key groups would leave some without keys: those stay
    // standbys.
    if (static_cast<int>(ordered.size()) > options_.max_parallelism) ordered.resize(options_.max_parallelism);
    const int n = static_cast<int>(ordered.size());
    const std::vector<WorkerAssignment> plan = ComputeAssignment(num_partitions_, options_.max_parallelism, n);
    ++attempt_;
    if (!options_.job_dir.empty()) {
      if (absl::Status recorded = RecordAttempt(options_.job_dir, attempt_); !recorded.ok()) {
        spdlog::warn("attempt {}: {} (a restarted coordinator would count from 1 again)", attempt_,
                     recorded.message());
      }
    }
    if (attempt_ > 1 && last_end_was_failure_) ++restarts_;
    std::vector<v1::PeerEndpoint> peers(n);
    for (int i = 0; i < n; ++i) {
      peers[i].set_index(i);
      peers[i].set_worker_id(ordered[i]->id);
      peers[i].set_host(ordered[i]->registration.host());
      peers[i].set_data_port(ordered[i]->registration.data_port());
      peers[i].mutable_key_groups()->set_first(plan[i].key_groups.first);
      peers[i].mutable_key_groups()->set_last(plan[i].key_groups.last);
    }
    // The checkpoint's offsets by partition (a partition nothing was read
    // from yet, -1, is left out: it starts from kafka.starting-offsets).
    // With it goes the partition's watermark and idleness at the barrier.
    std::map<int32_t, v1::PartitionOffset> offsets;
    if (restore) {
      for (const v1::WorkerSnapshot& s : restore->metadata.workers()) {
        for (const v1::PartitionOffset& o : s.offsets()) {
          if (o.next_offset() < 0) continue;
          auto [pos, inserted] = offsets.emplace(o.partition(), o);
          if (!inserted && o.next_offset() > pos->second.next_offset()) pos->second = o;
        }
      }
    }
    for (int i = 0; i < n; ++i) {
      v1::Assignment& a = ordered[i]->assignment;
      a.Clear();
      a.set_job_id(options_.job_id);
      a.set_attempt(attempt_);
      a.set_topic(options_.topic);
      a.set_max_parallelism(options_.max_parallelism);
      for (int p : plan[i].partitions) a.add_partitions(p);
      *a.add_key_groups() = peers[i].key_groups();
      a.set_worker_index(i);
      for (const v1::PeerEndpoint& peer : peers) *a.add_workers() = peer;
      if (restore) {
        v1::RestoreInfo* r = a.mutable_restore();
        r->set_checkpoint_path(restore->path);
        r->set_checkpoint_id(restore->metadata.checkpoint_id());
        *r->mutable_snapshots() = restore->metadata.workers();
        for (int p : plan[i].partitions) {
          if (auto o = offsets.find(p); o != offsets.end()) *r->add_offsets() = o->second;
        }
      }
      for (int p : plan[i].partitions) {
        if (discovered_partitions_.count(p) && !offsets.count(p)) a.add_earliest_partitions(p);
      }
    }
    state_ = kRunning;
    restored_from_ = restore ? restore->path : "";
    if (restore) {
      ++restored_count_;
      latest_restored_ = CheckpointStatsFromMetadata(restore->metadata, restore->path);
    }
    if (checkpoints_) {
      checkpoints_->OnAttemptDeployed(attempt_, peers, num_partitions_, restored_from_,
                                      restore ? restore->metadata.checkpoint_id() : 0);
    }
    spdlog::info("deploying attempt {} of job {} on {} workers ({} partitions, {} key groups){}", attempt_,
                 options_.job_id, n, num_partitions_, options_.max_parallelism,
                 attempt_ > 1 ? absl::StrCat(" after ", now - ended_at_ms_, " ms of ",
                                             attempt_ == rescale_attempt_ ? "rescale" : "recovery")
                              : "");
    if (restore) {
      spdlog::info("attempt {} restores checkpoint {} from {} ({} worker snapshots, offsets of {} partitions)",
                   attempt_, restore->metadata.checkpoint_id(), restore->path, restore->metadata.workers_size(),
                   offsets.size());
    } else {
      spdlog::info("attempt {} starts without a checkpoint: empty state, kafka.starting-offsets", attempt_);
    }
    for (int i = 0; i < n; ++i) {
      const v1::Assignment& a = ordered[i]->assignment;
      spdlog::info("  worker {} {} (data {}:{}): partitions [{}], key groups {}", i, ordered[i]->id,
                   ordered[i]->registration.host(), ordered[i]->registration.data_port(), JoinInts(a.partitions()),
                   plan[i].key_groups.ToString());
    }
  }

  // Ends the running attempt. Its workers stay registered without an
  // assignment (their heartbeats are answered with `cause`, so they cancel
  // their tasks); the restart strategy decides whether and when the next
  // attempt follows (RESTARTING) or the job fails (FAILED).
  void FailAttempt(const std::string& cause, bool failed, int64_t now) {
    if (failed) ++failures_;
    failure_cause_ = cause;
    last_end_was_failure_ = failed;
    ended_at_ms_ = now;
    end_seq_ = ++events_;
    if (checkpoints_) checkpoints_->OnAttemptEnded(attempt_, cause);
    for (auto& [id, w] : workers_) {
      w.assignment.Clear();
      UpdateStale(w, now);
    }
    std::optional<int64_t> delay_ms = 0;
    if (failed) delay_ms = restart_strategy_.OnFailure(now);
    // A worker leaving on purpose (SIGTERM, e.g. the whole cluster stopping)
    // is expected; a lost or failing one is an error.
    spdlog::log(failed ? spdlog::level::err : spdlog::level::warn, "attempt {} of job {} {}: {}", attempt_,
                options_.job_id, failed ? "failed" : "ended", cause);
    if (!delay_ms) {
      FailJob(absl::StrCat(cause, " (not restarted: ", restart_strategy_.GiveUpReason(), ")"));
      return;
    }
    state_ = kRestarting;
    const int64_t delay_us = *delay_ms >= INT64_MAX / 4000 ? INT64_MAX / 4 : *delay_ms * 1000;
    restart_at_us_ = SteadyUs() + delay_us;
    last_wait_log_ms_ = now;  // the first "waits for" line only after kWaitLogIntervalMs
    end_reason_ = absl::StrCat("attempt ", attempt_, " of job ", options_.job_id, failed ? " failed: " : " ended: ",
                               cause);
    spdlog::info("job {} restarts in {} ms ({}{}): attempt {} is deployed once cluster.min-workers={} workers are "
                 "registered and every worker has stopped its task",
                 options_.job_id, *delay_ms, failed ? "restart strategy " : "not a failure",
                 failed ? restart_strategy_.Describe() : "", attempt_ + 1, options_.min_workers);
  }

  // Logs when a worker starts or stops having trouble with a data channel.
  void ReportChannelChanges(const WorkerEntry& w, const v1::WorkerCounters& now) {
    std::map<std::pair<std::string, bool>, std::string> before;
    for (const v1::ChannelStatus& c : w.counters.channels()) before[{c.peer_worker_id(), c.outbound()}] = c.error();
    for (const v1::ChannelStatus& c : now.channels()) {
      const std::string& old = before[{c.peer_worker_id(), c.outbound()}];
      if (c.error() == old) continue;
      if (c.error().empty()) {
        spdlog::info("worker {}: channel {} peer {} works again", w.id, c.outbound() ? "to" : "from",
                     c.peer_worker_id());
      } else {
        spdlog::warn("worker {}: channel {} peer {}: {}", w.id, c.outbound() ? "to" : "from", c.peer_worker_id(),
                     c.error());
      }
    }
  }

  const CoordinatorOptions options_;
  const int64_t start_time_ms_;
  std::mutex mu_;
  std::map<std::string, WorkerEntry> workers_;
  // Workers that left on purpose while their task still ran (SIGTERM):
  // no longer part of the job, but no attempt is deployed until each says
  // its task has stopped (a second DeregisterWorker) or `heartbeat.timeout`
  // passed. Worker id -> when it left.
  std::map<std::string, int64_t> leaving_;
  std::map<std::string, std::string> forgotten_;  // worker id -> why it was dropped
  std::string state_ = kCreated;
  std::string failure_cause_;
  std::string end_reason_;  // why workers have no assignment while RESTARTING or FAILED
  int64_t failures_ = 0;
  int64_t restarts_ = 0;
  bool last_end_was_failure_ = false;
  int64_t registrations_ = 0;
  int64_t last_registration_ms_ = 0;
  int64_t events_ = 0;        // sequence of registrations, heartbeats and attempt ends
  int64_t end_seq_ = 0;       // event sequence of the last attempt end
  int64_t ended_at_ms_ = 0;
  int64_t restart_at_us_ = 0;  // SteadyUs() before which the next attempt is not deployed
  int64_t last_wait_log_ms_ = 0;
  int num_partitions_ = 0;
  // Partition discovery: a larger count seen (applied at the next Deploy),
  // the partitions found that way, and the checkpoint the redeploy waits for.
  int pending_partition_count_ = 0;
  std::set<int> discovered_partitions_;
  int64_t grow_requested_at_ms_ = 0;
  int64_t grow_after_checkpoint_ = 0;
  int64_t attempt_ = 0;
  RestartStrategy restart_strategy_;
  std::unique_ptr<CheckpointCoordinator> checkpoints_;
  std::optional<CompletedCheckpoint> savepoint_;
  int64_t latest_at_start_id_ = 0;  // newest completed checkpoint found on start
  int64_t restored_count_ = 0;
  std::optional<v1::CheckpointStats> latest_restored_;
  int64_t rescales_ = 0;
  int64_t rescale_requested_at_ms_ = 0;  // the pending rescale asked for a checkpoint then (0: none)
  int64_t rescale_after_checkpoint_ = 0;  // newest completed checkpoint id at that moment
  int64_t rescale_attempt_ = 0;           // the attempt a rescale deploys (for its log line)
  std::string restored_from_;
};

}  // namespace

struct CoordinatorServer::Impl {
  std::unique_ptr<CoordinatorService> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread reaper;
  std::thread prober;  // CoordinatorService::ProbeWorkers, when enabled
  std::thread discoverer;  // CoordinatorService::DiscoverPartitions, when enabled
};

CoordinatorServer::CoordinatorServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(CoordinatorOptions options) {
  auto impl = std::make_unique<Impl>();
  const std::string address = options.listen_address;
  const int64_t timeout_ms = options.heartbeat_timeout_ms;
  const bool probe_workers = options.probe_workers;
  const bool background_ticks = options.background_ticks;
  const int64_t discovery_interval_ms = options.partition_discovery_interval_ms;
  CheckpointCoordinatorOptions checkpoint_options;
  checkpoint_options.settings = options.checkpoints;
  checkpoint_options.clock = options.clock;
  checkpoint_options.job_dir = options.job_dir;
  checkpoint_options.job_id = options.job_id;
  checkpoint_options.topic = options.topic;
  checkpoint_options.max_parallelism = options.max_parallelism;
  checkpoint_options.make_stub = options.task_control_stub;
  if (!checkpoint_options.make_stub) {
    // Calls to workers' TaskControl are internal: TLS as configured, and the
    // internal token the workers require.
    const GrpcSecurity to_workers = options.security.WithToken(options.access.tokens().internal);
    checkpoint_options.make_stub = [to_workers](const std::string& target) {
      return std::unique_ptr<v1::TaskControl::StubInterface>(v1::TaskControl::NewStub(to_workers.Channel(target)));
    };
  }
  const std::shared_ptr<grpc::ServerCredentials> server_credentials = options.security.ServerCredentials();
  const bool checkpointing = !options.job_dir.empty();
  std::optional<CompletedCheckpoint> savepoint;
  if (!options.savepoint_path.empty()) {
    absl::StatusOr<CompletedCheckpoint> read = ReadCompletedCheckpoint(options.savepoint_path);
    if (!read.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("execution.savepoint.path: cannot restore from \"",
                                                     options.savepoint_path, "\": ", read.status().message()));
    }
    savepoint = *std::move(read);
  }
  impl->service = std::make_unique<CoordinatorService>(std::move(options));
  if (savepoint) impl->service->SetSavepoint(*std::move(savepoint));
  if (checkpointing) {
    CoordinatorService* service = impl->service.get();
    checkpoint_options.on_failure = [service](int64_t attempt, const std::string& cause) {
      service->FailAttemptForCheckpoints(attempt, cause);
    };
    checkpoint_options.on_stopped = [service](int64_t attempt, const std::string& path) {
      service->FinishJob(attempt, path);
    };
    absl::StatusOr<std::unique_ptr<CheckpointCoordinator>> checkpoints =
        CheckpointCoordinator::Start(std::move(checkpoint_options));
    if (!checkpoints.ok()) return checkpoints.status();
    impl->service->SetCheckpoints(*std::move(checkpoints));
  }
  impl->service->LogRestoreSource();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which would let a second coordinator
  // bind the same port and split the workers between the two.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(address, server_credentials, &impl->port);
  builder.RegisterService(impl->service.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return absl::UnavailableError(absl::StrCat("jobmanager.rpc.port: cannot listen on ", address,
                                               " (in use, or not a local address)"));
  }
  Impl* raw = impl.get();
  if (background_ticks) {
    impl->reaper = std::thread([raw, timeout_ms] {
      std::unique_lock lock(raw->mu);
      const auto period = std::chrono::milliseconds(std::clamp<int64_t>(timeout_ms / 10, 20, 100));
      while (!raw->cv.wait_for(lock, period, [raw] { return raw->stopping; })) raw->service->Tick();
    });
  }
  // A thread calling `work` every `period_ms` until Shutdown, outside the
  // server's lock (the work may wait on the network).
  auto every = [raw](int64_t period_ms, void (CoordinatorService::*work)()) {
    return std::thread([raw, period_ms, work] {
      std::unique_lock lock(raw->mu);
      while (!raw->cv.wait_for(lock, std::chrono::milliseconds(period_ms), [raw] { return raw->stopping; })) {
        lock.unlock();
        (raw->service.get()->*work)();
        lock.lock();
      }
    });
  };
  if (probe_workers) impl->prober = every(200, &CoordinatorService::ProbeWorkers);
  if (discovery_interval_ms > 0) impl->discoverer = every(discovery_interval_ms, &CoordinatorService::DiscoverPartitions);
  return std::unique_ptr<CoordinatorServer>(new CoordinatorServer(std::move(impl)));
}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

int CoordinatorServer::port() const { return impl_->port; }

void CoordinatorServer::Tick() { impl_->service->Tick(); }

void CoordinatorServer::Shutdown() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->reaper.joinable()) impl_->reaper.join();
  if (impl_->prober.joinable()) impl_->prober.join();
  if (impl_->discoverer.joinable()) impl_->discoverer.join();
  // Before the service goes: its thread may call back into the service.
  if (impl_->service->checkpoints() != nullptr) impl_->service->checkpoints()->Stop();
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

void CoordinatorServer::Wait() { impl_->server->Wait(); }

}  // namespace slipstream
