// Failure tests of checkpointing and recovery against the real Kafka broker
// and Redis server (started by scripts/test.sh):
//
//  RecoveryChaos.KillsAtRandomMomentsLeaveRedisEqualToTheModel
//    three workers, a checkpoint every second, events produced over ~25 s;
//    at seeded random moments a worker is killed with SIGKILL (five times,
//    once a second one while the job recovers from the first) and the
//    coordinator once, each started again. Every feature
//    write Redis received (MONITOR) must be the reference model's value for
//    its window or session, every window and session of the model must have
//    been written, the final Redis state must equal the model's, and the
//    dead-letter topic must hold every invalid record at least once (the
//    documented guarantee, docs/architecture.md "The guarantee and its
//    limits": replays rewrite features with the same values; dead letters
//    are at least once).
//  RecoveryChaos.CheckpointThatTimesOutIsAbortedAndTheJobGoesOn
//    two workers; one is frozen with SIGSTOP for longer than
//    execution.checkpointing.timeout and much less than heartbeat.timeout,
//    then resumed (SIGCONT). The checkpoint it held up is reported FAILED
//    (expired) in GetJob, its directory is removed, a later checkpoint
//    completes, the job keeps its attempt (no failure, no restart), and Redis
//    ends exactly as the model says, each window written once.
//
// The random moments come from a seed that is logged; set
// SLIPSTREAM_CHAOS_SEED=<seed> to replay a failing run's schedule (the
// timing of the processes themselves still varies).
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/integration/coordinator_client.h"
#include "tests/integration/e2e_fixture.h"
#include "tests/integration/feature_checks.h"
#include "tests/integration/it_env.h"
#include "tests/integration/kafka_client.h"
#include "tests/integration/process_runner.h"
#include "tests/integration/redis_client.h"
#include "tests/integration/workload.h"

namespace slipstream::it {
namespace {

// Redis databases owned by these tests (pipeline_e2e_test.cc uses 4-14).
constexpr int kRedisDbChaos = 3;
constexpr int kRedisDbCheckpointTimeout = 2;

uint64_t ChaosSeed() {
  if (const char* text = std::getenv("SLIPSTREAM_CHAOS_SEED"); text != nullptr && *text != '\0') {
    if (std::optional<int64_t> seed = ParseInt(text)) return static_cast<uint64_t>(*seed);
    ADD_FAILURE() << "SLIPSTREAM_CHAOS_SEED=" << text << " is not an integer; using a random seed";
  }
  return std::random_device{}() % 1000000;
}

class RecoveryChaos : public PipelineEndToEnd {
 protected:
};

// ---------------------------------------------------------------------------

constexpr int kChaosWorkers = 3;
constexpr int kChaosPartitions = 6;
constexpr int kSlices = 12;
constexpr int64_t kSliceEveryMs = 2000;
// Moments at which something is killed: between kFirstKillMs and the end of
// production, at least kKillGapMs apart, each once the job runs an attempt on
// every worker. One moment kills the coordinator, one kills a worker and then,
// 0-2 s later while the job fails over or restores, a second one; the others
// one worker each: kMoments + 1 kills in all, kMoments of them of workers.
constexpr int kMoments = 5;
constexpr int64_t kFirstKillMs = 2000;
constexpr int64_t kKillGapMs = 3000;
constexpr int64_t kMaxSecondKillDelayMs = 2000;

TEST_F(RecoveryChaos, KillsAtRandomMomentsLeaveRedisEqualToTheModel) {
  ASSERT_TRUE(env_ok_);
  ASSERT_GT(rpc_port_, 0);
  const uint64_t seed = ChaosSeed();
  clock_.Log(absl::StrCat("chaos seed ", seed, " (replay the schedule with SLIPSTREAM_CHAOS_SEED=", seed, "); topic ",
                          topic_, ", redis db ", kRedisDbChaos, ", tmp ", tmp_->path()));
  std::mt19937_64 rng(seed);
  auto uniform = [&rng](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };

  absl::StatusOr<std::unique_ptr<RedisClient>> redis;
  absl::StatusOr<std::unique_ptr<RedisMonitor>> monitor;
  ASSERT_NO_FATAL_FAILURE(OpenRecordedRedisDb(kRedisDbChaos, &redis, &monitor));
  const Workload w = GenerateWorkload(WorkloadOptions{});
  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, kChaosPartitions).ok());
  absl::StatusOr<std::unique_ptr<TestProducer>> producer_or = TestProducer::Create(env_.kafka);
  ASSERT_TRUE(producer_or.ok()) << producer_or.status();
  TestProducer& producer = **producer_or;
  std::vector<RecordSpec> produced;  // by producer index

  // --- The schedule -----------------------------------------------------------
  const int64_t production_ms = kSlices * kSliceEveryMs;
  std::vector<int64_t> moment_at;
  do {
    moment_at.clear();
    for (int i = 0; i < kMoments; ++i) moment_at.push_back(uniform(kFirstKillMs, production_ms));
    std::sort(moment_at.begin(), moment_at.end());
  } while ([&] {
    for (size_t i = 1; i < moment_at.size(); ++i) {
      if (moment_at[i] - moment_at[i - 1] < kKillGapMs) return true;
    }
    return false;
  }());
  const size_t coordinator_moment = static_cast<size_t>(uniform(0, kMoments - 1));
  size_t double_moment = coordinator_moment;
  while (double_moment == coordinator_moment) double_moment = static_cast<size_t>(uniform(0, kMoments - 1));
  {
    std::vector<std::string> plan;
    for (size_t i = 0; i < moment_at.size(); ++i) {
      plan.push_back(absl::StrCat(i == coordinator_moment ? "the coordinator"
                                  : i == double_moment    ? "a worker, then another during the recovery"
                                                          : "a worker",
                                  " at +", moment_at[i], " ms"));
    }
    clock_.Log("schedule: " + absl::StrJoin(plan, "; "));
  }

  // --- Start ------------------------------------------------------------------
  CoordinatorClient coordinator(CoordinatorAddress());
  const std::vector<std::string> job_args = {
      "-Dcluster.min-workers=" + std::to_string(kChaosWorkers), "-Dheartbeat.timeout=2 s",
      "-Dexecution.checkpointing.interval=1 s", "-Drestart-strategy.fixed-delay.delay=200 ms"};
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, kRedisDbChaos, job_args));
  Process* coordinator_process = processes_.back().get();
  std::vector<Process*> workers;
  int started_workers = 0;
  auto start_worker = [&] {
    workers.push_back(&Start("worker-" + std::to_string(++started_workers), "slipstream-worker", kRedisDbChaos,
                             job_args));
  };
  for (int i = 0; i < kChaosWorkers; ++i) start_worker();
  auto alive = [&] {
    std::vector<Process*> all = workers;
    all.push_back(coordinator_process);
    return all;
  };
  auto running_on_every_worker = [](const v1::JobStatus& j) { return JobCounters(j, kChaosWorkers).ok(); };
  ASSERT_TRUE(WaitForJob(coordinator, "the job to run on every worker", 60000, alive(), running_on_every_worker));
  clock_.EndPhase("start");

  // --- Produce over time, killing at the scheduled moments ---------------------
  const int64_t begin = SteadyNowMs();
  auto sleep_until = [&](int64_t offset_ms) {
    const int64_t now = SteadyNowMs();
    if (begin + offset_ms > now) std::this_thread::sleep_for(std::chrono::milliseconds(begin + offset_ms - now));
  };
  int64_t last_attempt = 0;
  int slice = 0;
  size_t moment = 0;
  int kills = 0;
  while (slice < kSlices || moment < moment_at.size()) {
    const int64_t slice_at = slice * kSliceEveryMs;
    if (slice < kSlices && (moment == moment_at.size() || slice_at <= moment_at[moment])) {
      sleep_until(slice_at);
      const size_t from = w.records.size() * slice / kSlices;
      const size_t to = w.records.size() * (slice + 1) / kSlices;
      for (size_t i = from; i < to; ++i) {
        producer.Produce(topic_, w.records[i].key, w.records[i].value);
        produced.push_back(w.records[i]);
      }
      absl::Status flushed = producer.Flush(60000);
      ASSERT_TRUE(flushed.ok()) << flushed;
      ++slice;
      continue;
    }
    sleep_until(moment_at[moment]);
    // Kill while an attempt runs on every worker (not while one is being
    // deployed): records and checkpoints are in flight at a random point.
    std::optional<v1::JobStatus> before =
        WaitForJob(coordinator, "an attempt running on every worker before the next kill", 90000, alive(),
                   running_on_every_worker);
    ASSERT_TRUE(before.has_value());
    const bool kill_coordinator = moment == coordinator_moment;
    const int victims = moment == double_moment ? 2 : 1;
    const int64_t killed_at = SteadyNowMs();
    // The restored attempt must be newer than this one.
    int64_t replaced_attempt = before->attempt();
    for (int v = 0; v < victims; ++v) {
      if (v > 0) {
        // The second kill of a double: the job is failing over or restoring
        // (or already runs again: then that attempt must fail too).
        std::this_thread::sleep_for(std::chrono::milliseconds(uniform(0, kMaxSecondKillDelayMs)));
        absl::StatusOr<v1::JobStatus> now = coordinator.GetJob();
        ASSERT_TRUE(now.ok()) << now.status();
        if (now->state() == "RUNNING") replaced_attempt = std::max(replaced_attempt, now->attempt());
        clock_.Log(absl::StrCat("the job is ", now->state(), ", attempt ", now->attempt(), " before the second kill"));
      }
      const size_t victim = static_cast<size_t>(uniform(0, kChaosWorkers - 1));
      Process* killed = kill_coordinator ? coordinator_process : workers[victim];
      ASSERT_EQ(::kill(killed->pid(), SIGKILL), 0);
      ++kills;
      clock_.Log(absl::StrCat("kill ", kills, ": SIGKILL to ", killed->name(), " (attempt ", before->attempt(), ", ",
                              before->checkpoints().completed(), " checkpoints completed, latest ",
                              before->checkpoints().latest_completed().id(), ")"));
      ASSERT_TRUE(killed->WaitForExit(5000).has_value()) << killed->name() << " survived SIGKILL";
      // Started again after a random pause: before or after the coordinator
      // notices the loss.
      std::this_thread::sleep_for(std::chrono::milliseconds(uniform(0, 1000)));
      if (kill_coordinator) {
        // Same configuration and state.checkpoints.dir: it finds the job id
        // and the latest completed checkpoint there; the workers register
        // again.
        ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, kRedisDbChaos, job_args, "coordinator-2"));
        coordinator_process = processes_.back().get();
      } else {
        workers.erase(workers.begin() + static_cast<std::ptrdiff_t>(victim));
        start_worker();
      }
    }
    std::optional<v1::JobStatus> restored = WaitForJob(
        coordinator, "a restored attempt on every worker", 90000, alive(), [&](const v1::JobStatus& j) {
          return running_on_every_worker(j) && (kill_coordinator || j.attempt() > replaced_attempt);
        });
    ASSERT_TRUE(restored.has_value());
    clock_.Log(absl::StrCat("attempt ", restored->attempt(), " runs on every worker ", SteadyNowMs() - killed_at,
                            " ms after the first kill, restored from ",
                            restored->restored_from().empty() ? "nothing" : restored->restored_from()));
    last_attempt = restored->attempt();
    ++moment;
  }
  ASSERT_EQ(kills, kMoments + 1);
  clock_.EndPhase("produce and kill");

  // --- Close: a far-future event per partition fires every window --------------
  const int64_t final_watermark = ProduceClosingEvents(producer, topic_, kChaosPartitions);
  produced.insert(produced.end(), kChaosPartitions, RecordSpec{});  // producer indices stay aligned
  ASSERT_TRUE(producer.Flush(30000).ok());
  const ReferenceModel model(w.valid);
  const int64_t expected_keys = static_cast<int64_t>(model.user_features().size() + model.sessions().size());
  std::optional<v1::JobStatus> final_job =
      WaitForJob(coordinator, "every feature in Redis", 120000, alive(), [&](const v1::JobStatus& j) {
        absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, kChaosWorkers);
        if (!c.ok() || c->watermark_ms() < final_watermark || c->features_emitted() != c->redis_features_written()) {
          return false;
        }
        absl::StatusOr<int64_t> size = (*redis)->FeatureKeyCount();
        return size.ok() && *size == expected_keys;
      });
  ASSERT_TRUE(final_job.has_value());
  clock_.Log(absl::StrCat("final: attempt ", final_job->attempt(), ", failures ", final_job->failures(),
                          " (since the coordinator restart), restarts ", final_job->restarts(), ", restored ",
                          final_job->checkpoints().restored(), " (", final_job->restored_from(), "), checkpoints ",
                          final_job->checkpoints().completed(), " completed, ", final_job->checkpoints().failed(),
                          " failed"));
  clock_.EndPhase("drain");
  EXPECT_EQ(final_job->attempt(), last_attempt) << "the job failed over again after the last kill";
  EXPECT_FALSE(final_job->restored_from().empty()) << "the last attempt did not restore a checkpoint";

  // --- Redis against the model ---------------------------------------------------
  ASSERT_NO_FATAL_FAILURE(CheckFinalRedisState(**redis, model));
  absl::StatusOr<std::vector<RedisMonitor::Command>> commands = (*monitor)->Finish(**redis, 30000);
  ASSERT_TRUE(commands.ok()) << commands.status();
  CheckFeatureWritesAreCorrectAtLeastOnce(model, *commands);
  ASSERT_NO_FATAL_FAILURE(CheckDeadLettersAtLeastOnce(env_.kafka, dlq_topic_, produced, producer));
  // Disk: state.dir holds the live workers' state only (one attempt each);
  // the killed workers' directories were removed by the workers started
  // after them. (An old attempt is freed in the background up to 3 s after
  // the next restore: wait for that, not for anything else.)
  {
    std::set<std::string> live;
    for (const v1::WorkerStatus& w : final_job->workers()) live.insert(w.worker_id());
    std::vector<std::string> found;
    const int64_t deadline = SteadyNowMs() + 15000;
    for (;;) {
      found.clear();
      bool only_live = true;
      std::error_code ec;
      for (const auto& job : std::filesystem::directory_iterator(tmp_->path() + "/state", ec)) {
        if (!job.is_directory()) continue;
        for (const auto& worker : std::filesystem::directory_iterator(job.path(), ec)) {
          for (const auto& attempt : std::filesystem::directory_iterator(worker.path(), ec)) {
            found.push_back(worker.path().filename().string() + "/" + attempt.path().filename().string());
          }
          only_live = only_live && live.count(worker.path().filename().string()) > 0;
        }
      }
      if ((only_live && found.size() == live.size()) || SteadyNowMs() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    clock_.Log(absl::StrCat("state.dir after ", kills, " kills: ", absl::StrJoin(found, ", ")));
    EXPECT_EQ(found.size(), live.size()) << "state.dir: " << absl::StrJoin(found, ", ") << "; live workers: "
                                         << absl::StrJoin(live, ", ");
    for (const std::string& dir : found) {
      EXPECT_TRUE(live.count(dir.substr(0, dir.find('/')))) << dir << " belongs to no live worker";
    }
  }
  clock_.EndPhase("check");
  if (!HasFailure()) (void)(*redis)->FlushDb();
}

// ---------------------------------------------------------------------------

constexpr int kTimeoutPartitions = 4;
constexpr int64_t kCheckpointTimeoutMs = 1500;
// Longer than the checkpoint timeout, far shorter than heartbeat.timeout
// (10 s), and shorter than the coordinator's deadline on TriggerCheckpoint
// (5 s: a trigger sent to the frozen worker is answered once it resumes, so
// the checkpoint fails by expiring, not by a failed trigger).
constexpr int64_t kFrozenMs = 3000;

TEST_F(RecoveryChaos, CheckpointThatTimesOutIsAbortedAndTheJobGoesOn) {
  ASSERT_TRUE(env_ok_);
  ASSERT_GT(rpc_port_, 0);
  clock_.Log(absl::StrCat("topic ", topic_, ", redis db ", kRedisDbCheckpointTimeout, ", tmp ", tmp_->path()));
  absl::StatusOr<std::unique_ptr<RedisClient>> redis;
  absl::StatusOr<std::unique_ptr<RedisMonitor>> monitor;
  ASSERT_NO_FATAL_FAILURE(OpenRecordedRedisDb(kRedisDbCheckpointTimeout, &redis, &monitor));
  WorkloadOptions options;
  options.users = 300;
  options.valid_events = 40000;
  options.step_ms = 500;  // 5.5 h of event time
  options.malformed_fraction = 0;
  const Workload w = GenerateWorkload(options);
  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, kTimeoutPartitions).ok());
  absl::StatusOr<std::unique_ptr<TestProducer>> producer_or = TestProducer::Create(env_.kafka);
  ASSERT_TRUE(producer_or.ok()) << producer_or.status();
  TestProducer& producer = **producer_or;
  auto produce = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) producer.Produce(topic_, w.records[i].key, w.records[i].value);
    absl::Status flushed = producer.Flush(60000);
    ASSERT_TRUE(flushed.ok()) << flushed;
  };

  CoordinatorClient coordinator(CoordinatorAddress());
  // tolerable-failed-checkpoints: with Flink's default (0) a single failed
  // checkpoint fails the job over; here the job must go on.
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(
      coordinator, kRedisDbCheckpointTimeout,
      {"-Dcluster.min-workers=2", "-Dheartbeat.timeout=10 s", "-Dexecution.checkpointing.interval=500 ms",
       absl::StrCat("-Dexecution.checkpointing.timeout=", kCheckpointTimeoutMs, " ms"),
       "-Dexecution.checkpointing.tolerable-failed-checkpoints=10"}));
  Process& coordinator_process = *processes_.back();
  Process& worker1 = Start("worker-1", "slipstream-worker", kRedisDbCheckpointTimeout, {"-Dheartbeat.timeout=10 s"});
  Process& worker2 = Start("worker-2", "slipstream-worker", kRedisDbCheckpointTimeout, {"-Dheartbeat.timeout=10 s"});
  const std::vector<Process*> alive = {&coordinator_process, &worker1, &worker2};

  // Every checkpoint seen in GetJob's history, by id (the history is bounded:
  // poll often enough to see each one).
  std::map<int64_t, v1::CheckpointStats> seen;
  auto record = [&](const v1::JobStatus& j) {
    for (const v1::CheckpointStats& s : j.checkpoints().history()) seen[s.id()] = s;
  };

  produce(0, w.records.size() / 2);
  std::optional<v1::JobStatus> before =
      WaitForJob(coordinator, "records flowing and two completed checkpoints", 60000, alive, [&](const v1::JobStatus& j) {
        record(j);
        absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, 2);
        return c.ok() && c->records_in() > 0 && j.checkpoints().completed() >= 2;
      });
  ASSERT_TRUE(before.has_value());

  // --- Freeze worker-2 -----------------------------------------------------------
  const int64_t frozen_wall_ms = WallNowMs();
  ASSERT_EQ(::kill(worker2.pid(), SIGSTOP), 0);
  const int64_t frozen_at = SteadyNowMs();
  struct Resume {
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }  // whatever happens below
  } resume{worker2.pid()};
  clock_.Log(absl::StrCat("SIGSTOP to worker-2 at attempt ", before->attempt(), ", ",
                          before->checkpoints().completed(), " checkpoints completed, ", before->checkpoints().failed(),
                          " failed"));
  produce(w.records.size() / 2, w.records.size());  // the job has work meanwhile
  while (SteadyNowMs() < frozen_at + kFrozenMs) {
    absl::StatusOr<v1::JobStatus> job = coordinator.GetJob();
    if (job.ok()) record(*job);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(::kill(worker2.pid(), SIGCONT), 0);
  clock_.Log(absl::StrCat("SIGCONT to worker-2 after ", SteadyNowMs() - frozen_at, " ms"));

  // --- The held-up checkpoint failed, a later one completes -------------------
  auto expired = [&]() -> std::optional<int64_t> {
    for (const auto& [id, s] : seen) {
      if (s.status() == "FAILED" && s.trigger_time_ms() >= frozen_wall_ms - kCheckpointTimeoutMs &&
          s.trigger_time_ms() <= frozen_wall_ms + kFrozenMs && s.failure_reason().find("expired") != std::string::npos) {
        return id;
      }
    }
    return std::nullopt;
  };
  std::optional<v1::JobStatus> after = WaitForJob(
      coordinator, "an expired checkpoint, then a completed one", 30000, alive, [&](const v1::JobStatus& j) {
        record(j);
        const std::optional<int64_t> failed = expired();
        return failed && j.checkpoints().latest_completed().id() > *failed;
      });
  {
    std::vector<std::string> history;
    for (const auto& [id, s] : seen) {
      if (id >= before->checkpoints().latest_completed().id()) {
        history.push_back(absl::StrCat(id, " ", s.status(), s.failure_reason().empty() ? "" : " (" + s.failure_reason() + ")"));
      }
    }
    clock_.Log("checkpoints since the freeze: " + absl::StrJoin(history, "; "));
  }
  ASSERT_TRUE(after.has_value());
  const int64_t expired_id = *expired();
  EXPECT_GT(after->checkpoints().failed(), before->checkpoints().failed());
  // The job went on: same attempt, nothing failed over, both workers in it.
  EXPECT_EQ(after->state(), "RUNNING");
  EXPECT_EQ(after->attempt(), before->attempt());
  EXPECT_EQ(after->failures(), before->failures()) << after->failure_cause();
  EXPECT_EQ(after->restarts(), before->restarts());
  EXPECT_TRUE(JobCounters(*after, 2).ok());

  // --- The aborted checkpoints' files are gone --------------------------------
  // Every failed checkpoint's directory is removed, at the latest when a
  // later checkpoint completes (a frozen worker may write its part after the
  // abort; that worker's next acknowledgement comes after it): look for
  // anything named chk-<id> in checkpoint storage and the workers' state.
  const std::filesystem::path root = tmp_->path();
  auto leftovers = [&]() {
    std::set<std::string> failed_names;
    for (const auto& [id, s] : seen) {
      if (s.status() == "FAILED") failed_names.insert("chk-" + std::to_string(id));
    }
    std::vector<std::string> found;
    for (const char* dir : {"checkpoints", "state"}) {
      std::error_code ec;
      for (auto it = std::filesystem::recursive_directory_iterator(root / dir, ec);
           !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        if (failed_names.count(it->path().filename().string())) found.push_back(it->path().string());
      }
    }
    return found;
  };
  std::vector<std::string> left = leftovers();
  for (const int64_t deadline = SteadyNowMs() + 3000; !left.empty() && SteadyNowMs() < deadline;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    left = leftovers();
  }
  EXPECT_TRUE(left.empty()) << "files of failed checkpoints remain:\n" << absl::StrJoin(left, "\n");
  EXPECT_FALSE(std::filesystem::exists(
      root / "checkpoints" / after->job_id() / ("chk-" + std::to_string(expired_id))));
  clock_.EndPhase("checkpoint timeout");

  // --- Nothing else changed: Redis is exactly the model, each window once ------
  const int64_t final_watermark = ProduceClosingEvents(producer, topic_, kTimeoutPartitions);
  ASSERT_TRUE(producer.Flush(30000).ok());
  const ReferenceModel model(w.valid);
  const int64_t expected_keys = static_cast<int64_t>(model.user_features().size() + model.sessions().size());
  std::optional<v1::JobStatus> final_job =
      WaitForJob(coordinator, "every feature in Redis", 90000, alive, [&](const v1::JobStatus& j) {
        absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, 2);
        if (!c.ok() || c->watermark_ms() < final_watermark || c->features_emitted() != c->redis_features_written()) {
          return false;
        }
        absl::StatusOr<int64_t> size = (*redis)->FeatureKeyCount();
        return size.ok() && *size == expected_keys;
      });
  ASSERT_TRUE(final_job.has_value());
  EXPECT_EQ(final_job->attempt(), before->attempt());
  EXPECT_EQ(final_job->failures(), before->failures()) << final_job->failure_cause();
  ASSERT_NO_FATAL_FAILURE(CheckFinalRedisState(**redis, model));
  absl::StatusOr<std::vector<RedisMonitor::Command>> commands = (*monitor)->Finish(**redis, 30000);
  ASSERT_TRUE(commands.ok()) << commands.status();
  CheckFeatureWrites(model, *commands);
  clock_.EndPhase("check redis");
  if (!HasFailure()) (void)(*redis)->FlushDb();
}

}  // namespace
}  // namespace slipstream::it
