#include "coordinator/checkpoint/savepoint_requests.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/random_id.h"
#include "spdlog/spdlog.h"

namespace slipstream {

std::string_view SavepointStatusName(SavepointStatus status) {
  switch (status) {
    case SavepointStatus::kInProgress:
      return "IN_PROGRESS";
    case SavepointStatus::kCompleted:
      return "COMPLETED";
    case SavepointStatus::kFailed:
      return "FAILED";
  }
  return "UNKNOWN";
}

absl::StatusOr<v1::SavepointOperation> SavepointRequests::Queue(int64_t attempt,
                                                                std::string dir, bool stop, int32_t expected_workers,
                                                                std::string_view in_progress_request,
                                                                int64_t now_ms) {
  std::string busy = queued_ ? queued_->request_id : "";
  if (!in_progress_request.empty()) busy = std::string(in_progress_request);
  if (!busy.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("a savepoint of job ", job_id_,
                                                      " is already in progress (request ", busy,
                                                      "); wait for it to finish"));
  }
  Request request;
  v1::SavepointOperation& op = request.operation;
  op.set_request_id(RandomHex(32));
  op.set_job_id(job_id_);
  op.set_trigger_time_ms(now_ms);
  op.set_stop(stop);
  op.set_expected(expected_workers);
  queued_ = QueuedSavepoint{op.request_id(), std::move(dir), stop, attempt};
  v1::SavepointOperation result = op;
  result.set_status(std::string(SavepointStatusName(SavepointStatus::kInProgress)));
  order_.push_back(op.request_id());
  requests_[op.request_id()] = std::move(request);
  while (order_.size() > kMaxOperations) {
    requests_.erase(order_.front());
    order_.pop_front();
  }
  return result;
}

std::optional<QueuedSavepoint> SavepointRequests::TakeQueued() {
  std::optional<QueuedSavepoint> taken = std::move(queued_);
  queued_.reset();
  return taken;
}

bool SavepointRequests::FailQueued(const std::string& cause, int64_t now_ms) {
  if (!queued_) return false;
  spdlog::warn("savepoint request {} of job {} failed before it started: {}", queued_->request_id,
               job_id_, cause);
  Failed(queued_->request_id, cause, now_ms);
  queued_.reset();
  return true;
}

void SavepointRequests::Started(const std::string& request_id, int64_t checkpoint_id, int32_t expected_workers) {
  if (Request* r = Find(request_id)) {
    r->operation.set_checkpoint_id(checkpoint_id);
    r->operation.set_expected(expected_workers);
  }
}

void SavepointRequests::Completed(const std::string& request_id, const std::string& location, int64_t end_time_ms,
                                  int32_t acknowledged, int64_t state_bytes) {
  if (Request* r = Find(request_id)) {
    r->status = SavepointStatus::kCompleted;
    r->operation.set_location(location);
    r->operation.set_end_time_ms(end_time_ms);
    r->operation.set_acknowledged(acknowledged);
    r->operation.set_state_bytes(state_bytes);
  }
}

void SavepointRequests::Failed(const std::string& request_id, const std::string& cause, int64_t now_ms) {
  if (Request* r = Find(request_id)) {
    r->status = SavepointStatus::kFailed;
    r->operation.set_failure_cause(cause);
    r->operation.set_end_time_ms(now_ms);
  }
}

std::optional<v1::SavepointOperation> SavepointRequests::Get(const std::string& request_id) const {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return std::nullopt;
  v1::SavepointOperation op = it->second.operation;
  op.set_status(std::string(SavepointStatusName(it->second.status)));
  return op;
}

std::optional<SavepointStatus> SavepointRequests::StatusOf(const std::string& request_id) const {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return std::nullopt;
  return it->second.status;
}

SavepointRequests::Request* SavepointRequests::Find(const std::string& request_id) {
  auto it = requests_.find(request_id);
  return it == requests_.end() ? nullptr : &it->second;
}

}  // namespace slipstream
