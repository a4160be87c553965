// RedisSinkQueue: the hand-off between the task thread (Write, Flush) and
// the Redis sink's writer thread. It owns the bounded queue whose fullness
// holds the task back (backpressure), the count of features Redis
// acknowledged, and the stop / discard / fenced-out flags; every wait of
// either thread is here, under one mutex.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include "worker/window/feature_write.h"

namespace slipstream {

class RedisSinkQueue {
 public:
  explicit RedisSinkQueue(size_t max_queued) : max_queued_(max_queued) {}

  // Task side (RedisSink's public API).
  void Push(std::vector<FeatureWrite>* features);  // blocks while full
  void WaitUntilAllAcked();                        // or discarding
  bool WaitUntilAcked(uint64_t mark, int64_t timeout_ms);
  void DropQueued();  // and everything pushed from now on
  void Stop();        // the writer drains what it has, then ends
  size_t Dropped() const;
  uint64_t Enqueued() const;
  std::optional<int64_t> SupersededBy() const;
  struct Counts {
    uint64_t enqueued = 0;
    uint64_t acked = 0;
    size_t queued = 0;
  };
  Counts counts() const;

  // Writer side.
  // Waits until there is something to write (or `have_retry`); false when
  // the writer should end instead (discarding, or stopping with nothing left).
  bool WaitForWork(bool have_retry);
  enum class Take {
    kBatch,       // `batch` holds up to `max_features` features
    kNothingNow,  // read replies first
    kStop,        // end the writer: nothing in flight and stopping or discarding
  };
  // Takes the next batch; waits for one when `nothing_in_flight`. `guarded`:
  // some feature's order is at most `guard_up_to`.
  Take TakeBatch(size_t max_features, bool nothing_in_flight, int64_t guard_up_to, std::vector<FeatureWrite>* batch,
                 bool* guarded);
  struct Flags {
    bool stopping = false;
    bool discarding = false;
  };
  Flags flags() const;
  // Sleeps `ms` unless discarding; false when discarding.
  bool Pause(int64_t ms);
  // A newer attempt fenced this writer out: stop as DropQueued() does.
  void FencedOut(int64_t by_attempt);
  // `features` more are acknowledged by Redis, in order.
  void Acknowledge(uint64_t features);

 private:
  const size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::condition_variable progressed_;
  std::deque<FeatureWrite> queue_;
  uint64_t enqueued_ = 0;  // total features ever queued
  uint64_t acked_ = 0;     // total features acknowledged by Redis (in order)
  bool stopping_ = false;
  bool discarding_ = false;  // DropQueued(): no retries, nothing more sent
  size_t dropped_ = 0;       // features dropped since
  std::optional<int64_t> superseded_by_;
};

}  // namespace slipstream
