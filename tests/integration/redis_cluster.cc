#include "tests/integration/redis_cluster.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace slipstream::it {

namespace {

using Clock = std::chrono::steady_clock;

constexpr char kHost[] = "127.0.0.1";
constexpr int kPollMs = 100;

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r) freeReplyObject(r);
  }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;
struct ContextDeleter {
  void operator()(redisContext* c) const {
    if (c) redisFree(c);
  }
};

std::string Text(const redisReply& r) { return r.str == nullptr ? std::string() : std::string(r.str, r.len); }

// One command on a fresh connection to a node: the harness polls nodes that
// may be dead or restarting, so it keeps no connection between calls.
// Unavailable: no answer; Internal: Redis's error reply.
absl::StatusOr<ReplyPtr> Query(int port, const std::vector<std::string>& args, int timeout_ms = 2000) {
  const timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  std::unique_ptr<redisContext, ContextDeleter> ctx(redisConnectWithTimeout(kHost, port, tv));
  if (!ctx || ctx->err) {
    return absl::UnavailableError(absl::StrCat(kHost, ":", port, ": ", ctx ? ctx->errstr : "out of memory"));
  }
  redisSetTimeout(ctx.get(), tv);
  ReplyPtr reply(CommandArgv(ctx.get(), args));
  if (!reply) return absl::UnavailableError(absl::StrCat(kHost, ":", port, " ", args[0], ": ", ctx->errstr));
  if (reply->type == REDIS_REPLY_ERROR) {
    return absl::InternalError(absl::StrCat(kHost, ":", port, " ", absl::StrJoin(args, " "), ": ", Text(*reply)));
  }
  return reply;
}

// A field of an INFO-style reply ("field:value" lines); "" when absent.
std::string InfoField(const std::string& info, std::string_view field) {
  std::istringstream in(info);
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  }
  return "";
}

// One entry of CLUSTER SLOTS, reduced to what the harness compares: the
// ports of the master and of its replicas (Redis 7.0 lists a replica only
// once the master knows its replication offset, some seconds after it
// synced).
struct SlotRange {
  long long start = 0;
  long long end = 0;
  int master = 0;
  std::vector<int> replicas;  // ascending
  friend bool operator==(const SlotRange&, const SlotRange&) = default;
};
using SlotView = std::vector<SlotRange>;  // by start

absl::StatusOr<SlotView> ReadSlots(int port) {
  absl::StatusOr<ReplyPtr> reply = Query(port, {"CLUSTER", "SLOTS"});
  if (!reply.ok()) return reply.status();
  const redisReply& r = **reply;
  if (r.type != REDIS_REPLY_ARRAY) return absl::InternalError(absl::StrCat(port, ": CLUSTER SLOTS: not an array"));
  SlotView view;
  for (size_t i = 0; i < r.elements; ++i) {
    const redisReply& e = *r.element[i];
    if (e.type != REDIS_REPLY_ARRAY || e.elements < 3) {
      return absl::InternalError(absl::StrCat(port, ": CLUSTER SLOTS: bad entry"));
    }
    SlotRange range{e.element[0]->integer, e.element[1]->integer, 0, {}};
    for (size_t n = 2; n < e.elements; ++n) {
      const redisReply& node = *e.element[n];
      if (node.type != REDIS_REPLY_ARRAY || node.elements < 2) {
        return absl::InternalError(absl::StrCat(port, ": CLUSTER SLOTS: bad node"));
      }
      const int node_port = static_cast<int>(node.element[1]->integer);
      if (n == 2) {
        range.master = node_port;
      } else {
        range.replicas.push_back(node_port);
      }
    }
    std::sort(range.replicas.begin(), range.replicas.end());
    view.push_back(std::move(range));
  }
  std::sort(view.begin(), view.end(), [](const SlotRange& a, const SlotRange& b) { return a.start < b.start; });
  return view;
}

std::string Describe(const SlotView& view) {
  std::string out;
  for (const SlotRange& r : view) {
    absl::StrAppend(&out, out.empty() ? "" : ", ", r.start, "-", r.end, " on ", r.master);
    if (!r.replicas.empty()) absl::StrAppend(&out, " (replicas ", absl::StrJoin(r.replicas, " "), ")");
  }
  return out.empty() ? "no slots" : out;
}

const SlotRange* RangeOf(const SlotView& view, long long slot) {
  for (const SlotRange& r : view) {
    if (r.start <= slot && slot <= r.end) return &r;
  }
  return nullptr;
}

// The slot map all of `live` agree on, when every one says cluster_state:ok,
// the map covers every slot, names only live nodes and gives each master at
// least `min_replicas` replicas; otherwise why not (for a timeout message).
absl::StatusOr<SlotView> AgreedSlotMap(const std::vector<int>& live, int min_replicas) {
  std::optional<SlotView> agreed;
  for (const int port : live) {
    absl::StatusOr<ReplyPtr> info = Query(port, {"CLUSTER", "INFO"});
    if (!info.ok()) return info.status();
    const std::string state = InfoField(Text(**info), "cluster_state");
    if (state != "ok") return absl::UnavailableError(absl::StrCat(port, " says cluster_state:", state));
    absl::StatusOr<SlotView> view = ReadSlots(port);
    if (!view.ok()) return view.status();
    if (!agreed) {
      agreed = *std::move(view);
    } else if (*view != *agreed) {
      return absl::UnavailableError(absl::StrCat(live.front(), " sees ", Describe(*agreed), " but ", port, " sees ",
                                                 Describe(*view)));
    }
  }
  if (!agreed) return absl::UnavailableError("no live node");
  long long next = 0;
  for (const SlotRange& r : *agreed) {
    if (r.start != next) return absl::UnavailableError(absl::StrCat("slots from ", next, " have no master"));
    next = r.end + 1;
    std::vector<int> ports = r.replicas;
    ports.push_back(r.master);
    for (const int p : ports) {
      if (std::find(live.begin(), live.end(), p) == live.end()) {
        return absl::UnavailableError(absl::StrCat("the slot map still names the dead node ", p, ": ",
                                                   Describe(*agreed)));
      }
    }
    if (static_cast<int>(r.replicas.size()) < min_replicas) {
      return absl::UnavailableError(absl::StrCat("not every replica is in the slot map yet: ", Describe(*agreed)));
    }
  }
  if (next != 16384) return absl::UnavailableError(absl::StrCat("slots from ", next, " have no master"));
  return *agreed;
}

// The first live node's view of the slots, or a test failure.
std::optional<SlotView> CurrentSlots(const std::vector<int>& live) {
  absl::Status last = absl::UnavailableError("no live node");
  for (const int port : live) {
    absl::StatusOr<SlotView> view = ReadSlots(port);
    if (view.ok()) return *std::move(view);
    last = view.status();
  }
  ADD_FAILURE() << "redis cluster: no node answers CLUSTER SLOTS: " << last;
  return std::nullopt;
}

std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path == nullptr ? "/usr/local/bin:/usr/bin:/bin" : path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

bool PortFree(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  // As redis-server binds: a port in TIME_WAIT is usable.
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return free;
}

}  // namespace

struct LocalRedisCluster::Node {
  int port = 0;
  std::unique_ptr<Process> process;
  bool killed = false;
};

LocalRedisCluster::LocalRedisCluster(std::string dir) : dir_(std::move(dir)) {}

LocalRedisCluster::~LocalRedisCluster() {
  for (const std::unique_ptr<Node>& node : nodes_) {
    if (node->process) node->process->Kill();
  }
}

int LocalRedisCluster::FreePortRange(int count) {
  // Client ports and cluster bus ports (+10000) both below 32768, where
  // Linux's ephemeral ports start: no outgoing connection can take one.
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> first(20000, 22700 - count);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int p = first(rng);
    bool free = true;
    for (int i = 0; i < count && free; ++i) free = PortFree(p + i) && PortFree(p + i + 10000);
    if (free) return p;
  }
  ADD_FAILURE() << "no " << count << " free ports (and cluster bus ports) found in 20000-22700";
  return -1;
}

absl::StatusOr<std::unique_ptr<LocalRedisCluster>> LocalRedisCluster::Start(std::string dir, int first_port,
                                                                           int masters, int replicas_per_master,
                                                                           std::vector<std::string> extra_args) {
  if (masters < 3) return absl::InvalidArgumentError("redis-cli --cluster create needs at least 3 masters");
  if (first_port <= 0 || replicas_per_master < 0) return absl::InvalidArgumentError("bad first port or replica count");
  const std::string server = FindOnPath("redis-server");
  const std::string cli = FindOnPath("redis-cli");
  if (server.empty() || cli.empty()) {
    return absl::FailedPreconditionError("redis-server or redis-cli is not on PATH (run scripts/setup.sh)");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));

  std::unique_ptr<LocalRedisCluster> cluster(new LocalRedisCluster(dir));
  const Clock::time_point start = Clock::now();
  const int count = masters * (1 + replicas_per_master);
  for (int i = 0; i < count; ++i) {
    auto node = std::make_unique<Node>();
    node->port = first_port + i;
    const std::string port = std::to_string(node->port);
    // A directory per node: a replica's full sync leaves a dump.rdb behind,
    // and a node restarted in a shared directory would load another's.
    const std::string node_dir = absl::StrCat(dir, "/", port);
    std::filesystem::remove_all(node_dir, ec);
    std::filesystem::create_directories(node_dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create ", node_dir, ": ", ec.message()));
    std::vector<std::string> argv = {server, "--port", port, "--bind", kHost, "--cluster-enabled", "yes",
                                     "--cluster-config-file", node_dir + "/nodes.conf",
                                     // How long a master may be silent before its replica takes over.
                                     "--cluster-node-timeout", "1000",
                                     // A master lists a replica in CLUSTER SLOTS only once the replica
                                     // has synced (5 s after it asked, by default, for more replicas to
                                     // share the transfer) and its offset is above 0, which an idle
                                     // master's first replication PING does (after 10 s by default).
                                     "--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "1",
                                     "--save", "", "--appendonly", "no",
                                     "--dir", node_dir, "--daemonize", "no"};
    for (const std::string& arg : extra_args) {
      if (arg == kTlsPortArg) {
        argv.push_back(absl::StrCat(std::stoi(port) + masters * (1 + replicas_per_master)));
      } else if (arg == kClusterPortArg) {
        argv.push_back(absl::StrCat(std::stoi(port) + 10000));
      } else {
        argv.push_back(arg);
      }
    }
    node->process = std::make_unique<Process>("redis-" + port, std::move(argv), node_dir);
    if (!node->process->started()) return absl::InternalError(absl::StrCat("cannot start redis-server on ", port));
    cluster->nodes_.push_back(std::move(node));
  }
  for (const std::unique_ptr<Node>& node : cluster->nodes_) {
    for (;;) {
      absl::StatusOr<ReplyPtr> pong = Query(node->port, {"PING"}, 500);
      if (pong.ok()) break;
      if (!node->process->Running() || MsSince(start) > 10000) {
        return absl::UnavailableError(absl::StrCat("redis-server on ", node->port, " did not answer PING: ",
                                                   pong.status().message(), "\n", node->process->Tail()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  const int64_t up_ms = MsSince(start);

  std::vector<std::string> create = {cli, "--cluster", "create"};
  for (const std::unique_ptr<Node>& node : cluster->nodes_) create.push_back(absl::StrCat(kHost, ":", node->port));
  create.insert(create.end(), {"--cluster-replicas", std::to_string(replicas_per_master), "--cluster-yes"});
  Process creator("redis-cli-cluster-create", std::move(create), dir);
  const std::optional<int> created = creator.WaitForExit(60000);
  if (!created) {
    creator.Kill();
    return absl::DeadlineExceededError(absl::StrCat("redis-cli --cluster create did not finish in 60 s\n",
                                                    creator.Tail()));
  }
  if (*created != 0) {
    return absl::InternalError(absl::StrCat("redis-cli --cluster create failed\n", creator.Tail()));
  }
  const int64_t create_ms = MsSince(start) - up_ms;

  absl::StatusOr<SlotView> agreed = absl::UnavailableError("not asked yet");
  while (MsSince(start) < up_ms + create_ms + 60000) {
    agreed = AgreedSlotMap(cluster->LivePorts(), replicas_per_master);
    if (agreed.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
  }
  if (!agreed.ok()) {
    return absl::DeadlineExceededError(absl::StrCat("the redis cluster did not settle within 60 s: ",
                                                    agreed.status().message(), "\n", cluster->Logs()));
  }
  std::cout << "[it] redis cluster: " << count << " nodes on " << kHost << ":" << first_port << ".."
            << first_port + count - 1 << " ready after " << MsSince(start) << " ms (processes up " << up_ms
            << " ms, redis-cli --cluster create " << create_ms << " ms, every node ok and agreeing on "
            << Describe(*agreed) << " " << MsSince(start) - up_ms - create_ms << " ms)" << std::endl;
  return cluster;
}

std::vector<int> LocalRedisCluster::AllPorts() const {
  std::vector<int> ports;
  for (const std::unique_ptr<Node>& node : nodes_) ports.push_back(node->port);
  return ports;
}

std::vector<int> LocalRedisCluster::LivePorts() const {
  std::vector<int> ports;
  for (const std::unique_ptr<Node>& node : nodes_) {
    if (!node->killed) ports.push_back(node->port);
  }
  return ports;
}

bool LocalRedisCluster::IsLive(int port) const {
  const std::vector<int> live = LivePorts();
  return std::find(live.begin(), live.end(), port) != live.end();
}

std::string LocalRedisCluster::SeedNodes() const {
  std::vector<std::string> seeds;
  for (const int port : AllPorts()) seeds.push_back(absl::StrCat(kHost, ":", port));
  return absl::StrJoin(seeds, ",");
}

std::vector<int> LocalRedisCluster::MasterPorts() const {
  std::set<int> masters;
  if (std::optional<SlotView> view = CurrentSlots(LivePorts())) {
    for (const SlotRange& r : *view) masters.insert(r.master);
  }
  return std::vector<int>(masters.begin(), masters.end());
}

int LocalRedisCluster::PortOfKey(std::string_view key) const {
  const std::vector<int> live = LivePorts();
  for (const int port : live) {
    absl::StatusOr<ReplyPtr> slot = Query(port, {"CLUSTER", "KEYSLOT", std::string(key)});
    if (!slot.ok() || (*slot)->type != REDIS_REPLY_INTEGER) continue;
    absl::StatusOr<SlotView> view = ReadSlots(port);
    if (!view.ok()) continue;
    if (const SlotRange* range = RangeOf(*view, (*slot)->integer)) return range->master;
    ADD_FAILURE() << "redis cluster: slot " << (*slot)->integer << " of " << key << " has no master";
    return -1;
  }
  ADD_FAILURE() << "redis cluster: no node answers CLUSTER KEYSLOT / CLUSTER SLOTS";
  return -1;
}

absl::Status LocalRedisCluster::KillMasterAndWaitForFailover(int port, int timeout_ms) {
  auto it = std::find_if(nodes_.begin(), nodes_.end(), [&](const auto& n) { return n->port == port; });
  if (it == nodes_.end() || (*it)->killed) {
    return absl::FailedPreconditionError(absl::StrCat(port, " is not a live node of the cluster"));
  }
  Node& victim = **it;
  std::vector<int> others = LivePorts();
  others.erase(std::find(others.begin(), others.end(), port));
  const std::optional<SlotView> before = CurrentSlots(others);
  if (!before) return absl::UnavailableError("no surviving node answers CLUSTER SLOTS");
  std::vector<long long> victim_slots;  // the first slot of each of its ranges
  std::set<int> heirs;                  // its replicas
  for (const SlotRange& r : *before) {
    if (r.master != port) continue;
    victim_slots.push_back(r.start);
    heirs.insert(r.replicas.begin(), r.replicas.end());
  }
  if (victim_slots.empty()) return absl::FailedPreconditionError(absl::StrCat(port, " is not a master with slots"));
  if (heirs.empty()) return absl::FailedPreconditionError(absl::StrCat("master ", port, " has no replica"));

  const Clock::time_point start = Clock::now();
  victim.process->Kill();
  victim.killed = true;
  std::string waiting_for = "no answer yet";
  while (MsSince(start) < timeout_ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
    absl::StatusOr<SlotView> view = AgreedSlotMap(LivePorts(), 0);
    if (!view.ok()) {
      waiting_for = std::string(view.status().message());
      continue;
    }
    const SlotRange* taken = RangeOf(*view, victim_slots.front());
    const bool heir_serves_all = std::all_of(victim_slots.begin(), victim_slots.end(), [&](long long slot) {
      const SlotRange* r = RangeOf(*view, slot);
      return r != nullptr && heirs.count(r->master) > 0;
    });
    if (!heir_serves_all) {
      waiting_for = absl::StrCat("a replica of ", port, " to serve its slots: ", Describe(*view));
      continue;
    }
    std::cout << "[it] redis cluster: master " << kHost << ":" << port << " killed; replica " << kHost << ":"
              << taken->master << " serves its slots, every survivor ok and agreeing, after " << MsSince(start)
              << " ms (cluster-node-timeout 1000 ms)" << std::endl;
    return absl::OkStatus();
  }
  return absl::DeadlineExceededError(absl::StrCat("no replica of master ", port, " took over within ", timeout_ms,
                                                  " ms; waiting for: ", waiting_for, "\n", Logs()));
}

std::vector<std::pair<std::string, std::string>> LocalRedisCluster::HGetAll(std::string_view key) const {
  std::vector<std::pair<std::string, std::string>> fields;
  const int port = PortOfKey(key);
  if (port < 0) return fields;
  absl::StatusOr<ReplyPtr> reply = Query(port, {"HGETALL", std::string(key)});
  if (!reply.ok() || (*reply)->type != REDIS_REPLY_ARRAY) {
    ADD_FAILURE() << "redis cluster: HGETALL " << key << " on " << port << ": "
                  << (reply.ok() ? "not an array" : reply.status().ToString());
    return fields;
  }
  const redisReply& r = **reply;
  for (size_t i = 0; i + 1 < r.elements; i += 2) fields.emplace_back(Text(*r.element[i]), Text(*r.element[i + 1]));
  return fields;
}

std::vector<std::string> LocalRedisCluster::AllKeys(std::string_view pattern) const {
  std::vector<std::string> keys;
  for (const int port : MasterPorts()) {
    absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Connect(kHost, port, 0);
    absl::StatusOr<std::vector<std::string>> some =
        client.ok() ? (*client)->Keys(std::string(pattern)) : absl::StatusOr<std::vector<std::string>>(client.status());
    if (!some.ok()) {
      ADD_FAILURE() << "redis cluster: SCAN on " << port << ": " << some.status();
      continue;
    }
    keys.insert(keys.end(), some->begin(), some->end());
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

long long LocalRedisCluster::TotalKeys() const {
  long long total = 0;
  for (const int port : MasterPorts()) {
    absl::StatusOr<ReplyPtr> size = Query(port, {"DBSIZE"});
    if (!size.ok()) {
      ADD_FAILURE() << "redis cluster: " << size.status();
      continue;
    }
    total += (*size)->integer;
  }
  return total;
}

std::string LocalRedisCluster::Logs(int lines) const {
  std::string out;
  for (const std::unique_ptr<Node>& node : nodes_) absl::StrAppend(&out, node->process->Tail(lines));
  return out;
}

ClusterMonitor::ClusterMonitor(const LocalRedisCluster& cluster, std::vector<NodeMonitor> monitors)
    : cluster_(cluster), monitors_(std::move(monitors)) {}

ClusterMonitor::~ClusterMonitor() = default;

absl::StatusOr<std::unique_ptr<ClusterMonitor>> ClusterMonitor::Start(const LocalRedisCluster& cluster) {
  std::vector<NodeMonitor> monitors;
  for (const int port : cluster.LivePorts()) {
    absl::StatusOr<std::unique_ptr<RedisMonitor>> monitor = RedisMonitor::Start(kHost, port, 0);
    if (!monitor.ok()) return monitor.status();
    monitors.push_back(NodeMonitor{port, *std::move(monitor)});
  }
  return std::unique_ptr<ClusterMonitor>(new ClusterMonitor(cluster, std::move(monitors)));
}

absl::StatusOr<std::vector<RedisMonitor::Command>> ClusterMonitor::Finish(int timeout_ms) {
  // A replication link is a connection from another node's client port: the
  // replica connected to its master's port, so its MONITOR shows that
  // address. Every node's, since a failover changes who replicates whom.
  std::set<std::string> node_addresses;
  for (const int port : cluster_.AllPorts()) node_addresses.insert(absl::StrCat(kHost, ":", port));

  std::vector<std::vector<RedisMonitor::Command>> per_node;
  for (NodeMonitor& m : monitors_) {
    absl::StatusOr<std::vector<RedisMonitor::Command>> commands;
    if (cluster_.IsLive(m.port)) {
      absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Connect(kHost, m.port, 0);
      if (!client.ok()) return client.status();
      commands = m.monitor->Finish(**client, timeout_ms);
    } else {
      commands = m.monitor->FinishAfterServerDied(timeout_ms);
    }
    if (!commands.ok()) {
      return absl::Status(commands.status().code(),
                          absl::StrCat("MONITOR on ", m.port, ": ", commands.status().message()));
    }
    std::erase_if(*commands, [&](const RedisMonitor::Command& c) {
      return node_addresses.count(MonitorClient(c.origin)) > 0;
    });
    per_node.push_back(*std::move(commands));
  }

  // Merge by MONITOR time, never reordering one node's lines (its own
  // order is its execution order, whatever its clock did).
  std::vector<RedisMonitor::Command> merged;
  std::vector<size_t> next(per_node.size(), 0);
  for (;;) {
    int best = -1;
    int64_t best_us = 0;
    for (size_t n = 0; n < per_node.size(); ++n) {
      if (next[n] == per_node[n].size()) continue;
      const int64_t us = MonitorTimeUs(per_node[n][next[n]].origin);
      if (best < 0 || us < best_us) {
        best = static_cast<int>(n);
        best_us = us;
      }
    }
    if (best < 0) break;
    merged.push_back(std::move(per_node[best][next[best]++]));
  }
  return merged;
}

}  // namespace slipstream::it
