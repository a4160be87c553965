// CheckpointProbe: this task's checkpoint counters. Written by the operator
// thread (declines, alignment and sync times) and the uploader thread
// (acknowledgements, declines), read by any thread: atomics.
#pragma once

#include <atomic>
#include <cstdint>

#include "worker/pipeline/task_counters.h"

namespace slipstream {

class CheckpointProbe {
 public:
  void Acknowledged() { ++acknowledged_; }
  void Declined() { ++declined_; }
  // The synchronous part of a checkpoint: how long the alignment held
  // channels, and the snapshot's pause.
  void Snapshotted(int64_t alignment_ms, int64_t sync_ms) {
    last_alignment_ms_ = alignment_ms;
    last_sync_ms_ = sync_ms;
  }

  void Fill(TaskCounters* c) const {
    c->checkpoints_acknowledged = acknowledged_.load();
    c->checkpoints_declined = declined_.load();
    c->last_alignment_ms = last_alignment_ms_.load();
    c->last_sync_ms = last_sync_ms_.load();
  }

 private:
  std::atomic<int64_t> acknowledged_{0};
  std::atomic<int64_t> declined_{0};
  std::atomic<int64_t> last_alignment_ms_{0};
  std::atomic<int64_t> last_sync_ms_{0};
};

}  // namespace slipstream
