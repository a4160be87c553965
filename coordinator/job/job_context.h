// JobContext: the job's data that the lifecycle's state handlers share, and
// the actions more than one state takes (deploy an attempt, end it, fail,
// cancel or finish the job). The state itself is JobLifecycle's; nothing
// here changes it: each action returns the state it leads to.
//
// Not thread-safe: the coordinator service calls the lifecycle under its
// lock. Time comes from CoordinatorOptions::clock only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "coordinator/checkpoint/checkpoint_coordinator.h"
#include "coordinator/coordinator_server.h"
#include "coordinator/job/job_state.h"
#include "coordinator/job/worker_registry.h"
#include "coordinator/restart_strategy.h"

namespace slipstream {

// What happened; the state handlers decide what it means in their state.
enum class JobEventKind {
  kTick,            // time passed
  kWorkersChanged,  // a worker registered, reported or left: a deployment may be possible
  kAttemptEnded,    // a worker of the attempt was lost, failed or left; or checkpoints gave up
  kTopicChanged,    // the input topic shrank or vanished: the job cannot go on
  kCancel,          // CancelJob
  kStopRequested,   // a stop-with-savepoint was accepted
  kStopCompleted,   // the savepoint of a stop-with-savepoint completed
};

struct JobEvent {
  JobEventKind kind = JobEventKind::kTick;
  int64_t now_ms = 0;
  std::string cause;    // kAttemptEnded, kTopicChanged
  bool failure = true;  // kAttemptEnded: a failure (the restart strategy counts it) or not
  int64_t attempt = 0;  // kAttemptEnded (0: the running one), kStopCompleted
  std::string detail;   // kStopRequested: its request id; kStopCompleted: the savepoint's path
};

// A redeploy the running attempt waits for: when it was requested and the
// newest completed checkpoint then (the redeploy follows a newer one).
struct RedeployRequest {
  int64_t requested_at_ms = 0;  // 0: none
  int64_t after_checkpoint = 0;
  bool active() const { return requested_at_ms != 0; }
};

// What reactive scaling and partition discovery want of the running attempt.
struct RedeployDecision {
  enum class Kind { kNone, kPending, kNow };
  Kind kind = Kind::kNone;
  std::string cause;  // kNow: why the attempt ends
};

class JobContext {
 public:
  explicit JobContext(const CoordinatorOptions& options);

  int64_t NowMs() const { return options.clock->WallMs(); }
  const FeatureDefinition& features() const {
    return options.features ? *options.features : DefaultFeatureDefinition();
  }
  // Restart delays are measured on the monotonic clock, to the microsecond
  // (a delay must never be a millisecond short, nor change with the wall clock).
  int64_t SteadyUs() const { return options.clock->SteadyUs(); }

  // Where the next attempt starts from: the newest completed checkpoint of
  // the job, or execution.savepoint.path while no checkpoint of the job is
  // newer than it (completed after it, or during this run).
  std::optional<CompletedCheckpoint> RestoreSource() const;

  // Deploys the next attempt when enough workers are registered, none
  // registered for stabilization_ms, the restart delay passed and every
  // worker has stopped its task; `current` otherwise.
  JobState TryDeploy(JobState current, int64_t now);
  // Ends the running attempt: its workers stay registered without an
  // assignment (so they cancel their tasks); RESTARTING, or FAILED when the
  // restart strategy gives up.
  JobState EndAttempt(const std::string& cause, bool failed, int64_t now);
  // Terminal: the restart strategy gave up, or the job cannot go on.
  JobState FailJob(const std::string& cause);
  JobState Cancel(int64_t now);
  JobState Finish(const std::string& savepoint_path, int64_t now);
  // Bounded: every worker of the attempt finished its input. Runs the
  // on_bounded_finished hook, then FINISHED; the hook failing fails the
  // attempt instead (RESTARTING or FAILED, per the restart strategy).
  JobState FinishBounded(int64_t now);
  // Reactive scaling (workers joined) and partition discovery (the topic
  // grew): both take a checkpoint of the running attempt, then redeploy.
  RedeployDecision EvaluateRedeploy(int64_t now);

  bool CanRescale() const { return options.rescale_on_join && checkpoints != nullptr; }
  const char* WhyNoRescale() const;

  const CoordinatorOptions& options;
  WorkerRegistry workers;
  RestartStrategy restart_strategy;
  std::unique_ptr<CheckpointCoordinator> checkpoints;  // null: checkpointing disabled
  std::optional<CompletedCheckpoint> savepoint;        // execution.savepoint.path
  int64_t latest_at_start_id = 0;                      // newest completed checkpoint found on start
  const int64_t start_time_ms;

  int64_t attempt = 0;
  int num_partitions = 0;
  // Partition discovery: a larger count seen (applied at the next deploy),
  // and the partitions found that way.
  int pending_partition_count = 0;
  std::set<int> discovered_partitions;
  RedeployRequest rescale;  // workers joined (reactive mode)
  RedeployRequest grow;     // the topic grew
  std::string stop_request_id;  // the stop-with-savepoint a STOPPING job waits for
  // Bounded: each partition's stopping offset, decided once before the
  // first deployment (CoordinatorService::RegisterWorker); every attempt
  // ships the same.
  std::optional<std::map<int, int64_t>> stopping_offsets;

  std::string failure_cause;  // why the last attempt ended
  std::string end_reason;     // why workers have no assignment while RESTARTING or terminal
  std::string restored_from;  // the checkpoint the current attempt restored
  int64_t failures = 0;
  int64_t restarts = 0;
  int64_t rescales = 0;
  int64_t restored_count = 0;
  std::optional<v1::CheckpointStats> latest_restored;

 private:
  JobState Deploy(int64_t now);
  RedeployDecision EvaluateRescale(int64_t now);
  RedeployDecision EvaluateGrowth(int64_t now);
  void EndAllTasks(int64_t now);
  // A restarted coordinator must not resume a job that ended for good: a
  // marker in the job directory makes it start a new job instead.
  void RecordEnded(JobState state);

  bool last_end_was_failure_ = false;
  int64_t ended_at_ms_ = 0;
  int64_t restart_at_us_ = 0;  // SteadyUs() before which the next attempt is not deployed
  int64_t last_wait_log_ms_ = 0;
  int64_t rescale_attempt_ = 0;  // the attempt a rescale deploys (for its log line)
};

}  // namespace slipstream
