// The data plane between workers (Flink's network shuffle), over the
// DataPlane gRPC service in proto/slipstream.proto:
//
//  - DataPlaneServer: every worker serves it on taskmanager.data.port. A peer
//    opens one long-lived Exchange stream per attempt; the server feeds its
//    batches into the attempt's InputGate (channel = the sender's worker
//    index) and sends back the credits the window operator returns.
//  - InboundEndpoint: the receiving side of one attempt, attached to the
//    server while the attempt runs. It knows which peers may connect and
//    tells the operator when an inbound stream broke (records may be lost:
//    the attempt must fail rather than go on silently).
//  - OutboundChannel: the sending side towards one peer. Send() connects
//    (retrying with backoff while the peer is unreachable, and reporting it),
//    then blocks while it has no credit: that is how a slow receiver, or a
//    slow Redis behind it, holds the source back with bounded memory.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/access_control.h"
#include "common/grpc_security.h"
#include "proto/slipstream.pb.h"

namespace slipstream {

class InputGate;
class DataPlaneService;

class InboundEndpoint {
 public:
  // `peer_ids[i]` is the worker id of index i; `local_index` is this worker.
  InboundEndpoint(std::string job_id, int64_t attempt, std::vector<std::string> peer_ids, int local_index,
                  InputGate* gate);
  ~InboundEndpoint();

  const std::string& job_id() const;
  int64_t attempt() const;
  InputGate* gate() const;

  // The first inbound stream that broke before its end of input, as a cause
  // for the attempt's failure.
  std::optional<std::string> BrokenChannel() const;
  // Inbound channels (from every peer), for heartbeats.
  std::vector<v1::ChannelStatus> Status() const;

 private:
  friend class DataPlaneService;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What a running task does with the coordinator's checkpoint calls
// (TaskControl service, served next to the data plane).
class TaskControlHandler {
 public:
  virtual ~TaskControlHandler() = default;
  virtual absl::Status TriggerCheckpoint(const v1::TriggerCheckpointRequest& request) = 0;
  virtual void CheckpointComplete(const v1::CheckpointNotification& notification) = 0;
  virtual void AbortCheckpoint(const v1::CheckpointNotification& notification) = 0;
};

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
  // as UNAVAILABLE). A call in flight keeps its handler alive.
  void SetTaskControl(std::shared_ptr<TaskControlHandler> handler);
  // Called with the coordinator's CancelTask requests (on a gRPC thread).
  void SetCancelListener(std::function<void(const v1::CancelTaskRequest&)> listener);

 private:
  struct Impl;
  explicit DataPlaneServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class OutboundChannel {
 public:
  // `target` is host:port of the peer's data endpoint.
  // `security`: TLS and the internal token of the connection.
  OutboundChannel(std::string peer_worker_id, std::string target, v1::ChannelOpen open,
                  GrpcSecurity security = {});
  ~OutboundChannel();  // cancels the stream if still open

  // Sends one batch, connecting first if needed. Blocks while the peer has
  // granted no credit. Errors: Cancelled when `cancel` became true;
  // Unavailable when the stream broke after it was established (what was in
  // flight may be lost).
  [[nodiscard]] absl::Status Send(v1::DataBatch* batch, const std::atomic<bool>& cancel);
  // Half-closes the stream and waits up to `timeout_ms` for the peer to
  // close its side.
  [[nodiscard]] absl::Status Finish(int timeout_ms);

  v1::ChannelStatus Status() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
