// BarrierAligner: barrier alignment of one window operator over its input
// channels (its own source plus one per peer worker), as Flink's
// CheckpointBarrierHandler does it. From the first barrier n until barrier n
// has arrived on every channel (a channel that ended counts as arrived), the
// operator state must not see records from after the barrier: with
// EXACTLY_ONCE a channel past its barrier is blocked and its batches are held
// here (their credit is not returned, so the sender soon stops: bounded);
// with AT_LEAST_ONCE nothing is held. When every channel is through, the
// state is exactly the effect of every record before the barriers: the
// caller snapshots it, then processes the held batches.
//
// Pure: no threads, no clock, no I/O, no gRPC; the operator thread drives it
// and acts on what each call returns (snapshot, decline, replay).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "worker/exchange/input_gate.h"

namespace slipstream {

class BarrierAligner {
 public:
  // `local_channel`: this worker's own source, whose barrier carries the
  // offsets and the checkpoint directory.
  BarrierAligner(int channels, int local_channel, bool exactly_once);

  // Barrier n arrived on every channel: the state to snapshot is complete.
  struct Aligned {
    int64_t checkpoint_id = 0;
    int64_t started_ms = 0;  // when the first barrier n arrived (the caller's clock)
    std::vector<SourcePosition> offsets;  // from the local source's barrier
    std::string checkpoint_dir;           // likewise
  };
  struct Declined {
    int64_t checkpoint_id = 0;
    std::string reason;
  };
  // What one call led to, in the order to act on it.
  struct Step {
    std::optional<Declined> superseded;  // a newer barrier overtook this alignment
    std::optional<Aligned> aligned;      // snapshot now
    std::optional<Declined> declined;    // every channel is through, but the local source ended first
    std::deque<InboundBatch> released;   // held batches, to process next, in order
  };

  // After the operator processed `batch`, when it carries a barrier or the
  // end of its channel (or both). `barrier_aborted`: the coordinator already
  // aborted the batch's checkpoint (such a barrier is stale and ignored, as
  // is one older than the alignment in progress). `now_ms` starts the
  // alignment's clock.
  Step OnBatchProcessed(const InboundBatch& batch, bool barrier_aborted, int64_t now_ms);

  // Whether a batch from `channel` must wait for the snapshot: EXACTLY_ONCE,
  // and the channel already delivered the barrier in progress.
  bool Blocks(int channel) const;
  // Keeps a batch of a blocked channel until the alignment ends.
  void Hold(InboundBatch batch);

  // Drops the alignment in progress (its checkpoint was aborted); returns the
  // held batches to process next, in order.
  std::deque<InboundBatch> Abort();

  // The checkpoint being aligned; 0 when none.
  int64_t checkpoint_id() const { return id_; }

 private:
  bool EveryChannelThrough() const;
  // Ends the alignment in progress; returns its held batches.
  std::deque<InboundBatch> Reset();

  const int local_channel_;
  const bool exactly_once_;
  std::vector<bool> ended_;  // channels that delivered their end of input (for good)

  // The alignment in progress (id_ == 0: none).
  int64_t id_ = 0;
  int64_t started_ms_ = 0;
  std::vector<bool> barrier_seen_;
  std::vector<SourcePosition> offsets_;
  std::string checkpoint_dir_;
  std::vector<std::deque<InboundBatch>> held_;  // by channel
};

}  // namespace slipstream
