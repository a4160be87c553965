// InboundEndpoint: the receiving side of one attempt's data plane, attached
// to the worker's DataPlaneServer while the attempt runs. It knows which
// peers may connect (one Exchange stream each, channel = the sender's worker
// index), feeds their batches into the attempt's InputGate, and tells the
// operator when an inbound stream broke (records may be lost: the attempt
// must fail rather than go on silently). Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proto/slipstream.pb.h"

namespace slipstream {

class InputGate;
class ExchangeService;

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
  // The Exchange handlers claim channels and report batches through Impl
  // (inbound_endpoint_impl.h).
  friend class ExchangeService;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
