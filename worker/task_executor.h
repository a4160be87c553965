// TaskExecutor: the worker's side of the cluster (Flink's TaskExecutor).
// Registers with the coordinator (retrying: it may start after us, or have
// restarted), heartbeats for the life of the process, deploys the task of
// each new attempt the coordinator assigns, cancels it when the assignment
// is cleared or changes (or when the coordinator has not answered for
// heartbeat.timeout), reports a failed task with its cause, and leaves on
// purpose (SIGTERM) by deregistering.
//
// Threads: Run()'s caller runs the lifecycle (register, wait for an
// assignment, deploy and run its task) as a small state machine; heartbeats
// run on a thread of their own, so a busy task never looks dead (tests may
// drive them with Heartbeat() instead); another thread watches the leave
// flag. Time comes from `Clock` (tests use a ManualClock).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "common/clock.h"
#include "proto/slipstream.pb.h"
#include "worker/coordinator_client.h"
#include "worker/metrics/worker_metrics.h"
#include "worker/task_factory.h"

namespace slipstream {

struct TaskExecutorOptions {
  // Host, data port, pid and version this worker registers with.
  v1::RegisterWorkerRequest registration;
  int64_t heartbeat_interval_ms = 10000;  // heartbeat.interval
  int64_t heartbeat_timeout_ms = 50000;   // heartbeat.timeout
  // Pause between registration attempts while the coordinator is unreachable.
  int64_t register_retry_ms = 500;
  // false: no heartbeat thread; the caller sends each one with Heartbeat().
  bool heartbeat_thread = true;
  const Clock* clock = &Clock::Real();
};

class TaskExecutor {
 public:
  // `coordinator` and `tasks` must outlive the executor. Once `leave`
  // becomes true (SIGTERM), the executor deregisters, cancels its task and
  // Run() returns.
  TaskExecutor(TaskExecutorOptions options, CoordinatorClient& coordinator, TaskFactory& tasks,
               const std::atomic<bool>& leave);
  ~TaskExecutor();
  TaskExecutor(const TaskExecutor&) = delete;
  TaskExecutor& operator=(const TaskExecutor&) = delete;

  // Runs until `leave` (OK) or a fatal error: the coordinator refused this
  // worker, or stayed unreachable for 5 minutes while it registered.
  [[nodiscard]] absl::Status Run();

  // One heartbeat now, on the caller's thread (with heartbeat_thread=false).
  void Heartbeat();

  // The coordinator's CancelTask (TaskControl) for `request.attempt()`.
  void OnCancelTask(const v1::CancelTaskRequest& request);

  // What GET /metrics shows: the worker id, attempt, restores, the running
  // task's counters and the process's memory.
  WorkerMetricsInput MetricsInput() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
