#include "worker/exchange/data_plane_server.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "proto/slipstream.grpc.pb.h"
#include "worker/exchange/exchange_service.h"
#include "worker/exchange/task_control_service.h"

namespace slipstream {

MethodAccess DataPlaneMethodAccess() {
  MethodAccess methods;
  methods.Add(v1::DataPlane::service_full_name(), {"Exchange"}, Access::kInternal);
  methods.Add(v1::TaskControl::service_full_name(),
              {"TriggerCheckpoint", "NotifyCheckpointComplete", "AbortCheckpoint", "CancelTask"}, Access::kInternal);
  return methods;
}

struct DataPlaneServer::Impl {
  ExchangeService service;
  TaskControlService control;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

DataPlaneServer::DataPlaneServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<DataPlaneServer>> DataPlaneServer::Start(int port, const GrpcSecurity& security,
                                                                       AccessControl access) {
  auto impl = std::make_unique<Impl>();
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(64 << 20);
  // Accept the senders' keepalive pings (every 10 s).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Peers and the coordinator must show the internal token (AccessControl).
  AddAuthorizedListeningPort(builder, absl::StrCat("0.0.0.0:", port), security, std::move(access),
                             DataPlaneMethodAccess(), &impl->port);
  builder.RegisterService(&impl->service);
  builder.RegisterService(&impl->control);
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return absl::UnavailableError(
        absl::StrCat("taskmanager.data.port: cannot listen on port ", port, " (in use, or not allowed)"));
  }
  return std::unique_ptr<DataPlaneServer>(new DataPlaneServer(std::move(impl)));
}

DataPlaneServer::~DataPlaneServer() {
  impl_->service.Stop();
  impl_->service.Detach();
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

int DataPlaneServer::port() const { return impl_->port; }

void DataPlaneServer::Attach(std::shared_ptr<InboundEndpoint> endpoint) { impl_->service.Attach(std::move(endpoint)); }

void DataPlaneServer::Detach() { impl_->service.Detach(); }

void DataPlaneServer::SetCancelListener(std::function<void(const v1::CancelTaskRequest&)> listener) {
  impl_->control.SetCancelListener(std::move(listener));
}

void DataPlaneServer::SetTaskControl(std::shared_ptr<TaskControlHandler> handler) {
  impl_->control.Set(std::move(handler));
}

}  // namespace slipstream
