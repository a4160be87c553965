// Bounded runs (execution.runtime-mode=BATCH, slipstream-coordinator
// --bounded) end to end, through the real Kafka broker and a Redis of the
// test's own: the same features as the streaming pipeline over a fixed
// input, including the last windows and sessions (which a streaming run only
// fires once a later event moves the watermark past them), then the job ends
// FINISHED and the coordinator exits 0. Every feature write is checked
// against the independent reference model (workload.h).
#include <gtest/gtest.h>

#include <signal.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/event.h"
#include "tests/integration/e2e_fixture.h"
#include "tests/integration/feature_checks.h"
#include "tests/integration/kafka_client.h"
#include "tests/integration/redis_client.h"
#include "tests/integration/throttle_proxy.h"
#include "tests/integration/workload.h"

namespace slipstream::it {
namespace {

class BoundedRun : public PipelineEndToEnd {
 protected:
  // Polls GetJob quickly until the coordinator exits; true when one answer
  // said FINISHED (the coordinator answers for a second before it exits).
  bool SawFinishedBeforeExit(CoordinatorClient& coordinator, Process& process, int64_t timeout_ms,
                             std::string* last_state) {
    bool finished = false;
    const int64_t deadline = SteadyNowMs() + timeout_ms;
    while (process.Running() && SteadyNowMs() < deadline) {
      absl::StatusOr<v1::JobStatus> job = coordinator.GetJob();
      if (job.ok()) {
        *last_state = job->state();
        if (job->state() == "FINISHED") finished = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return finished;
  }
};

TEST_F(BoundedRun, WritesTheStreamingFeaturesIncludingTheLastWindowsAndExitsZero) {
  ASSERT_TRUE(env_ok_) << "run through ./scripts/test.sh (needs Kafka and Redis)";
  ASSERT_NO_FATAL_FAILURE(StartPrivateRedis());
  absl::StatusOr<std::unique_ptr<RedisClient>> redis;
  absl::StatusOr<std::unique_ptr<RedisMonitor>> monitor;
  ASSERT_NO_FATAL_FAILURE(OpenRecordedRedisDb(0, &redis, &monitor));

  // A few hours of event time for 60 users, invalid records included; no
  // closing event: nothing after the last events moves the watermark.
  WorkloadOptions options;
  options.users = 60;
  options.valid_events = 4000;
  options.step_ms = 3000;
  const Workload w = GenerateWorkload(options);
  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, 3).ok());
  absl::StatusOr<std::unique_ptr<TestProducer>> producer = TestProducer::Create(env_.kafka);
  ASSERT_TRUE(producer.ok()) << producer.status();
  for (const RecordSpec& r : w.records) (*producer)->Produce(topic_, r.key, r.value);
  ASSERT_TRUE((*producer)->Flush(60000).ok());
  clock_.Log(absl::StrCat("produced ", w.records.size(), " records (", w.valid.size(), " valid)"));

  CoordinatorClient coordinator(CoordinatorAddress());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, 0, {"--bounded", "-Dcluster.min-workers=2"}));
  Process& coordinator_process = *processes_.back();
  // Two workers: each one's end of input (watermark INT64_MAX) must reach
  // the other before either fires its last windows.
  Start("worker-0", "slipstream-worker", 0);
  Start("worker-1", "slipstream-worker", 0);

  std::string last_state;
  EXPECT_TRUE(SawFinishedBeforeExit(coordinator, coordinator_process, 180000, &last_state))
      << "GetJob never said FINISHED; last: " << last_state;
  const std::optional<int> exit_status = coordinator_process.WaitForExit(1000);
  ASSERT_TRUE(exit_status.has_value()) << "the coordinator did not exit after the bounded job; last: " << last_state;
  EXPECT_EQ(*exit_status, 0);
  clock_.EndPhase("bounded run");

  // Exactly the model's windows and sessions, each written once: the last
  // ones included, which need the end of input to fire.
  const ReferenceModel model(w.valid);
  absl::StatusOr<std::vector<RedisMonitor::Command>> commands = (*monitor)->Finish(**redis, 30000);
  ASSERT_TRUE(commands.ok()) << commands.status();
  CheckFeatureWrites(model, *commands);
  // The newest window of the user with the latest event ends after every
  // event: only the end of input fires it.
  const ValidEvent* latest = &w.valid.front();
  for (const ValidEvent& e : w.valid) {
    if (e.time_ms > latest->time_ms) latest = &e;
  }
  const ExpectedWindow& newest = model.user_features().at(latest->user);
  EXPECT_GT(newest.end(), latest->time_ms);
  absl::StatusOr<std::map<std::string, std::string>> hash = (*redis)->HGetAll(kUserPrefix + latest->user);
  ASSERT_TRUE(hash.ok()) << hash.status();
  EXPECT_EQ((*hash)["window_end"], absl::StrCat(newest.end())) << latest->user;
}

// BATCH has no checkpoints: a failed attempt starts over from the start
// (empty state, the same starting and stopping offsets), as Flink restarts a
// bounded job without checkpoints. Redis is throttled so that the worker is
// killed mid-run; the job still ends FINISHED in attempt 2, and every value
// written is the model's (replayed windows rewrite the same values).
TEST_F(BoundedRun, AKilledWorkerRestartsTheRunFromTheStart) {
  ASSERT_TRUE(env_ok_) << "run through ./scripts/test.sh (needs Kafka and Redis)";
  ASSERT_NO_FATAL_FAILURE(StartPrivateRedis());
  absl::StatusOr<std::unique_ptr<RedisClient>> redis;
  absl::StatusOr<std::unique_ptr<RedisMonitor>> monitor;
  ASSERT_NO_FATAL_FAILURE(OpenRecordedRedisDb(0, &redis, &monitor));
  absl::StatusOr<std::unique_ptr<ThrottleProxy>> proxy = ThrottleProxy::Start(env_.redis_host, env_.redis_port);
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  (*proxy)->SetRateLimit(20'000);  // bytes/s: the run takes many seconds

  WorkloadOptions options;
  options.users = 60;
  options.valid_events = 4000;
  options.step_ms = 3000;
  const Workload w = GenerateWorkload(options);
  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, 3).ok());
  absl::StatusOr<std::unique_ptr<TestProducer>> producer = TestProducer::Create(env_.kafka);
  ASSERT_TRUE(producer.ok()) << producer.status();
  for (const RecordSpec& r : w.records) (*producer)->Produce(topic_, r.key, r.value);
  ASSERT_TRUE((*producer)->Flush(60000).ok());

  CoordinatorClient coordinator(CoordinatorAddress());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, 0, {"--bounded", "-Dcluster.min-workers=2"}));
  Process& coordinator_process = *processes_.back();
  // Small Redis batches: the throttled writes go on steadily for seconds.
  const std::vector<std::string> through_proxy = {
      "-Dredis.host=127.0.0.1", "-Dredis.port=" + std::to_string((*proxy)->port()), "-Dredis.batch-size=20"};
  Start("worker-0", "slipstream-worker", 0, through_proxy);
  Process& victim = Start("worker-1", "slipstream-worker", 0, through_proxy);
  // Both tasks of attempt 1 run and have read records: their features now
  // wait for the throttled Redis, so neither can have finished.
  std::optional<v1::JobStatus> running =
      WaitForJob(coordinator, "attempt 1 reading", 60000, {&coordinator_process}, [](const v1::JobStatus& j) {
        if (j.state() != "RUNNING" || j.attempt() != 1 || j.workers_size() != 2) return false;
        for (const v1::WorkerStatus& s : j.workers()) {
          if (s.counters().attempt() != 1 || s.counters().records_in() == 0) return false;
        }
        return true;
      }, /*poll_ms=*/20);
  ASSERT_TRUE(running.has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(victim.pid(), SIGKILL);
  clock_.Log("killed worker-1 during attempt 1");
  Start("worker-2", "slipstream-worker", 0, through_proxy);
  (*proxy)->SetRateLimit(0);

  std::string last_state;
  EXPECT_TRUE(SawFinishedBeforeExit(coordinator, coordinator_process, 180000, &last_state))
      << "GetJob never said FINISHED; last: " << last_state;
  const std::optional<int> exit_status = coordinator_process.WaitForExit(1000);
  ASSERT_TRUE(exit_status.has_value()) << "the coordinator did not exit; last: " << last_state;
  EXPECT_EQ(*exit_status, 0);
  const std::string log = coordinator_process.ReadStdout() + coordinator_process.ReadStderr();
  EXPECT_NE(log.find("attempt 2 starts without a checkpoint"), std::string::npos) << "BATCH restarts from the start";
  EXPECT_NE(log.find("FINISHED: attempt 2"), std::string::npos);

  const ReferenceModel model(w.valid);
  absl::StatusOr<std::vector<RedisMonitor::Command>> commands = (*monitor)->Finish(**redis, 30000);
  ASSERT_TRUE(commands.ok()) << commands.status();
  CheckFeatureWritesAreCorrectAtLeastOnce(model, *commands);
  for (const auto& [user, newest] : model.user_features()) {
    absl::StatusOr<std::map<std::string, std::string>> hash = (*redis)->HGetAll(kUserPrefix + user);
    ASSERT_TRUE(hash.ok()) << hash.status();
    EXPECT_EQ((*hash)["window_end"], absl::StrCat(newest.end())) << user;
  }
}

// kafka.starting-timestamp and kafka.stopping-timestamp select a time slice
// of the topic by record timestamp: three batches, only the middle one is
// read.
TEST_F(BoundedRun, ReadsOnlyTheTimeSliceBetweenTheStartingAndStoppingTimestamps) {
  ASSERT_TRUE(env_ok_) << "run through ./scripts/test.sh (needs Kafka and Redis)";
  ASSERT_NO_FATAL_FAILURE(StartPrivateRedis());
  absl::StatusOr<std::unique_ptr<RedisClient>> redis;
  absl::StatusOr<std::unique_ptr<RedisMonitor>> monitor;
  ASSERT_NO_FATAL_FAILURE(OpenRecordedRedisDb(0, &redis, &monitor));

  WorkloadOptions options;
  options.users = 40;
  options.valid_events = 1500;
  options.step_ms = 4000;
  const Workload slice = GenerateWorkload(options);
  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, 2).ok());
  absl::StatusOr<std::unique_ptr<TestProducer>> producer = TestProducer::Create(env_.kafka);
  ASSERT_TRUE(producer.ok()) << producer.status();
  // Record timestamps (CreateTime) an hour ago, in three 10-minute bands;
  // well inside the broker's retention.
  const int64_t before_ms = (WallNowMs() - kHourMs) / 1000 * 1000;
  const int64_t slice_start_ms = before_ms + 10 * kMinuteMs;
  const int64_t slice_stop_ms = before_ms + 20 * kMinuteMs;
  // Before and after the slice: the same users, with events a day earlier
  // and a day later; any of them read would add windows the model lacks.
  int i = 0;
  for (const std::string& user : slice.users) {
    const std::string early = CanonicalEventJson(user, slice.start_ms - 24 * kHourMs + i, EventKind::kView, 1234);
    (*producer)->Produce(topic_, user, early, -1, before_ms + i);
    ++i;
  }
  for (size_t r = 0; r < slice.records.size(); ++r) {
    (*producer)->Produce(topic_, slice.records[r].key, slice.records[r].value, -1,
                         slice_start_ms + static_cast<int64_t>(r));
  }
  i = 0;
  for (const std::string& user : slice.users) {
    const std::string late = CanonicalEventJson(user, slice.max_time_ms + 24 * kHourMs + i, EventKind::kCart, 999);
    (*producer)->Produce(topic_, user, late, -1, slice_stop_ms + i);
    ++i;
  }
  ASSERT_TRUE((*producer)->Flush(60000).ok());

  CoordinatorClient coordinator(CoordinatorAddress());
  // One ISO-8601, one epoch milliseconds: both forms are accepted.
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(
      coordinator, 0,
      {"--bounded", "-Dkafka.starting-timestamp=" + FormatIso8601Millis(slice_start_ms),
       "-Dkafka.stopping-timestamp=" + std::to_string(slice_stop_ms)}));
  Process& coordinator_process = *processes_.back();
  Start("worker", "slipstream-worker", 0);

  std::string last_state;
  EXPECT_TRUE(SawFinishedBeforeExit(coordinator, coordinator_process, 180000, &last_state))
      << "GetJob never said FINISHED; last: " << last_state;
  const std::optional<int> exit_status = coordinator_process.WaitForExit(1000);
  ASSERT_TRUE(exit_status.has_value()) << "the coordinator did not exit; last: " << last_state;
  EXPECT_EQ(*exit_status, 0);

  const ReferenceModel model(slice.valid);
  absl::StatusOr<std::vector<RedisMonitor::Command>> commands = (*monitor)->Finish(**redis, 30000);
  ASSERT_TRUE(commands.ok()) << commands.status();
  CheckFeatureWrites(model, *commands);
}

TEST_F(BoundedRun, AStoppingTimestampWithoutBatchModeFailsAtStartNamingTheKey) {
  ASSERT_TRUE(env_ok_) << "run through ./scripts/test.sh (needs Kafka and Redis)";
  Process& p = Start("coordinator", "slipstream-coordinator", 0, {"-Dkafka.stopping-timestamp=1700000000000"});
  const std::optional<int> status = p.WaitForExit(20000);
  ASSERT_TRUE(status.has_value()) << "the coordinator started";
  EXPECT_EQ(*status, 1);
  EXPECT_NE(p.ReadStderr().find("kafka.stopping-timestamp"), std::string::npos) << p.ReadStderr();
}

}  // namespace
}  // namespace slipstream::it
