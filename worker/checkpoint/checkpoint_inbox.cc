#include "worker/checkpoint/checkpoint_inbox.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace slipstream {

namespace {
// Raises `value` to `candidate` if that is higher (never lowers it).
void RaiseTo(std::atomic<int64_t>& value, int64_t candidate) {
  int64_t current = value.load();
  while (candidate > current && !value.compare_exchange_weak(current, candidate)) {
  }
}
}  // namespace

CheckpointInbox::CheckpointInbox(std::string job_id, int64_t attempt)
    : job_id_(std::move(job_id)), attempt_(attempt) {}

absl::Status CheckpointInbox::TriggerCheckpoint(const v1::TriggerCheckpointRequest& request) {
  if (request.job_id() != job_id_ || request.attempt() != attempt_) {
    return absl::FailedPreconditionError(absl::StrCat("this worker runs attempt ", attempt_, " of job ", job_id_,
                                                      ", not attempt ", request.attempt(), " of ",
                                                      request.job_id()));
  }
  std::lock_guard lock(mu_);
  pending_.push_back(request);
  if (request.stop_after()) stop_id_.store(request.checkpoint_id());
  RaiseTo(latest_trigger_, request.checkpoint_id());
  return absl::OkStatus();
}

void CheckpointInbox::CheckpointComplete(const v1::CheckpointNotification& notification) {
  RaiseTo(completed_up_to_, notification.checkpoint_id());
}

void CheckpointInbox::AbortCheckpoint(const v1::CheckpointNotification& notification) {
  RaiseTo(aborted_up_to_, notification.checkpoint_id());
  spdlog::warn("checkpoint {} aborted by the coordinator: {}", notification.checkpoint_id(), notification.reason());
}

std::optional<v1::TriggerCheckpointRequest> CheckpointInbox::TakeTrigger() {
  std::lock_guard lock(mu_);
  if (pending_.empty()) return std::nullopt;
  v1::TriggerCheckpointRequest request = std::move(pending_.front());
  pending_.pop_front();
  return request;
}

}  // namespace slipstream
