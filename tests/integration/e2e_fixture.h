// The fixture of the end-to-end tests that run the real binaries against the
// Kafka broker and Redis server scripts/test.sh starts: a temporary
// directory, a unique topic, a free RPC port, and the processes a test starts
// (stopped with SIGTERM in TearDown; their logs printed, and the directory
// kept, when the test failed).
#pragma once

#include <gtest/gtest.h>

#include <signal.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/integration/coordinator_client.h"
#include "tests/integration/it_env.h"
#include "tests/integration/process_runner.h"
#include "tests/integration/redis_client.h"

namespace slipstream::it {

// Fixture: environment, a temporary directory, and the processes it starts
// (stopped in TearDown; their logs printed when the test failed).
class PipelineEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    env_ok_ = LoadTestEnv(&env_);
    std::string name = info->name();  // "MatchesReferenceModel/2" for parameterized tests
    std::replace(name.begin(), name.end(), '/', '-');
    tmp_ = std::make_unique<TempDir>("slipstream-it-" + name);
    topic_ = UniqueName(name);
    dlq_topic_ = topic_ + "-dlq";
    rpc_port_ = FreeTcpPort();
    rest_port_ = FreeTcpPort();
  }

  void TearDown() override {
    // Every worker at once (with several, one leaving ends the attempt for
    // the others), then the coordinator.
    for (const auto& p : processes_) {
      if (p->name().rfind("coordinator", 0) != 0 && p->Running()) ::kill(p->pid(), SIGTERM);
    }
    // Workers first, then the coordinator(s): a test may have restarted one
    // after the workers.
    std::vector<Process*> order;
    for (const bool coordinators : {false, true}) {
      for (auto it = processes_.rbegin(); it != processes_.rend(); ++it) {
        if (((*it)->name().rfind("coordinator", 0) == 0) == coordinators) order.push_back(it->get());
      }
    }
    for (Process* process : order) {
      Process& p = *process;
      if (!p.Running()) {
        clock_.Log(absl::StrCat(p.name(), " had already exited (status ", p.exit_status().value_or(-1), ")"));
        continue;
      }
      const int64_t begin = SteadyNowMs();
      const int status = p.Stop();
      clock_.Log(absl::StrCat("stopped ", p.name(), " (exit status ", status, ") in ", SteadyNowMs() - begin, " ms"));
      EXPECT_EQ(status, 0) << p.name() << " did not shut down cleanly on SIGTERM";
    }
    if (HasFailure()) {
      for (const auto& p : processes_) std::cout << p->Tail(80);
      tmp_->Keep();
    }
  }

  std::vector<std::string> CommonOverrides(int redis_db) const {
    return {
        "--config",
        env_.source_dir + "/conf/application.properties",
        "-Dkafka.bootstrap.servers=" + env_.kafka,
        "-Dkafka.topic=" + topic_,
        "-Dkafka.dlq.topic=" + dlq_topic_,
        "-Dkafka.group.id=" + topic_ + "-group",
        "-Dkafka.starting-offsets=earliest",
        "-Dredis.host=" + env_.redis_host,
        "-Dredis.port=" + std::to_string(env_.redis_port),
        "-Dredis.db=" + std::to_string(redis_db),
        "-Djobmanager.rpc.address=127.0.0.1",
        "-Djobmanager.rpc.port=" + std::to_string(rpc_port_),
        "-Drest.port=" + std::to_string(rest_port_),
        "-Dstate.dir=" + tmp_->path() + "/state",
        "-Dstate.checkpoints.dir=file://" + tmp_->path() + "/checkpoints",
        "-Dstate.savepoints.dir=file://" + tmp_->path() + "/savepoints",
        "-Dheartbeat.interval=200 ms",
        "-Dlog.level=info",
    };
  }

  Process& Start(const std::string& name, const std::string& binary, int redis_db,
                 const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {BinaryPath(env_, binary)};
    for (std::string& a : CommonOverrides(redis_db)) argv.push_back(std::move(a));
    argv.insert(argv.end(), extra.begin(), extra.end());
    processes_.push_back(std::make_unique<Process>(name, std::move(argv), tmp_->path()));
    clock_.Log(absl::StrCat("started ", name, " (pid ", processes_.back()->pid(), ")"));
    return *processes_.back();
  }

  // Starts the coordinator and waits until it answers GetJob, so the worker
  // registers at its first attempt (instead of in gRPC's reconnect backoff).
  // `name` (log file names) must start with "coordinator".
  void StartCoordinator(CoordinatorClient& client, int redis_db, const std::vector<std::string>& extra = {},
                        const std::string& name = "coordinator") {
    Process& p = Start(name, "slipstream-coordinator", redis_db, extra);
    const int64_t deadline = SteadyNowMs() + 30000;
    // Wait for the listening socket first: a gRPC call to a closed port puts
    // the channel into reconnect backoff (seconds).
    while (!TcpPortAcceptsConnections(rpc_port_) && p.Running() && SteadyNowMs() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    absl::StatusOr<v1::JobStatus> job = client.GetJob();
    while (!job.ok() && p.Running() && SteadyNowMs() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      job = client.GetJob();
    }
    ASSERT_TRUE(job.ok()) << "the coordinator does not answer GetJob on " << CoordinatorAddress() << ": "
                          << job.status();
    clock_.Log("coordinator answers: job " + job->job_id() + " " + job->state());
  }

  // A redis-server of this test's own on a free port; the fixture's
  // processes then use it (it is stopped after the workers in TearDown).
  void StartPrivateRedis() {
    const int port = FreeTcpPort();
    // Process runs its binary by path (execv): find redis-server on PATH.
    std::string binary;
    const char* path = std::getenv("PATH");
    for (absl::string_view dir : absl::StrSplit(path != nullptr ? path : "/usr/bin", ':')) {
      const std::string candidate = absl::StrCat(dir, "/redis-server");
      if (::access(candidate.c_str(), X_OK) == 0) {
        binary = candidate;
        break;
      }
    }
    ASSERT_FALSE(binary.empty()) << "redis-server is not on PATH (run ./scripts/setup.sh)";
    processes_.push_back(std::make_unique<Process>(
        "redis", std::vector<std::string>{binary, "--port", std::to_string(port), "--bind", "127.0.0.1",
                                          "--save", "", "--appendonly", "no", "--loglevel", "warning"},
        tmp_->path()));
    env_.redis_host = "127.0.0.1";
    env_.redis_port = port;
    const int64_t deadline = SteadyNowMs() + 10000;
    while (!TcpPortAcceptsConnections(port) && SteadyNowMs() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(TcpPortAcceptsConnections(port)) << "redis-server did not start on port " << port;
  }

  // Fails (returns a message) when any started process has exited.
  std::optional<std::string> ExitedProcess() {
    for (const auto& p : processes_) {
      if (!p->Running()) {
        const int status = p->exit_status().value_or(-1);
        return absl::StrCat(p->name(), " exited unexpectedly with status ", status,
                            status == 0 ? " (the binaries exit 0 only on SIGTERM/SIGINT: did something else on this "
                                          "machine signal it?)"
                                        : "");
      }
    }
    return std::nullopt;
  }

  std::string CoordinatorAddress() const { return absl::StrCat("127.0.0.1:", rpc_port_); }

  // The test's Redis database, emptied, with MONITOR recording every command
  // sent to it from now on.
  void OpenRecordedRedisDb(int db, absl::StatusOr<std::unique_ptr<RedisClient>>* redis,
                           absl::StatusOr<std::unique_ptr<RedisMonitor>>* monitor) {
    *redis = RedisClient::Connect(env_.redis_host, env_.redis_port, db);
    ASSERT_TRUE(redis->ok()) << redis->status();
    ASSERT_TRUE((**redis)->FlushDb().ok());
    *monitor = RedisMonitor::Start(env_.redis_host, env_.redis_port, db);
    ASSERT_TRUE(monitor->ok()) << monitor->status();
  }

  bool env_ok_ = false;
  TestEnv env_;
  std::unique_ptr<TempDir> tmp_;
  std::string topic_;
  std::string dlq_topic_;
  int rpc_port_ = 0;
  int rest_port_ = 0;  // the coordinator's REST API
  Stopwatch clock_;
  std::vector<std::unique_ptr<Process>> processes_;
};

}  // namespace slipstream::it
