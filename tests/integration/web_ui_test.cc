// The coordinator's web UI in a real browser, against a running cluster:
//
//  WebUi.ShowsTheRunningClusterAndTakesASavepoint
//    a coordinator and 2 workers (real Kafka and Redis from scripts/test.sh)
//    while slipstream-gen produces events, some malformed and some late.
//    First the REST side of what the page draws from: GET /taskmanagers
//    carries each worker's Redis write latency, the coordinator's /metrics
//    re-exports it. Then tests/ui/ui_test.mjs drives Debian's headless
//    Chromium (playwright-core from $SLIPSTREAM_UI_TEST_MODULES, installed by
//    scripts/setup.sh --with-ui-test) over http://127.0.0.1:<rest.port>/:
//    job, workers, key-group map, throughput, watermark, Kafka lag, invalid/late counters,
//    Redis latency and checkpoint history must show real values, the
//    savepoint button must show the savepoint's path, and that path must hold
//    a _metadata file. The screenshot goes to <build>/test-artifacts/ui.png.
//
// Redis: database 14, shared with PipelineEndToEnd.LostWorkerIsReportedWithoutHanging
// (all 16 are taken): neither test reads, flushes or counts what is in it,
// so what one writes changes no assertion of the other, in parallel or not.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/integration/coordinator_client.h"
#include "tests/integration/e2e_fixture.h"
#include "tests/integration/it_env.h"
#include "tests/integration/kafka_client.h"
#include "tests/integration/process_runner.h"

namespace slipstream::it {
namespace {

namespace fs = std::filesystem;

constexpr int kRedisDbWebUi = 14;
constexpr int kPartitions = 4;
constexpr int kWorkers = 2;

// The first executable `name` on PATH ("" when there is none): Process
// execs a path, not a name.
std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    const std::string candidate = absl::StrCat(dir, "/", name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

using WebUi = PipelineEndToEnd;

TEST_F(WebUi, ShowsTheRunningClusterAndTakesASavepoint) {
  ASSERT_TRUE(env_ok_);
  const char* modules = std::getenv("SLIPSTREAM_UI_TEST_MODULES");
  ASSERT_TRUE(modules != nullptr && fs::exists(fs::path(modules) / "node_modules" / "playwright-core"))
      << "SLIPSTREAM_UI_TEST_MODULES must name the directory that scripts/setup.sh --with-ui-test installs the UI "
         "test's npm packages into ($SLIPSTREAM_CACHE/ui-test); run the suite with scripts/test.sh";
  const std::string node = FindOnPath("node");
  ASSERT_FALSE(node.empty()) << "node is not on PATH (scripts/setup.sh --with-ui-test installs it)";
  const std::string artifacts = fs::path(env_.bin_dir).parent_path() / "test-artifacts";
  fs::create_directories(artifacts);
  const std::string screenshot = artifacts + "/ui.png";
  fs::remove(screenshot);  // a stale one must not pass for this run's

  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, kPartitions).ok());
  CoordinatorClient coordinator(CoordinatorAddress());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, kRedisDbWebUi,
                                           {"-Dcluster.min-workers=2", "-Dexecution.checkpointing.interval=2 s"}));
  for (int i = 1; i <= kWorkers; ++i) Start("worker-" + std::to_string(i), "slipstream-worker", kRedisDbWebUi);

  // Events for the whole test (stopped at its end; 300 s is only a bound):
  // event time runs 100x faster than the clock from 6 h ago, so 10-minute
  // panes close every 6 s and features reach Redis (Redis latency,
  // throughput out) while the watermark stays behind the wall clock (its lag
  // is a real, positive number). 1% malformed and 2% two hours late feed the
  // invalid and late counters.
  const std::string start_time =
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now() - absl::Hours(6), absl::UTCTimeZone());
  Process gen("gen",
              {BinaryPath(env_, "slipstream-gen"), "--config", env_.source_dir + "/conf/application.properties",
               "-Dkafka.bootstrap.servers=" + env_.kafka, "--topic", topic_, "--count", "0", "--duration", "300 s",
               "--rate", "2000", "--users", "500", "--event-time-start", start_time, "--event-time-step", "50 ms",
               "--malformed-fraction", "0.01", "--late-fraction", "0.02", "--late-by", "2 h", "--seed", "6", "-q"},
              tmp_->path());

  // The REST side of the Redis write latency: per worker in /taskmanagers,
  // and in the coordinator's /metrics.
  httplib::Client rest("127.0.0.1", rest_port_);
  rest.set_connection_timeout(5);
  rest.set_read_timeout(10);
  nlohmann::json taskmanagers;
  int reporting = 0;
  const int64_t deadline = SteadyNowMs() + 40000;
  while (reporting < kWorkers && SteadyNowMs() < deadline && !ExitedProcess()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    httplib::Result r = rest.Get("/taskmanagers");
    if (!r || r->status != 200) continue;
    taskmanagers = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    if (taskmanagers.is_discarded()) continue;
    reporting = 0;
    for (const nlohmann::json& w : taskmanagers.value("taskmanagers", nlohmann::json::array())) {
      reporting += w.contains("redisWriteLatency") && w["redisWriteLatency"].value("count", 0) > 0;
    }
  }
  if (std::optional<std::string> exited = ExitedProcess()) FAIL() << *exited;
  ASSERT_EQ(reporting, kWorkers) << "not every worker reports Redis write latency: " << taskmanagers.dump();
  for (const nlohmann::json& w : taskmanagers["taskmanagers"]) {
    nlohmann::json latency = w.value("redisWriteLatency", nlohmann::json::object());
    // Quantiles in ms within the histogram's range; buckets cumulative up to the count.
    EXPECT_TRUE(latency["p50"].is_number() && latency["p99"].is_number()) << latency.dump();
    EXPECT_GT(latency.value("p99", 0.0), 0.0) << latency.dump();
    EXPECT_LE(latency.value("p50", 0.0), latency.value("p99", 0.0)) << latency.dump();
    ASSERT_TRUE(latency["buckets"].is_array() && !latency["buckets"].empty()) << latency.dump();
    EXPECT_EQ(latency["buckets"][0].value("le", 0.0), 1.0) << latency.dump();
    EXPECT_LE(latency["buckets"].back().value("count", int64_t{-1}), latency.value("count", int64_t{0}))
        << latency.dump();
  }
  httplib::Result metrics = rest.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_TRUE(std::regex_search(metrics->body,
                                std::regex("slipstream_worker_redis_write_latency_seconds_count\\{job_id=\"[0-9a-f]+\","
                                           "worker_id=\"[^\"]+\"\\} [1-9]")))
      << metrics->body;
  clock_.EndPhase("cluster running, Redis latency reported");

  // The page, in Chromium.
  const std::string url = absl::StrCat("http://127.0.0.1:", rest_port_, "/");
  Process ui("ui-test",
             {node, env_.source_dir + "/tests/ui/ui_test.mjs", url, "--screenshot", screenshot, "--workers",
              std::to_string(kWorkers), "--partitions", std::to_string(kPartitions)},
             tmp_->path());
  const std::optional<int> status = ui.WaitForExit(90000);
  if (!status) ui.Stop(2000);
  clock_.EndPhase("browser test");
  std::cout << ui.ReadStdout() << ui.ReadStderr();
  ASSERT_TRUE(status.has_value()) << "ui_test.mjs still ran after 90 s";
  EXPECT_EQ(*status, 0) << "ui_test.mjs failed (its output is above)";
  EXPECT_TRUE(fs::exists(screenshot)) << screenshot;
  std::cout << "UI screenshot: " << screenshot << "\n";

  // What the page said the savepoint is, checked here too: in the
  // configured savepoints directory, with its _metadata.
  std::smatch m;
  const std::string out = ui.ReadStdout();
  ASSERT_TRUE(std::regex_search(out, m, std::regex("savepoint shown by the page: (\\S+)"))) << out;
  const std::string savepoint = m[1];
  EXPECT_EQ(savepoint.rfind(tmp_->path() + "/savepoints/savepoint-", 0), 0u) << savepoint;
  EXPECT_TRUE(fs::exists(savepoint + "/_metadata")) << savepoint;

  gen.Stop(2000);
  if (std::optional<std::string> exited = ExitedProcess()) ADD_FAILURE() << *exited;
}

}  // namespace
}  // namespace slipstream::it
