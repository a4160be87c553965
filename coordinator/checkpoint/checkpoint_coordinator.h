// CheckpointCoordinator: Flink's CheckpointCoordinator for the one job of a
// coordinator. While an attempt runs it triggers periodic barrier checkpoints
// on every worker of the attempt (TaskControl.TriggerCheckpoint), collects
// their acknowledgements (each carries the worker's WorkerSnapshot), and when
// every worker has acknowledged writes `<job dir>/chk-<n>/_metadata`
// atomically: from then on checkpoint n is *completed* and can be restored.
//
// Invariants, as in Flink with max-concurrent-checkpoints=1:
//  - at most one checkpoint is in progress; checkpoint ids only increase, also
//    across attempts and coordinator restarts (the job directory is scanned for
//    chk-<n> on start);
//  - a checkpoint starts `interval_ms` after the previous one started and at
//    least `min_pause_ms` after it ended;
//  - a checkpoint not complete after `timeout_ms`, declined by a worker, or
//    whose trigger RPC failed is aborted (AbortCheckpoint to its workers, its
//    directory removed); more than `tolerable_failed` such failures in a row
//    call `on_failure` (the server fails the attempt). A checkpoint aborted
//    because its attempt ended is counted as failed in the statistics but not
//    towards the tolerable failures (Flink ignores failover aborts there too);
//  - savepoints (TriggerSavepoint) use the same barriers and the same id
//    sequence, one at a time and never concurrently with a checkpoint (a
//    request waits for the running checkpoint); each goes into its own
//    self-contained `savepoint-<job>-<hex>/` directory outside the job
//    directory, is never deleted by retention, is not used for recovery
//    (Flink's FLIP-193: savepoints belong to the user), and does not count
//    towards the tolerable failures;
//  - `num_retained` completed checkpoints are kept; older ones and abandoned
//    incomplete directories are deleted when a newer one completes. The
//    checkpoint an attempt restored is kept in any case until a checkpoint of
//    that attempt (or a later one) completes, so a restore never loses its
//    source to a checkpoint of the failed attempt completing late.
//
// Thread-safety: every method may be called from any thread. One driver
// triggers, finalizes and aborts checkpoints and makes every RPC to the
// workers: an internal thread, or (background_thread=false) whoever calls
// Tick. The other public methods only take a short internal lock and never
// block on I/O or RPCs, so the server may call them while holding its own
// mutex. `on_failure` and `on_stopped` are called on the driver without any
// internal lock held.
//
// The parts: CheckpointStore (directories, `_metadata`, retention),
// PendingCheckpoint (acknowledgements -> metadata and statistics),
// SavepointRequests (savepoint operations by request id), TaskControlClient
// (the RPCs). This class is the timer and the fan-out that use them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "coordinator/checkpoint/checkpoint_settings.h"
#include "coordinator/checkpoint/checkpoint_store.h"
#include "coordinator/checkpoint/pending_checkpoint.h"
#include "coordinator/checkpoint/task_control_client.h"
#include "proto/slipstream.grpc.pb.h"

namespace slipstream {

struct CheckpointCoordinatorOptions {
  CheckpointSettings settings;
  // Trigger, completion and operation times, and the interval, timeout and
  // min-pause schedule (its steady clock).
  const Clock* clock = &Clock::Real();
  std::string job_dir;  // <state.checkpoints.dir>/<job-id>, a local path
  std::string job_id;
  std::string topic;
  int max_parallelism = 128;
  // Recorded in every checkpoint's _metadata: the definition's YAML text and
  // fingerprint (a restore checks it against the job's).
  std::string feature_definition;
  std::string feature_fingerprint;
  TaskControlStubFactory make_stub;  // empty: MakeTaskControlStub
  // Too many consecutive checkpoint failures in `attempt`; `cause` says why.
  std::function<void(int64_t attempt, const std::string& cause)> on_failure;
  // The stop-with-savepoint of `attempt` completed at `path`: the server
  // ends the job (FINISHED). Called on the driver, no lock held, before the
  // operation reads COMPLETED.
  std::function<void(int64_t attempt, const std::string& path)> on_stopped;
  // An internal thread drives the checkpoints. Off: nothing happens until
  // the caller calls Tick(), so tests run on a ManualClock without sleeps.
  bool background_thread = true;
};

class CheckpointCoordinator {
 public:
  // Scans the job directory (creating it if needed) and starts the trigger
  // thread (unless background_thread=false); nothing is triggered before
  // OnAttemptDeployed.
  static absl::StatusOr<std::unique_ptr<CheckpointCoordinator>> Start(CheckpointCoordinatorOptions options);
  ~CheckpointCoordinator();  // Stop()

  // `attempt` runs on `workers` (by index; key_groups = their ranges): the
  // first checkpoint is triggered one interval from now. A checkpoint still
  // pending from an earlier attempt is aborted. `restored_path`: the
  // checkpoint directory the attempt restores ("" for none), kept until a
  // checkpoint of this attempt completes.
  // `restored_id`: that checkpoint's id; new ids continue after it (as
  // Flink does when it restores a savepoint).
  void OnAttemptDeployed(int64_t attempt, std::vector<v1::PeerEndpoint> workers, int num_partitions,
                         std::string restored_path = "", int64_t restored_id = 0);
  // `attempt` is over: its pending checkpoint (unless already acknowledged by
  // every worker) is aborted, nothing is triggered until the next
  // deployment, and its workers are sent CancelTask (so they stop at once,
  // not at their next heartbeat).
  void OnAttemptEnded(int64_t attempt, std::string_view cause = "");

  // A worker's part of the pending checkpoint. InvalidArgument: wrong job,
  // a worker that is not in the attempt, or a snapshot for another range;
  // NotFound: not the pending checkpoint of the running attempt (stale,
  // aborted, already completed or never triggered). A repeated ack is OK.
  [[nodiscard]] absl::Status Acknowledge(const v1::AcknowledgeCheckpointRequest& request);
  // A worker cannot take its part: the checkpoint is aborted. Same errors.
  [[nodiscard]] absl::Status Decline(const v1::DeclineCheckpointRequest& request);

  // A checkpoint of `attempt` is wanted now (a rescale): one is triggered at
  // once unless a checkpoint or savepoint is in progress or queued (then the
  // caller asks again once it ended). False when `attempt` is not running.
  bool RequestCheckpoint(int64_t attempt);

  // Queues a savepoint of the running attempt into `directory` (from
  // NewSavepointDirectory); it is triggered as soon as no checkpoint is in
  // progress. `stop`: stop-with-savepoint (on_stopped when it completes).
  // FailedPrecondition when no attempt runs or a savepoint is queued or in
  // progress. Returns the operation (IN_PROGRESS) with its request id.
  [[nodiscard]] absl::StatusOr<v1::SavepointOperation> TriggerSavepoint(std::string directory, bool stop);
  // NotFound for an unknown (or long forgotten) request id.
  [[nodiscard]] absl::StatusOr<v1::SavepointOperation> GetSavepoint(std::string_view request_id) const;

  // The job ended for good (canceled, or finished by stop-with-savepoint):
  // nothing is triggered any more; a queued or pending checkpoint or
  // savepoint is aborted; with `delete_checkpoints`
  // (DELETE_ON_CANCELLATION) every completed checkpoint of the job is then
  // deleted (asynchronously, on the driver).
  void OnJobTerminated(std::string_view cause, bool delete_checkpoints);

  // Counts, the latest completed checkpoint and recent history (newest first).
  // `restored` and `latest_restored` are the server's to fill.
  void FillOverview(v1::CheckpointOverview* overview) const;
  // The newest checkpoint with a `_metadata`, this run's or found on start.
  std::optional<CompletedCheckpoint> LatestCompleted() const;

  // With background_thread=false: does synchronously what the internal
  // thread would do now, at the clock's current time, until nothing more is
  // due: sends CancelTask orders, aborts a failed or timed-out checkpoint,
  // finalizes one every worker acknowledged, triggers a queued savepoint or
  // a due checkpoint (waiting for the workers' answers to the trigger, so an
  // acknowledgement sent before the answer completes it in the same Tick).
  // Notifications (complete, abort, cancel) are sent, not waited for. Does
  // nothing when the internal thread runs. Not concurrently with Stop.
  void Tick();

  // Stops triggering, cancels RPCs in flight and joins the thread; a pending
  // checkpoint is abandoned (its directory removed). Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit CheckpointCoordinator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
