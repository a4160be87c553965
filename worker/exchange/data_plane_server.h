// DataPlaneServer: the worker's gRPC server on taskmanager.data.port. It
// serves the data plane (ExchangeService: peers' Exchange streams into the
// attached attempt's InboundEndpoint) and TaskControl (the coordinator's
// checkpoint and cancel calls). Every call needs the internal token when
// AccessControl requires one, checked before any handler runs
// (DataPlaneMethodAccess, grpc_authorization.h).
#pragma once

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "common/access_control.h"
#include "common/grpc_authorization.h"
#include "common/grpc_security.h"
#include "proto/slipstream.pb.h"
#include "worker/exchange/inbound_endpoint.h"
#include "worker/exchange/task_control_handler.h"

namespace slipstream {

// The access every RPC of the worker's server needs: all are internal
// (peers and the coordinator, never an operator).
MethodAccess DataPlaneMethodAccess();

class DataPlaneServer {
 public:
  // Listens on 0.0.0.0:`port` (0 picks a free port) with `security`'s
  // server credentials. Every call (data streams and TaskControl) needs the
  // internal token when `access` requires one.
  static absl::StatusOr<std::unique_ptr<DataPlaneServer>> Start(int port, const GrpcSecurity& security = {},
                                                                AccessControl access = {});
  ~DataPlaneServer();

  int port() const;
  // Streams for `endpoint`'s attempt are accepted from now on (a peer that
  // connects a little early waits up to 10 s for this).
  void Attach(std::shared_ptr<InboundEndpoint> endpoint);
  // Stops accepting for the attached attempt, closes its gate, and returns
  // once no stream uses the endpoint (or its gate) any more.
  void Detach();

  // The task that answers TaskControl calls (null: none, calls are refused
  // as FAILED_PRECONDITION). A call in flight keeps its handler alive.
  void SetTaskControl(std::shared_ptr<TaskControlHandler> handler);
  // Called with the coordinator's CancelTask requests (on a gRPC thread).
  void SetCancelListener(std::function<void(const v1::CancelTaskRequest&)> listener);

 private:
  struct Impl;
  explicit DataPlaneServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
