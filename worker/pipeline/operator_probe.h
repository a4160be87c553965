// OperatorProbe: the operator runner's counters. The operator thread counts
// into its own copy and publishes it, with the window engine's numbers (only
// readable on that thread), every 200 ms and when it ends; readers on any
// thread see the latest publication. The sink's own numbers are not here:
// they are read live (FeatureTask::counters()), because the operator may be
// blocked in a full sink for long, and those are the numbers that show it.
#pragma once

#include <cstdint>
#include <mutex>

#include "worker/pipeline/task_counters.h"

namespace slipstream {

class OperatorProbe {
 public:
  struct Counts {
    int64_t records_late = 0;
    int64_t features_emitted = 0;
    int64_t records_shuffled_in = 0;  // received from peers
    // From the window engine and its state store, at publication.
    int64_t watermark_ms = 0;
    int64_t sliding_windows_fired = 0;
    int64_t sessions_fired = 0;
    int64_t users = 0;
    int64_t state_bytes = 0;
  };

  // Operator thread.
  void RecordLate() { ++local_.records_late; }
  void FeaturesEmitted(int64_t features) { local_.features_emitted += features; }
  void ShuffledIn(int64_t records) { local_.records_shuffled_in += records; }
  // `engine` holds the engine's numbers; the counts above are taken from
  // this probe.
  void Publish(Counts engine) {
    engine.records_late = local_.records_late;
    engine.features_emitted = local_.features_emitted;
    engine.records_shuffled_in = local_.records_shuffled_in;
    std::lock_guard lock(mu_);
    published_ = engine;
  }

  // Any thread.
  Counts published() const {
    std::lock_guard lock(mu_);
    return published_;
  }
  void Fill(TaskCounters* c) const {
    const Counts p = published();
    c->records_late = p.records_late;
    c->features_emitted = p.features_emitted;
    c->watermark_ms = p.watermark_ms;
    c->sliding_windows_fired = p.sliding_windows_fired;
    c->sessions_fired = p.sessions_fired;
    c->records_shuffled_in = p.records_shuffled_in;
    c->users = p.users;
    c->state_bytes = p.state_bytes;
  }

 private:
  Counts local_;  // operator thread only
  mutable std::mutex mu_;
  Counts published_;  // guarded by mu_
};

}  // namespace slipstream
