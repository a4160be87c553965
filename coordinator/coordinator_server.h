// CoordinatorServer: the JobManager. Serves the Coordinator gRPC service
// (proto/slipstream.proto): workers register and heartbeat, operators query
// the job. It owns the job's identity and the assignment of Kafka partitions
// and key groups to workers, and forgets workers whose heartbeats stop.
//
// Lifecycle: CREATED until `min_workers` workers are registered and none has
// registered for `stabilization_ms`; then it deploys attempt 1 over every
// registered worker (RUNNING): partitions round-robin, key groups in Flink's
// contiguous ranges, and each worker learns every peer's data endpoint.
// Workers registering later wait as standbys. When a worker of the running
// attempt is lost (no heartbeat for `heartbeat_timeout_ms`), fails, or
// leaves, the attempt is over (RESTARTING): the coordinator forgets that
// attempt's workers, which then stop (their heartbeats are answered with
// known=false and the cause), and deploys the next attempt once enough
// workers are registered again. With a job directory, a CheckpointCoordinator
// takes periodic barrier checkpoints of the running attempt (workers answer
// through AcknowledgeCheckpoint/DeclineCheckpoint; too many failed checkpoints
// in a row fail the attempt). Restoring a new attempt from the latest
// checkpoint comes next; until then it starts from the configured starting
// offsets. Thread-safe; gRPC calls run on gRPC's threads and a reaper thread
// expires silent workers and deploys. No RPC to a worker is made while the
// service's lock is held.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/checkpoint_coordinator.h"

namespace slipstream {

struct CoordinatorOptions {
  std::string listen_address = "0.0.0.0:6123";  // port 0 picks a free port
  std::string job_id;
  std::string topic;
  int max_parallelism = 128;
  int64_t heartbeat_timeout_ms = 10000;
  int min_workers = 1;
  int64_t stabilization_ms = 1000;
  // Returns the topic's partition count (NotFound while it does not exist).
  std::function<absl::StatusOr<int>()> partition_count;
  // Checkpointing, enabled when `job_dir` (<state.checkpoints.dir>/<job-id>)
  // is set.
  std::string job_dir;
  CheckpointSettings checkpoints;
  // Empty: a gRPC channel to the worker's host:data_port.
  TaskControlStubFactory task_control_stub;
};

class CoordinatorServer {
 public:
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(CoordinatorOptions options);
  ~CoordinatorServer();  // shuts down

  int port() const;
  void Shutdown();
  // Blocks until Shutdown.
  void Wait();

 private:
  struct Impl;
  explicit CoordinatorServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
