// OutboundChannel: the sending side of the data plane towards one peer (its
// DataPlaneServer's Exchange stream). Send() connects (retrying with backoff
// while the peer is unreachable, and reporting it), then blocks while it has
// no credit: that is how a slow receiver, or a slow Redis behind it, holds
// the source back with bounded memory. Used by one sending thread; Status()
// may be called from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/grpc_security.h"
#include "proto/slipstream.pb.h"

namespace slipstream {

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
