// The `slipstream` CLI against a running cluster (real coordinator and
// workers, real Kafka and Redis from scripts/test.sh):
//
//  CliEndToEnd.EveryCommandPrintsItsResultAndFailsWithOneClearLine
//    list, workers, checkpoints, savepoint (default and given directory,
//    --json, progress, errors), savepoint --dispose, cancel, stop after
//    cancel, unknown jobs and commands, an unreachable and a silent
//    coordinator: output and exit status of each.
//  CliEndToEnd.SavepointCancelRestoreOnOneTwoAndThreeWorkersMatchesTheModel
//    a job on 2 workers takes a savepoint mid-stream and is cancelled (it
//    runs on past the savepoint first); the savepoint directory is moved and
//    restored on 1 worker, then the same again onto 3 and onto 2 workers.
//    Every value ever written to Redis is the reference model's, none is
//    missing, and the final Redis state equals the model's.
//  CliEndToEnd.StopWithSavepointThenRestoreRepeatsAndLosesNothing
//    stop-with-savepoint while events flow (FINISHED, workers idle and
//    registered), restore on 3 workers: every window and session is written
//    exactly once (Redis MONITOR) and the final state equals the model's.
//
// Each test has its own topic, Redis database, RPC port and temporary
// directory; a failing one keeps the directory and prints process logs.
#include <gtest/gtest.h>
#include <httplib.h>

#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/integration/coordinator_client.h"
#include "tests/integration/feature_checks.h"
#include "tests/integration/it_env.h"
#include "tests/integration/kafka_client.h"
#include "tests/integration/process_runner.h"
#include "tests/integration/redis_client.h"
#include "tests/integration/workload.h"

namespace slipstream::it {
namespace {

namespace fs = std::filesystem;

constexpr int kPartitions = 4;
// Redis databases no other test uses.
constexpr int kRedisDbCommands = 0;
constexpr int kRedisDbCancelRestore = 15;
constexpr int kRedisDbStop = 1;

// --- Checks against the reference model -------------------------------------
// (the same contract as pipeline_e2e_test.cc's checks, compact.)

const std::string kUserKeyPrefix = "user_features:";

std::string Show(const std::map<std::string, std::string>& h) {
  std::string out;
  for (const auto& [k, v] : h) absl::StrAppend(&out, " ", k, "=", v.substr(0, 40));
  return out;
}

// Reports a count and the first few problems instead of thousands of failures.
class Problems {
 public:
  explicit Problems(std::string what) : what_(std::move(what)) {}
  ~Problems() {
    if (count_ > 0) ADD_FAILURE() << count_ << " problems with " << what_ << " (first few):" << shown_.str();
  }
  void Add(const std::string& p) {
    if (count_++ < 20) shown_ << "\n  " << p;
  }

 private:
  std::string what_;
  int64_t count_ = 0;
  std::ostringstream shown_;
};

std::string WindowMismatch(const std::string& user, const ExpectedWindow& w,
                           const std::map<std::string, std::string>& h) {
  const std::map<std::string, std::string> exact = {
      {"user_id", user},
      {"window_start", std::to_string(w.start)},
      {"window_end", std::to_string(w.end())},
      {"view_count_1h", std::to_string(w.views)},
      {"cart_count_1h", std::to_string(w.carts)},
      {"purchase_count_1h", std::to_string(w.purchases)}};
  if (h.size() != exact.size() + 1) return "wrong field set";
  for (const auto& [k, v] : exact) {
    auto it = h.find(k);
    if (it == h.end() || it->second != v) return absl::StrCat(k, " should be ", v);
  }
  auto avg = h.find("avg_viewed_price_1h");
  if (avg == h.end()) return "no avg_viewed_price_1h";
  double value = 0;
  auto [p, ec] = std::from_chars(avg->second.data(), avg->second.data() + avg->second.size(), value);
  const long double expected = w.AvgViewedPrice();
  if (ec != std::errc() || std::fabs(static_cast<long double>(value) - expected) > 1e-12L * std::fabs(expected)) {
    return absl::StrCat("avg_viewed_price_1h should be ~", static_cast<double>(expected));
  }
  return "";
}

std::string SessionMismatch(const ExpectedSession& s, const std::map<std::string, std::string>& h) {
  const std::map<std::string, std::string> exact = {
      {"user_id", s.user},
      {"event_count", std::to_string(s.count)},
      {"duration_seconds", std::to_string((s.last_ms - s.first_ms) / 1000)},
      {"session_start", std::to_string(s.first_ms)},
      {"session_end", std::to_string(s.last_ms)}};
  return h == exact ? "" : "fields differ from the model";
}

// Every feature write (HSET) seen by MONITOR: each value is the model's for
// its window or session, every window and session the model has was
// written, and with `exactly_once` none was written twice.
void CheckWrites(const ReferenceModel& model, const std::vector<RedisMonitor::Command>& commands, bool exactly_once) {
  std::map<std::string, std::map<int64_t, const ExpectedWindow*>> windows;
  for (const auto& [user, list] : model.windows()) {
    for (const ExpectedWindow& w : list) windows[user][w.start] = &w;
  }
  std::map<std::pair<std::string, int64_t>, int> window_writes;
  std::map<std::string, int> session_writes;
  int64_t writes = 0;
  {
    Problems wrong("feature values written (MONITOR)");
    for (const RedisMonitor::Command& c : commands) {
      std::string name = c.args[0];
      std::transform(name.begin(), name.end(), name.begin(), ::toupper);
      if (name != "HSET" || c.args.size() < 4 || c.args.size() % 2 != 0) continue;
      ++writes;
      std::map<std::string, std::string> h;
      for (size_t i = 2; i + 1 < c.args.size(); i += 2) h[c.args[i]] = c.args[i + 1];
      const std::string& key = c.args[1];
      if (IsSinkBookkeepingKey(key)) continue;
      if (key.rfind(kUserKeyPrefix, 0) == 0) {
        const std::string user = key.substr(kUserKeyPrefix.size());
        int64_t start = 0;
        const std::string& text = h["window_start"];
        std::from_chars(text.data(), text.data() + text.size(), start);
        auto u = windows.find(user);
        if (u == windows.end() || !u->second.count(start)) {
          wrong.Add(key + ": a window the model does not have:" + Show(h));
          continue;
        }
        if (std::string m = WindowMismatch(user, *u->second.at(start), h); !m.empty()) wrong.Add(key + ": " + m);
        ++window_writes[{user, start}];
      } else {
        auto s = model.sessions().find(key);
        if (s == model.sessions().end()) {
          wrong.Add(key + ": a session the model does not have:" + Show(h));
          continue;
        }
        if (std::string m = SessionMismatch(s->second, h); !m.empty()) wrong.Add(key + ": " + m + Show(h));
        ++session_writes[key];
      }
    }
  }
  CheckWritesNeverGoBack(commands);
  Problems missing("windows and sessions never written");
  Problems repeated("windows and sessions written more than once (nothing may repeat)");
  int64_t rewrites = 0;
  for (const auto& [user, list] : model.windows()) {
    for (const ExpectedWindow& w : list) {
      const int n = window_writes[{user, w.start}];
      if (n == 0) missing.Add(absl::StrCat(user, " window ", w.start));
      rewrites += std::max(0, n - 1);
      if (exactly_once && n > 1) repeated.Add(absl::StrCat(user, " window ", w.start, " written ", n, " times"));
    }
  }
  for (const auto& [key, s] : model.sessions()) {
    const int n = session_writes[key];
    if (n == 0) missing.Add(key);
    rewrites += std::max(0, n - 1);
    if (exactly_once && n > 1) repeated.Add(absl::StrCat(key, " written ", n, " times"));
  }
  std::cout << "[it] MONITOR: " << writes << " feature writes, " << rewrites << " rewrites of the same value"
            << std::endl;
}

// The job's Redis database holds exactly the model's keys and values.
void CheckFinalState(RedisClient& redis, const ReferenceModel& model) {
  std::vector<std::string> expected;
  for (const auto& [user, w] : model.user_features()) expected.push_back(kUserKeyPrefix + user);
  for (const auto& [key, s] : model.sessions()) expected.push_back(key);
  absl::StatusOr<std::vector<std::string>> keys = redis.FeatureKeys();
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(std::set<std::string>(keys->begin(), keys->end()), std::set<std::string>(expected.begin(), expected.end()))
      << keys->size() << " keys in Redis, " << expected.size() << " expected";
  std::vector<std::map<std::string, std::string>> hashes;
  std::vector<int64_t> ttls;
  ASSERT_TRUE(redis.HGetAllMany(expected, &hashes, &ttls).ok());
  Problems wrong("the final Redis state");
  for (size_t i = 0; i < expected.size(); ++i) {
    const std::string& key = expected[i];
    std::string m;
    if (key.rfind(kUserKeyPrefix, 0) == 0) {
      const std::string user = key.substr(kUserKeyPrefix.size());
      m = WindowMismatch(user, model.user_features().at(user), hashes[i]);
    } else {
      m = SessionMismatch(model.sessions().at(key), hashes[i]);
    }
    if (!m.empty()) wrong.Add(key + ": " + m + " | actual:" + Show(hashes[i]));
  }
}

// --- Fixture -------------------------------------------------------------------

struct CliResult {
  int exit_status = -1;
  std::string out;
  std::string err;
  int64_t elapsed_ms = 0;
};

std::ostream& operator<<(std::ostream& os, const CliResult& r) {
  return os << "exit " << r.exit_status << " after " << r.elapsed_ms << " ms\n--- stdout:\n"
            << r.out << "--- stderr:\n"
            << r.err;
}

class CliEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ok_ = LoadTestEnv(&env_);
    tmp_ = std::make_unique<TempDir>(absl::StrCat("slipstream-it-cli-",
                                                  ::testing::UnitTest::GetInstance()->current_test_info()->name()));
    topic_ = UniqueName("cli");
    rpc_port_ = FreeTcpPort();
    rest_port_ = FreeTcpPort();
  }

  void TearDown() override {
    StopAll();
    if (HasFailure()) {
      for (const auto& p : stopped_) std::cout << p->Tail(60);
      tmp_->Keep();
      std::cout << "[it] kept " << tmp_->path() << std::endl;
    }
  }

  std::string Coordinator() const { return absl::StrCat("127.0.0.1:", rpc_port_); }

  // `phase` names this run's logs and its state.checkpoints.dir (each phase
  // is a new job).
  Process& Start(const std::string& name, const std::string& binary, int redis_db, const std::string& phase,
                 const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {
        BinaryPath(env_, binary),
        "--config",
        env_.source_dir + "/conf/application.properties",
        "-Dkafka.bootstrap.servers=" + env_.kafka,
        "-Dkafka.topic=" + topic_,
        "-Dkafka.dlq.topic=" + topic_ + "-dlq",
        "-Dkafka.group.id=" + topic_ + "-group",
        "-Dkafka.starting-offsets=earliest",
        "-Dredis.host=" + env_.redis_host,
        "-Dredis.port=" + std::to_string(env_.redis_port),
        "-Dredis.db=" + std::to_string(redis_db),
        "-Djobmanager.rpc.address=127.0.0.1",
        "-Djobmanager.rpc.port=" + std::to_string(rpc_port_),
        "-Drest.port=" + std::to_string(rest_port_),
        "-Dstate.dir=" + tmp_->path() + "/state",
        "-Dstate.checkpoints.dir=file://" + tmp_->path() + "/checkpoints-" + phase,
        "-Dstate.savepoints.dir=file://" + tmp_->path() + "/savepoints",
        "-Dheartbeat.interval=200 ms",
        "-Dcluster.stabilization-timeout=300 ms",
        "-Dexecution.checkpointing.interval=500 ms",
    };
    argv.insert(argv.end(), extra.begin(), extra.end());
    running_.push_back(std::make_unique<Process>(name, std::move(argv), tmp_->path()));
    clock_.Log(absl::StrCat("started ", name, " (pid ", running_.back()->pid(), ")"));
    return *running_.back();
  }

  // A coordinator and `workers` workers; waits until the job runs on all.
  v1::JobStatus StartCluster(int redis_db, const std::string& phase, int workers,
                             const std::vector<std::string>& coordinator_extra = {}) {
    std::vector<std::string> extra = {absl::StrCat("-Dcluster.min-workers=", workers)};
    Process& coordinator = Start("coordinator-" + phase, "slipstream-coordinator", redis_db, phase,
                                 [&] {
                                   std::vector<std::string> all = extra;
                                   all.insert(all.end(), coordinator_extra.begin(), coordinator_extra.end());
                                   return all;
                                 }());
    const int64_t deadline = SteadyNowMs() + 30000;
    while (!TcpPortAcceptsConnections(rpc_port_) && coordinator.Running() && SteadyNowMs() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (int i = 1; i <= workers; ++i) {
      Start(absl::StrCat("worker-", phase, "-", i), "slipstream-worker", redis_db, phase, extra);
    }
    return WaitJob("the job running on " + std::to_string(workers) + " workers",
                   [&](const v1::JobStatus& j) { return JobCounters(j, workers).ok(); });
  }

  v1::JobStatus WaitJob(const std::string& what, const std::function<bool(const v1::JobStatus&)>& done,
                        int64_t timeout_ms = 60000) {
    CoordinatorClient client(Coordinator());
    const int64_t deadline = SteadyNowMs() + timeout_ms;
    std::string last = "no answer";
    while (SteadyNowMs() < deadline) {
      absl::StatusOr<v1::JobStatus> job = client.GetJob();
      if (job.ok()) {
        if (done(*job)) return *job;
        last = absl::StrCat(job->state(), " attempt ", job->attempt(), " workers ", job->workers_size());
      }
      for (const auto& p : running_) {
        if (!p->Running()) {
          ADD_FAILURE() << p->name() << " exited with status " << p->exit_status().value_or(-1) << " while waiting for "
                        << what;
          return v1::JobStatus();
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "timed out waiting for " << what << "; last: " << last;
    return v1::JobStatus();
  }

  // Runs build/bin/slipstream with `args`.
  CliResult Cli(const std::vector<std::string>& args, int64_t timeout_ms = 60000) {
    std::vector<std::string> argv = {BinaryPath(env_, "slipstream")};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(absl::StrCat("cli-", ++cli_runs_), argv, tmp_->path());
    const int64_t begin = SteadyNowMs();
    CliResult r;
    if (std::optional<int> status = p.WaitForExit(timeout_ms)) {
      r.exit_status = *status;
    } else {
      ADD_FAILURE() << p.CommandLine() << " still runs after " << timeout_ms << " ms";
      p.Stop(1000);
    }
    r.elapsed_ms = SteadyNowMs() - begin;
    r.out = p.ReadStdout();
    r.err = p.ReadStderr();
    clock_.Log(absl::StrCat("slipstream ", absl::StrJoin(args, " "), " -> exit ", r.exit_status, " in ",
                            r.elapsed_ms, " ms"));
    return r;
  }

  // The path in "Savepoint completed. Path: <path>".
  static std::string SavepointPath(const CliResult& r) {
    std::smatch m;
    if (!std::regex_search(r.out, m, std::regex("Savepoint completed\\. Path: (\\S+)"))) return "";
    return m[1];
  }

  // SIGTERM to every worker, then the coordinator; each must exit 0.
  void StopAll() {
    for (const auto& p : running_) {
      if (p->name().rfind("coordinator", 0) != 0 && p->Running()) ::kill(p->pid(), SIGTERM);
    }
    for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
      if (!(*it)->Running()) continue;
      const int status = (*it)->Stop();
      EXPECT_EQ(status, 0) << (*it)->name() << " did not shut down cleanly on SIGTERM";
    }
    for (auto& p : running_) stopped_.push_back(std::move(p));
    running_.clear();
  }

  // Sum over partitions of the next offset the running job's sources read.
  static int64_t ConsumedOffsets(const v1::WorkerCounters& c) {
    int64_t sum = 0;
    for (const v1::PartitionProgress& p : c.partitions()) sum += std::max<int64_t>(p.next_offset(), 0);
    return sum;
  }

  void OpenRedis(int db, std::unique_ptr<RedisClient>* redis, std::unique_ptr<RedisMonitor>* monitor) {
    absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Connect(env_.redis_host, env_.redis_port, db);
    ASSERT_TRUE(client.ok()) << client.status();
    ASSERT_TRUE((*client)->FlushDb().ok());
    *redis = *std::move(client);
    if (monitor != nullptr) {
      absl::StatusOr<std::unique_ptr<RedisMonitor>> m = RedisMonitor::Start(env_.redis_host, env_.redis_port, db);
      ASSERT_TRUE(m.ok()) << m.status();
      *monitor = *std::move(m);
    }
  }

  // Waits until the job running on `workers` has written every feature: its
  // watermark passed the far-future push and Redis holds the model's keys.
  void WaitForEveryFeature(int workers, RedisClient& redis, const ReferenceModel& model, int64_t final_watermark) {
    const int64_t expected_keys = static_cast<int64_t>(model.user_features().size() + model.sessions().size());
    WaitJob("every feature in Redis", [&](const v1::JobStatus& j) {
      absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, workers);
      if (!c.ok() || c->watermark_ms() < final_watermark || c->features_emitted() != c->redis_features_written()) {
        return false;
      }
      absl::StatusOr<int64_t> size = redis.FeatureKeyCount();
      return size.ok() && *size == expected_keys;
    }, 120000);
  }

  // What a savepoint test checks against the reference model: Redis DB `db`
  // (emptied, with MONITOR), a workload of 300 users and 40,000 valid
  // events, the topic and a producer.
  struct ModelRun {
    std::unique_ptr<RedisClient> redis;
    std::unique_ptr<RedisMonitor> monitor;
    Workload workload;
    std::unique_ptr<TestProducer> producer;
  };
  void PrepareModelRun(int db, ModelRun* run) {
    ASSERT_NO_FATAL_FAILURE(OpenRedis(db, &run->redis, &run->monitor));
    WorkloadOptions options;
    options.users = 300;
    options.valid_events = 40000;
    run->workload = GenerateWorkload(options);
    ASSERT_TRUE(CreateTopic(env_.kafka, topic_, kPartitions).ok());
    absl::StatusOr<std::unique_ptr<TestProducer>> producer = TestProducer::Create(env_.kafka);
    ASSERT_TRUE(producer.ok()) << producer.status();
    run->producer = *std::move(producer);
  }
  // Once the job on `workers` has written every feature: the final state
  // and every write Redis received equal the model (each window and session
  // written once when `exactly_once`).
  void CheckRedisAgainstTheModel(int workers, ModelRun& run, int64_t final_watermark, bool exactly_once) {
    const ReferenceModel model(run.workload.valid);
    WaitForEveryFeature(workers, *run.redis, model, final_watermark);
    ASSERT_NO_FATAL_FAILURE(CheckFinalState(*run.redis, model));
    absl::StatusOr<std::vector<RedisMonitor::Command>> commands = run.monitor->Finish(*run.redis, 30000);
    ASSERT_TRUE(commands.ok()) << commands.status();
    CheckWrites(model, *commands, exactly_once);
    if (!HasFailure()) (void)run.redis->FlushDb();
  }

  void ProduceWatermarkPush(TestProducer& producer, int64_t* final_watermark) {
    *final_watermark = ProduceClosingEvents(producer, topic_, kPartitions);
  }

  bool env_ok_ = false;
  TestEnv env_;
  std::unique_ptr<TempDir> tmp_;
  std::string topic_;
  int rpc_port_ = 0;
  int rest_port_ = 0;  // the coordinator's REST API
  Stopwatch clock_;
  int cli_runs_ = 0;
  std::vector<std::unique_ptr<Process>> running_;
  std::vector<std::unique_ptr<Process>> stopped_;  // kept for their logs
};

// One line on stderr, nothing that looks like a stack trace or a second error.
void ExpectOneErrorLine(const CliResult& r, const std::string& needle) {
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r;
  EXPECT_EQ(r.err.rfind("slipstream: ", 0), 0u) << r;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected \"" << needle << "\" in:\n" << r;
}

TEST_F(CliEndToEnd, EveryCommandPrintsItsResultAndFailsWithOneClearLine) {
  ASSERT_TRUE(env_ok_);
  std::unique_ptr<RedisClient> redis;
  ASSERT_NO_FATAL_FAILURE(OpenRedis(kRedisDbCommands, &redis, nullptr));
  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, kPartitions).ok());
  const v1::JobStatus started = StartCluster(kRedisDbCommands, "a", 2);
  ASSERT_FALSE(HasFailure());
  const std::string job = started.job_id();
  const std::vector<std::string> at = {"--coordinator", Coordinator()};
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), at.begin(), at.end());
    return Cli(args);
  };
  WaitJob("a completed checkpoint", [](const v1::JobStatus& j) { return j.checkpoints().completed() >= 1; });

  CliResult r = cli({"list"});
  EXPECT_EQ(r.exit_status, 0) << r;
  const std::regex running_row(job + " +RUNNING +\\d{4}-\\d\\d-\\d\\dT[0-9:.]+Z +\\d+ +2 +" + topic_);
  EXPECT_TRUE(std::regex_search(r.out, running_row)) << r;
  r = cli({"list", "--json"});
  EXPECT_EQ(r.exit_status, 0) << r;
  EXPECT_NE(r.out.find("\"job_id\":\"" + job + "\""), std::string::npos) << r;
  EXPECT_NE(r.out.find("\"state\":\"RUNNING\""), std::string::npos) << r;

  r = cli({"workers"});
  EXPECT_EQ(r.exit_status, 0) << r;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("127\\.0\\.0\\.1:\\d+ +[0-9.]+ m?s +\\d+ +0,2 +0-63"))) << r;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("127\\.0\\.0\\.1:\\d+ +[0-9.]+ m?s +\\d+ +1,3 +64-127"))) << r;

  // A savepoint into the default directory (state.savepoints.dir), then one
  // into a given directory with --json.
  r = cli({"savepoint", job});
  EXPECT_EQ(r.exit_status, 0) << r;
  EXPECT_NE(r.out.find("Triggering savepoint for job " + job), std::string::npos) << r;
  const std::string savepoint = SavepointPath(r);
  EXPECT_TRUE(std::regex_match(savepoint, std::regex(tmp_->path() + "/savepoints/savepoint-" + job.substr(0, 6) +
                                                     "-[0-9a-f]{12}")))
      << r;
  EXPECT_TRUE(fs::exists(fs::path(savepoint) / "_metadata")) << savepoint;
  const std::string other_dir = tmp_->path() + "/other-savepoints";
  r = cli({"--json", "savepoint", job, "file://" + other_dir});
  EXPECT_EQ(r.exit_status, 0) << r;
  EXPECT_NE(r.out.find("\"status\":\"COMPLETED\""), std::string::npos) << r;
  EXPECT_NE(r.out.find("\"location\":\"" + other_dir + "/savepoint-"), std::string::npos) << r;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "--json prints one line: " << r;

  r = cli({"checkpoints", job});
  EXPECT_EQ(r.exit_status, 0) << r;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("restored 0 time"))) << r;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\\d+ +SAVEPOINT +COMPLETED +\\d{4}-[0-9T:.-]+Z +\\d+ ms +[0-9.]+ "
                                                  "[KMG]?i?B +2/2 +" + savepoint)))
      << r;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\\d+ +CHECKPOINT +COMPLETED "))) << r;

  // Errors: one line on stderr, exit 1 (refused), 2 (usage), 3 (unreachable).
  r = cli({"checkpoints", "ffffffffffffffffffffffffffffffff"});
  EXPECT_EQ(r.exit_status, 1) << r;
  ExpectOneErrorLine(r, "job ffffffffffffffffffffffffffffffff not found");
  r = cli({"savepoint", job, "relative/dir"});
  EXPECT_EQ(r.exit_status, 1) << r;
  ExpectOneErrorLine(r, "not absolute");
  r = cli({"savepoint", job, "s3://bucket/savepoints"});
  EXPECT_EQ(r.exit_status, 1) << r;
  ExpectOneErrorLine(r, "unsupported scheme");
  r = cli({"savepoint"});
  EXPECT_EQ(r.exit_status, 2) << r;
  ExpectOneErrorLine(r, "needs a job id");
  r = cli({"frobnicate"});
  EXPECT_EQ(r.exit_status, 2) << r;
  EXPECT_NE(r.err.find("frobnicate"), std::string::npos) << r;
  r = cli({"savepoint", "--dispose", tmp_->path() + "/no-such-savepoint"});
  EXPECT_EQ(r.exit_status, 1) << r;
  ExpectOneErrorLine(r, "not a directory");
  r = cli({"cancel", "0123"});
  EXPECT_EQ(r.exit_status, 1) << r;
  ExpectOneErrorLine(r, "not found");
  {
    // Nothing listens: refused at once.
    const int closed_port = FreeTcpPort();
    CliResult unreachable = Cli({"--coordinator", absl::StrCat("127.0.0.1:", closed_port), "list"});
    EXPECT_EQ(unreachable.exit_status, 3) << unreachable;
    ExpectOneErrorLine(unreachable, absl::StrCat("cannot reach the coordinator at 127.0.0.1:", closed_port));
    EXPECT_LT(unreachable.elapsed_ms, 6000) << unreachable;
    // Something accepts connections but never answers: --timeout bounds it.
    const int silent = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(::listen(silent, 16), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len);
    CliResult hung = Cli({"--coordinator", absl::StrCat("127.0.0.1:", ntohs(addr.sin_port)), "--timeout", "1",
                          "workers"});
    ::close(silent);
    EXPECT_EQ(hung.exit_status, 3) << hung;
    EXPECT_EQ(std::count(hung.err.begin(), hung.err.end(), '\n'), 1) << hung;
    EXPECT_LT(hung.elapsed_ms, 5000) << hung;
  }

  // Dispose: the savepoint goes; a checkpoint is refused; twice is not found.
  r = cli({"savepoint", "--dispose", savepoint});
  EXPECT_EQ(r.exit_status, 0) << r;
  EXPECT_NE(r.out.find("Savepoint '" + savepoint + "' disposed."), std::string::npos) << r;
  EXPECT_FALSE(fs::exists(savepoint));
  r = cli({"savepoint", "--dispose", savepoint});
  EXPECT_EQ(r.exit_status, 1) << r;
  ExpectOneErrorLine(r, "cannot dispose the savepoint");
  r = cli({"savepoint", "-d", savepoint, job});
  EXPECT_EQ(r.exit_status, 2) << r;

  // Cancel: CANCELED, the latest checkpoint retained, workers registered and
  // idle; afterwards stop, savepoint and cancel are refused.
  r = cli({"cancel", job});
  EXPECT_EQ(r.exit_status, 0) << r;
  EXPECT_NE(r.out.find("Cancelled job " + job + "."), std::string::npos) << r;
  std::smatch retained;
  ASSERT_TRUE(std::regex_search(r.out, retained, std::regex("RETAIN_ON_CANCELLATION\\): (\\S+)"))) << r;
  EXPECT_TRUE(fs::exists(fs::path(retained[1].str()) / "_metadata")) << retained[1];
  WaitJob("both workers idle", [](const v1::JobStatus& j) {
    if (j.state() != "CANCELED" || j.workers_size() != 2) return false;
    for (const auto& w : j.workers()) {
      if (w.counters().attempt() != 0 || !w.standby()) return false;
    }
    return true;
  });
  r = cli({"list"});
  EXPECT_TRUE(std::regex_search(r.out, std::regex(job + " +CANCELED "))) << r;
  r = cli({"workers"});
  EXPECT_EQ(r.exit_status, 0) << r;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3) << "a header and both workers, idle: " << r;
  EXPECT_NE(r.out.find("standby"), std::string::npos) << r;
  r = cli({"stop", job});
  EXPECT_EQ(r.exit_status, 1) << r;
  ExpectOneErrorLine(r, "is CANCELED");
  r = cli({"cancel", job});
  EXPECT_EQ(r.exit_status, 1) << r;
  ExpectOneErrorLine(r, "already CANCELED");
  std::this_thread::sleep_for(std::chrono::milliseconds(700));  // one checkpoint interval and more
  EXPECT_TRUE(fs::exists(fs::path(retained[1].str()) / "_metadata")) << "retained after the cancel";
}

// 2 workers -> savepoint, cancel -> restore on 1 -> on 3 -> on 2 workers.
TEST_F(CliEndToEnd, SavepointCancelRestoreOnOneTwoAndThreeWorkersMatchesTheModel) {
  ASSERT_TRUE(env_ok_);
  ModelRun run;
  ASSERT_NO_FATAL_FAILURE(PrepareModelRun(kRedisDbCancelRestore, &run));
  const Workload& w = run.workload;
  TestProducer& producer = *run.producer;
  size_t produced = 0;
  auto produce_until = [&](size_t end) {
    for (; produced < end; ++produced) {
      producer.Produce(topic_, w.records[produced].key, w.records[produced].value, -1);
    }
    ASSERT_TRUE(producer.Flush(60000).ok());
  };

  const std::vector<int> workers = {2, 1, 3, 2};
  const size_t n = w.records.size();
  std::string savepoint;
  int64_t final_watermark = 0;
  for (size_t phase = 0; phase < workers.size(); ++phase) {
    const std::string name(1, static_cast<char>('a' + phase));
    std::vector<std::string> extra;
    std::string restored;
    if (!savepoint.empty()) {
      // Savepoints are relocatable: restore a moved copy.
      restored = tmp_->path() + "/moved-" + name;
      fs::rename(savepoint, restored);
      extra = {"--from-savepoint", restored};
    }
    const v1::JobStatus job = StartCluster(kRedisDbCancelRestore, name, workers[phase], extra);
    ASSERT_FALSE(HasFailure());
    if (!restored.empty()) {
      EXPECT_EQ(job.restored_from(), restored);
      EXPECT_EQ(job.checkpoints().restored(), 1);
      EXPECT_TRUE(job.checkpoints().latest_restored().is_savepoint());
    }
    const size_t slice_end = (phase + 1) * n / workers.size();
    if (phase + 1 == workers.size()) {
      produce_until(n);
      ProduceWatermarkPush(producer, &final_watermark);
      ASSERT_TRUE(producer.Flush(30000).ok());
      break;
    }
    // Part of the slice, the savepoint while the job has read into it, the
    // rest of the slice, and the cancel once the job has read that too: the
    // cancelled job ran past its savepoint, so the next phase repeats some
    // of its work (the same values).
    produce_until(produced + (slice_end - produced) / 2);
    const int64_t half = static_cast<int64_t>(produced);
    WaitJob("the job to read the first half of its slice", [&](const v1::JobStatus& j) {
      absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, workers[phase]);
      return c.ok() && ConsumedOffsets(*c) >= half;
    });
    const int64_t savepoint_begin = SteadyNowMs();
    CliResult r = Cli({"--coordinator", Coordinator(), "savepoint", job.job_id()});
    ASSERT_EQ(r.exit_status, 0) << r;
    savepoint = SavepointPath(r);
    ASSERT_FALSE(savepoint.empty()) << r;
    clock_.Log(absl::StrCat("phase ", name, ": savepoint on ", workers[phase], " workers took ",
                            SteadyNowMs() - savepoint_begin, " ms (CLI round trip) -> ", savepoint));
    produce_until(slice_end);
    const int64_t all = static_cast<int64_t>(produced);
    WaitJob("the job to read its whole slice", [&](const v1::JobStatus& j) {
      absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, workers[phase]);
      return c.ok() && ConsumedOffsets(*c) >= all;
    });
    r = Cli({"--coordinator", Coordinator(), "cancel", job.job_id()});
    ASSERT_EQ(r.exit_status, 0) << r;
    WaitJob("the workers to go idle", [](const v1::JobStatus& j) {
      return j.state() == "CANCELED" && std::all_of(j.workers().begin(), j.workers().end(), [](const auto& w) {
               return w.counters().attempt() == 0;
             });
    });
    StopAll();
    ASSERT_FALSE(HasFailure());
  }

  CheckRedisAgainstTheModel(workers.back(), run, final_watermark, /*exactly_once=*/false);
}

TEST_F(CliEndToEnd, StopWithSavepointThenRestoreRepeatsAndLosesNothing) {
  ASSERT_TRUE(env_ok_);
  ModelRun run;
  ASSERT_NO_FATAL_FAILURE(PrepareModelRun(kRedisDbStop, &run));
  const Workload& w = run.workload;
  TestProducer& producer = *run.producer;
  const size_t n = w.records.size();

  const v1::JobStatus job = StartCluster(kRedisDbStop, "a", 2);
  ASSERT_FALSE(HasFailure());
  for (size_t i = 0; i < n / 3; ++i) producer.Produce(topic_, w.records[i].key, w.records[i].value, -1);
  ASSERT_TRUE(producer.Flush(60000).ok());
  WaitJob("the job to read the first third", [&](const v1::JobStatus& j) {
    absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, 2);
    return c.ok() && ConsumedOffsets(*c) >= static_cast<int64_t>(n / 3);
  });
  // The stop happens while events keep arriving.
  size_t produced = n / 3;
  std::thread more([&] {
    for (; produced < 2 * n / 3; ++produced) {
      producer.Produce(topic_, w.records[produced].key, w.records[produced].value, -1);
      if (produced % 500 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const int64_t stop_begin = SteadyNowMs();
  CliResult r = Cli({"--coordinator", Coordinator(), "stop", job.job_id(), "--savepoint-path",
                     tmp_->path() + "/final"});
  const int64_t stop_ms = SteadyNowMs() - stop_begin;
  more.join();
  ASSERT_EQ(r.exit_status, 0) << r;
  EXPECT_NE(r.out.find("Job " + job.job_id() + " FINISHED."), std::string::npos) << r;
  const std::string savepoint = SavepointPath(r);
  ASSERT_TRUE(fs::exists(fs::path(savepoint) / "_metadata")) << r;
  clock_.Log(absl::StrCat("stop-with-savepoint took ", stop_ms, " ms (CLI round trip) -> ", savepoint));
  const v1::JobStatus finished = WaitJob("the workers to go idle", [](const v1::JobStatus& j) {
    return j.state() == "FINISHED" && j.workers_size() == 2 &&
           std::all_of(j.workers().begin(), j.workers().end(),
                       [](const auto& w) { return w.counters().attempt() == 0; });
  });
  EXPECT_EQ(finished.checkpoints().history(0).checkpoint_type(), "SYNC_SAVEPOINT");
  r = Cli({"--coordinator", Coordinator(), "stop", job.job_id()});
  EXPECT_EQ(r.exit_status, 1) << r;
  ExpectOneErrorLine(r, "is FINISHED");
  StopAll();
  ASSERT_FALSE(HasFailure());

  // The rest of the stream, then the restore on 3 workers.
  for (; produced < n; ++produced) producer.Produce(topic_, w.records[produced].key, w.records[produced].value, -1);
  int64_t final_watermark = 0;
  ProduceWatermarkPush(producer, &final_watermark);
  ASSERT_TRUE(producer.Flush(60000).ok());
  const v1::JobStatus restored = StartCluster(kRedisDbStop, "b", 3, {"--from-savepoint", savepoint});
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(restored.restored_from(), savepoint);
  CheckRedisAgainstTheModel(3, run, final_watermark, /*exactly_once=*/true);
}

// Flink's REST calls that change the job, against a running cluster: a
// savepoint (POST, then its status by request id), the errors of bad bodies,
// stop with drain refused, and cancel (PATCH ?mode=cancel). No events: the
// workers write nothing (the Redis db is shared with the commands test).
TEST_F(CliEndToEnd, RestSavepointStopAndCancelAsInFlink) {
  ASSERT_TRUE(env_ok_);
  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, kPartitions).ok());
  const v1::JobStatus job = StartCluster(kRedisDbCommands, "rest", 1);
  ASSERT_FALSE(job.job_id().empty());
  const std::string id = job.job_id();
  httplib::Client rest("127.0.0.1", rest_port_);
  rest.set_connection_timeout(5);
  rest.set_read_timeout(30);

  // A savepoint into a directory of our choosing, as in the original README.
  // A worker reports its attempt while it still restores; a savepoint that
  // reaches a task not running yet fails, as in Flink ("not all required
  // tasks are currently running"), and is tried again, as a user would.
  const std::string target = tmp_->path() + "/flink-savepoints";
  std::smatch m;
  std::string status_body;
  for (int tries = 0; tries < 5; ++tries) {
    httplib::Result res = rest.Post(("/jobs/" + id + "/savepoints").c_str(),
                                    "{\"target-directory\": \"" + target + "\"}", "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202) << res->body;
    ASSERT_TRUE(std::regex_search(res->body, m, std::regex("\"request-id\":\"([0-9a-f]+)\""))) << res->body;
    const std::string request_id = m[1];
    const int64_t deadline = SteadyNowMs() + 30000;
    while (SteadyNowMs() < deadline) {
      httplib::Result st = rest.Get(("/jobs/" + id + "/savepoints/" + request_id).c_str());
      ASSERT_TRUE(st);
      ASSERT_EQ(st->status, 200) << st->body;
      status_body = st->body;
      if (status_body.find("\"id\":\"COMPLETED\"") != std::string::npos) break;
      if (status_body.find("\"id\":\"FAILED\"") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (status_body.find("no task is running") == std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_TRUE(std::regex_search(status_body, m, std::regex("\"location\":\"([^\"]+)\""))) << status_body;
  const std::string location = m[1];
  EXPECT_EQ(location.rfind(target + "/savepoint-" + id.substr(0, 6) + "-", 0), 0u) << location;
  EXPECT_TRUE(std::filesystem::exists(location + "/_metadata")) << location;
  // The checkpoint history shows it as a savepoint.
  EXPECT_NE(rest.Get(("/jobs/" + id + "/checkpoints").c_str())->body.find("\"is_savepoint\":true"),
            std::string::npos);

  // Errors: Flink's {"errors": [...]} with the matching status.
  auto expect_error = [&](httplib::Result r, int status, const std::string& needle) {
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_EQ(r->body.rfind("{\"errors\":[", 0), 0u) << r->body;
    EXPECT_NE(r->body.find(needle), std::string::npos) << r->body;
  };
  expect_error(rest.Post(("/jobs/" + id + "/savepoints").c_str(), "{not json", "application/json"), 400,
               "SavepointTriggerRequestBody");
  expect_error(rest.Post(("/jobs/" + id + "/savepoints").c_str(), "{\"target-directory\": 5}", "application/json"),
               400, "SavepointTriggerRequestBody");
  expect_error(rest.Post(("/jobs/" + id + "/savepoints").c_str(), "{\"target-directory\": \"relative/dir\"}",
                         "application/json"),
               400, "relative");
  expect_error(rest.Get(("/jobs/" + id + "/savepoints/ffff").c_str()), 404, "ffff");
  expect_error(rest.Post(("/jobs/" + id + "/stop").c_str(), "{\"drain\": true}", "application/json"), 400, "drain");
  expect_error(rest.Post("/jobs/0123456789abcdef0123456789abcdef/savepoints", "{}", "application/json"), 404,
               "not found");
  expect_error(rest.Patch(("/jobs/" + id + "?mode=stop").c_str(), "", "application/json"), 400, "mode=cancel");

  // Cancel: 202, then the job is CANCELED everywhere.
  httplib::Result cancelled = rest.Patch(("/jobs/" + id + "?mode=cancel").c_str(), "", "application/json");
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->status, 202) << cancelled->body;
  WaitJob("the job cancelled", [](const v1::JobStatus& j) { return j.state() == "CANCELED"; });
  EXPECT_NE(rest.Get("/jobs")->body.find("\"status\":\"CANCELED\""), std::string::npos);
  EXPECT_NE(rest.Get("/overview")->body.find("\"jobs-cancelled\":1"), std::string::npos);
  // A savepoint of a cancelled job is refused (409 Conflict).
  expect_error(rest.Post(("/jobs/" + id + "/savepoints").c_str(), "{}", "application/json"), 409, "");
}

}  // namespace
}  // namespace slipstream::it
