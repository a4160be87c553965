#include "worker/exchange/task_control_service.h"

#include "common/grpc_status.h"

namespace slipstream {

void TaskControlService::Set(std::shared_ptr<TaskControlHandler> handler) {
  std::lock_guard lock(mu_);
  handler_ = std::move(handler);
}

void TaskControlService::SetCancelListener(std::function<void(const v1::CancelTaskRequest&)> listener) {
  std::lock_guard lock(mu_);
  cancel_listener_ = std::move(listener);
}

grpc::Status TaskControlService::TriggerCheckpoint(grpc::ServerContext*, const v1::TriggerCheckpointRequest* request,
                                                   v1::TriggerCheckpointResponse*) {
  std::shared_ptr<TaskControlHandler> handler = Get();
  // FAILED_PRECONDITION: the coordinator does not count it as a failed
  // checkpoint (the task is starting or stopping).
  if (!handler) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no task is running on this worker");
  return ToGrpcStatus(handler->TriggerCheckpoint(*request));
}

grpc::Status TaskControlService::NotifyCheckpointComplete(grpc::ServerContext*,
                                                          const v1::CheckpointNotification* request,
                                                          v1::CheckpointNotificationResponse*) {
  if (std::shared_ptr<TaskControlHandler> handler = Get()) handler->CheckpointComplete(*request);
  return grpc::Status::OK;
}

grpc::Status TaskControlService::AbortCheckpoint(grpc::ServerContext*, const v1::CheckpointNotification* request,
                                                 v1::CheckpointNotificationResponse*) {
  if (std::shared_ptr<TaskControlHandler> handler = Get()) handler->AbortCheckpoint(*request);
  return grpc::Status::OK;
}

grpc::Status TaskControlService::CancelTask(grpc::ServerContext*, const v1::CancelTaskRequest* request,
                                            v1::CancelTaskResponse*) {
  std::function<void(const v1::CancelTaskRequest&)> listener;
  {
    std::lock_guard lock(mu_);
    listener = cancel_listener_;
  }
  if (!listener) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this worker does not take cancellations yet");
  listener(*request);
  return grpc::Status::OK;
}

std::shared_ptr<TaskControlHandler> TaskControlService::Get() {
  std::lock_guard lock(mu_);
  return handler_;
}

}  // namespace slipstream
