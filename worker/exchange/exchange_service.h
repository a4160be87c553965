// ExchangeService: the worker's DataPlane gRPC service (Flink's network
// shuffle, receiving side). A peer opens one long-lived Exchange stream per
// attempt; the handler waits for that attempt's InboundEndpoint, feeds the
// stream's batches into its InputGate (channel = the sender's worker index)
// and sends back the credits the window operator returns. Handlers run on
// gRPC threads; callers' tokens are checked before a handler runs (the
// server's listening port, grpc_authorization.h). Private to worker/exchange.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "proto/slipstream.grpc.pb.h"
#include "worker/exchange/inbound_endpoint.h"

namespace slipstream {

class InputGate;

class ExchangeService final : public v1::DataPlane::Service {
 public:
  // Streams for `endpoint`'s attempt are accepted from now on.
  void Attach(std::shared_ptr<InboundEndpoint> endpoint);
  // Returns once no stream handler uses the detached endpoint any more, so
  // its gate may be destroyed.
  void Detach();
  // The server is going away: waiting streams give up at once.
  void Stop();

  grpc::Status Exchange(grpc::ServerContext* ctx,
                        grpc::ServerReaderWriter<v1::ChannelCredit, v1::ChannelMessage>* stream) override;

 private:
  using Stream = grpc::ServerReaderWriter<v1::ChannelCredit, v1::ChannelMessage>;

  std::shared_ptr<InboundEndpoint> WaitForAttempt(grpc::ServerContext* ctx, const std::string& job_id,
                                                  int64_t attempt);
  // Runs an open channel until it ends: a reader thread pushes batches into
  // the gate while this thread grants the credits the gate frees. Returns
  // what went wrong ("" when the stream ended cleanly).
  static std::string Pump(grpc::ServerContext* ctx, Stream* stream, InboundEndpoint::Impl& ep, int index);
  // The reader's loop: batches from `stream` into the gate until end of
  // input, a protocol error, or a closed gate.
  static std::string ForwardBatches(Stream* stream, InboundEndpoint::Impl& ep, int index);

  bool stopping_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<InboundEndpoint> endpoint_;
};

}  // namespace slipstream
