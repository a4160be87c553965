// RedisSink: writes features to Redis from its own thread, each as one HSET
// with all fields followed by EXPIRE, pipelined in batches of
// `redis.batch-size` commands pairs per round trip.
//
// Backpressure: Write() blocks while `max_queued` features are waiting, so a
// slow or unreachable Redis slows the task down instead of growing memory.
// When Redis is unreachable the sink reconnects with exponential backoff
// (100 ms .. 5 s) and resends the whole unacknowledged batch: HSET + EXPIRE
// are idempotent upserts, so a resend never changes the result. Features are
// never dropped (SIGPIPE is ignored process-wide so a vanished Redis is an
// error to retry, not a crash); a command that Redis rejects (e.g. WRONGTYPE because some
// other program owns the key) is logged and counted as an error.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/prometheus.h"
#include "worker/window/feature_write.h"

namespace slipstream {

struct RedisSinkOptions {
  std::string host = "localhost";
  int port = 6379;
  std::string password;  // empty: no AUTH
  int db = 0;
  int batch_size = 1000;
  int64_t timeout_ms = 5000;
  size_t max_queued = 100000;
};

struct RedisSinkStats {
  int64_t features_written = 0;
  int64_t command_errors = 0;
  int64_t connection_errors = 0;
  int64_t queued = 0;   // waiting in the queue, not sent yet
  int64_t pending = 0;  // accepted by Write and not acknowledged by Redis yet (queued + in flight)
  LatencyHistogram batch_latency;  // pipelined batch: first send to last reply
};

class RedisSink {
 public:
  // Batches sent ahead of their replies: at most max_queued + this many
  // batches of batch_size features are pending at any time.
  static constexpr size_t kMaxBatchesInFlight = 2;

  // Starts the writer thread. Fails only on settings Redis rejects (AUTH,
  // SELECT); an unreachable Redis is retried in the background.
  static absl::StatusOr<std::unique_ptr<RedisSink>> Start(const RedisSinkOptions& options);
  ~RedisSink();  // drains what is queued (bounded by retries), then stops

  // Queues features; blocks while the queue is full (backpressure).
  void Write(std::vector<FeatureWrite>* features);
  // Blocks until everything queued before the call is acknowledged by Redis.
  void Flush();
  // For a cancelled attempt, whose successor replays what it wrote since its
  // checkpoint. DropQueued() (any thread, does not block): every queued
  // feature not sent yet is dropped, and so is everything written from now
  // on, so a writer blocked on a full queue returns at once. Discard():
  // DropQueued(), then waits only for the replies to the batches Redis
  // already has (so none of them can land after a newer attempt's writes)
  // and stops the writer. No retries: a batch lost with the connection is
  // replayed too. Returns the features dropped in all.
  void DropQueued();
  size_t Discard();
  // Features accepted by Write so far (a mark for WaitUntilAcked).
  uint64_t Enqueued() const;
  // Waits up to `timeout_ms` until the first `mark` features are acknowledged
  // by Redis; true when they are.
  bool WaitUntilAcked(uint64_t mark, int64_t timeout_ms);

  RedisSinkStats stats() const;

 private:
  struct Impl;
  explicit RedisSink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
