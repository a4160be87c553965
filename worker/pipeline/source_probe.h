// SourceProbe: the source runner's counters. The source thread counts into
// its own copy (no synchronisation per record) and publishes it every 200 ms
// and when it ends; readers on any thread (heartbeats, metrics, logs) see
// the latest publication, as one consistent group (records_in is always
// events_valid + records_invalid in what they read).
#pragma once

#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "worker/pipeline/task_counters.h"

namespace slipstream {

class SourceProbe {
 public:
  struct Counts {
    int64_t records_in = 0;
    int64_t events_valid = 0;
    int64_t records_invalid = 0;
    int64_t records_shuffled_out = 0;  // sent to peers
  };

  // Source thread.
  void RecordIn() { ++local_.records_in; }
  void EventValid() { ++local_.events_valid; }
  void RecordInvalid() { ++local_.records_invalid; }
  void ShuffledOut(int64_t records) { local_.records_shuffled_out += records; }
  const Counts& local() const { return local_; }
  // Makes the counts, with where each partition stands, visible to Fill().
  void Publish(std::vector<PartitionSnapshot> partitions) {
    std::lock_guard lock(mu_);
    published_ = local_;
    partitions_ = std::move(partitions);
  }

  // Any thread.
  void Fill(TaskCounters* c) const {
    std::lock_guard lock(mu_);
    c->records_in = published_.records_in;
    c->events_valid = published_.events_valid;
    c->records_invalid = published_.records_invalid;
    c->records_shuffled_out = published_.records_shuffled_out;
    c->partitions = partitions_;
  }

 private:
  Counts local_;  // source thread only
  mutable std::mutex mu_;
  Counts published_;                        // guarded by mu_
  std::vector<PartitionSnapshot> partitions_;  // guarded by mu_
};

}  // namespace slipstream
