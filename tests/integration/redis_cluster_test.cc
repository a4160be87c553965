// LocalRedisCluster and ClusterMonitor against the real thing: a 3 + 3 node
// cluster on private ports under a temporary directory (no environment
// needed). Keys written to the master the harness names are where the
// servers say they are; a master killed after WAIT loses none of them to its
// promoted replica; MONITOR across the cluster shows each write once, in
// order, the replication link's copies dropped.
#include "tests/integration/redis_cluster.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace slipstream::it {
namespace {

using Clock = std::chrono::steady_clock;
using Fields = std::vector<std::pair<std::string, std::string>>;

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

Context ConnectTo(int port) {
  Context ctx(redisConnect("127.0.0.1", port));
  EXPECT_TRUE(ctx && ctx->err == 0) << "cannot connect to 127.0.0.1:" << port;
  return ctx;
}

Reply Send(redisContext* ctx, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  Reply reply(static_cast<redisReply*>(
      redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data())));
  EXPECT_TRUE(reply) << args[0] << ": " << ctx->errstr;
  return reply;
}

// A fresh directory for the cluster's files, removed when the test passes
// (kept for its logs when it fails).
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "slipstream-redis-cluster-XXXXXX").string();
    path_ = mkdtemp(pattern.data()) == nullptr ? "" : pattern;
  }
  ~TempDir() {
    if (!path_.empty() && !::testing::Test::HasFailure()) std::filesystem::remove_all(path_);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(LocalRedisCluster, RoutesKeysAndKeepsAcknowledgedWritesThroughAFailover) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const int first_port = LocalRedisCluster::FreePortRange(6);
  ASSERT_GT(first_port, 0);
  const Clock::time_point start = Clock::now();
  absl::StatusOr<std::unique_ptr<LocalRedisCluster>> started = LocalRedisCluster::Start(dir.path(), first_port);
  ASSERT_TRUE(started.ok()) << started.status();
  std::cout << "[it] cluster start took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count() << " ms"
            << std::endl;
  LocalRedisCluster& cluster = **started;

  EXPECT_EQ(cluster.SeedNodes(), absl::StrCat("127.0.0.1:", first_port, ",127.0.0.1:", first_port + 1,
                                              ",127.0.0.1:", first_port + 2, ",127.0.0.1:", first_port + 3,
                                              ",127.0.0.1:", first_port + 4, ",127.0.0.1:", first_port + 5));
  const std::vector<int> masters = cluster.MasterPorts();
  ASSERT_EQ(masters.size(), 3u);

  absl::StatusOr<std::unique_ptr<ClusterMonitor>> monitor = ClusterMonitor::Start(cluster);
  ASSERT_TRUE(monitor.ok()) << monitor.status();

  // Keys spread over every master; each written on the master PortOfKey
  // names, which must accept it (a wrong one answers MOVED).
  std::vector<std::string> keys;
  std::map<int, int> keys_per_master;
  std::map<int, Context> connections;
  for (const int port : masters) connections[port] = ConnectTo(port);
  for (int i = 0; i < 30; ++i) {
    const std::string key = absl::StrCat("it:cluster:", i);
    const int port = cluster.PortOfKey(key);
    ASSERT_TRUE(connections.count(port)) << key << " on " << port << ", not a master";
    Reply r = Send(connections[port].get(), {"HSET", key, "n", std::to_string(i), "when", "before"});
    ASSERT_EQ(r->type, REDIS_REPLY_INTEGER) << key << " on " << port << ": " << (r->str ? r->str : "");
    keys.push_back(key);
    ++keys_per_master[port];
  }
  EXPECT_EQ(keys_per_master.size(), 3u) << "30 keys did not reach every master";
  // The servers agree that a key belongs where PortOfKey said.
  const int elsewhere = masters[0] == cluster.PortOfKey(keys[0]) ? masters[1] : masters[0];
  Reply moved = Send(connections[elsewhere].get(), {"HSET", keys[0], "n", "-1"});
  ASSERT_EQ(moved->type, REDIS_REPLY_ERROR);
  EXPECT_TRUE(absl::StartsWith(moved->str, "MOVED ") &&
              absl::EndsWith(moved->str, absl::StrCat(" 127.0.0.1:", cluster.PortOfKey(keys[0]))))
      << moved->str;
  // Every write reached its replica before the failover below.
  for (const int port : masters) {
    Reply waited = Send(connections[port].get(), {"WAIT", "1", "2000"});
    EXPECT_EQ(waited->integer, 1) << "WAIT on " << port;
  }

  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(cluster.HGetAll(keys[i]), (Fields{{"n", std::to_string(i)}, {"when", "before"}})) << keys[i];
  }
  EXPECT_EQ(cluster.AllKeys("it:cluster:*").size(), 30u);
  EXPECT_EQ(cluster.TotalKeys(), 30);

  const int victim = cluster.PortOfKey(keys[0]);
  const Clock::time_point kill = Clock::now();
  absl::Status failover = cluster.KillMasterAndWaitForFailover(victim, 30000);
  ASSERT_TRUE(failover.ok()) << failover;
  std::cout << "[it] failover took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - kill).count() << " ms"
            << std::endl;
  connections.erase(victim);

  const int heir = cluster.PortOfKey(keys[0]);
  EXPECT_NE(heir, victim);
  const std::vector<int> after = cluster.MasterPorts();
  EXPECT_EQ(after.size(), 3u);
  EXPECT_EQ(std::count(after.begin(), after.end(), victim), 0);
  EXPECT_EQ(std::count(after.begin(), after.end(), heir), 1);
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(cluster.HGetAll(keys[i]), (Fields{{"n", std::to_string(i)}, {"when", "before"}})) << keys[i];
  }
  EXPECT_EQ(cluster.TotalKeys(), 30);

  // A write to the promoted replica, which MONITOR must show once although
  // that node also saw the first write (over the replication link).
  connections[heir] = ConnectTo(heir);
  Reply again = Send(connections[heir].get(), {"HSET", keys[0], "n", "100", "when", "after"});
  ASSERT_EQ(again->type, REDIS_REPLY_INTEGER) << (again->str ? again->str : "");
  EXPECT_EQ(cluster.HGetAll(keys[0]), (Fields{{"n", "100"}, {"when", "after"}}));

  absl::StatusOr<std::vector<RedisMonitor::Command>> commands = (*monitor)->Finish(10000);
  ASSERT_TRUE(commands.ok()) << commands.status();
  std::map<std::string, std::vector<std::string>> writes;  // key -> "when" of each HSET, in order
  for (const RedisMonitor::Command& c : *commands) {
    if (c.args.size() == 6 && c.args[0] == "HSET") writes[c.args[1]].push_back(c.args[5]);
    const std::string client = MonitorClient(c.origin);
    for (const int port : cluster.AllPorts()) {
      EXPECT_NE(client, absl::StrCat("127.0.0.1:", port)) << "a replication link's command: " << c.origin;
    }
  }
  EXPECT_EQ(writes.size(), 30u);
  for (const std::string& key : keys) {
    const std::vector<std::string> expected =
        key == keys[0] ? std::vector<std::string>{"before", "after"} : std::vector<std::string>{"before"};
    EXPECT_EQ(writes[key], expected) << key;
  }
  for (size_t i = 1; i < commands->size(); ++i) {
    EXPECT_LE(MonitorTimeUs((*commands)[i - 1].origin), MonitorTimeUs((*commands)[i].origin))
        << "out of order at " << i << ": " << (*commands)[i].origin;
  }
}

}  // namespace
}  // namespace slipstream::it
