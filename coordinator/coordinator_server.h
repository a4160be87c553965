// CoordinatorServer: the JobManager. Serves the Coordinator gRPC service
// (proto/slipstream.proto): workers register and heartbeat, operators query
// the job. It owns the job's identity and the assignment of Kafka partitions
// and key groups to workers, and forgets workers whose heartbeats stop.
//
// Lifecycle (Flink's JobMaster with in-place failover; the state machine is in
// coordinator/job/, its diagram in docs/architecture.md):
//  - CREATED until `min_workers` workers are registered and none has
//    registered for `stabilization_ms`; then attempt 1 is deployed over every
//    registered worker (RUNNING): partitions round-robin, key groups in
//    Flink's contiguous ranges, and each worker learns every peer's data
//    endpoint. Workers registering later wait as standbys, or, with
//    `rescale_on_join` (Flink's reactive mode), cause a rescale: a
//    checkpoint, then the next attempt over all of them from it.
//  - The running attempt ends when one of its workers is lost (no heartbeat
//    for `heartbeat_timeout_ms`), fails (DeregisterWorker or a heartbeat with a
//    failure_cause for that attempt), leaves on purpose (DeregisterWorker
//    without a cause: not a failure), or the CheckpointCoordinator gives up.
//    The lost or leaving worker is removed; every other worker stays
//    registered: its assignment is cleared, so its heartbeats are answered
//    without an assignment (reason = the cause) and it cancels its task.
//  - After a failure the RestartStrategy decides: RESTARTING, and the next
//    attempt is deployed once its delay has passed, at least `min_workers`
//    workers are registered and every registered worker has reported (after
//    the failure) that it runs no task (counters.attempt == 0), so two
//    attempts never share a worker; or FAILED (terminal: workers stay idle).
//    A worker that keeps running a task it was told to cancel for longer than
//    `cancellation_timeout_ms` is dropped (known=false).
//  - Operators end the job with CancelJob (CANCELED) or StopWithSavepoint
//    (FINISHED once its savepoint completed; sources stop at its barrier).
//    Both are terminal like FAILED: assignments are cleared, so workers
//    cancel their tasks and stay registered, idle. On cancel,
//    `delete_checkpoints_on_cancel` (DELETE_ON_CANCELLATION) deletes the
//    job's checkpoints; otherwise the latest is kept (RETAIN_ON_CANCELLATION).
//  - A bounded job (`bounded`, Flink's BATCH runtime mode) reads up to the
//    stopping offsets decided at the first registration and ends FINISHED by
//    itself once every worker of the attempt reported its input finished
//    (after `on_bounded_finished`); no checkpoints, no rescaling.
//  - Savepoints (TriggerSavepoint) go to `savepoints_dir` unless the request
//    names a directory, and are asynchronous operations with a request id.
//  - Every deployment restores the newest completed checkpoint (or the
//    savepoint `savepoint_path` while no newer checkpoint of the job exists):
//    Assignment.restore carries its directory, every worker snapshot and the
//    offsets of the worker's partitions. A checkpoint taken with another
//    max parallelism or topic, or that misses key groups, fails the job.
// With a job directory, a CheckpointCoordinator takes periodic barrier
// checkpoints of the running attempt. Thread-safe; gRPC calls run on gRPC's
// threads (coordinator_service.h) and a reaper thread expires silent workers
// and deploys. No RPC to a worker is made while the service's lock is held.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/access_control.h"
#include "common/clock.h"
#include "common/grpc_security.h"
#include "common/features/feature_definition.h"
#include "coordinator/checkpoint/checkpoint_coordinator.h"
#include "coordinator/job/job_state.h"
#include "coordinator/restart_strategy.h"

namespace slipstream {

struct CoordinatorOptions {
  // Every time the job lifecycle reads (tests pass a ManualClock).
  const Clock* clock = &Clock::Real();
  // A thread calls Tick() every heartbeat.timeout / 10 (20..100 ms). Off:
  // nothing ticks by itself; the caller drives time (a ManualClock) and
  // calls CoordinatorServer::Tick(), so lifecycle tests need no sleeps.
  bool background_ticks = true;
  std::string listen_address = "0.0.0.0:6123";  // port 0 picks a free port
  std::string job_id;
  std::string topic;
  int max_parallelism = 128;
  // What the job computes (pipeline.features); null: the built-in default.
  // Shipped to the workers with every deployment and recorded in every
  // checkpoint.
  std::shared_ptr<const FeatureDefinition> features;
  int64_t heartbeat_timeout_ms = 10000;
  int min_workers = 1;
  int64_t stabilization_ms = 1000;
  // Returns the topic's partition count (NotFound while it does not exist).
  std::function<absl::StatusOr<int>()> partition_count;
  // kafka.partition-discovery.interval (0: off): how often the topic's
  // partition count is read again. When it grew, the running attempt ends
  // after a checkpoint (as for a rescale) and the next one reads the new
  // partitions too, from their earliest offset; a topic that shrank or
  // vanished fails the job.
  int64_t partition_discovery_interval_ms = 30000;
  // Checkpointing, enabled when `job_dir` (<state.checkpoints.dir>/<job-id>)
  // is set.
  std::string job_dir;
  CheckpointSettings checkpoints;
  // Empty: a gRPC channel to the worker's host:data_port.
  TaskControlStubFactory task_control_stub;
  RestartStrategySettings restart;  // restart-strategy.*
  // A worker still running a task it was told to cancel is dropped after
  // this long (task.cancellation.timeout; 0: never).
  int64_t cancellation_timeout_ms = 180000;
  // execution.savepoint.path as a local path ("" for none): a chk-<n> or
  // savepoint directory (or its _metadata file). Start fails, naming the key,
  // when it holds no readable _metadata.
  std::string savepoint_path;
  // Probe silent workers (and those a restart waits for) with a TCP
  // connection to their data port; a refused one is lost at once instead of
  // after heartbeat.timeout (the process is gone).
  bool probe_workers = false;
  // state.savepoints.dir as configured (file:// URI or path; "" for none).
  std::string savepoints_dir;
  // execution.checkpointing.externalized-checkpoint-retention is
  // DELETE_ON_CANCELLATION.
  bool delete_checkpoints_on_cancel = false;
  // scheduler-mode=reactive (needs checkpointing): a worker registering with
  // a RUNNING job triggers a rescale once no worker registered for
  // `stabilization_ms` (several joins, one rescale): a checkpoint is taken,
  // then the attempt ends (not a failure) and the next one is deployed over
  // every registered worker, restoring that checkpoint by key-group range.
  // Off: joining workers wait as standbys.
  bool rescale_on_join = false;
  // Who may call which RPC (security.*-token); default: everything open.
  // Operators' calls need the read or admin token, workers' the internal one.
  AccessControl access;
  // TLS of the gRPC server and of the channels to the workers' TaskControl
  // (security.ssl.*); those channels carry the internal token.
  GrpcSecurity security;

  // execution.runtime-mode=BATCH (Flink's bounded execution): every attempt
  // reads each partition up to the stopping offset decided once, when the
  // first worker registers (`stopping_offsets`); no checkpoints (whatever
  // job_dir says), no rescaling; a failed attempt restarts from the start.
  // The job is FINISHED once every worker of the attempt reported its input
  // finished (HeartbeatRequest.finished_attempt).
  bool bounded = false;
  // Partition -> stopping offset (exclusive) for partitions
  // 0..num_partitions-1; called once, with the service's lock held.
  std::function<absl::StatusOr<std::map<int, int64_t>>(int num_partitions)> stopping_offsets;
  // kafka.starting-timestamp, shipped in every assignment (workers start
  // there unless restoring).
  std::optional<int64_t> starting_timestamp_ms;
  // Called when a bounded job reached its end, before it is reported
  // FINISHED (and the coordinator exits): e.g. a file sink commits the
  // attempt's output here. An error fails the attempt (the restart strategy
  // decides, as for any failure). Null: nothing to do. Called with the
  // service's lock held.
  std::function<absl::Status(int64_t attempt, int num_workers)> on_bounded_finished;
};

class CoordinatorServer {
 public:
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(CoordinatorOptions options);
  ~CoordinatorServer();  // shuts down

  int port() const;
  void Shutdown();
  // One step of the lifecycle at the clock's time: expire silent workers,
  // deploy, rescale, then trigger, complete or expire checkpoints (what the
  // background threads do when they run). Not concurrently with Shutdown.
  void Tick();
  // The job's state now (a bounded run's coordinator exits once it is
  // terminal).
  JobState state() const;
  // Blocks until Shutdown.
  void Wait();

 private:
  struct Impl;
  explicit CoordinatorServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
