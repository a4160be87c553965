#include "coordinator/job/job_context.h"

#include <climits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/checkpoint/pending_checkpoint.h"
#include "coordinator/job/deployment_plan.h"
#include "coordinator/job_id.h"
#include "common/absl_compat.h"
#include "spdlog/spdlog.h"

namespace slipstream {
namespace {

constexpr int64_t kWaitLogIntervalMs = 10000;

std::string JoinInts(const google::protobuf::RepeatedField<int32_t>& values) {
  std::string out;
  for (int v : values) absl::StrAppend(&out, out.empty() ? "" : ",", v);
  return out;
}

}  // namespace

JobContext::JobContext(const CoordinatorOptions& options)
    : options(options),
      workers(WorkerRegistryOptions{options.heartbeat_timeout_ms, options.cancellation_timeout_ms,
                                    options.max_parallelism}),
      restart_strategy(options.restart),
      start_time_ms(options.clock->WallMs()) {
  // A restarted coordinator goes on counting attempts (they are the Redis
  // sink's fencing tokens: job_id.h).
  if (!options.job_dir.empty()) attempt = LastRecordedAttempt(options.job_dir);
}

std::optional<CompletedCheckpoint> JobContext::RestoreSource() const {
  std::optional<CompletedCheckpoint> latest;
  if (checkpoints) latest = checkpoints->LatestCompleted();
  if (!savepoint) return latest;
  if (!latest) return savepoint;
  if (latest->metadata.checkpoint_id() > latest_at_start_id ||
      latest->metadata.completion_time_ms() > savepoint->metadata.completion_time_ms()) {
    return latest;
  }
  return savepoint;
}

JobState JobContext::TryDeploy(JobState current, int64_t now) {
  if (workers.size() < options.min_workers) return current;
  if (now - workers.last_registration_ms() < options.stabilization_ms) return current;
  if (SteadyUs() < restart_at_us_) return current;
  if (options.bounded && !stopping_offsets) return current;  // decided at the first registration
  const std::vector<std::string> busy = workers.Busy(attempt);
  if (!busy.empty()) {
    if (now - last_wait_log_ms_ >= kWaitLogIntervalMs) {
      last_wait_log_ms_ = now;
      spdlog::info("job {}: attempt {} waits for its workers to stop their tasks: {}", options.job_id, attempt + 1,
                   absl::StrJoin(busy, ", "));
    }
    return current;
  }
  return Deploy(now);
}

// Deploys the next attempt over every registered worker, in registration
// order (so indices, and with them partitions and key-group ranges, are
// stable for workers that stay), restoring the newest completed checkpoint.
JobState JobContext::Deploy(int64_t now) {
  const std::optional<CompletedCheckpoint> restore = RestoreSource();
  if (restore) {
    std::vector<std::string> added;
    if (absl::Status s = CheckRestorable(*restore, options.max_parallelism, options.topic, features(), &added);
        !s.ok()) {
      return FailJob(std::string(s.message()));
    }
    if (!added.empty()) {
      spdlog::info("restoring checkpoint {} under a definition that adds {}: they start empty",
                   restore->metadata.checkpoint_id(), absl::StrJoin(added, ", "));
    }
  }
  // Partitions discovered since the last deployment are read from now on,
  // from their earliest offset until a checkpoint has theirs.
  if (pending_partition_count > num_partitions) {
    for (int p = num_partitions; p < pending_partition_count; ++p) discovered_partitions.insert(p);
    num_partitions = pending_partition_count;
  }
  const std::vector<WorkerEntry*> ordered = workers.ForDeployment();
  ++attempt;
  if (!options.job_dir.empty()) {
    if (absl::Status recorded = RecordAttempt(options.job_dir, attempt); !recorded.ok()) {
      spdlog::warn("attempt {}: {} (a restarted coordinator would count from 1 again)", attempt, recorded.message());
    }
  }
  if (attempt > 1 && last_end_was_failure_) ++restarts;
  DeploymentInput input{options.job_id, options.topic, options.max_parallelism, attempt, num_partitions, {},
                        restore ? &*restore : nullptr, discovered_partitions, &features()};
  input.bounded = options.bounded;
  input.stopping_offsets = stopping_offsets ? &*stopping_offsets : nullptr;
  input.starting_timestamp_ms = options.starting_timestamp_ms;
  for (const WorkerEntry* w : ordered) {
    input.workers.push_back({w->id, w->registration.host(), w->registration.data_port()});
  }
  DeploymentPlan plan = PlanDeployment(input);
  for (size_t i = 0; i < ordered.size(); ++i) ordered[i]->assignment = std::move(plan.assignments[i]);
  restored_from = restore ? restore->path : "";
  if (restore) {
    ++restored_count;
    latest_restored = CheckpointStatsFromMetadata(restore->metadata, restore->path);
  }
  if (checkpoints) {
    checkpoints->OnAttemptDeployed(attempt, plan.peers, num_partitions, restored_from,
                                   restore ? restore->metadata.checkpoint_id() : 0);
  }
  spdlog::info("deploying attempt {} of job {} on {} workers ({} partitions, {} key groups){}", attempt,
               options.job_id, ordered.size(), num_partitions, options.max_parallelism,
               attempt > 1 ? absl::StrCat(" after ", now - ended_at_ms_, " ms of ",
                                          attempt == rescale_attempt_ ? "rescale" : "recovery")
                           : "");
  if (restore) {
    spdlog::info("attempt {} restores checkpoint {} from {} ({} worker snapshots, offsets of {} partitions)", attempt,
                 restore->metadata.checkpoint_id(), restore->path, restore->metadata.workers_size(),
                 plan.restored_offsets);
  } else {
    // A bounded job always starts here: it takes no checkpoints.
    spdlog::info("attempt {} starts without a checkpoint: empty state, {}{}", attempt,
                 options.starting_timestamp_ms ? "kafka.starting-timestamp" : "kafka.starting-offsets",
                 options.bounded ? ", up to the stopping offsets (bounded)" : "");
  }
  for (size_t i = 0; i < ordered.size(); ++i) {
    spdlog::info("  worker {} {} (data {}:{}): partitions [{}], key groups {}", i, ordered[i]->id,
                 ordered[i]->registration.host(), ordered[i]->registration.data_port(),
                 JoinInts(ordered[i]->assignment.partitions()), plan.ranges[i].key_groups.ToString());
  }
  return JobState::kRunning;
}

JobState JobContext::EndAttempt(const std::string& cause, bool failed, int64_t now) {
  if (failed) ++failures;
  failure_cause = cause;
  last_end_was_failure_ = failed;
  ended_at_ms_ = now;
  rescale = {};
  grow = {};
  stop_request_id.clear();
  if (checkpoints) checkpoints->OnAttemptEnded(attempt, cause);
  workers.ClearAssignments(now);
  std::optional<int64_t> delay_ms = 0;
  if (failed) delay_ms = restart_strategy.OnFailure(now);
  // A worker leaving on purpose (SIGTERM, e.g. the whole cluster stopping)
  // is expected; a lost or failing one is an error.
  spdlog::log(failed ? spdlog::level::err : spdlog::level::warn, "attempt {} of job {} {}: {}", attempt,
              options.job_id, failed ? "failed" : "ended", cause);
  if (!delay_ms) return FailJob(absl::StrCat(cause, " (not restarted: ", restart_strategy.GiveUpReason(), ")"));
  const int64_t delay_us = *delay_ms >= INT64_MAX / 4000 ? INT64_MAX / 4 : *delay_ms * 1000;
  restart_at_us_ = SteadyUs() + delay_us;
  last_wait_log_ms_ = now;  // the first "waits for" line only after kWaitLogIntervalMs
  end_reason = absl::StrCat("attempt ", attempt, " of job ", options.job_id, failed ? " failed: " : " ended: ", cause);
  spdlog::info("job {} restarts in {} ms ({}{}): attempt {} is deployed once cluster.min-workers={} workers are "
               "registered and every worker has stopped its task",
               options.job_id, *delay_ms, failed ? "restart strategy " : "not a failure",
               failed ? restart_strategy.Describe() : "", attempt + 1, options.min_workers);
  return JobState::kRestarting;
}

JobState JobContext::FailJob(const std::string& cause) {
  failure_cause = cause;
  end_reason = absl::StrCat("job ", options.job_id, " FAILED: ", cause);
  spdlog::error("job {} FAILED (terminal; its {} registered workers stay idle): {}", options.job_id, workers.size(),
                cause);
  return JobState::kFailed;
}

JobState JobContext::Cancel(int64_t now) {
  end_reason = absl::StrCat("job ", options.job_id, " was CANCELED");
  EndAllTasks(now);
  if (checkpoints) {
    checkpoints->OnJobTerminated(absl::StrCat("job ", options.job_id, " was canceled"),
                                 options.delete_checkpoints_on_cancel);
  }
  RecordEnded(JobState::kCanceled);
  return JobState::kCanceled;
}

JobState JobContext::Finish(const std::string& savepoint_path, int64_t now) {
  end_reason = absl::StrCat("job ", options.job_id, " FINISHED: stopped with savepoint ", savepoint_path);
  EndAllTasks(now);
  if (checkpoints) checkpoints->OnJobTerminated(end_reason, /*delete_checkpoints=*/false);
  RecordEnded(JobState::kFinished);
  spdlog::info("{}; its {} workers stop their tasks and stay registered", end_reason, workers.size());
  return JobState::kFinished;
}

JobState JobContext::FinishBounded(int64_t now) {
  const int num_workers = workers.AttemptWorkerCount();
  if (options.on_bounded_finished) {
    if (absl::Status s = options.on_bounded_finished(attempt, num_workers); !s.ok()) {
      return EndAttempt(absl::StrCat("finishing the bounded job failed: ", s.message()), /*failed=*/true, now);
    }
  }
  end_reason = absl::StrCat("job ", options.job_id, " FINISHED: attempt ", attempt, " read its bounded input on ",
                            num_workers, " workers");
  EndAllTasks(now);
  RecordEnded(JobState::kFinished);
  spdlog::info("{} (every window fired, every feature acknowledged); the workers stay registered, idle", end_reason);
  return JobState::kFinished;
}

// Every worker's task ends (CANCELED, FINISHED): assignments cleared, so
// heartbeat answers tell them to cancel with `end_reason`.
void JobContext::EndAllTasks(int64_t now) {
  ended_at_ms_ = now;
  workers.ClearAssignments(now);
}

void JobContext::RecordEnded(JobState state) {
  if (options.job_dir.empty()) return;
  const char* name = FlinkJobStatus(state);
  if (absl::Status s = RecordJobEnded(options.job_dir, name, end_reason); !s.ok()) {
    spdlog::error("job {} is {}, but {}: a restarted coordinator would resume it", options.job_id, name,
                  std::string(s.message()));
  }
}

const char* JobContext::WhyNoRescale() const {
  if (!options.rescale_on_join) return "it waits as a standby (scheduler-mode is not reactive)";
  return "it waits as a standby (rescaling needs checkpoints: state.checkpoints.dir)";
}

RedeployDecision JobContext::EvaluateRedeploy(int64_t now) {
  const RedeployDecision rescaling = EvaluateRescale(now);
  if (rescaling.kind == RedeployDecision::Kind::kNow) return rescaling;
  const RedeployDecision growing = EvaluateGrowth(now);
  if (growing.kind == RedeployDecision::Kind::kNow) return growing;
  if (rescaling.kind == RedeployDecision::Kind::kPending || growing.kind == RedeployDecision::Kind::kPending) {
    return {RedeployDecision::Kind::kPending, ""};
  }
  return {};
}

// Reactive mode: workers joined the running attempt. Once none joined for
// `stabilization_ms`, ask for a checkpoint; once a checkpoint of this
// attempt newer than the request completed, end the attempt (not a
// failure) so the next one is deployed over every worker from it. The
// workers keep processing while the checkpoint is written; what they do
// after its barrier is replayed by the next attempt, as in a recovery.
RedeployDecision JobContext::EvaluateRescale(int64_t now) {
  using Kind = RedeployDecision::Kind;
  const int joined = workers.JoinedWorkerCount();
  if (joined == 0 || !CanRescale()) {
    rescale = {};
    return {};
  }
  const Kind waiting = rescale.active() ? Kind::kPending : Kind::kNone;
  if (now - workers.last_registration_ms() < options.stabilization_ms) return {waiting, ""};
  // New workers must be ready (idle and heard from since they registered).
  if (!workers.JoinedWorkersReady()) return {waiting, ""};
  const std::optional<CompletedCheckpoint> latest = checkpoints->LatestCompleted();
  const int64_t latest_id = latest ? latest->metadata.checkpoint_id() : 0;
  const int from = workers.AttemptWorkerCount();
  if (!rescale.active()) {
    rescale = {now, latest_id};
    spdlog::info("rescale of job {}: {} worker(s) joined attempt {} on {} workers; taking a checkpoint, then "
                 "redeploying on {} workers",
                 options.job_id, joined, attempt, from, from + joined);
  }
  if (latest && latest_id > rescale.after_checkpoint && latest->metadata.attempt() == attempt) {
    ++rescales;
    rescale_attempt_ = attempt + 1;
    const std::string cause = absl::StrCat("rescale from ", from, " to ", from + joined, " workers after checkpoint ",
                                           latest_id, " (", now - rescale.requested_at_ms,
                                           " ms after it was requested)");
    rescale = {};
    return {Kind::kNow, cause};
  }
  // Asks again while a checkpoint or savepoint in progress delays it, or
  // after one failed.
  checkpoints->RequestCheckpoint(attempt);
  return {Kind::kPending, ""};
}

// Partition discovery found more partitions: as for a rescale, end the
// attempt (not a failure) once a checkpoint of it newer than the discovery
// completed; the next attempt (Deploy) reads every partition. Without
// checkpointing the attempt ends at once.
RedeployDecision JobContext::EvaluateGrowth(int64_t now) {
  using Kind = RedeployDecision::Kind;
  if (pending_partition_count <= num_partitions) {
    grow = {};
    return {};
  }
  const std::string cause = absl::StrCat("topic ", options.topic, " grew from ", num_partitions, " to ",
                                         pending_partition_count, " partitions");
  if (checkpoints == nullptr) return {Kind::kNow, cause};
  const std::optional<CompletedCheckpoint> latest = checkpoints->LatestCompleted();
  const int64_t latest_id = latest ? latest->metadata.checkpoint_id() : 0;
  if (!grow.active()) {
    grow = {now, latest_id};
    spdlog::info("{}: taking a checkpoint of attempt {}, then redeploying with every partition", cause, attempt);
  }
  if (latest && latest_id > grow.after_checkpoint && latest->metadata.attempt() == attempt) {
    grow = {};
    return {Kind::kNow, absl::StrCat(cause, " (redeployed after checkpoint ", latest_id, ")")};
  }
  checkpoints->RequestCheckpoint(attempt);
  return {Kind::kPending, ""};
}

}  // namespace slipstream
