// What the TaskExecutor deploys: a task of one attempt, made by a
// TaskFactory from the coordinator's assignment. FeatureTaskFactory
// (worker/feature_task_factory.h) makes the real FeatureTask; the executor's
// tests deploy fakes.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/slipstream.pb.h"
#include "worker/pipeline/feature_task.h"

namespace slipstream {

// One deployed task. Run() on the executor's thread; Cancel() and counters()
// from any thread while it runs.
class DeployedTask {
 public:
  // Frees what Close() left (the task's state) in the background.
  virtual ~DeployedTask() = default;

  // Runs until `stop` becomes true (a graceful stop), Cancel(), or the task
  // fails (returned).
  [[nodiscard]] virtual absl::Status Run(const std::atomic<bool>& stop) = 0;
  // Stops the running task at once (FeatureTask::Cancel).
  virtual void Cancel() = 0;
  virtual TaskCounters counters() const = 0;
  // After Run() returned OK: the task of a bounded attempt read all its
  // input and had every feature acknowledged (FeatureTask::finished()).
  virtual bool finished() const { return false; }
  // After Run() returned: closes the task's clients, so nothing of its
  // attempt reaches Redis or a peer any more. Its state stays until the
  // task is destroyed.
  virtual void Close() = 0;
};

class TaskFactory {
 public:
  virtual ~TaskFactory() = default;

  // Restores the state `assignment` names (if any) and creates its task.
  // `worker_id` is this worker's registration. Gives up early once `stop`
  // is set (the attempt was cancelled while it deployed); calls
  // `on_state_restored` once the state came from a checkpoint or savepoint.
  [[nodiscard]] virtual absl::StatusOr<std::unique_ptr<DeployedTask>> Deploy(
      const v1::Assignment& assignment, const std::string& worker_id, const std::atomic<bool>& stop,
      const std::function<void()>& on_state_restored) = 0;
};

}  // namespace slipstream
