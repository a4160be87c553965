#include "coordinator/rpc_access.h"

#include "proto/slipstream.grpc.pb.h"

namespace slipstream {

MethodAccess CoordinatorMethodAccess() {
  const char* const service = v1::Coordinator::service_full_name();
  MethodAccess methods;
  methods.Add(service,
              {"RegisterWorker", "Heartbeat", "DeregisterWorker", "AcknowledgeCheckpoint", "DeclineCheckpoint"},
              Access::kInternal);
  methods.Add(service, {"GetJob", "ListJobs", "GetSavepoint", "GetCheckpoints", "ListWorkers"}, Access::kRead);
  methods.Add(service, {"TriggerSavepoint", "StopWithSavepoint", "CancelJob", "DisposeSavepoint"}, Access::kAdmin);
  return methods;
}

void AddCoordinatorListeningPort(grpc::ServerBuilder& builder, const std::string& address,
                                 const GrpcSecurity& security, const AccessControl& access, int* selected_port) {
  AddAuthorizedListeningPort(builder, address, security, access, CoordinatorMethodAccess(), selected_port);
}

}  // namespace slipstream
