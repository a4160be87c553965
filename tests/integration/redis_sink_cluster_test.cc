// RedisSink against a real Redis Cluster (LocalRedisCluster: Debian's
// redis-server in cluster mode, joined by redis-cli --cluster create):
//
//  RedisSinkCluster.WritesEveryKeyToTheMasterOfItsSlot
//    rounds of versions of the same keys; every key ends on the master that
//    serves its slot with its newest version, each master holds its own
//    bookkeeping key, and the writes are spread over all masters.
//  RedisSinkCluster.ASlotsMovingWhileWritingLosesNothing
//    redis-cli --cluster reshard moves a third of the slots from one master
//    to another while the sink writes: it meets MOVED and ASK, reads the
//    slot map again, and every key still ends with its newest version.
//  RedisSinkClusterTls.WritesToEveryMasterOverTls
//    the slot map and every write over TLS (tls-cluster nodes).
//  RedisSinkClusterReplicas.AWriteCountsOnlyOnceAReplicaHasIt
//    with redis.replica-acks=1, a batch is acknowledged only after WAIT
//    says a replica has it: a stopped replica holds its master's writes
//    back until it runs again.
//
// Plus the sink's pure cluster pieces: error classification of MOVED, ASK,
// CLUSTERDOWN and TRYAGAIN, and the shard writers keys.
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/integration/redis_client.h"
#include "tests/integration/redis_cluster.h"
#include "tests/support/free_port.h"
#include "tests/support/test_certs.h"
#include "worker/sink/redis_cluster_slots.h"
#include "worker/sink/redis_sink.h"
#include "worker/sink/redis_write_guard.h"

namespace slipstream {
namespace {

using it::LocalRedisCluster;

// Version `round` of key `i`: window_end is the guard field, as for
// user_features.
FeatureWrite Version(int i, int round) {
  FeatureWrite f;
  f.key = absl::StrCat("user_features:", i);
  f.fields = {"user_id", absl::StrCat(i), "window_end", absl::StrCat(1000 * round), "value", absl::StrCat(i * round)};
  f.ttl_seconds = 7200;
  f.guard_fields = {2, -1};
  f.order = 1000 * round;
  return f;
}

std::string Shell(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  pclose(p);
  return out;
}

class RedisSinkCluster : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(testing::TempDir(), "/slipstream-sink-cluster-", getpid(), "-",
                        testing::UnitTest::GetInstance()->current_test_info()->name());
    absl::StatusOr<std::unique_ptr<LocalRedisCluster>> cluster =
        LocalRedisCluster::Start(dir_, LocalRedisCluster::FreePortRange(3), 3, 0);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
  }
  void TearDown() override {
    cluster_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  RedisSinkOptions ClusterOptions() const {
    RedisSinkOptions o;
    o.cluster_nodes = cluster_->SeedNodes();
    o.batch_size = 500;
    o.job_id = "cluster-test";
    return o;
  }

  // Writes `rounds` versions of keys [0, keys), `per_write` features per
  // Write call, calling `between_rounds(round)` after each round.
  static void WriteRounds(RedisSink& sink, int keys, int rounds, const std::function<void(int)>& between_rounds) {
    for (int round = 1; round <= rounds; ++round) {
      std::vector<FeatureWrite> batch;
      for (int i = 0; i < keys; ++i) batch.push_back(Version(i, round));
      sink.Write(&batch);
      between_rounds(round);
    }
    sink.Flush();
  }

  // Every key holds version `round`, on the master of its slot.
  void ExpectNewest(int keys, int round) {
    int wrong = 0;
    for (int i = 0; i < keys; ++i) {
      std::map<std::string, std::string> fields;
      for (auto& [k, v] : cluster_->HGetAll(absl::StrCat("user_features:", i))) fields[k] = v;
      if (fields["window_end"] != absl::StrCat(1000 * round) || fields["value"] != absl::StrCat(i * round)) {
        if (++wrong <= 5) ADD_FAILURE() << "user_features:" << i << " window_end=" << fields["window_end"];
      }
    }
    EXPECT_EQ(wrong, 0);
  }

  std::string dir_;
  std::unique_ptr<LocalRedisCluster> cluster_;
};

TEST_F(RedisSinkCluster, WritesEveryKeyToTheMasterOfItsSlot) {
  absl::StatusOr<std::unique_ptr<RedisSink>> sink = RedisSink::Start(ClusterOptions());
  ASSERT_TRUE(sink.ok()) << sink.status();
  constexpr int kKeys = 3000, kRounds = 4;
  WriteRounds(**sink, kKeys, kRounds, [](int) {});
  const RedisSinkStats stats = (*sink)->stats();
  EXPECT_EQ(stats.features_written, kKeys * kRounds);
  EXPECT_EQ(stats.error_replies, 0);
  sink->reset();
  ExpectNewest(kKeys, kRounds);

  // Each master holds a share of the keys and its own bookkeeping key, in
  // a slot it serves.
  for (int port : cluster_->MasterPorts()) {
    absl::StatusOr<std::unique_ptr<it::RedisClient>> client = it::RedisClient::Connect("127.0.0.1", port, 0);
    ASSERT_TRUE(client.ok()) << client.status();
    absl::StatusOr<int64_t> features = (*client)->FeatureKeyCount();
    ASSERT_TRUE(features.ok());
    EXPECT_GT(*features, kKeys / 5) << "master " << port;
    absl::StatusOr<std::vector<std::string>> bookkeeping = (*client)->Keys("slipstream:writers*");
    ASSERT_TRUE(bookkeeping.ok());
    ASSERT_EQ(bookkeeping->size(), 1u) << "master " << port;
    EXPECT_EQ(cluster_->PortOfKey((*bookkeeping)[0]), port);
  }
}

TEST_F(RedisSinkCluster, ASlotsMovingWhileWritingLosesNothing) {
  absl::StatusOr<std::unique_ptr<RedisSink>> sink = RedisSink::Start(ClusterOptions());
  ASSERT_TRUE(sink.ok()) << sink.status();
  const std::vector<int> masters = cluster_->MasterPorts();
  ASSERT_EQ(masters.size(), 3u);
  auto node_id = [](int port) {
    std::string id = Shell(absl::StrCat("redis-cli -p ", port, " CLUSTER MYID"));
    while (!id.empty() && (id.back() == '\n' || id.back() == '\r')) id.pop_back();
    return id;
  };
  const std::string from = node_id(masters[0]), to = node_id(masters[1]);
  ASSERT_FALSE(from.empty());
  std::atomic<bool> resharded = false;
  std::string reshard_output;
  std::thread reshard;
  constexpr int kKeys = 3000, kRounds = 30;
  WriteRounds(**sink, kKeys, kRounds, [&](int round) {
    if (round != 3) return;
    reshard = std::thread([&] {
      reshard_output = Shell(absl::StrCat("redis-cli --cluster reshard 127.0.0.1:", masters[0], " --cluster-from ",
                                          from, " --cluster-to ", to,
                                          " --cluster-slots 1800 --cluster-yes --cluster-pipeline 20 2>&1"));
      resharded = true;
    });
  });
  reshard.join();
  ASSERT_TRUE(resharded);
  // The writes after the last round, once the slots have moved for good.
  WriteRounds(**sink, kKeys, kRounds + 1, [](int) {});
  const RedisSinkStats stats = (*sink)->stats();
  sink->reset();
  EXPECT_EQ(stats.features_rejected, 0) << stats.last_error;
  ExpectNewest(kKeys, kRounds + 1);
  // The slots did move, and the sink met the cluster's redirections.
  EXPECT_NE(cluster_->PortOfKey("user_features:0"), -1);
  EXPECT_GT(stats.error_replies + stats.connection_errors, 0)
      << "no MOVED or ASK seen: did the reshard happen while writing?\n" << reshard_output.substr(0, 2000);
}

// With redis.replica-acks=1 a batch counts as written only once a replica
// has it (WAIT): while one replica is stopped, the writes to its master stay
// unacknowledged, and they are once it runs again. (The default, -1, waits
// for the replicas CLUSTER SLOTS lists: one the cluster marked failed is not
// waited for.)
// Every node with a TLS port (tls-cluster: CLUSTER SLOTS over TLS names the
// TLS ports), certificates made here: the sink reads the slot map and
// writes to every master over TLS only.
TEST(RedisSinkClusterTls, WritesToEveryMasterOverTls) {
  const std::string dir = absl::StrCat(testing::TempDir(), "/slipstream-sink-cluster-tls-", getpid());
  absl::StatusOr<test_support::TestCertificates> ca = test_support::TestCertificates::Create(dir + "/certs");
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<test_support::CertPaths> server = ca->Issue("server");
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string tls_port(LocalRedisCluster::kTlsPortArg);
  absl::StatusOr<std::unique_ptr<LocalRedisCluster>> cluster = LocalRedisCluster::Start(
      dir + "/nodes", LocalRedisCluster::FreePortRange(6), 3, 0,  // 3 plain ports, then 3 TLS ports
      {"--tls-port", tls_port, "--cluster-port", std::string(LocalRedisCluster::kClusterPortArg), "--tls-cert-file", server->cert, "--tls-key-file", server->key, "--tls-ca-cert-file",
       ca->ca_path(), "--tls-auth-clients", "no", "--tls-cluster", "yes", "--tls-replication", "yes"});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  RedisSinkOptions o;
  for (int port : (*cluster)->MasterPorts()) {
    absl::StrAppend(&o.cluster_nodes, o.cluster_nodes.empty() ? "" : ",", "127.0.0.1:",
                    (*cluster)->TlsPortOf(port));
  }
  o.tls.enabled = true;
  o.tls.ca_file = ca->ca_path();
  absl::StatusOr<std::unique_ptr<RedisSink>> sink = RedisSink::Start(o);
  ASSERT_TRUE(sink.ok()) << sink.status();
  std::vector<FeatureWrite> features;
  for (int i = 0; i < 1000; ++i) features.push_back(Version(i, 3));
  (*sink)->Write(&features);
  (*sink)->Flush();
  EXPECT_EQ((*sink)->stats().features_written, 1000);
  sink->reset();
  int wrong = 0;
  for (int i = 0; i < 1000; i += 7) {
    std::map<std::string, std::string> fields;
    for (auto& [k, v] : (*cluster)->HGetAll(absl::StrCat("user_features:", i))) fields[k] = v;
    wrong += fields["window_end"] == "3000" ? 0 : 1;
  }
  EXPECT_EQ(wrong, 0);
  for (int port : (*cluster)->MasterPorts()) {
    absl::StatusOr<std::unique_ptr<it::RedisClient>> client = it::RedisClient::Connect("127.0.0.1", port, 0);
    ASSERT_TRUE(client.ok());
    absl::StatusOr<int64_t> keys = (*client)->FeatureKeyCount();
    ASSERT_TRUE(keys.ok());
    EXPECT_GT(*keys, 200) << "master " << port << " got too few keys over TLS";
  }
  cluster->reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

TEST(RedisSinkClusterReplicas, AWriteCountsOnlyOnceAReplicaHasIt) {
  const std::string dir = absl::StrCat(testing::TempDir(), "/slipstream-sink-cluster-replicas-", getpid());
  absl::StatusOr<std::unique_ptr<LocalRedisCluster>> cluster =
      LocalRedisCluster::Start(dir, LocalRedisCluster::FreePortRange(6), 3, 1);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  RedisSinkOptions o;
  o.cluster_nodes = (*cluster)->SeedNodes();
  o.timeout_ms = 1000;  // WAIT gives up after 500 ms
  o.replica_acks = 1;
  absl::StatusOr<std::unique_ptr<RedisSink>> sink = RedisSink::Start(o);
  ASSERT_TRUE(sink.ok()) << sink.status();
  std::vector<FeatureWrite> first;
  for (int i = 0; i < 300; ++i) first.push_back(Version(i, 1));
  (*sink)->Write(&first);
  ASSERT_TRUE((*sink)->WaitUntilAcked((*sink)->Enqueued(), 10000));

  // Stop one replica (SIGSTOP: its master still sees the link).
  const std::vector<int> masters = (*cluster)->MasterPorts();
  int replica = -1;
  for (int port : (*cluster)->AllPorts()) {
    if (std::find(masters.begin(), masters.end(), port) == masters.end()) replica = port;
  }
  ASSERT_NE(replica, -1);
  std::string info = Shell(absl::StrCat("redis-cli -p ", replica, " INFO server | grep process_id"));
  const pid_t pid = static_cast<pid_t>(std::atoll(info.substr(info.find(':') + 1).c_str()));
  ASSERT_GT(pid, 0) << info;
  ASSERT_EQ(kill(pid, SIGSTOP), 0);
  std::vector<FeatureWrite> second;
  for (int i = 0; i < 300; ++i) second.push_back(Version(i, 2));
  (*sink)->Write(&second);
  const bool acked_while_stopped = (*sink)->WaitUntilAcked((*sink)->Enqueued(), 2500);
  const RedisSinkStats stopped = (*sink)->stats();
  ASSERT_EQ(kill(pid, SIGCONT), 0);
  EXPECT_FALSE(acked_while_stopped) << "acknowledged while a replica could not have the writes";
  EXPECT_GT(stopped.error_replies, 0);
  EXPECT_NE(stopped.last_error.find("WAIT"), std::string::npos) << stopped.last_error;
  EXPECT_TRUE((*sink)->WaitUntilAcked((*sink)->Enqueued(), 30000));
  EXPECT_EQ((*sink)->stats().features_written, 600);
  sink->reset();
  if (HasFailure()) std::cerr << (*cluster)->Logs(40);
  cluster->reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

TEST(RedisClusterErrors, ASeedThatIsNoClusterNodeFailsTheStartNamingTheKey) {
  const int port = test_support::FreeTcpPort();
  Shell(absl::StrCat("redis-server --port ", port, " --bind 127.0.0.1 --save '' --daemonize yes --dir ",
                     testing::TempDir(), " >/dev/null"));
  for (int i = 0; i < 50 && Shell(absl::StrCat("redis-cli -p ", port, " PING 2>/dev/null")) != "PONG\n"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  RedisSinkOptions o;
  o.cluster_nodes = absl::StrCat("127.0.0.1:", port);
  absl::StatusOr<std::unique_ptr<RedisSink>> sink = RedisSink::Start(o);
  Shell(absl::StrCat("redis-cli -p ", port, " SHUTDOWN NOSAVE 2>/dev/null"));
  ASSERT_FALSE(sink.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(sink.status())) << sink.status();
  EXPECT_NE(sink.status().message().find("redis.cluster.nodes"), std::string::npos) << sink.status();
  EXPECT_NE(sink.status().message().find("not a Redis Cluster node"), std::string::npos) << sink.status();

  o.cluster_nodes = "127.0.0.1:7000,,";
  sink = RedisSink::Start(o);
  ASSERT_FALSE(sink.ok());
  EXPECT_NE(sink.status().message().find("redis.cluster.nodes"), std::string::npos) << sink.status();
}

TEST(RedisClusterErrors, RedirectionsAndAClusterDownAreRetried) {
  EXPECT_EQ(ClassifyRedisError("MOVED 3999 127.0.0.1:7001"), RedisErrorKind::kTransientReconnect);
  EXPECT_EQ(ClassifyRedisError("ASK 3999 127.0.0.1:7001"), RedisErrorKind::kTransient);
  EXPECT_EQ(ClassifyRedisError("CLUSTERDOWN The cluster is down"), RedisErrorKind::kTransient);
  EXPECT_EQ(ClassifyRedisError("TRYAGAIN Multiple keys request during rehashing of slot"), RedisErrorKind::kTransient);
  EXPECT_EQ(ClassifyRedisError("WRONGTYPE Operation against a key holding the wrong kind of value"),
            RedisErrorKind::kPermanent);
}

TEST(RedisClusterErrors, EachShardsWritersKeyLivesInTheSlotItNames) {
  for (uint16_t slot : {0, 1, 5460, 5461, 10922, 10923, 16383}) {
    const std::string key = ShardWritersKey(slot);
    EXPECT_EQ(redis::KeySlot(key), slot) << key;
    EXPECT_EQ(key.rfind("slipstream:writers:{", 0), 0u) << key;
  }
}

}  // namespace
}  // namespace slipstream
