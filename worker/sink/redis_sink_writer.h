// RedisSinkWriter: the Redis sink's writer thread. It takes batches from the
// queue, splits each over the shards (one Redis, or a cluster's masters:
// redis_shards.h), keeps up to RedisSink::kMaxBatchesInFlight of them
// pipelined ahead of their replies on every shard's connection, and settles
// each batch from its replies. It owns the connections: a lost one is
// retried with backoff (100 ms .. 5 s), the slot map read again, and the
// batches in flight are resent guarded; features Redis refused for now wait
// (50 ms .. 2 s backoff) and are resent guarded, and nothing newer is
// acknowledged meanwhile. It ends when stopped (after draining, bounded by
// retries), discarded, or fenced out by a newer attempt.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/sink/batch_reply_reader.h"
#include "worker/sink/redis_connection.h"
#include "worker/sink/redis_sink.h"
#include "worker/sink/redis_sink_probe.h"
#include "worker/sink/redis_sink_queue.h"
#include "worker/sink/redis_shards.h"
#include "worker/sink/redis_tls.h"
#include "worker/sink/writer_handshake.h"

namespace slipstream {

class RedisSinkWriter {
 public:
  RedisSinkWriter(const RedisSinkOptions& options, ShardRouter router, std::shared_ptr<const redis::TlsContext> tls,
                  RedisSinkQueue& queue, RedisSinkProbe& probe);

  // The first connection, on the caller's thread before Run: OK also when
  // Redis is unreachable (Run keeps trying); an error for settings Redis
  // rejects (AUTH, SELECT) or when fenced out.
  [[nodiscard]] absl::Status ConnectAtStart();
  // The writer thread's loop.
  void Run();

 private:
  // A batch's features for one shard.
  struct Part {
    int shard = 0;
    std::vector<FeatureWrite> features;
    int replica_acks = 0;  // the WAIT sent after it (0: none)
  };
  struct Batch {
    std::vector<Part> parts;  // the parts whose replies are not read yet
    size_t features = 0;      // in all parts, as taken
    // Features of parts already read that met a transient error reply.
    std::vector<FeatureWrite> again;
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
  void SettleBatch(Batch& batch);

  // Reads the slot map (a cluster), connects to every shard and runs the
  // handshake on each.
  absl::Status ConnectAll();
  // Splits `features` over the shards.
  void Split(std::vector<FeatureWrite> features, Batch* batch) const;
  bool Send(Batch& batch);
  // How many replicas must have a part for `shard` (redis.replica-acks).
  int ReplicaAcksFor(const ShardRouter::Shard& shard) const;
  // Reconnects with backoff and resends every batch in flight (guarded);
  // false when stopping and Redis stays away, when discarding, or when
  // fenced out.
  bool Recover();
  void DropConnection();
  bool ResendInFlight();
  void GiveUp();

  const RedisSinkOptions options_;
  ShardRouter router_;
  const std::shared_ptr<const redis::TlsContext> tls_;
  RedisSinkQueue& queue_;
  RedisSinkProbe& probe_;
  WriterHandshake handshake_;
  BatchReplyReader replies_;
  const std::string mark_field_;
  // One per shard of router_, all present or none.
  std::vector<std::unique_ptr<redis::Connection>> connections_;
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
