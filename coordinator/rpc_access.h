// Which access (AccessControl) each RPC of the Coordinator service needs,
// as one table, and the listening port that enforces it before any handler
// runs (grpc_authorization.h):
//  - internal: the workers' calls (register, heartbeat, deregister,
//    checkpoint acknowledgements and declines);
//  - read: the job's status (GetJob, ListJobs, GetSavepoint, GetCheckpoints,
//    ListWorkers);
//  - admin: anything that changes the job (savepoints, stop, cancel,
//    dispose).
#pragma once

#include <string>

#include "common/access_control.h"
#include "common/grpc_authorization.h"
#include "common/grpc_security.h"

namespace grpc {
class ServerBuilder;
}  // namespace grpc

namespace slipstream {

MethodAccess CoordinatorMethodAccess();

// Adds the coordinator's listening port at `address` to `builder` (like
// ServerBuilder::AddListeningPort): TLS as `security` says, and every call
// refused unless `access` grants what CoordinatorMethodAccess() says its RPC
// needs.
void AddCoordinatorListeningPort(grpc::ServerBuilder& builder, const std::string& address,
                                 const GrpcSecurity& security, const AccessControl& access, int* selected_port);

}  // namespace slipstream
