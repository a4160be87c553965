// CoordinatorClient: the calls a worker makes to its coordinator (Flink's
// ResourceManager/JobMaster gateways seen from a TaskExecutor): registration,
// heartbeats, leaving, and its task's checkpoint acknowledgements. An
// interface so the TaskExecutor's tests can stand in a fake coordinator;
// MakeGrpcCoordinatorClient is the real one. Errors keep the gRPC code and
// message (common/grpc_status.h), which the executor's log lines quote.
// Every method may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/grpc_security.h"
#include "proto/slipstream.pb.h"

namespace slipstream {

class CoordinatorClient {
 public:
  virtual ~CoordinatorClient() = default;

  // host:port of the coordinator, for log lines and error messages.
  virtual const std::string& address() const = 0;

  [[nodiscard]] virtual absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& request) = 0;
  [[nodiscard]] virtual absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) = 0;
  [[nodiscard]] virtual absl::Status DeregisterWorker(const v1::DeregisterWorkerRequest& request) = 0;
  [[nodiscard]] virtual absl::Status AcknowledgeCheckpoint(const v1::AcknowledgeCheckpointRequest& request) = 0;
  // Best effort: a lost decline only delays the abort to the checkpoint's timeout.
  virtual void DeclineCheckpoint(const v1::DeclineCheckpointRequest& request) = 0;
};

// Calls the coordinator at `address` over gRPC, with the security settings
// (TLS, internal token) of `security`. A heartbeat waits for its answer at
// most `heartbeat_deadline_ms`.
std::unique_ptr<CoordinatorClient> MakeGrpcCoordinatorClient(const GrpcSecurity& security, const std::string& address,
                                                             int64_t heartbeat_deadline_ms);

}  // namespace slipstream
