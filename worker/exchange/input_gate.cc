#include "worker/exchange/input_gate.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/clock.h"

namespace slipstream {

InputGate::InputGate(int num_channels, int local_channel, int credits_per_channel)
    : local_channel_(local_channel), credits_per_channel_(credits_per_channel), channels_(num_channels) {}

bool InputGate::AcquireCredit(const std::atomic<bool>& cancel, int64_t* waited_ms) {
  std::unique_lock lock(mu_);
  Channel& c = channels_[local_channel_];
  if (c.in_flight < credits_per_channel_ && !closed_) {
    ++c.in_flight;
    return true;
  }
  const int64_t begin = Clock::Real().SteadyMs();
  while (!closed_ && !cancel.load() && c.in_flight >= credits_per_channel_) {
    // Bounded waits so a cancel (an atomic, not signalled) is seen.
    cv_.wait_for(lock, std::chrono::milliseconds(50));
  }
  *waited_ms += Clock::Real().SteadyMs() - begin;
  if (closed_ || cancel.load()) return false;
  ++c.in_flight;
  return true;
}

absl::Status InputGate::Push(InboundBatch batch) {
  std::lock_guard lock(mu_);
  if (closed_) return absl::CancelledError("the input gate is closed");
  if (batch.channel < 0 || batch.channel >= num_channels()) {
    return absl::InvalidArgumentError(absl::StrCat("no input channel ", batch.channel));
  }
  Channel& c = channels_[batch.channel];
  if (batch.channel != local_channel_) {
    // Remote batches arrive with the credit the peer spent.
    if (c.in_flight >= credits_per_channel_) {
      return absl::FailedPreconditionError(
          absl::StrCat("channel ", batch.channel, " sent a batch without credit (", c.in_flight, " in flight)"));
    }
    ++c.in_flight;
  }
  queued_bytes_ += static_cast<int64_t>(batch.records.size());
  queue_.push_back(std::move(batch));
  cv_.notify_all();
  return absl::OkStatus();
}

bool InputGate::Pop(InboundBatch* out, int timeout_ms) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !queue_.empty() || closed_; }) ||
      queue_.empty()) {
    return false;
  }
  *out = std::move(queue_.front());
  queue_.pop_front();
  queued_bytes_ -= static_cast<int64_t>(out->records.size());
  return true;
}

void InputGate::Consumed(int channel) {
  std::lock_guard lock(mu_);
  Channel& c = channels_[channel];
  if (c.in_flight > 0) --c.in_flight;
  if (channel != local_channel_) ++c.to_grant;
  cv_.notify_all();
}

int InputGate::TakeCreditsToGrant(int channel, int timeout_ms) {
  std::unique_lock lock(mu_);
  Channel& c = channels_[channel];
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return c.to_grant > 0 || closed_; });
  const int n = c.to_grant;
  c.to_grant = 0;
  return n;
}

void InputGate::Close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

bool InputGate::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

int64_t InputGate::queued_batches() const {
  std::lock_guard lock(mu_);
  return static_cast<int64_t>(queue_.size());
}

int64_t InputGate::queued_bytes() const {
  std::lock_guard lock(mu_);
  return queued_bytes_;
}

}  // namespace slipstream
