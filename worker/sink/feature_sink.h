// FeatureSink: where a task's computed features go, as the pipeline sees it
// (the operator writes, the checkpointer waits for acknowledgements, the
// attempt's control drops and discards). Two implementations:
// RedisSink (worker/sink/redis_sink.h, sink.type=redis: the online feature
// store) and FileSink (worker/sink/file_sink.h, sink.type=file: JSON lines
// for training data).
//
// The contract every sink keeps, because checkpoints rely on it: a feature
// counts as acknowledged only once it is durable where the sink writes
// (Redis replied; the file is fsync'ed), acknowledgements come in the order
// of Write, and WaitUntilAcked(Enqueued() at a barrier) therefore means
// "everything before the barrier is out". Every method is thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/prometheus.h"
#include "worker/window/feature_write.h"

namespace slipstream {

// What a sink reports; a sink leaves the counters that do not apply to it
// at 0. The names are Redis's (the first sink); the file sink counts its
// failed writes and fsyncs as error_replies.
struct FeatureSinkStats {
  int64_t features_written = 0;   // acknowledged: written, kept newer, or rejected
  int64_t features_kept_newer = 0;  // the guard kept a newer stored version
  int64_t features_rejected = 0;    // permanent error reply: handed to on_rejected
  int64_t features_guarded = 0;     // sent through the guarded script
  int64_t error_replies = 0;        // transient and permanent
  int64_t connection_errors = 0;
  int64_t queued = 0;   // waiting in the queue, not sent yet
  int64_t pending = 0;  // accepted by Write and not acknowledged yet (queued + in flight)
  std::string last_error;  // the latest error ("" when none)
  int64_t last_error_ms = 0;  // epoch ms of `last_error`
  LatencyHistogram batch_latency;  // one batch: first send to acknowledgement
};

class FeatureSink {
 public:
  virtual ~FeatureSink() = default;  // drains what is queued (bounded by retries), then stops

  // Queues features (and clears `features`); blocks while the queue is full
  // (backpressure).
  virtual void Write(std::vector<FeatureWrite>* features) = 0;
  // Blocks until everything queued before the call is acknowledged.
  virtual void Flush() = 0;
  // For a cancelled attempt, whose successor replays what it wrote since its
  // checkpoint. DropQueued() (any thread, does not block): every queued
  // feature not written yet is dropped, and so is everything written from
  // now on, so a writer blocked on a full queue returns at once. Discard():
  // DropQueued(), then waits for what is already being written and stops
  // the writer. Returns the features dropped in all.
  virtual void DropQueued() = 0;
  virtual size_t Discard() = 0;
  // Features accepted by Write so far (a mark for WaitUntilAcked).
  virtual uint64_t Enqueued() const = 0;
  // Waits up to `timeout_ms` until the first `mark` features are
  // acknowledged; true when they are.
  virtual bool WaitUntilAcked(uint64_t mark, int64_t timeout_ms) = 0;
  // The attempt that fenced this sink out, once it did: the sink has stopped
  // writing (as after DropQueued) and its task must end.
  virtual std::optional<int64_t> Superseded() const = 0;

  virtual FeatureSinkStats stats() const = 0;
};

}  // namespace slipstream
