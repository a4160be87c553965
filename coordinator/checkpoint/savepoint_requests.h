// SavepointRequests: Flink's asynchronous savepoint operations of one job
// (POST /jobs/:id/savepoints returns a request id; GET .../savepoints/:id
// polls it). Holds the savepoint waiting to be triggered (at most one: a
// savepoint never runs concurrently with a checkpoint, so a request waits for
// the running one) and the status of every request by id, the newest
// kMaxOperations of them.
//
// Bookkeeping only: no RPCs, no file system, no threads; the
// CheckpointCoordinator calls it under its lock and passes the times in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "proto/slipstream.pb.h"

namespace slipstream {

enum class SavepointStatus { kInProgress, kCompleted, kFailed };

// Flink's names, as SavepointOperation.status carries them: IN_PROGRESS,
// COMPLETED, FAILED.
std::string_view SavepointStatusName(SavepointStatus status);

// A savepoint requested but not triggered yet.
struct QueuedSavepoint {
  std::string request_id;
  std::string dir;  // the savepoint's own directory (NewSavepointDirectory)
  bool stop = false;  // stop-with-savepoint
  int64_t attempt = 0;
};

class SavepointRequests {
 public:
  static constexpr size_t kMaxOperations = 100;

  explicit SavepointRequests(std::string job_id) : job_id_(std::move(job_id)) {}

  // A new request of the savepoint of `attempt` into `dir`, with a fresh
  // random request id, queued until triggered. FailedPrecondition when a
  // savepoint is queued already or `in_progress_request` (the running
  // savepoint's request, "" for none) is set. Returns the operation
  // (IN_PROGRESS).
  [[nodiscard]] absl::StatusOr<v1::SavepointOperation> Queue(int64_t attempt,
                                                             std::string dir, bool stop, int32_t expected_workers,
                                                             std::string_view in_progress_request, int64_t now_ms);

  // The queued savepoint, if any.
  const std::optional<QueuedSavepoint>& queued() const { return queued_; }
  // Removes and returns the queued savepoint, to be triggered.
  std::optional<QueuedSavepoint> TakeQueued();
  // The queued savepoint fails before it started; returns whether one was queued.
  bool FailQueued(const std::string& cause, int64_t now_ms);

  // The request's savepoint was triggered as checkpoint `checkpoint_id`.
  void Started(const std::string& request_id, int64_t checkpoint_id, int32_t expected_workers);
  void Completed(const std::string& request_id, const std::string& location, int64_t end_time_ms,
                 int32_t acknowledged, int64_t state_bytes);
  void Failed(const std::string& request_id, const std::string& cause, int64_t now_ms);

  // The operation with its status; nullopt for an unknown (or long
  // forgotten) request id.
  std::optional<v1::SavepointOperation> Get(const std::string& request_id) const;
  std::optional<SavepointStatus> StatusOf(const std::string& request_id) const;

 private:
  struct Request {
    SavepointStatus status = SavepointStatus::kInProgress;
    v1::SavepointOperation operation;  // everything but `status`
  };
  Request* Find(const std::string& request_id);

  std::string job_id_;
  std::optional<QueuedSavepoint> queued_;
  std::map<std::string, Request> requests_;
  std::deque<std::string> order_;  // request ids, oldest first
};

}  // namespace slipstream
