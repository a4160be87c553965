#include "worker/sink/redis_shards.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "worker/sink/redis_connection.h"
#include "worker/sink/redis_write_guard.h"

namespace slipstream {

absl::StatusOr<ShardRouter> ShardRouter::Create(const RedisSinkOptions& options) {
  ShardRouter router;
  if (options.cluster_nodes.empty()) {
    router.shards_.push_back({redis::NodeAddress{options.host, options.port}, std::string(kWritersKey), 0});
    return router;
  }
  absl::StatusOr<std::vector<redis::NodeAddress>> seeds = redis::ParseSeedNodes(options.cluster_nodes);
  if (!seeds.ok()) return seeds.status();
  router.seeds_ = std::move(*seeds);
  return router;
}

namespace {

// The slot map as `node` sees it. Unavailable: ask another node;
// InvalidArgument: `node` is no cluster node (a configuration error).
absl::StatusOr<redis::SlotMap> ReadSlotMap(const RedisSinkOptions& options, const redis::TlsContext* tls,
                                           const redis::NodeAddress& node) {
  absl::StatusOr<std::unique_ptr<redis::Connection>> conn = redis::Connect(options, node.host, node.port, tls);
  if (!conn.ok()) return conn.status();
  absl::StatusOr<redis::ReplyPtr> reply = (*conn)->Command({"CLUSTER", "SLOTS"});
  // Any other error reply (LOADING, ...) passes: ask again or elsewhere.
  if (absl::IsInvalidArgument(reply.status()) && absl::StrContains(reply.status().message(), "cluster support disabled")) {
    return absl::InvalidArgumentError(absl::StrCat("redis.cluster.nodes: ", node.ToString(),
                                                   " is not a Redis Cluster node (", reply.status().message(),
                                                   "); for a single Redis use redis.host and redis.port"));
  }
  if (!reply.ok()) return absl::UnavailableError(absl::StrCat(node.ToString(), ": ", reply.status().message()));
  absl::StatusOr<redis::SlotMap> map = redis::SlotMap::FromClusterSlots(**reply, node);
  if (!map.ok()) return absl::UnavailableError(absl::StrCat(node.ToString(), ": ", map.status().message()));
  if (!map->CoversAllSlots()) {
    return absl::UnavailableError(absl::StrCat(node.ToString(), ": not every slot is served (", map->Describe(), ")"));
  }
  return map;
}

}  // namespace

absl::Status ShardRouter::Refresh(const RedisSinkOptions& options, const redis::TlsContext* tls) {
  if (!cluster()) return absl::OkStatus();
  // The masters known last first: after a failover the seeds may be the
  // ones that are gone.
  std::vector<redis::NodeAddress> candidates;
  for (const Shard& s : shards_) candidates.push_back(s.node);
  for (const redis::NodeAddress& seed : seeds_) {
    if (std::find(candidates.begin(), candidates.end(), seed) == candidates.end()) candidates.push_back(seed);
  }
  std::string problems;
  for (const redis::NodeAddress& node : candidates) {
    absl::StatusOr<redis::SlotMap> map = ReadSlotMap(options, tls, node);
    if (!map.ok()) {
      if (!absl::IsUnavailable(map.status())) return map.status();
      absl::StrAppend(&problems, problems.empty() ? "" : "; ", map.status().message());
      continue;
    }
    std::vector<Shard> shards;
    for (int i = 0; i < static_cast<int>(map->masters().size()); ++i) {
      shards.push_back({map->masters()[i], ShardWritersKey(map->FirstSlotOf(i)), map->ReplicasOf(i)});
    }
    slots_ = std::move(*map);
    shards_ = std::move(shards);
    return absl::OkStatus();
  }
  return absl::UnavailableError(absl::StrCat("redis cluster: no slot map (", problems, ")"));
}

int ShardRouter::ShardOf(std::string_view key) const {
  if (!slots_) return 0;
  return slots_->MasterOf(redis::KeySlot(key));
}

std::string ShardRouter::Describe() const {
  if (!slots_) return shards_.empty() ? "no shards" : shards_[0].node.ToString();
  return slots_->Describe();
}

}  // namespace slipstream
