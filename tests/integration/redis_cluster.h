// A real Redis Cluster for integration tests (issue 16): redis-server child
// processes in cluster mode on private ports, joined by
// `redis-cli --cluster create`, that a test can route keys in, read from, and
// break (SIGKILL a master, then wait for its replica to take over).
//
// The harness never computes a key's slot itself: it asks the servers
// (CLUSTER KEYSLOT, CLUSTER SLOTS), so what it reports is independent of the
// sink's own slot code. Its own connections do not authenticate.
//
// ClusterMonitor records what clients ran on every node (MONITOR), merged
// into one timeline, for the "no write goes back in time" checks across
// failovers.
//
// Used from one test thread. The children get SIGKILL if the test process
// dies (Process sets PR_SET_PDEATHSIG).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/integration/process_runner.h"
#include "tests/integration/redis_client.h"

namespace slipstream::it {

class LocalRedisCluster {
 public:
  // In `extra_args`, kTlsPortArg stands for each node's TLS port: its port
  // + the number of nodes, so a range of twice the nodes from
  // FreePortRange holds both (e.g. {"--tls-port", kTlsPortArg,
  // "--tls-cluster", "yes", ...}: the harness keeps the plain ports, TLS
  // clients are told the TLS ports by CLUSTER SLOTS).
  static constexpr std::string_view kTlsPortArg = "{tls-port}";
  int TlsPortOf(int port) const { return port + static_cast<int>(nodes_.size()); }
  // Each node's cluster bus port, the one FreePortRange checked (port +
  // 10000). With tls-cluster, Redis's default is the TLS port + 10000, which
  // may be taken: pass {"--cluster-port", kClusterPortArg} then.
  static constexpr std::string_view kClusterPortArg = "{cluster-port}";

  // Starts masters * (1 + replicas_per_master) redis-server processes on
  // 127.0.0.1:first_port, first_port + 1, ... (cluster bus: port + 10000),
  // each with its directory, nodes.conf and log under `dir`/<port>; creates
  // the cluster; returns once every node says cluster_state:ok and all agree
  // on the slot map, every replica included (so a failover can happen at
  // once). `extra_args` go on every redis-server's command line. Failures
  // say which node and include the tail of its log.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<LocalRedisCluster>> Start(
      std::string dir, int first_port, int masters = 3, int replicas_per_master = 1,
      std::vector<std::string> extra_args = {});
  // SIGKILLs the nodes that still run.
  ~LocalRedisCluster();
  LocalRedisCluster(const LocalRedisCluster&) = delete;
  LocalRedisCluster& operator=(const LocalRedisCluster&) = delete;

  // A first port p such that p .. p + count - 1 and their cluster bus ports
  // (+ 10000) are all free now, below the kernel's ephemeral port range.
  static int FreePortRange(int count);

  // "127.0.0.1:p1,127.0.0.1:p2,...": every node, for redis.cluster.nodes.
  std::string SeedNodes() const;
  std::vector<int> AllPorts() const;
  // Nodes not killed by KillMasterAndWaitForFailover.
  std::vector<int> LivePorts() const;
  bool IsLive(int port) const;
  // The ports of the masters that serve slots now (CLUSTER SLOTS), ascending.
  std::vector<int> MasterPorts() const;
  // The master that serves `key`'s slot now; -1 (and a test failure) when
  // the cluster cannot say.
  int PortOfKey(std::string_view key) const;

  // SIGKILLs the master on `port` and waits until one of its replicas serves
  // its slots, every surviving node says cluster_state:ok and all agree on
  // the slot map. Logs how long that took. FailedPrecondition when `port` is
  // not a live master; DeadlineExceeded after `timeout_ms`.
  [[nodiscard]] absl::Status KillMasterAndWaitForFailover(int port, int timeout_ms);

  // HGETALL on the master of `key`'s slot, in Redis's field order. Empty
  // (and a test failure) when the cluster cannot answer.
  std::vector<std::pair<std::string, std::string>> HGetAll(std::string_view key) const;
  // Every key matching `pattern` on every master (SCAN), sorted.
  std::vector<std::string> AllKeys(std::string_view pattern) const;
  // DBSIZE summed over the masters.
  long long TotalKeys() const;

  // The last `lines` lines of every node's log, for a failing test's output.
  std::string Logs(int lines = 30) const;

 private:
  struct Node;
  explicit LocalRedisCluster(std::string dir);

  std::string dir_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

// MONITOR on every node of a cluster, masters and replicas alike: after a
// failover the promoted replica receives the writes. Finish() returns the
// commands clients ran (and the commands their scripts ran, client "lua"),
// each exactly once, merged into one sequence in MONITOR time order (each
// node's own order kept): on a replica, MONITOR also shows everything that
// arrives over the replication link, with the master's address as the client
// ("[0 127.0.0.1:7000]", scripts as MULTI/effects/EXEC, EXPIRE as PEXPIREAT,
// plus the link's PING and SELECT); those lines are dropped.
// The cluster must outlive the monitor.
class ClusterMonitor {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ClusterMonitor>> Start(const LocalRedisCluster& cluster);
  ~ClusterMonitor();

  // Ends the recording on every node: on a live node with a unique ECHO
  // (RedisMonitor::Finish), on a killed one when its connection has closed.
  [[nodiscard]] absl::StatusOr<std::vector<RedisMonitor::Command>> Finish(int timeout_ms);

 private:
  struct NodeMonitor {
    int port = 0;
    std::unique_ptr<RedisMonitor> monitor;
  };
  ClusterMonitor(const LocalRedisCluster& cluster, std::vector<NodeMonitor> monitors);

  const LocalRedisCluster& cluster_;
  std::vector<NodeMonitor> monitors_;
};

}  // namespace slipstream::it
