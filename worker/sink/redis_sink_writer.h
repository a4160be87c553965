// RedisSinkWriter: the Redis sink's writer thread. It takes batches from the
// queue, keeps up to RedisSink::kMaxBatchesInFlight of them pipelined ahead
// of their replies, and settles each batch from its replies. It owns the
// connection: a lost one is retried with backoff (100 ms .. 5 s) and the
// batches in flight are resent guarded; features Redis refused for now wait
// (50 ms .. 2 s backoff) and are resent guarded, and nothing newer is
// acknowledged meanwhile. It ends when stopped (after draining, bounded by
// retries), discarded, or fenced out by a newer attempt.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/sink/batch_reply_reader.h"
#include "worker/sink/redis_connection.h"
#include "worker/sink/redis_sink.h"
#include "worker/sink/redis_sink_probe.h"
#include "worker/sink/redis_sink_queue.h"
#include "worker/sink/writer_handshake.h"

namespace slipstream {

class RedisSinkWriter {
 public:
  RedisSinkWriter(const RedisSinkOptions& options, RedisSinkQueue& queue, RedisSinkProbe& probe);

  // The first connection, on the caller's thread before Run: OK also when
  // Redis is unreachable (Run keeps trying); an error for settings Redis
  // rejects (AUTH, SELECT) or when fenced out.
  [[nodiscard]] absl::Status ConnectAtStart();
  // The writer thread's loop.
  void Run();

 private:
  struct Batch {
    std::vector<FeatureWrite> features;
    bool guarded = false;
    bool retry = false;  // features already counted in `settled_`
    std::chrono::steady_clock::time_point first_sent;
  };
  // What the loop does after one step.
  enum class Step { kContinue, kStop, kGiveUp };

  Step ConnectForWork();
  Step FillPipeline();
  Step ResendRefused();
  Step ReadOldestBatch();
  // `features`: how many the batch held when it was sent.
  void SettleBatch(const Batch& batch, size_t features, std::vector<FeatureWrite> again);

  // Connects and runs the handshake.
  absl::StatusOr<redis::ContextPtr> Connect();
  bool Send(Batch& batch);
  // Reconnects with backoff and resends every batch in flight (guarded);
  // false when stopping and Redis stays away, when discarding, or when
  // fenced out.
  bool Recover();
  void DropConnection();
  bool ResendInFlight();
  void GiveUp();

  const RedisSinkOptions options_;
  RedisSinkQueue& queue_;
  RedisSinkProbe& probe_;
  WriterHandshake handshake_;
  BatchReplyReader replies_;
  const std::string mark_field_;
  redis::ContextPtr connection_;
  // Our own mark: never below the marks read at the start, nor below any
  // order we sent (it only grows).
  int64_t high_water_ = std::numeric_limits<int64_t>::min();
  std::deque<Batch> in_flight_;  // sent, replies not read
  // Features that met a transient error reply, to resend (guarded) after a
  // backoff; nothing newer is acknowledged meanwhile.
  std::vector<FeatureWrite> retry_;
  int64_t retry_backoff_ms_ = 0;
  int retry_rounds_ = 0;  // resends of the current `retry_` so far
  bool reconnect_before_retry_ = false;
  uint64_t settled_ = 0;  // features done whose acknowledgement waits for `retry_`
  std::string resp_;
};

}  // namespace slipstream
