// CheckpointInbox: the coordinator's checkpoint calls to one task (the data
// plane's TaskControl service, on gRPC threads), kept for the task's threads
// to read: triggers queue up for the source thread, which injects their
// barriers at its next poll boundary; completions, aborts and the latest
// stop-with-savepoint are watermarks any thread may read. Thread-safe; it
// never blocks on the task.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "proto/slipstream.pb.h"
#include "worker/exchange/data_plane.h"

namespace slipstream {

class CheckpointInbox final : public TaskControlHandler {
 public:
  CheckpointInbox(std::string job_id, int64_t attempt);

  // TaskControlHandler (gRPC threads). A trigger for another job or attempt
  // is refused.
  absl::Status TriggerCheckpoint(const v1::TriggerCheckpointRequest& request) override;
  void CheckpointComplete(const v1::CheckpointNotification& notification) override;
  void AbortCheckpoint(const v1::CheckpointNotification& notification) override;

  // Source thread: the oldest trigger not taken yet.
  std::optional<v1::TriggerCheckpointRequest> TakeTrigger();

  // Checkpoint `id` is a stop-with-savepoint: nothing may follow its barrier.
  bool IsStop(int64_t id) const { return id != 0 && stop_id_.load() == id; }
  // A task stopped at stop barrier `id` resumes when that savepoint failed:
  // aborted, or a newer checkpoint was triggered (the abort was lost).
  bool StopFailed(int64_t id) const { return Aborted(id) || latest_trigger_.load() > id; }
  bool Aborted(int64_t checkpoint_id) const { return checkpoint_id <= aborted_up_to_.load(); }
  int64_t completed_up_to() const { return completed_up_to_.load(); }

 private:
  const std::string job_id_;
  const int64_t attempt_;
  std::mutex mu_;
  std::deque<v1::TriggerCheckpointRequest> pending_;  // guarded by mu_
  std::atomic<int64_t> aborted_up_to_{0};
  std::atomic<int64_t> completed_up_to_{0};
  std::atomic<int64_t> stop_id_{0};
  std::atomic<int64_t> latest_trigger_{0};
};

}  // namespace slipstream
