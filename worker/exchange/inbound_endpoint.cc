#include "worker/exchange/inbound_endpoint.h"

#include "worker/exchange/inbound_endpoint_impl.h"

namespace slipstream {

InboundEndpoint::InboundEndpoint(std::string job_id, int64_t attempt, std::vector<std::string> peer_ids,
                                 int local_index, InputGate* gate)
    : impl_(std::make_unique<Impl>()) {
  impl_->job_id = std::move(job_id);
  impl_->attempt = attempt;
  impl_->channels.resize(peer_ids.size());
  impl_->peer_ids = std::move(peer_ids);
  impl_->local_index = local_index;
  impl_->gate = gate;
}

InboundEndpoint::~InboundEndpoint() = default;
const std::string& InboundEndpoint::job_id() const { return impl_->job_id; }
int64_t InboundEndpoint::attempt() const { return impl_->attempt; }
InputGate* InboundEndpoint::gate() const { return impl_->gate; }

std::optional<std::string> InboundEndpoint::BrokenChannel() const {
  std::lock_guard lock(impl_->mu);
  return impl_->broken;
}

std::vector<v1::ChannelStatus> InboundEndpoint::Status() const {
  std::lock_guard lock(impl_->mu);
  std::vector<v1::ChannelStatus> out;
  for (size_t i = 0; i < impl_->channels.size(); ++i) {
    if (static_cast<int>(i) == impl_->local_index) continue;
    const Impl::Channel& c = impl_->channels[i];
    v1::ChannelStatus s;
    s.set_peer_worker_id(impl_->peer_ids[i]);
    s.set_outbound(false);
    s.set_connected(c.connected);
    s.set_error(c.error);
    s.set_error_since_ms(c.error_since_ms);
    s.set_batches(c.batches);
    s.set_records(c.records);
    s.set_bytes(c.bytes);
    s.set_watermark_ms(c.watermark_ms);
    s.set_idle(c.idle);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace slipstream
