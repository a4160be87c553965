// Where the Redis sink's writes go: the one Redis at redis.host:redis.port,
// or the masters of a Redis Cluster (redis.cluster.nodes), each key to the
// master of its slot (CRC16 with hash tags). The cluster's slot map is read
// with CLUSTER SLOTS from any node that answers (the masters known last,
// then the seeds), at the start and again whenever the writer reconnects
// (a lost master, MOVED, ASK, CLUSTERDOWN). Writer thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/sink/redis_cluster_slots.h"
#include "worker/sink/redis_sink.h"
#include "worker/sink/redis_tls.h"

namespace slipstream {

class ShardRouter {
 public:
  struct Shard {
    redis::NodeAddress node;
    // Its fence and high-water marks (redis_write_guard.h), on this shard.
    std::string writers_key;
    // Replicas the slot map lists for it (0 for a single Redis: unknown).
    int replicas = 0;
  };

  // InvalidArgument naming redis.cluster.nodes when the seed list is bad.
  [[nodiscard]] static absl::StatusOr<ShardRouter> Create(const RedisSinkOptions& options);

  bool cluster() const { return !seeds_.empty(); }
  // A cluster: reads the slot map again. Unavailable when no node answers
  // or the slots are not all served yet (a failover in progress);
  // InvalidArgument naming redis.cluster.nodes when a node is no cluster.
  [[nodiscard]] absl::Status Refresh(const RedisSinkOptions& options, const redis::TlsContext* tls);

  const std::vector<Shard>& shards() const { return shards_; }
  // The index in shards() of the shard that holds `key`.
  int ShardOf(std::string_view key) const;
  std::string Describe() const;

 private:
  std::vector<redis::NodeAddress> seeds_;
  std::optional<redis::SlotMap> slots_;
  std::vector<Shard> shards_;
};

}  // namespace slipstream
