// The file sink end to end: the same events through the real binaries twice,
// once with sink.type=redis (every HSET + EXPIRE recorded with MONITOR) and
// once with sink.type=file, with one worker in streaming mode (the part
// files stay under .inprogress/) and with two in a bounded run (BATCH: the
// coordinator renames the parts into place when the job finishes; the
// training-data path of issue 15), one part per worker. Every line
// of the parts must be exactly one write the Redis sink made: the same key,
// the same fields in the same order with the same value strings, the same
// TTL; valid_from is the write's window_end (session_end for sessions). Both
// runs must also agree with the reference model's count of windows and
// sessions.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/integration/coordinator_client.h"
#include "tests/integration/e2e_fixture.h"
#include "tests/integration/feature_checks.h"
#include "tests/integration/kafka_client.h"
#include "tests/integration/redis_client.h"
#include "tests/integration/workload.h"

namespace slipstream::it {
namespace {

constexpr int kPartitions = 3;

// One feature write as both sinks see it.
using Write = std::tuple<std::string, std::vector<std::string>, int64_t>;  // key, fields, ttl

// (workers)
class FileSinkEndToEnd : public PipelineEndToEnd, public ::testing::WithParamInterface<int> {
 protected:
  // Waits until the job's workers acknowledged `expected` features;
  // fails when one of `run` (this run's processes) exits.
  void WaitForFeatures(CoordinatorClient& coordinator, int64_t expected, const std::string& what,
                       const std::vector<Process*>& run) {
    const int64_t deadline = SteadyNowMs() + 180000;
    std::string last = "no answer yet";
    int64_t next_log = SteadyNowMs() + 5000;
    while (SteadyNowMs() < deadline) {
      for (Process* p : run) {
        if (!p->Running()) FAIL() << p->name() << " exited while waiting for " << what;
      }
      absl::StatusOr<v1::JobStatus> job = coordinator.GetJob();
      if (job.ok()) {
        absl::StatusOr<v1::WorkerCounters> c = JobCounters(*job, GetParam());
        if (c.ok()) {
          if (c->redis_features_written() >= expected && c->redis_pending_features() == 0) {
            EXPECT_EQ(c->redis_features_written(), expected) << what;
            return;
          }
          last = Summarize(*c);
        }
      }
      if (SteadyNowMs() >= next_log) {
        clock_.Log("waiting for " + what + ": " + last);
        next_log += 5000;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "timed out waiting for " << what << "; last state: " << last;
  }

  void StopAll() {
    for (auto& p : processes_) {
      if (p->Running() && p->name() != "redis" && p->name().rfind("coordinator", 0) != 0) {
        EXPECT_EQ(p->Stop(), 0) << p->name();
      }
    }
    for (auto& p : processes_) {
      if (p->Running() && p->name() != "redis") {
        EXPECT_EQ(p->Stop(), 0) << p->name();
      }
    }
  }
};

TEST_P(FileSinkEndToEnd, WritesTheSameFeaturesAsTheRedisSink) {
  ASSERT_TRUE(env_ok_) << "run through ./scripts/test.sh (needs Kafka and Redis)";
  const int workers = GetParam();
  const std::string min_workers = absl::StrCat("-Dcluster.min-workers=", workers);
  ASSERT_NO_FATAL_FAILURE(StartPrivateRedis());
  WorkloadOptions options;
  options.users = 60;
  options.valid_events = 12000;  // 12000 * 180 ms: 36 min of event time
  Workload w = GenerateWorkload(options);
  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, kPartitions).ok());
  absl::StatusOr<std::unique_ptr<TestProducer>> producer = TestProducer::Create(env_.kafka);
  ASSERT_TRUE(producer.ok()) << producer.status();
  for (const RecordSpec& r : w.records) (*producer)->Produce(topic_, r.key, r.value);
  // A far-future event per partition closes every window and session of the
  // workload (its own never fire).
  for (int32_t p = 0; p < kPartitions; ++p) {
    const std::string user = absl::StrCat("closer-", p);
    (*producer)->Produce(topic_, user, CanonicalEventJson(user, EpochMs(9999, 12, 31, 23, 0, 0, 0), EventKind::kView, 100),
                         p);
  }
  ASSERT_TRUE((*producer)->Flush(60000).ok());
  const ReferenceModel model(w.valid);
  int64_t expected = static_cast<int64_t>(model.sessions().size());
  for (const auto& [user, windows] : model.windows()) expected += static_cast<int64_t>(windows.size());
  clock_.Log(absl::StrCat(w.valid.size(), " events, ", expected, " feature writes expected"));

  // --- Run 1: the Redis sink, recorded -----------------------------------
  absl::StatusOr<std::unique_ptr<RedisClient>> redis;
  absl::StatusOr<std::unique_ptr<RedisMonitor>> monitor;
  ASSERT_NO_FATAL_FAILURE(OpenRecordedRedisDb(0, &redis, &monitor));
  {
    CoordinatorClient coordinator(CoordinatorAddress());
    ASSERT_NO_FATAL_FAILURE(
        StartCoordinator(coordinator, 0, {"-Dexecution.checkpointing.interval=500 ms", min_workers}));
    std::vector<Process*> run = {processes_.back().get()};
    for (int i = 0; i < workers; ++i) run.push_back(&Start(absl::StrCat("worker-redis-", i), "slipstream-worker", 0));
    ASSERT_NO_FATAL_FAILURE(WaitForFeatures(coordinator, expected, "the Redis sink's writes", run));
    StopAll();
  }
  absl::StatusOr<std::vector<RedisMonitor::Command>> commands = (*monitor)->Finish(**redis, 10000);
  ASSERT_TRUE(commands.ok()) << commands.status();
  CheckFeatureWrites(model, *commands);  // the Redis run itself is right
  std::multiset<Write> from_redis;
  std::map<std::string, std::vector<std::string>> last_hset;  // key -> fields awaiting their EXPIRE
  for (const RedisMonitor::Command& c : *commands) {
    if (c.args.size() < 2 || IsSinkBookkeepingKey(c.args[1])) continue;
    const std::string name = absl::AsciiStrToUpper(c.args[0]);
    if (name == "HSET") {
      last_hset[c.args[1]] = std::vector<std::string>(c.args.begin() + 2, c.args.end());
    } else if (name == "EXPIRE" && c.args.size() == 3) {
      auto it = last_hset.find(c.args[1]);
      ASSERT_NE(it, last_hset.end()) << "EXPIRE without HSET: " << Printable(c.args[1]);
      from_redis.emplace(c.args[1], std::move(it->second), *ParseInt(c.args[2]));
      last_hset.erase(it);
    } else if (name == "EVALSHA" && c.args.size() > 2 && ParseInt(c.args[2]).value_or(0) > 1) {
      // The guarded write script (keys: the writers' hash, then the
      // features'); the fence script at start has only the writers' hash.
      FAIL() << "a guarded write in a run without failures: the comparison reads plain HSETs only";
    }
  }
  ASSERT_EQ(static_cast<int64_t>(from_redis.size()), expected);

  // --- Run 2: the file sink, another job on the same events ---------------
  // Two workers: a bounded run, as a team recomputes training data; one:
  // the streaming job itself.
  const bool bounded = workers > 1;
  const std::string sink_dir = tmp_->path() + "/features-out";
  std::vector<std::string> file_run = {
      "-Dsink.type=file",
      "-Dsink.path=file://" + sink_dir,
      // Another job: its own id (from its own checkpoint directory), state
      // and group, so it neither restores nor resumes the first run.
      "-Dstate.checkpoints.dir=file://" + tmp_->path() + "/checkpoints-file",
      "-Dstate.dir=" + tmp_->path() + "/state-file",
      "-Dkafka.group.id=" + topic_ + "-file",
      // Redis is not used at all: an unreachable address proves it.
      "-Dredis.port=1",
      "-Dexecution.checkpointing.interval=500 ms",
      min_workers,
  };
  if (bounded) file_run.push_back("-Dexecution.runtime-mode=BATCH");
  std::string job_id;
  {
    CoordinatorClient coordinator(CoordinatorAddress());
    ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, 0, file_run, "coordinator-file"));
    Process* coordinator_process = processes_.back().get();
    std::vector<Process*> run = {coordinator_process};
    absl::StatusOr<v1::JobStatus> job = coordinator.GetJob();
    ASSERT_TRUE(job.ok()) << job.status();
    job_id = job->job_id();
    for (int i = 0; i < workers; ++i) {
      run.push_back(&Start(absl::StrCat("worker-file-", i), "slipstream-worker", 0, file_run));
    }
    if (bounded) {
      // The job finishes by itself at the end of the input, commits the
      // parts and the coordinator exits 0.
      const std::optional<int> exit = coordinator_process->WaitForExit(180000);
      ASSERT_TRUE(exit.has_value()) << "the bounded run did not finish";
      ASSERT_EQ(*exit, 0) << "the bounded run's coordinator";
    } else {
      ASSERT_NO_FATAL_FAILURE(WaitForFeatures(coordinator, expected, "the file sink's writes", run));
    }
    StopAll();
  }

  // Streaming mode: nothing is committed, the parts stay in progress, one
  // per worker, all of one attempt. Bounded: committed, part-<i>-of-<n>
  // directly under the job's directory, and nothing in progress is left.
  const std::filesystem::path job_dir = std::filesystem::path(sink_dir) / job_id;
  std::set<std::string> parts;
  std::filesystem::path attempt_dir;
  for (const auto& e : std::filesystem::recursive_directory_iterator(job_dir)) {
    if (!e.is_regular_file()) continue;
    parts.insert(e.path().filename().string());
    attempt_dir = e.path().parent_path();
  }
  std::set<std::string> expected_parts;
  for (int i = 0; i < workers; ++i) {
    expected_parts.insert(bounded ? absl::StrCat("part-", i, "-of-", workers, ".jsonl")
                                  : absl::StrCat("part-", i, ".jsonl"));
  }
  ASSERT_EQ(parts, expected_parts) << "under " << job_dir;
  if (bounded) {
    EXPECT_EQ(attempt_dir, job_dir);
    EXPECT_FALSE(std::filesystem::exists(job_dir / ".inprogress"));
  } else {
    EXPECT_EQ(attempt_dir.parent_path().filename(), ".inprogress");
    EXPECT_EQ(attempt_dir.filename().string().rfind("attempt-", 0), 0u);
  }

  std::multiset<Write> from_file;
  Mismatches valid_from("valid_from");
  std::vector<std::string> lines;
  for (const std::string& part : parts) {
    std::ifstream in(attempt_dir / part, std::ios::binary);
    for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
  }
  for (const std::string& line : lines) {
    const nlohmann::ordered_json j = nlohmann::ordered_json::parse(line);
    std::vector<std::string> fields;
    std::string order_field;
    for (const auto& [name, value] : j.at("fields").items()) {
      fields.push_back(name);
      fields.push_back(value.get<std::string>());
      if (name == "window_end" || name == "session_end") order_field = value.get<std::string>();
    }
    const std::string key = j.at("key").get<std::string>();
    // A bounded run also fires the far-future closing events' own windows
    // at the end of its input; the streaming run never does.
    if (bounded && key.find(":closer-") != std::string::npos) continue;
    if (absl::StrCat(j.at("valid_from").get<int64_t>()) != order_field) {
      valid_from.Add(absl::StrCat(Printable(key), ": valid_from ", j.at("valid_from").dump(), ", window/session end ",
                                  order_field));
    }
    from_file.emplace(key, std::move(fields), j.at("ttl_seconds").get<int64_t>());
  }
  valid_from.Report();
  EXPECT_EQ(static_cast<int64_t>(from_file.size()), expected);

  Mismatches only_in_file("lines of the file the Redis sink never wrote");
  Mismatches only_in_redis("writes of the Redis sink missing from the file");
  std::vector<Write> a, b;
  std::set_difference(from_file.begin(), from_file.end(), from_redis.begin(), from_redis.end(), std::back_inserter(a));
  std::set_difference(from_redis.begin(), from_redis.end(), from_file.begin(), from_file.end(), std::back_inserter(b));
  for (const Write& x : a) only_in_file.Add(Printable(std::get<0>(x)));
  for (const Write& x : b) only_in_redis.Add(Printable(std::get<0>(x)));
  only_in_file.Report();
  only_in_redis.Report();
}

INSTANTIATE_TEST_SUITE_P(Workers, FileSinkEndToEnd, ::testing::Values(1, 2),
                         [](const ::testing::TestParamInfo<int>& info) { return absl::StrCat(info.param, "Workers"); });

}  // namespace
}  // namespace slipstream::it
