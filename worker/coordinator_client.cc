#include "worker/coordinator_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>

#include "common/grpc_status.h"
#include "proto/slipstream.grpc.pb.h"

namespace slipstream {
namespace {

std::chrono::system_clock::time_point DeadlineIn(std::chrono::milliseconds timeout) {
  return std::chrono::system_clock::now() + timeout;
}

class GrpcCoordinatorClient final : public CoordinatorClient {
 public:
  GrpcCoordinatorClient(const GrpcSecurity& security, std::string address, int64_t heartbeat_deadline_ms)
      : address_(std::move(address)),
        stub_(v1::Coordinator::NewStub(security.Channel(address_))),
        heartbeat_deadline_(heartbeat_deadline_ms) {}

  const std::string& address() const override { return address_; }

  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(const v1::RegisterWorkerRequest& request) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineIn(std::chrono::seconds(5)));
    v1::RegisterWorkerResponse response;
    if (grpc::Status status = stub_->RegisterWorker(&ctx, request, &response); !status.ok()) {
      return FromGrpcStatus(status);
    }
    return response;
  }

  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineIn(heartbeat_deadline_));
    v1::HeartbeatResponse response;
    if (grpc::Status status = stub_->Heartbeat(&ctx, request, &response); !status.ok()) return FromGrpcStatus(status);
    return response;
  }

  absl::Status DeregisterWorker(const v1::DeregisterWorkerRequest& request) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineIn(std::chrono::seconds(2)));
    v1::DeregisterWorkerResponse response;
    return FromGrpcStatus(stub_->DeregisterWorker(&ctx, request, &response));
  }

  absl::Status AcknowledgeCheckpoint(const v1::AcknowledgeCheckpointRequest& request) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineIn(std::chrono::seconds(10)));
    v1::AcknowledgeCheckpointResponse response;
    grpc::Status status = stub_->AcknowledgeCheckpoint(&ctx, request, &response);
    // Whatever the code, the task takes a lost acknowledgement as the
    // coordinator being unreachable.
    if (!status.ok()) return absl::UnavailableError(status.error_message());
    return absl::OkStatus();
  }

  void DeclineCheckpoint(const v1::DeclineCheckpointRequest& request) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineIn(std::chrono::seconds(10)));
    v1::DeclineCheckpointResponse response;
    (void)stub_->DeclineCheckpoint(&ctx, request, &response);
  }

 private:
  const std::string address_;
  const std::unique_ptr<v1::Coordinator::Stub> stub_;
  const std::chrono::milliseconds heartbeat_deadline_;
};

}  // namespace

std::unique_ptr<CoordinatorClient> MakeGrpcCoordinatorClient(const GrpcSecurity& security, const std::string& address,
                                                             int64_t heartbeat_deadline_ms) {
  return std::make_unique<GrpcCoordinatorClient>(security, address, heartbeat_deadline_ms);
}

}  // namespace slipstream
