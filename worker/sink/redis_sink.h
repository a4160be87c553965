// RedisSink: writes features to Redis from its own thread, each as one HSET
// with all fields followed by EXPIRE, pipelined in batches of
// `redis.batch-size` features per round trip.
//
// Exactness (worker/sink/redis_write_guard.h has the Redis side):
//  - Backpressure: Write() blocks while `max_queued` features wait, so a slow,
//    unreachable or refusing Redis holds the task back (and its checkpoints,
//    which wait until Redis acknowledged the features before their barrier)
//    instead of growing memory or dropping anything.
//  - A lost connection is retried with exponential backoff (100 ms .. 5 s)
//    and the batches in flight are resent; error replies that say "not now"
//    (OOM, MISCONF, READONLY, LOADING, BUSY, TRYAGAIN, ...) are retried with
//    backoff (50 ms .. 2 s). Every resend goes through the guarded script, so
//    a resent older version never replaces a newer one.
//  - An error reply that will not go away (WRONGTYPE: another program owns
//    the key) does not stop the job: the feature goes to `on_rejected` (the
//    dead-letter topic) and is counted.
//  - Writes never go back in time, and a superseded attempt's writes never
//    land after its successor started (the guard, high-water marks and the
//    fence of redis_write_guard.h). A sink that finds itself fenced out stops
//    writing and says so through Superseded().
// Error replies are logged at most once per 10 s, with their count.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/prometheus.h"
#include "worker/sink/feature_sink.h"
#include "worker/sink/redis_tls.h"
#include "worker/window/feature_write.h"

namespace slipstream {

struct RedisSinkOptions {
  std::string host = "localhost";
  int port = 6379;
  std::string user;      // ACL user (AUTH user password); empty: the default user
  std::string password;  // empty: no AUTH
  int db = 0;            // a single Redis only: a cluster has database 0
  redis::TlsOptions tls;
  // Seed nodes "host:port,host:port" of a Redis Cluster; empty: the single
  // Redis at host:port.
  std::string cluster_nodes;
  // Replicas that must have a batch (WAIT) before it counts as written, so
  // that a failover loses nothing acknowledged. -1: one on a cluster
  // whose master lists a replica, none for a single Redis.
  int replica_acks = -1;
  int batch_size = 1000;
  int64_t timeout_ms = 5000;
  size_t max_queued = 100000;
  // Who writes: the fence and the high-water marks are per job, attempt and
  // writer (the worker's index in the attempt).
  std::string job_id = "job";
  int64_t attempt = 1;
  int writer_index = 0;
  // Features Redis rejects for good, with its error text; called on the
  // sink's thread before the feature counts as acknowledged.
  std::function<void(const FeatureWrite&, std::string_view error)> on_rejected;
};

// The Redis sink reports every counter of FeatureSinkStats.
using RedisSinkStats = FeatureSinkStats;

class RedisSink final : public FeatureSink {
 public:
  // Batches sent ahead of their replies: at most max_queued + this many
  // batches of batch_size features are pending at any time.
  static constexpr size_t kMaxBatchesInFlight = 2;

  // Starts the writer thread. Fails only on settings Redis rejects (AUTH,
  // SELECT); an unreachable Redis is retried in the background.
  static absl::StatusOr<std::unique_ptr<RedisSink>> Start(const RedisSinkOptions& options);
  ~RedisSink() override;  // drains what is queued (bounded by retries), then stops

  // Queues features; blocks while the queue is full (backpressure).
  void Write(std::vector<FeatureWrite>* features) override;
  // Blocks until everything queued before the call is acknowledged by Redis.
  void Flush() override;
  // For a cancelled attempt, whose successor replays what it wrote since its
  // checkpoint. DropQueued() (any thread, does not block): every queued
  // feature not sent yet is dropped, and so is everything written from now
  // on, so a writer blocked on a full queue returns at once. Discard():
  // DropQueued(), then waits only for the replies to the batches Redis
  // already has (so none of them can land after a newer attempt's writes)
  // and stops the writer. No retries: a batch lost with the connection is
  // replayed too. Returns the features dropped in all.
  void DropQueued() override;
  size_t Discard() override;
  // Features accepted by Write so far (a mark for WaitUntilAcked).
  uint64_t Enqueued() const override;
  // Waits up to `timeout_ms` until the first `mark` features are acknowledged
  // by Redis; true when they are.
  bool WaitUntilAcked(uint64_t mark, int64_t timeout_ms) override;
  // The attempt that fenced this sink out, once it did: the sink has stopped
  // writing (as after DropQueued) and its task must end.
  std::optional<int64_t> Superseded() const override;

  RedisSinkStats stats() const override;

 private:
  struct Impl;
  explicit RedisSink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
