#include "coordinator/coordinator_service.h"

#include <filesystem>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "common/config.h"
#include "common/grpc_security.h"
#include "common/grpc_status.h"
#include "coordinator/feature_info.h"
#include "spdlog/spdlog.h"

namespace slipstream {
namespace {

// Silence after which a worker's data port is probed (heartbeat.interval
// defaults to 2 s).
constexpr int64_t kProbeAfterSilenceMs = 2500;
constexpr int kProbeTimeoutMs = 300;

grpc::Status CheckpointingDisabled() {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      "checkpointing is disabled on this coordinator (no state.checkpoints.dir job directory)");
}

void FillWorker(const WorkerEntry& w, int64_t now, v1::WorkerStatus* s) {
  s->set_worker_id(w.id);
  s->set_host(w.registration.host());
  s->set_data_port(w.registration.data_port());
  s->set_heartbeat_age_ms(now - w.last_heartbeat_ms);
  s->set_registered_at_ms(w.registered_at_ms);
  s->set_standby(!w.in_attempt());
  if (w.in_attempt()) *s->mutable_assignment() = w.assignment;
  *s->mutable_counters() = w.counters;
}

}  // namespace

CoordinatorService::CoordinatorService(CoordinatorOptions options)
    : options_(std::move(options)), lifecycle_(options_) {}

void CoordinatorService::SetCheckpoints(std::unique_ptr<CheckpointCoordinator> checkpoints) {
  job().checkpoints = std::move(checkpoints);
  if (std::optional<CompletedCheckpoint> latest = job().checkpoints->LatestCompleted()) {
    job().latest_at_start_id = latest->metadata.checkpoint_id();
  }
}

void CoordinatorService::SetSavepoint(CompletedCheckpoint savepoint) { job().savepoint = std::move(savepoint); }

void CoordinatorService::LogRestoreSource() {
  std::lock_guard lock(mu_);
  const std::optional<CompletedCheckpoint> source = job().RestoreSource();
  const std::optional<CompletedCheckpoint>& savepoint = job().savepoint;
  if (savepoint) {
    if (source && source->path != savepoint->path) {
      spdlog::warn("execution.savepoint.path {} (checkpoint {} of job {}) is not used: checkpoint {} of job {} "
                   "({}) is newer",
                   savepoint->path, savepoint->metadata.checkpoint_id(), savepoint->metadata.job_id(),
                   source->metadata.checkpoint_id(), options_.job_id, source->path);
    } else {
      spdlog::info("job {} will restore savepoint {} (checkpoint {} of job {}, {} worker snapshots)", options_.job_id,
                   savepoint->path, savepoint->metadata.checkpoint_id(), savepoint->metadata.job_id(),
                   savepoint->metadata.workers_size());
    }
  } else if (source) {
    spdlog::info("job {} will restore its latest completed checkpoint {} ({})", options_.job_id,
                 source->metadata.checkpoint_id(), source->path);
  }
  spdlog::info("restart strategy: {}", job().restart_strategy.Describe());
}

void CoordinatorService::Dispatch(JobEventKind kind, int64_t now, std::string cause, bool failure, int64_t attempt,
                                  std::string detail) {
  lifecycle_.Dispatch(JobEvent{kind, now, std::move(cause), failure, attempt, std::move(detail)});
}

void CoordinatorService::FailAttemptForCheckpoints(int64_t attempt, const std::string& cause) {
  std::lock_guard lock(mu_);
  Dispatch(JobEventKind::kAttemptEnded, job().NowMs(), cause, /*failure=*/true, attempt);
}

void CoordinatorService::FinishJob(int64_t attempt, const std::string& savepoint_path) {
  std::lock_guard lock(mu_);
  Dispatch(JobEventKind::kStopCompleted, job().NowMs(), "", true, attempt, savepoint_path);
}

void CoordinatorService::Tick() {
  std::lock_guard lock(mu_);
  const int64_t now = job().NowMs();
  for (const DroppedWorker& lost : job().workers.ExpireSilent(now)) {
    if (lost.in_attempt) Dispatch(JobEventKind::kAttemptEnded, now, lost.cause);
  }
  Dispatch(JobEventKind::kTick, now);
}

JobState CoordinatorService::state() {
  std::lock_guard lock(mu_);
  return lifecycle_.state();
}

void CoordinatorService::ProbeWorkers() {
  std::vector<ProbeTarget> targets;
  {
    std::lock_guard lock(mu_);
    targets = job().workers.ProbeTargets(job().NowMs(), kProbeAfterSilenceMs,
                                         lifecycle_.state() == JobState::kRestarting);
  }
  for (const ProbeTarget& target : targets) {
    if (!ConnectionRefused(target.host, target.port, kProbeTimeoutMs)) continue;
    std::lock_guard lock(mu_);
    const std::optional<DroppedWorker> lost = job().workers.DropRefused(target);
    if (!lost) continue;
    const int64_t now = job().NowMs();
    if (lost->in_attempt) Dispatch(JobEventKind::kAttemptEnded, now, lost->cause);
    Dispatch(JobEventKind::kWorkersChanged, now);
  }
}

void CoordinatorService::DiscoverPartitions() {
  {
    std::lock_guard lock(mu_);
    if (job().num_partitions <= 0 || IsTerminal(lifecycle_.state())) return;  // not started, or over
  }
  absl::StatusOr<int> count = options_.partition_count();
  std::lock_guard lock(mu_);
  JobContext& j = job();
  if (j.num_partitions <= 0 || IsTerminal(lifecycle_.state())) return;
  const int known = std::max(j.num_partitions, j.pending_partition_count);
  std::string cause;
  if (!count.ok() && absl::IsNotFound(count.status())) {
    cause = absl::StrCat("the input topic ", options_.topic, " vanished (", count.status().message(), ")");
  } else if (!count.ok()) {
    spdlog::warn("partition discovery: cannot read the partitions of {}: {}", options_.topic,
                 count.status().message());
    return;
  } else if (*count < j.num_partitions) {
    cause = absl::StrCat("the input topic ", options_.topic, " shrank from ", j.num_partitions, " to ", *count,
                         " partitions (Kafka cannot remove partitions: was it deleted and created again?)");
  } else if (*count > known) {
    spdlog::info("partition discovery: topic {} grew from {} to {} partitions; the new ones are read from their "
                 "earliest offset once the job is redeployed",
                 options_.topic, known, *count);
    j.pending_partition_count = *count;
  }
  if (!cause.empty()) Dispatch(JobEventKind::kTopicChanged, j.NowMs(), cause);
}

// --- Worker RPCs ---------------------------------------------------------

grpc::Status CoordinatorService::RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest* request,
                                                v1::RegisterWorkerResponse* response) {
  if (request->host().empty() || request->data_port() <= 0 || request->data_port() > 65535) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("a worker must register with its host and data port (got host \"",
                                     request->host(), "\", data port ", request->data_port(), ")"));
  }
  std::lock_guard lock(mu_);
  if (job().num_partitions <= 0) {
    absl::StatusOr<int> count = options_.partition_count();
    if (!count.ok()) {
      return ToGrpcStatus(absl::UnavailableError(absl::StrCat("waiting for the input topic: ", count.status().message())));
    }
    job().num_partitions = *count;
    spdlog::info("topic {} has {} partitions", options_.topic, job().num_partitions);
  }
  if (options_.bounded && !job().stopping_offsets) {
    // Decided once, before the first deployment: every attempt and every
    // worker reads exactly the same input.
    if (!options_.stopping_offsets) {
      return ToGrpcStatus(absl::FailedPreconditionError("a bounded job needs its stopping offsets"));
    }
    absl::StatusOr<std::map<int, int64_t>> stopping = options_.stopping_offsets(job().num_partitions);
    if (!stopping.ok()) {
      return ToGrpcStatus(absl::UnavailableError(
          absl::StrCat("the bounded job's stopping offsets: ", stopping.status().message())));
    }
    std::string text;
    for (const auto& [p, offset] : *stopping) absl::StrAppend(&text, text.empty() ? "" : ", ", p, ":", offset);
    spdlog::info("bounded job {}: each partition is read up to its stopping offset (exclusive): {}",
                 options_.job_id, text);
    job().stopping_offsets = *std::move(stopping);
  }
  const int64_t now = job().NowMs();
  const std::string id = job().workers.Register(*request, now).id;
  LogRegistration(*job().workers.Find(id));
  Dispatch(JobEventKind::kWorkersChanged, now);
  response->set_worker_id(id);
  const WorkerEntry& registered = *job().workers.Find(id);
  if (registered.in_attempt()) *response->mutable_assignment() = registered.assignment;
  return grpc::Status::OK;
}

void CoordinatorService::LogRegistration(const WorkerEntry& w) {
  const v1::RegisterWorkerRequest& r = w.registration;
  const JobState state = lifecycle_.state();
  if (AttemptRuns(state)) {
    spdlog::info("worker {} registered (pid {}, data {}:{}) while attempt {} of job {} runs on {} workers: {}", w.id,
                 r.pid(), r.host(), r.data_port(), job().attempt, options_.job_id,
                 job().workers.AttemptWorkerCount(),
                 job().CanRescale() ? absl::StrCat("rescaling once no worker joined for ", options_.stabilization_ms,
                                                   " ms (cluster.stabilization-timeout)")
                                    : std::string(job().WhyNoRescale()));
  } else if (IsTerminal(state)) {
    spdlog::warn("worker {} registered (pid {}, data {}:{}) but {}; it stays idle", w.id, r.pid(), r.host(),
                 r.data_port(), job().end_reason);
  } else {
    spdlog::info("worker {} registered (pid {}, data {}:{}); {} of cluster.min-workers={} registered", w.id, r.pid(),
                 r.host(), r.data_port(), job().workers.size(), options_.min_workers);
  }
}

grpc::Status CoordinatorService::Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* request,
                                           v1::HeartbeatResponse* response) {
  std::lock_guard lock(mu_);
  const int64_t now = job().NowMs();
  const std::optional<WorkerRegistry::Heartbeat> beat = job().workers.RecordHeartbeat(*request, now);
  if (!beat) {
    response->set_known(false);
    response->set_reason(job().workers.ForgottenReason(request->worker_id())
                             .value_or("unknown worker (the coordinator restarted or timed it out)"));
    return grpc::Status::OK;
  }
  const WorkerEntry& w = *beat->worker;
  if (beat->previous_attempt != w.counters.attempt() && w.counters.attempt() == 0 &&
      !AttemptRuns(lifecycle_.state())) {
    spdlog::info("worker {} stopped its task of attempt {}", w.id, beat->previous_attempt);
  }
  if (!request->failure_cause().empty()) OnReportedFailure(w, request->failure_cause(), beat->failed_attempt, now);
  Dispatch(JobEventKind::kWorkersChanged, now);
  response->set_known(true);
  // `w` is still registered: no event removes a worker.
  if (w.in_attempt()) {
    *response->mutable_assignment() = w.assignment;
  } else {
    response->set_reason(WhyNoAssignment());
  }
  return grpc::Status::OK;
}

// A heartbeat's failure_cause: fails the running attempt when it is the
// failure of this worker's task in it.
void CoordinatorService::OnReportedFailure(const WorkerEntry& w, const std::string& cause, int64_t attempt,
                                           int64_t now) {
  const bool running = AttemptRuns(lifecycle_.state());
  if (running && w.in_attempt() && (attempt == job().attempt || attempt == 0)) {
    spdlog::error("worker {}: its task of attempt {} failed: {}", w.id, job().attempt, cause);
    Dispatch(JobEventKind::kAttemptEnded, now, absl::StrCat("worker ", w.id, " failed: ", cause));
    return;
  }
  spdlog::warn("worker {}: its task of attempt {} failed: {} (ignored: attempt {} is {})", w.id, attempt, cause,
               job().attempt, running ? "running without it" : "over");
}

// A worker leaving on purpose names in `counters.attempt` the task it still
// runs: the attempt ends now (before its peers report the channels to it
// broken, which would count as a failure) and the next one waits until a
// second call (attempt 0) says that task has stopped.
grpc::Status CoordinatorService::DeregisterWorker(grpc::ServerContext*,
                                                  const v1::DeregisterWorkerRequest* request,
                                                  v1::DeregisterWorkerResponse*) {
  std::lock_guard lock(mu_);
  const int64_t now = job().NowMs();
  const std::string& id = request->worker_id();
  const int64_t still_running = request->counters().attempt();
  if (still_running == 0 && job().workers.FinishLeaving(id)) {
    spdlog::info("worker {} left: its task has stopped", id);
    Dispatch(JobEventKind::kWorkersChanged, now);
    return grpc::Status::OK;
  }
  const WorkerEntry* w = job().workers.Find(id);
  if (w == nullptr) return grpc::Status::OK;
  const bool in_attempt = w->in_attempt();
  const bool failed = !request->failure_cause().empty();
  if (failed) {
    spdlog::error("worker {} failed: {}", id, request->failure_cause());
  } else if (still_running != 0) {
    spdlog::info("worker {} leaves: {} records in, {} features written; its task of attempt {} is stopping", id,
                 request->counters().records_in(), request->counters().redis_features_written(), still_running);
    job().workers.MarkLeaving(id, now);
  } else {
    spdlog::info("worker {} left: {} records in, {} features written", id, request->counters().records_in(),
                 request->counters().redis_features_written());
  }
  job().workers.Remove(id);
  if (in_attempt) {
    Dispatch(JobEventKind::kAttemptEnded, now,
             failed ? absl::StrCat("worker ", id, " failed: ", request->failure_cause())
                    : absl::StrCat("worker ", id, " left the running attempt"),
             failed);
  }
  Dispatch(JobEventKind::kWorkersChanged, now);
  return grpc::Status::OK;
}

// Checkpoint acknowledgements go straight to the checkpoint coordinator,
// which knows the attempt and workers of its pending checkpoint.
grpc::Status CoordinatorService::AcknowledgeCheckpoint(grpc::ServerContext*,
                                                       const v1::AcknowledgeCheckpointRequest* request,
                                                       v1::AcknowledgeCheckpointResponse*) {
  if (!checkpoints()) return CheckpointingDisabled();
  return ToGrpcStatus(checkpoints()->Acknowledge(*request));
}

grpc::Status CoordinatorService::DeclineCheckpoint(grpc::ServerContext*,
                                                   const v1::DeclineCheckpointRequest* request,
                                                   v1::DeclineCheckpointResponse*) {
  if (!checkpoints()) return CheckpointingDisabled();
  return ToGrpcStatus(checkpoints()->Decline(*request));
}

// --- Operator RPCs ---------------------------------------------------------

grpc::Status CoordinatorService::GetJob(grpc::ServerContext*, const v1::GetJobRequest*,
                                        v1::JobStatus* response) {
  std::lock_guard lock(mu_);
  FillJob(response);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest*,
                                          v1::ListJobsResponse* response) {
  std::lock_guard lock(mu_);
  FillJob(response->add_jobs());
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ListWorkers(grpc::ServerContext*, const v1::ListWorkersRequest*,
                                             v1::ListWorkersResponse* response) {
  std::lock_guard lock(mu_);
  const int64_t now = job().NowMs();
  for (const WorkerEntry* w : job().workers.InOrder()) FillWorker(*w, now, response->add_workers());
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::GetCheckpoints(grpc::ServerContext*, const v1::GetCheckpointsRequest* request,
                                                v1::CheckpointOverview* response) {
  std::lock_guard lock(mu_);
  if (absl::Status s = CheckJobId(request->job_id()); !s.ok()) return ToGrpcStatus(s);
  FillCheckpoints(response);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::TriggerSavepoint(grpc::ServerContext*,
                                                  const v1::TriggerSavepointRequest* request,
                                                  v1::SavepointOperation* response) {
  return ToGrpcStatus(StartSavepoint(request->job_id(), request->target_dir(), /*stop=*/false, response));
}

grpc::Status CoordinatorService::StopWithSavepoint(grpc::ServerContext*,
                                                   const v1::StopWithSavepointRequest* request,
                                                   v1::SavepointOperation* response) {
  return ToGrpcStatus(StartSavepoint(request->job_id(), request->target_dir(), /*stop=*/true, response));
}

grpc::Status CoordinatorService::GetSavepoint(grpc::ServerContext*, const v1::GetSavepointRequest* request,
                                              v1::SavepointOperation* response) {
  std::lock_guard lock(mu_);
  if (absl::Status s = CheckJobId(request->job_id()); !s.ok()) return ToGrpcStatus(s);
  if (!checkpoints()) return CheckpointingDisabled();
  absl::StatusOr<v1::SavepointOperation> op = checkpoints()->GetSavepoint(request->request_id());
  if (!op.ok()) return ToGrpcStatus(op.status());
  *response = *std::move(op);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::CancelJob(grpc::ServerContext*, const v1::CancelJobRequest* request,
                                           v1::CancelJobResponse* response) {
  std::lock_guard lock(mu_);
  if (absl::Status s = CheckJobId(request->job_id()); !s.ok()) return ToGrpcStatus(s);
  const JobState previous = lifecycle_.state();
  if (IsTerminal(previous)) {
    return ToGrpcStatus(absl::FailedPreconditionError(absl::StrCat(
        "job ", options_.job_id, " is already ", FlinkJobStatus(previous), ": there is nothing to cancel")));
  }
  const bool discard = options_.delete_checkpoints_on_cancel;
  std::string retained;
  if (checkpoints() && !discard) {
    if (std::optional<CompletedCheckpoint> latest = checkpoints()->LatestCompleted()) retained = latest->path;
  }
  Dispatch(JobEventKind::kCancel, job().NowMs());
  response->set_state(std::string(FlinkJobStatus(lifecycle_.state())));
  response->set_checkpoint_retention(discard ? "DELETE_ON_CANCELLATION" : "RETAIN_ON_CANCELLATION");
  response->set_retained_checkpoint(retained);
  spdlog::info("job {} CANCELED (was {}, attempt {}); its {} workers stop their tasks and stay registered; "
               "checkpoints: {}",
               options_.job_id, FlinkJobStatus(previous), job().attempt, job().workers.size(),
               discard ? std::string("DELETE_ON_CANCELLATION, deleting them")
                       : absl::StrCat("RETAIN_ON_CANCELLATION, ", retained.empty() ? "none completed" : retained));
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::DisposeSavepoint(grpc::ServerContext*,
                                                  const v1::DisposeSavepointRequest* request,
                                                  v1::DisposeSavepointResponse* response) {
  return ToGrpcStatus(Dispose(request->path(), response));
}

// --- Helpers ---------------------------------------------------------------

// Flink answers an unknown job id with NOT_FOUND ("Job ... not found").
absl::Status CoordinatorService::CheckJobId(const std::string& job_id) const {
  if (job_id.empty()) return absl::InvalidArgumentError("a job id is required (slipstream list shows it)");
  if (job_id != options_.job_id) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " not found: this coordinator runs job ", options_.job_id));
  }
  return absl::OkStatus();
}

// The reason in a heartbeat answer without an assignment.
std::string CoordinatorService::WhyNoAssignment() {
  const JobState state = lifecycle_.state();
  if (AttemptRuns(state)) {
    return absl::StrCat("standby: attempt ", job().attempt, " of job ", options_.job_id, " runs on ",
                        job().workers.AttemptWorkerCount(), " workers");
  }
  if (state == JobState::kCreated) {
    return absl::StrCat("job ", options_.job_id, " waits for cluster.min-workers=", options_.min_workers, " workers");
  }
  return job().end_reason;
}

void CoordinatorService::FillJob(v1::JobStatus* response) {
  const JobContext& j = job();
  response->set_job_id(options_.job_id);
  response->set_state(std::string(FlinkJobStatus(lifecycle_.state())));
  response->set_job_state(ToProto(lifecycle_.state()));
  response->set_start_time_ms(j.start_time_ms);
  response->set_topic(options_.topic);
  response->set_num_partitions(j.num_partitions);
  response->set_max_parallelism(options_.max_parallelism);
  response->set_attempt(j.attempt);
  response->set_min_workers(options_.min_workers);
  response->set_failure_cause(j.failure_cause);
  response->set_failures(j.failures);
  response->set_restarts(j.restarts);
  response->set_restored_from(j.restored_from);
  response->set_rescales(j.rescales);
  FillCheckpoints(response->mutable_checkpoints());
  FillFeatureInfo(j.features(), response->mutable_features());
  const int64_t now = j.NowMs();
  for (const WorkerEntry* w : j.workers.InOrder()) FillWorker(*w, now, response->add_workers());
}

void CoordinatorService::FillCheckpoints(v1::CheckpointOverview* overview) {
  if (checkpoints()) checkpoints()->FillOverview(overview);
  overview->set_restored(job().restored_count);
  if (job().latest_restored) *overview->mutable_latest_restored() = *job().latest_restored;
}

absl::Status CoordinatorService::StartSavepoint(const std::string& job_id, const std::string& target_dir, bool stop,
                                                v1::SavepointOperation* out) {
  const std::string what = stop ? "stop-with-savepoint" : "savepoint";
  auto check = [&]() -> absl::Status {
    if (absl::Status s = CheckJobId(job_id); !s.ok()) return s;
    if (!checkpoints()) {
      return absl::FailedPreconditionError(
          "checkpointing is disabled on this coordinator (no state.checkpoints.dir job directory)");
    }
    if (!AttemptRuns(lifecycle_.state())) {
      return absl::FailedPreconditionError(absl::StrCat("job ", options_.job_id, " is ",
                                                        FlinkJobStatus(lifecycle_.state()), ": a ", what,
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
  absl::StatusOr<v1::SavepointOperation> op = checkpoints()->TriggerSavepoint(*dir, stop);
  if (!op.ok()) return op.status();
  spdlog::info("{} of job {} requested (request {}) into {}", what, options_.job_id, op->request_id(), *dir);
  if (stop) Dispatch(JobEventKind::kStopRequested, job().NowMs(), "", true, 0, op->request_id());
  *out = *std::move(op);
  return absl::OkStatus();
}

absl::Status CoordinatorService::Dispose(const std::string& path_text, v1::DisposeSavepointResponse* response) {
  if (path_text.empty()) return absl::InvalidArgumentError("a savepoint path is required");
  absl::StatusOr<std::string> local = LocalPathFromUri("savepoint path", path_text);
  if (!local.ok()) return local.status();
  if (!std::filesystem::path(*local).is_absolute()) {
    return absl::InvalidArgumentError(
        absl::StrCat("savepoint path \"", path_text, "\" is not absolute; give an absolute path or a file:/// URI"));
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
    const std::optional<CompletedCheckpoint> source = job().RestoreSource();
    const std::optional<CompletedCheckpoint>& restored = job().savepoint;
    std::error_code ec_a, ec_b;
    if (!IsTerminal(lifecycle_.state()) && source && restored && source->path == restored->path &&
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

}  // namespace slipstream
