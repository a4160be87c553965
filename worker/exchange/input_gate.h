// InputGate: the window operator's inputs, one channel per worker of the
// attempt (its own source included), with credit-based flow control as in
// Flink's network stack. A channel may have at most `credits_per_channel`
// batches queued or being processed; the operator returns a credit when it
// has processed a batch (Consumed). For the local channel the source takes
// credits directly (AcquireCredit blocks: backpressure); for a remote channel
// the data-plane server forwards returned credits to the sending peer
// (TakeCreditsToGrant), which may only send while it holds credit. Memory in
// the gate is therefore bounded by channels x credits x batch size.
// Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace slipstream {

// Where the source stood in one partition at a barrier: what a checkpoint
// stores for it and a restore resumes from.
struct SourcePosition {
  int partition = 0;
  int64_t next_offset = -1;
  int64_t watermark_ms = 0;  // kMinWatermark (time/watermark_tracker.h) before the first event
  bool idle = false;
};

struct InboundBatch {
  int channel = 0;
  std::string records;  // worker/exchange/record_codec.h
  int32_t record_count = 0;
  int64_t watermark_ms = 0;
  bool idle = false;
  bool end_of_input = false;
  // Checkpoint barrier after the records (0: none). On the local channel it
  // also carries what the local source recorded for the checkpoint.
  int64_t barrier_id = 0;
  std::vector<SourcePosition> offsets;  // the source's partitions at the barrier
  std::string checkpoint_dir;                    // the coordinator's target directory
};

class InputGate {
 public:
  InputGate(int num_channels, int local_channel, int credits_per_channel);

  int num_channels() const { return static_cast<int>(channels_.size()); }
  int local_channel() const { return local_channel_; }
  int credits_per_channel() const { return credits_per_channel_; }

  // Local source: waits for a credit. False when the gate closed or `cancel`
  // became true. Adds the time waited to `*waited_ms`.
  bool AcquireCredit(const std::atomic<bool>& cancel, int64_t* waited_ms);
  // Queues a batch; the sender must hold a credit for its channel. A remote
  // peer that sends without credit breaks the protocol: error.
  absl::Status Push(InboundBatch batch);

  // Operator: the next batch, waiting up to `timeout_ms`.
  bool Pop(InboundBatch* out, int timeout_ms);
  // Operator: the batch from `channel` is processed; its credit returns.
  void Consumed(int channel);

  // Data-plane server of a remote channel: waits up to `timeout_ms` for
  // returned credits and takes them (0 on timeout or when closed).
  int TakeCreditsToGrant(int channel, int timeout_ms);

  // Wakes every waiter; later calls return at once.
  void Close();
  bool closed() const;

  int64_t queued_batches() const;
  int64_t queued_bytes() const;

 private:
  struct Channel {
    int in_flight = 0;  // queued or being processed
    int to_grant = 0;   // remote: returned, not yet sent to the peer
  };
  const int local_channel_;
  const int credits_per_channel_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Channel> channels_;
  std::deque<InboundBatch> queue_;
  int64_t queued_bytes_ = 0;
  bool closed_ = false;
};

}  // namespace slipstream
