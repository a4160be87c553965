// TaskControlService: the worker's TaskControl gRPC service. Forwards the
// coordinator's checkpoint calls to the running task (TaskControlHandler)
// and its CancelTask requests to the process's listener. Callers' tokens
// are checked before a handler runs (the server's listening port,
// grpc_authorization.h). Private to worker/exchange.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <mutex>

#include "proto/slipstream.grpc.pb.h"
#include "worker/exchange/task_control_handler.h"

namespace slipstream {

class TaskControlService final : public v1::TaskControl::Service {
 public:
  // The task that answers checkpoint calls (null: none is running).
  void Set(std::shared_ptr<TaskControlHandler> handler);
  void SetCancelListener(std::function<void(const v1::CancelTaskRequest&)> listener);

  grpc::Status TriggerCheckpoint(grpc::ServerContext* ctx, const v1::TriggerCheckpointRequest* request,
                                 v1::TriggerCheckpointResponse*) override;
  grpc::Status NotifyCheckpointComplete(grpc::ServerContext* ctx, const v1::CheckpointNotification* request,
                                        v1::CheckpointNotificationResponse*) override;
  grpc::Status AbortCheckpoint(grpc::ServerContext* ctx, const v1::CheckpointNotification* request,
                               v1::CheckpointNotificationResponse*) override;
  // Not the task's to answer: the process decides (it asks the coordinator).
  grpc::Status CancelTask(grpc::ServerContext* ctx, const v1::CancelTaskRequest* request,
                          v1::CancelTaskResponse*) override;

 private:
  // A call in flight keeps its handler alive.
  std::shared_ptr<TaskControlHandler> Get();

  std::mutex mu_;
  std::shared_ptr<TaskControlHandler> handler_;
  std::function<void(const v1::CancelTaskRequest&)> cancel_listener_;
};

}  // namespace slipstream
