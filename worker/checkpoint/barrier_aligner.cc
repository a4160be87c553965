#include "worker/checkpoint/barrier_aligner.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace slipstream {

BarrierAligner::BarrierAligner(int channels, int local_channel, bool exactly_once)
    : local_channel_(local_channel),
      exactly_once_(exactly_once),
      ended_(channels, false),
      barrier_seen_(channels, false),
      held_(channels) {}

BarrierAligner::Step BarrierAligner::OnBatchProcessed(const InboundBatch& batch, bool barrier_aborted,
                                                      int64_t now_ms) {
  Step step;
  const int channel = batch.channel;
  if (batch.end_of_input) ended_[channel] = true;
  const int64_t id = batch.barrier_id;
  if (id != 0) {
    if (barrier_aborted || (id_ != 0 && id < id_)) return step;  // stale
    if (id_ != 0 && id > id_) {
      // A newer barrier overtook an alignment that never completed.
      step.superseded = Declined{id_, absl::StrCat("superseded by checkpoint ", id)};
      step.released = Reset();
    }
    if (id_ == 0) {
      id_ = id;
      started_ms_ = now_ms;
    }
    barrier_seen_[channel] = true;
    if (channel == local_channel_) {
      offsets_ = batch.offsets;
      checkpoint_dir_ = batch.checkpoint_dir;
    }
  }
  if (id_ == 0 || !EveryChannelThrough()) return step;
  if (!barrier_seen_[local_channel_]) {
    step.declined = Declined{id_, "this worker's source ended before the barrier"};
  } else {
    step.aligned = Aligned{id_, started_ms_, std::move(offsets_), std::move(checkpoint_dir_)};
  }
  for (InboundBatch& b : Reset()) step.released.push_back(std::move(b));
  return step;
}

// The end of a channel, which will send no barrier, counts as its barrier.
bool BarrierAligner::EveryChannelThrough() const {
  for (size_t c = 0; c < barrier_seen_.size(); ++c) {
    if (!barrier_seen_[c] && !ended_[c]) return false;
  }
  return true;
}

bool BarrierAligner::Blocks(int channel) const { return id_ != 0 && exactly_once_ && barrier_seen_[channel]; }

void BarrierAligner::Hold(InboundBatch batch) {
  const int channel = batch.channel;
  held_[channel].push_back(std::move(batch));
}

std::deque<InboundBatch> BarrierAligner::Abort() { return Reset(); }

std::deque<InboundBatch> BarrierAligner::Reset() {
  std::deque<InboundBatch> released;
  for (std::deque<InboundBatch>& held : held_) {
    for (InboundBatch& b : held) released.push_back(std::move(b));
    held.clear();
  }
  id_ = 0;
  started_ms_ = 0;
  barrier_seen_.assign(barrier_seen_.size(), false);
  offsets_.clear();
  checkpoint_dir_.clear();
  return released;
}

}  // namespace slipstream
