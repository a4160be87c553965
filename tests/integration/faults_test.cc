// Faults that must neither lose nor corrupt a feature, against the real Kafka
// broker and a private redis-server each (the tests reconfigure or cut it):
//
//  Faults.RedisRefusingWritesHoldsTheJobBackAndLosesNothing
//    Two workers; mid-stream Redis refuses every write (maxmemory 1 with
//    noeviction: -OOM) until the test lifts the limit. Meanwhile the job
//    keeps running (no failure), the workers report the error, and nothing
//    counts as written; afterwards Redis equals the reference model and
//    every write MONITOR saw is the model's, each window exactly once, none
//    going back in time.
//  Faults.WorkerCutOffFromTheCoordinatorStopsWritingAndNothingGoesBack
//    One worker runs the job and reaches the coordinator only through a
//    proxy; a standby waits. The proxy is killed mid-stream (Kafka and
//    Redis stay reachable): the coordinator gives the worker up and
//    redeploys on the standby from the latest checkpoint. The cut-off worker
//    must stop writing by itself, no write of its attempt may land after
//    the new attempt raised the Redis fence, no key may go back in time,
//    and Redis must end equal to the model.
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/integration/coordinator_client.h"
#include "tests/integration/e2e_fixture.h"
#include "tests/integration/feature_checks.h"
#include "tests/integration/it_env.h"
#include "tests/integration/kafka_client.h"
#include "tests/integration/process_runner.h"
#include "tests/integration/redis_client.h"
#include "tests/integration/throttle_proxy.h"
#include "tests/integration/workload.h"

namespace slipstream::it {
namespace {

constexpr int kFaultPartitions = 4;

class Faults : public PipelineEndToEnd {
 protected:
  // A private redis-server recording every command (MONITOR), and the
  // workload (no invalid records: these tests are about Redis and Kafka) on
  // a topic of `partitions`, with a producer.
  void PrepareRun(int partitions = kFaultPartitions) {
    ASSERT_NO_FATAL_FAILURE(StartPrivateRedis());
    absl::StatusOr<std::unique_ptr<RedisClient>> redis;
    absl::StatusOr<std::unique_ptr<RedisMonitor>> monitor;
    ASSERT_NO_FATAL_FAILURE(OpenRecordedRedisDb(0, &redis, &monitor));
    redis_ = std::move(*redis);
    monitor_ = std::move(*monitor);
    WorkloadOptions options;
    options.malformed_fraction = 0;
    workload_ = GenerateWorkload(options);
    ASSERT_TRUE(CreateTopic(env_.kafka, topic_, partitions).ok());
    absl::StatusOr<std::unique_ptr<TestProducer>> producer = TestProducer::Create(env_.kafka);
    ASSERT_TRUE(producer.ok()) << producer.status();
    producer_ = std::move(*producer);
  }

  // Produces records [produced_, end) and waits for their delivery.
  void ProduceUntil(size_t end) {
    for (; produced_ < end; ++produced_) {
      producer_->Produce(topic_, workload_.records[produced_].key, workload_.records[produced_].value);
    }
    absl::Status flushed = producer_->Flush(60000);
    ASSERT_TRUE(flushed.ok()) << flushed;
  }

  // Closes the stream and waits until every feature is in Redis.
  std::optional<v1::JobStatus> CloseAndDrain(CoordinatorClient& coordinator, RedisClient& redis, int workers,
                                             const std::vector<Process*>& alive, const ReferenceModel& model) {
    const int64_t final_watermark = ProduceClosingEvents(*producer_, topic_, kFaultPartitions);
    EXPECT_TRUE(producer_->Flush(30000).ok());
    const int64_t expected_keys = static_cast<int64_t>(model.user_features().size() + model.sessions().size());
    return WaitForJob(coordinator, "every feature in Redis", 120000, alive, [&](const v1::JobStatus& j) {
      absl::StatusOr<v1::WorkerCounters> c = RunningCounters(j, workers);
      if (!c.ok() || c->watermark_ms() < final_watermark || c->features_emitted() != c->redis_features_written()) {
        return false;
      }
      absl::StatusOr<int64_t> size = redis.FeatureKeyCount();
      return size.ok() && *size == expected_keys;
    });
  }

  // Every command Redis ran since PrepareRun (ends the recording).
  std::vector<RedisMonitor::Command> Recorded() {
    absl::StatusOr<std::vector<RedisMonitor::Command>> commands = monitor_->Finish(*redis_, 30000);
    EXPECT_TRUE(commands.ok()) << commands.status();
    return commands.ok() ? *std::move(commands) : std::vector<RedisMonitor::Command>{};
  }

  // The final state and every write against the model: each write correct
  // and none going back in time, every window and session written at least
  // once (replays after failures may repeat them).
  void CheckRedisAtLeastOnce(const ReferenceModel& model) {
    ASSERT_NO_FATAL_FAILURE(CheckFinalRedisState(*redis_, model));
    CheckFeatureWritesAreCorrectAtLeastOnce(model, Recorded());
  }

  std::unique_ptr<RedisClient> redis_;
  std::unique_ptr<RedisMonitor> monitor_;
  Workload workload_;
  std::unique_ptr<TestProducer> producer_;
  size_t produced_ = 0;
};

TEST_F(Faults, RedisRefusingWritesHoldsTheJobBackAndLosesNothing) {
  ASSERT_TRUE(env_ok_);
  ASSERT_NO_FATAL_FAILURE(PrepareRun());
  const ReferenceModel model(workload_.valid);

  CoordinatorClient coordinator(CoordinatorAddress());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(
      coordinator, 0, {"-Dcluster.min-workers=2", "-Dexecution.checkpointing.interval=500 ms"}));
  std::vector<Process*> alive = {processes_[0].get(), processes_[1].get()};  // redis, coordinator
  for (int i = 1; i <= 2; ++i) alive.push_back(&Start("worker-" + std::to_string(i), "slipstream-worker", 0));
  ASSERT_TRUE(WaitForJob(coordinator, "the job on two workers", 60000, alive,
                         [](const v1::JobStatus& j) { return JobCounters(j, 2).ok(); }));
  clock_.EndPhase("start");

  // The first half, until some of it is in Redis.
  const size_t half = workload_.records.size() / 2;
  ASSERT_NO_FATAL_FAILURE(ProduceUntil(half));
  ASSERT_TRUE(WaitForJob(coordinator, "the first features in Redis", 60000, alive, [](const v1::JobStatus& j) {
    absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, 2);
    return c.ok() && c->redis_features_written() > 1000;
  }));

  // Redis refuses every write from now on.
  ASSERT_TRUE(redis_->Command({"CONFIG", "SET", "maxmemory-policy", "noeviction"}).ok());
  ASSERT_TRUE(redis_->Command({"CONFIG", "SET", "maxmemory", "1"}).ok());
  clock_.Log("Redis refuses writes (maxmemory 1, noeviction)");
  ASSERT_NO_FATAL_FAILURE(ProduceUntil(workload_.records.size()));
  // Held back: the workers say why, and what they wrote stands still while
  // their errors go on (each retry is refused again).
  auto refused_on_both = [](const v1::JobStatus& j, int64_t* written, int64_t* errors) {
    absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, 2);
    if (!c.ok()) return false;
    for (const v1::WorkerStatus& w : j.workers()) {
      if (!absl::StartsWith(w.counters().redis_last_error(), "OOM")) return false;
    }
    *written = c->redis_features_written();
    *errors = c->redis_errors();
    return c->redis_pending_features() > 0;
  };
  int64_t written_when_refused = 0, errors_when_refused = 0;
  std::optional<v1::JobStatus> refused =
      WaitForJob(coordinator, "both workers to report Redis refusing writes", 60000, alive, [&](const v1::JobStatus& j) {
        return refused_on_both(j, &written_when_refused, &errors_when_refused);
      });
  ASSERT_TRUE(refused.has_value());
  int64_t written_later = 0, errors_later = 0;
  std::optional<v1::JobStatus> still_refused =
      WaitForJob(coordinator, "more refused retries", 60000, alive, [&](const v1::JobStatus& j) {
        return refused_on_both(j, &written_later, &errors_later) && errors_later >= errors_when_refused + 4;
      });
  ASSERT_TRUE(still_refused.has_value());
  clock_.Log(absl::StrCat("refused: ", errors_when_refused, " -> ", errors_later, " errors, written ",
                          written_when_refused, " -> ", written_later, "; ", Summarize(*JobCounters(*still_refused, 2))));
  EXPECT_EQ(written_later, written_when_refused) << "features counted as written while Redis refused every write";
  EXPECT_EQ(still_refused->state(), "RUNNING");
  EXPECT_EQ(still_refused->attempt(), 1);
  EXPECT_EQ(still_refused->failures(), 0) << still_refused->failure_cause();
  clock_.EndPhase("refused");

  ASSERT_TRUE(redis_->Command({"CONFIG", "SET", "maxmemory", "0"}).ok());
  clock_.Log("Redis accepts writes again");
  std::optional<v1::JobStatus> final_job = CloseAndDrain(coordinator, *redis_, 2, alive, model);
  ASSERT_TRUE(final_job.has_value());
  clock_.EndPhase("drain");
  EXPECT_EQ(final_job->attempt(), 1);
  EXPECT_EQ(final_job->failures(), 0) << final_job->failure_cause();
  const v1::WorkerCounters c = *JobCounters(*final_job, 2);
  EXPECT_EQ(c.redis_features_rejected(), 0);
  EXPECT_GT(c.redis_errors(), 0);

  ASSERT_NO_FATAL_FAILURE(CheckFinalRedisState(*redis_, model));
  CheckFeatureWrites(model, Recorded());
}

TEST_F(Faults, WorkerCutOffFromTheCoordinatorStopsWritingAndNothingGoesBack) {
  ASSERT_TRUE(env_ok_);
  ASSERT_NO_FATAL_FAILURE(PrepareRun());
  const ReferenceModel model(workload_.valid);
  // The cut-off worker's only way to the coordinator.
  absl::StatusOr<std::unique_ptr<ThrottleProxy>> proxy = ThrottleProxy::Start("127.0.0.1", rpc_port_);
  ASSERT_TRUE(proxy.ok()) << proxy.status();

  CoordinatorClient coordinator(CoordinatorAddress());
  const std::vector<std::string> timing = {"-Dheartbeat.timeout=2 s", "-Dexecution.checkpointing.interval=500 ms",
                                           "-Drestart-strategy.fixed-delay.delay=200 ms"};
  std::vector<std::string> coordinator_args = timing;
  coordinator_args.push_back("-Dcluster.min-workers=1");
  coordinator_args.push_back("-Dscheduler-mode=default");  // the second worker stays a standby
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, 0, coordinator_args));
  Process* redis_process = processes_[0].get();
  Process* coordinator_process = processes_[1].get();
  std::vector<std::string> cut_args = timing;
  cut_args.push_back("-Djobmanager.rpc.port=" + std::to_string((*proxy)->port()));
  Process& cut = Start("worker-cut", "slipstream-worker", 0, cut_args);
  ASSERT_TRUE(WaitForJob(coordinator, "the job on the worker behind the proxy", 60000,
                         {redis_process, coordinator_process, &cut},
                         [](const v1::JobStatus& j) { return JobCounters(j, 1).ok(); }));
  Process& standby = Start("worker-standby", "slipstream-worker", 0, timing);
  const std::vector<Process*> alive = {redis_process, coordinator_process, &cut, &standby};
  ASSERT_TRUE(WaitForJob(coordinator, "the standby registered", 30000, alive, [](const v1::JobStatus& j) {
    return j.workers_size() == 2 && RunningCounters(j, 1).ok();
  }));
  clock_.EndPhase("start");

  // A third of the stream, then the cut once a checkpoint covers some of it.
  const size_t n = workload_.records.size();
  ASSERT_NO_FATAL_FAILURE(ProduceUntil(n / 3));
  std::optional<v1::JobStatus> before_cut =
      WaitForJob(coordinator, "features in Redis and a checkpoint", 60000, alive, [](const v1::JobStatus& j) {
        absl::StatusOr<v1::WorkerCounters> c = RunningCounters(j, 1);
        return c.ok() && c->redis_features_written() > 1000 && j.checkpoints().completed() >= 2;
      });
  ASSERT_TRUE(before_cut.has_value());
  (*proxy)->Stop();
  clock_.Log(absl::StrCat("cut the worker off the coordinator (attempt ", before_cut->attempt(), ")"));
  // More of the stream while the cut-off worker may still run: it reads
  // Kafka and reaches Redis as before.
  ASSERT_NO_FATAL_FAILURE(ProduceUntil(2 * n / 3));
  const std::vector<Process*> alive_after_cut = {redis_process, coordinator_process, &standby};
  std::optional<v1::JobStatus> redeployed = WaitForJob(
      coordinator, "the job on the standby", 60000, alive_after_cut, [&](const v1::JobStatus& j) {
        return j.attempt() > before_cut->attempt() && JobCounters(j, 1).ok();
      });
  ASSERT_TRUE(redeployed.has_value());
  clock_.Log(absl::StrCat("attempt ", redeployed->attempt(), " runs on the standby, restored from ",
                          redeployed->restored_from()));
  EXPECT_FALSE(redeployed->restored_from().empty());
  ASSERT_NO_FATAL_FAILURE(ProduceUntil(n));
  std::optional<v1::JobStatus> final_job = CloseAndDrain(coordinator, *redis_, 1, alive_after_cut, model);
  ASSERT_TRUE(final_job.has_value());
  clock_.EndPhase("cut, redeploy and drain");

  // The cut-off worker stopped its task by itself.
  const std::string cut_log = cut.ReadStderr() + cut.ReadStdout();
  EXPECT_NE(cut_log.find("the coordinator has given this worker up; cancelling attempt"), std::string::npos)
      << cut_log;
  ASSERT_NO_FATAL_FAILURE(CheckFinalRedisState(*redis_, model));
  const std::vector<RedisMonitor::Command> commands = Recorded();
  CheckFeatureWritesAreCorrectAtLeastOnce(model, commands);
  EXPECT_GT(CheckNoWriteOfASupersededAttempt(commands), 0) << "no write was attributed to an attempt";
}

// Records a day late throughout the stream, and two workers killed
// mid-stream: after each restore the watermarks are those of the
// checkpoint (partitions and operators), so a record that was late before
// the failure is late in the replay too. It goes to the dead-letter topic
// (again), never re-creates a purged window, and no write differs from the
// model or goes back in time.
TEST_F(Faults, LateRecordsStayLateAcrossRestores) {
  ASSERT_TRUE(env_ok_);
  ASSERT_NO_FATAL_FAILURE(PrepareRun());
  const ReferenceModel model(workload_.valid);
  // Every 40th record after the first tenth is followed by one of its user's
  // events a day earlier (same key: same partition, right after it).
  std::vector<RecordSpec> records;
  int late = 0;
  size_t first_late = 0;
  for (size_t i = 0; i < workload_.records.size(); ++i) {
    const RecordSpec& r = workload_.records[i];
    records.push_back(r);
    if (i < workload_.records.size() / 10 || i % 40 != 0 || r.event_index < 0) continue;
    if (first_late == 0) first_late = records.size();
    const ValidEvent& e = workload_.valid[r.event_index];
    RecordSpec day_late;
    day_late.key = e.user;
    day_late.value = CanonicalEventJson(e.user, e.time_ms - 24 * kHourMs, EventKind::kPurchase, 999);
    day_late.dlq_code = "late";
    records.push_back(std::move(day_late));
    ++late;
  }
  workload_.records = records;

  CoordinatorClient coordinator(CoordinatorAddress());
  // Checkpoints 3 s apart: a third is produced and read well within one.
  const std::vector<std::string> args = {"-Dcluster.min-workers=2", "-Dheartbeat.timeout=2 s",
                                         "-Dexecution.checkpointing.interval=3 s",
                                         "-Drestart-strategy.fixed-delay.delay=200 ms"};
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, 0, args));
  std::vector<Process*> workers = {&Start("worker-1", "slipstream-worker", 0, args),
                                   &Start("worker-2", "slipstream-worker", 0, args)};
  auto alive = [&] {
    std::vector<Process*> all = {processes_[0].get(), processes_[1].get()};
    all.insert(all.end(), workers.begin(), workers.end());
    return all;
  };
  ASSERT_TRUE(WaitForJob(coordinator, "the job on two workers", 60000, alive(),
                         [](const v1::JobStatus& j) { return JobCounters(j, 2).ok(); }));
  clock_.Log(absl::StrCat(records.size(), " records, ", late, " of them a day late"));

  // The first tenth (no late records) until both workers have a watermark
  // in the stream (a day-late record is late for any of them): before every input of an operator has a watermark, its own is
  // Long.MIN_VALUE and nothing is late yet (as in Flink), failure or not.
  ASSERT_NO_FATAL_FAILURE(ProduceUntil(first_late));
  ASSERT_TRUE(WaitForJob(coordinator, "a watermark in the stream on both workers", 60000, alive(),
                         [&](const v1::JobStatus& j) {
                           absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, 2);
                           return c.ok() && c->watermark_ms() > workload_.start_ms;
                         }));
  // Then three thirds. Before each of the first two: wait until everything
  // so far is read and a checkpoint completed after that (the next one is a
  // checkpoint interval away); produce the third, wait until it is read and
  // kill a worker at once: the restored attempt replays all of the third,
  // its day-late records included.
  const size_t n = records.size();
  int restarted = 0;
  // Read up to the end of every partition (the topic is new: offsets count
  // the records; per-attempt counters start again after a restore).
  auto read_everything = [&](const v1::JobStatus& j) {
    absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, 2);
    if (!c.ok()) return false;
    int64_t next = 0;
    for (const v1::PartitionProgress& p : c->partitions()) next += std::max<int64_t>(p.next_offset(), 0);
    return next == static_cast<int64_t>(produced_);
  };
  for (int third = 1; third <= 3; ++third) {
    if (third < 3) {
      std::optional<v1::JobStatus> read = WaitForJob(coordinator, "everything read", 60000, alive(), read_everything);
      ASSERT_TRUE(read.has_value());
      const int64_t covering = read->checkpoints().latest_completed().id();
      ASSERT_TRUE(WaitForJob(coordinator, "a checkpoint of everything read", 60000, alive(),
                             [&](const v1::JobStatus& j) { return j.checkpoints().latest_completed().id() > covering; },
                             /*poll_ms=*/20));
    }
    const int64_t attempt = coordinator.GetJob()->attempt();
    ASSERT_NO_FATAL_FAILURE(ProduceUntil(n * third / 3));
    if (third == 3) break;
    std::optional<v1::JobStatus> before =
        WaitForJob(coordinator, "the third read", 60000, alive(), read_everything, /*poll_ms=*/20);
    ASSERT_TRUE(before.has_value());
    Process* victim = workers[third - 1];
    ASSERT_EQ(::kill(victim->pid(), SIGKILL), 0);
    ASSERT_TRUE(victim->WaitForExit(5000).has_value());
    workers[third - 1] = &Start("worker-" + std::to_string(3 + restarted++), "slipstream-worker", 0, args);
    std::optional<v1::JobStatus> restored =
        WaitForJob(coordinator, "the restored attempt", 60000, alive(), [&](const v1::JobStatus& j) {
          return j.attempt() > attempt && JobCounters(j, 2).ok();
        });
    ASSERT_TRUE(restored.has_value());
    clock_.Log(absl::StrCat("killed ", victim->name(), " right after it read the third (checkpoint ",
                            before->checkpoints().latest_completed().id(), "); attempt ", restored->attempt(),
                            " restored from ", restored->restored_from()));
    EXPECT_FALSE(restored->restored_from().empty());
  }
  std::optional<v1::JobStatus> final_job = CloseAndDrain(coordinator, *redis_, 2, alive(), model);
  ASSERT_TRUE(final_job.has_value());
  EXPECT_EQ(final_job->attempt(), 3);
  ASSERT_NO_FATAL_FAILURE(CheckRedisAtLeastOnce(model));
  records.insert(records.end(), kFaultPartitions, RecordSpec{});  // the closing events
  int64_t replayed_late = 0;
  ASSERT_NO_FATAL_FAILURE(CheckDeadLettersAtLeastOnce(env_.kafka, dlq_topic_, records, *producer_, &replayed_late));
  EXPECT_GT(replayed_late, 0) << "no day-late record was replayed after a restore: the test proved nothing";
}

// Another program owns every key of one user (strings where the job writes
// hashes): Redis answers WRONGTYPE for them, for good. Those features go to
// the dead-letter topic with the Redis error and the key; the job neither
// stops nor retries them, and every other key ends as the model says.
TEST_F(Faults, FeaturesRedisRefusesForGoodGoToTheDeadLetterTopic) {
  ASSERT_TRUE(env_ok_);
  ASSERT_NO_FATAL_FAILURE(PrepareRun());
  const ReferenceModel full(workload_.valid);
  const std::string owned_user = workload_.valid.front().user;
  std::vector<ValidEvent> others;
  for (const ValidEvent& e : workload_.valid) {
    if (e.user != owned_user) others.push_back(e);
  }
  const ReferenceModel model(others);
  std::set<std::string> foreign_keys = {kUserPrefix + owned_user};
  for (const auto& [key, session] : full.sessions()) {
    if (session.user == owned_user) foreign_keys.insert(key);
  }
  for (const std::string& key : foreign_keys) ASSERT_TRUE(redis_->Command({"SET", key, "not ours"}).ok());
  const int64_t rejected_expected =
      static_cast<int64_t>(full.windows().at(owned_user).size() + foreign_keys.size() - 1);

  CoordinatorClient coordinator(CoordinatorAddress());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, 0, {"-Dcluster.min-workers=1"}));
  Process& worker = Start("worker-1", "slipstream-worker", 0);
  const std::vector<Process*> alive = {processes_[0].get(), processes_[1].get(), &worker};
  ASSERT_TRUE(WaitForJob(coordinator, "the job", 60000, alive,
                         [](const v1::JobStatus& j) { return JobCounters(j, 1).ok(); }));
  ASSERT_NO_FATAL_FAILURE(ProduceUntil(workload_.records.size()));
  const int64_t final_watermark = ProduceClosingEvents(*producer_, topic_, kFaultPartitions);
  ASSERT_TRUE(producer_->Flush(30000).ok());
  std::optional<v1::JobStatus> final_job =
      WaitForJob(coordinator, "every feature written or rejected", 120000, alive, [&](const v1::JobStatus& j) {
        absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, 1);
        return c.ok() && c->watermark_ms() >= final_watermark && c->features_emitted() == c->redis_features_written();
      });
  ASSERT_TRUE(final_job.has_value());
  const v1::WorkerCounters c = *JobCounters(*final_job, 1);
  EXPECT_EQ(c.redis_features_rejected(), rejected_expected);
  EXPECT_EQ(final_job->attempt(), 1);
  EXPECT_EQ(final_job->failures(), 0) << final_job->failure_cause();
  EXPECT_EQ(final_job->workers(0).counters().redis_last_error().rfind("WRONGTYPE", 0), 0u)
      << final_job->workers(0).counters().redis_last_error();

  // The dead-letter topic: one record per rejected feature, keyed by the
  // Redis key, saying why.
  absl::StatusOr<std::vector<ConsumedRecord>> dead =
      ReadWholeTopic(env_.kafka, dlq_topic_, static_cast<size_t>(rejected_expected), 60000);
  ASSERT_TRUE(dead.ok()) << dead.status();
  EXPECT_EQ(static_cast<int64_t>(dead->size()), rejected_expected);
  for (const ConsumedRecord& r : *dead) {
    EXPECT_TRUE(foreign_keys.count(r.key.value_or(""))) << r.key.value_or("(no key)");
    EXPECT_EQ(r.Header("dlq.reason").value_or("").rfind("redis: WRONGTYPE", 0), 0u)
        << r.Header("dlq.reason").value_or("(no reason)");
    EXPECT_EQ(r.Header("dlq.redis.key").value_or(""), r.key.value_or(""));
    EXPECT_NE(r.value.value_or("").find("\"user_id\":\"" + owned_user + "\""), std::string::npos)
        << r.value.value_or("");
  }
  // The foreign keys are untouched (but for the TTL a pipelined EXPIRE
  // gives them); without them Redis is the model's.
  for (const std::string& key : foreign_keys) {
    EXPECT_EQ(redis_->Command({"GET", key}).value_or(""), "not ours") << key;
    ASSERT_TRUE(redis_->Command({"DEL", key}).ok());
  }
  ASSERT_NO_FATAL_FAILURE(CheckFinalRedisState(*redis_, model));
  std::vector<RedisMonitor::Command> ours;
  for (const RedisMonitor::Command& command : Recorded()) {
    if (command.args.size() >= 2 && foreign_keys.count(command.args[1])) continue;
    ours.push_back(command);
  }
  CheckFeatureWrites(model, ours);
}

// Partition discovery: the topic has 2 partitions when the job starts and
// grows to 4 mid-stream; the coordinator notices, redeploys after a
// checkpoint with the new partitions read from their earliest offset, and
// events arriving on all four end exactly as the model says.
TEST_F(Faults, PartitionsAddedToTheTopicAreRead) {
  ASSERT_TRUE(env_ok_);
  ASSERT_NO_FATAL_FAILURE(PrepareRun(/*partitions=*/2));
  const ReferenceModel model(workload_.valid);

  CoordinatorClient coordinator(CoordinatorAddress());
  const std::vector<std::string> args = {"-Dcluster.min-workers=2", "-Dkafka.partition-discovery.interval=500 ms",
                                         "-Dexecution.checkpointing.interval=1 s"};
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, 0, args));
  std::vector<Process*> alive = {processes_[0].get(), processes_[1].get()};
  for (int i = 1; i <= 2; ++i) alive.push_back(&Start("worker-" + std::to_string(i), "slipstream-worker", 0, args));
  std::optional<v1::JobStatus> started = WaitForJob(coordinator, "the job on two partitions", 60000, alive,
                                                    [](const v1::JobStatus& j) { return JobCounters(j, 2).ok(); });
  ASSERT_TRUE(started.has_value());
  ASSERT_NO_FATAL_FAILURE(ProduceUntil(workload_.records.size() / 2));
  ASSERT_TRUE(WaitForJob(coordinator, "the first half in Redis", 60000, alive, [](const v1::JobStatus& j) {
    absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, 2);
    return c.ok() && c->redis_features_written() > 1000;
  }));

  ASSERT_TRUE(AddPartitions(env_.kafka, topic_, 4).ok());
  clock_.Log("the topic grew from 2 to 4 partitions");
  std::optional<v1::JobStatus> grown =
      WaitForJob(coordinator, "a redeployment reading 4 partitions", 60000, alive, [&](const v1::JobStatus& j) {
        if (j.attempt() <= started->attempt() || !JobCounters(j, 2).ok()) return false;
        int partitions = 0;
        for (const v1::WorkerStatus& w : j.workers()) partitions += w.assignment().partitions_size();
        return partitions == 4;
      });
  ASSERT_TRUE(grown.has_value());
  clock_.Log(absl::StrCat("attempt ", grown->attempt(), " reads 4 partitions, restored from ",
                          grown->restored_from()));
  EXPECT_EQ(grown->failures(), 0) << grown->failure_cause();
  // A producer that knows the four partitions, for the rest: keyed, so
  // events land on all four.
  absl::StatusOr<std::unique_ptr<TestProducer>> after = TestProducer::Create(env_.kafka);
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_TRUE(producer_->Flush(30000).ok());
  producer_ = std::move(*after);
  ASSERT_NO_FATAL_FAILURE(ProduceUntil(workload_.records.size()));
  std::set<int32_t> used;
  for (size_t i = 0; i < producer_->produced(); ++i) used.insert(producer_->delivery(i).partition);
  EXPECT_EQ(used.size(), 4u) << "the second half should land on all four partitions";

  std::optional<v1::JobStatus> final_job = CloseAndDrain(coordinator, *redis_, 2, alive, model);
  ASSERT_TRUE(final_job.has_value());
  EXPECT_EQ(final_job->failures(), 0) << final_job->failure_cause();
  ASSERT_NO_FATAL_FAILURE(CheckRedisAtLeastOnce(model));
}

// kafka.starting-offsets=latest: a checkpoint taken before anything arrived
// must hold the offsets `latest` meant when the job started, so that a
// restore reads what arrived in between instead of skipping to the end again.
TEST_F(Faults, LatestStartingOffsetsLoseNothingOnRestore) {
  ASSERT_TRUE(env_ok_);
  ASSERT_NO_FATAL_FAILURE(PrepareRun());
  const ReferenceModel model(workload_.valid);
  // Before the job: `latest` skips these (their users must not show up).
  for (int i = 0; i < 200; ++i) {
    const std::string user = "before-" + std::to_string(i);
    producer_->Produce(topic_, user, CanonicalEventJson(user, workload_.start_ms + i, EventKind::kView, 100));
  }
  ASSERT_TRUE(producer_->Flush(30000).ok());

  CoordinatorClient coordinator(CoordinatorAddress());
  const std::vector<std::string> args = {"-Dkafka.starting-offsets=latest", "-Dheartbeat.timeout=2 s",
                                         "-Dexecution.checkpointing.interval=300 ms",
                                         "-Drestart-strategy.fixed-delay.delay=200 ms", "-Dcluster.min-workers=1"};
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, 0, args));
  Process* redis_process = processes_[0].get();
  Process* coordinator_process = processes_[1].get();
  Process& first = Start("worker-1", "slipstream-worker", 0, args);
  std::optional<v1::JobStatus> checkpointed = WaitForJob(
      coordinator, "two checkpoints before any record", 60000, {redis_process, coordinator_process, &first},
      [](const v1::JobStatus& j) { return JobCounters(j, 1).ok() && j.checkpoints().completed() >= 2; });
  ASSERT_TRUE(checkpointed.has_value());
  EXPECT_EQ(JobCounters(*checkpointed, 1)->records_in(), 0) << "latest: nothing produced before the start is read";
  ASSERT_EQ(::kill(first.pid(), SIGKILL), 0);
  ASSERT_TRUE(first.WaitForExit(5000).has_value());
  clock_.Log(absl::StrCat("killed worker-1 after checkpoint ", checkpointed->checkpoints().latest_completed().id(),
                          "; producing the stream while no worker runs"));
  ASSERT_NO_FATAL_FAILURE(ProduceUntil(workload_.records.size()));
  Process& second = Start("worker-2", "slipstream-worker", 0, args);
  const std::vector<Process*> alive = {redis_process, coordinator_process, &second};
  std::optional<v1::JobStatus> restored =
      WaitForJob(coordinator, "the job restored on worker-2", 60000, alive, [&](const v1::JobStatus& j) {
        return j.attempt() > checkpointed->attempt() && JobCounters(j, 1).ok();
      });
  ASSERT_TRUE(restored.has_value());
  EXPECT_FALSE(restored->restored_from().empty());
  std::optional<v1::JobStatus> final_job = CloseAndDrain(coordinator, *redis_, 1, alive, model);
  ASSERT_TRUE(final_job.has_value()) << "what arrived while the job was down was skipped";
  ASSERT_NO_FATAL_FAILURE(CheckRedisAtLeastOnce(model));
}

// source.max-event-time-skew: one record in year 9999 mid-stream goes to the
// dead-letter topic (future_event_time) instead of moving its partition's
// watermark to the end of time, so no window fires early: every window is
// written once, complete, as the model has it.
TEST_F(Faults, AFarFutureEventIsADeadLetterWithAMaxEventTimeSkew) {
  ASSERT_TRUE(env_ok_);
  ASSERT_NO_FATAL_FAILURE(PrepareRun());
  const ReferenceModel model(workload_.valid);

  CoordinatorClient coordinator(CoordinatorAddress());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, 0, {"-Dcluster.min-workers=1"}));
  Process& worker = Start("worker-1", "slipstream-worker", 0, {"-Dsource.max-event-time-skew=1 h"});
  const std::vector<Process*> alive = {processes_[0].get(), processes_[1].get(), &worker};
  ASSERT_TRUE(WaitForJob(coordinator, "the job", 60000, alive,
                         [](const v1::JobStatus& j) { return JobCounters(j, 1).ok(); }));
  ASSERT_NO_FATAL_FAILURE(ProduceUntil(workload_.records.size() / 2));
  const std::string poison_user = workload_.valid.front().user;  // a user with windows open
  const std::string poison =
      CanonicalEventJson(poison_user, EpochMs(9999, 12, 31, 23, 59, 59, 0), EventKind::kView, 100);
  producer_->Produce(topic_, poison_user, poison);
  ASSERT_NO_FATAL_FAILURE(ProduceUntil(workload_.records.size()));
  // Closing events at the wall clock's time (within the skew) fire every
  // window of the (2024) workload.
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (int32_t p = 0; p < kFaultPartitions; ++p) {
    producer_->Produce(topic_, "__watermark__", CanonicalEventJson("__watermark__", now_ms, EventKind::kView, 100), p);
  }
  ASSERT_TRUE(producer_->Flush(30000).ok());
  const int64_t expected_keys = static_cast<int64_t>(model.user_features().size() + model.sessions().size());
  std::optional<v1::JobStatus> final_job =
      WaitForJob(coordinator, "every feature in Redis", 120000, alive, [&](const v1::JobStatus& j) {
        absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, 1);
        if (!c.ok() || c->watermark_ms() < now_ms - 10 * kSecondMs - 1 ||
            c->features_emitted() != c->redis_features_written()) {
          return false;
        }
        absl::StatusOr<int64_t> size = redis_->FeatureKeyCount();
        return size.ok() && *size == expected_keys;
      });
  ASSERT_TRUE(final_job.has_value());
  const v1::WorkerCounters c = *JobCounters(*final_job, 1);
  EXPECT_EQ(c.records_invalid(), 1);
  EXPECT_EQ(c.records_late(), 0) << "records were late: the far-future event moved the watermark";
  ASSERT_NO_FATAL_FAILURE(CheckFinalRedisState(*redis_, model));
  CheckFeatureWrites(model, Recorded());
  absl::StatusOr<std::vector<ConsumedRecord>> dead = ReadWholeTopic(env_.kafka, dlq_topic_, 1, 30000);
  ASSERT_TRUE(dead.ok()) << dead.status();
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].value.value_or(""), poison);
  EXPECT_EQ((*dead)[0].Header("dlq.reason").value_or("").rfind("future_event_time: ", 0), 0u)
      << (*dead)[0].Header("dlq.reason").value_or("(no reason)");
}

}  // namespace
}  // namespace slipstream::it
