// The one mapping between absl::Status (inside every component) and
// grpc::Status (at every RPC edge: the coordinator's service, the workers'
// TaskControl and data plane). The codes are the same numbers by design (both
// are google.rpc.Code), so nothing is lost either way: NotFound stays
// NOT_FOUND, PermissionDenied stays PERMISSION_DENIED.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace slipstream {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace slipstream
