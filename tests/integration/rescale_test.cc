// Elastic scaling against the real Kafka broker and a private redis-server:
//
//  Rescale.WorkersJoiningAndLeavingMidStreamLeaveRedisEqualToTheModel
//    One worker runs the job (scheduler-mode=reactive, a checkpoint every
//    second) while events are produced over ~20 s. Mid-stream a second worker
//    joins (one rescale: 1 -> 2), later two more join together (one rescale:
//    2 -> 4, they arrive within cluster.stabilization-timeout), and later one
//    worker gets SIGTERM (it leaves on purpose: recovery onto 3, no failure).
//    A sampler polls the coordinator every 25 ms the whole time: whenever an
//    attempt runs, its key-group ranges cover 0..max-1 exactly once, and no
//    worker still runs the previous attempt's task while one runs the new
//    attempt's. At the end every feature write Redis received (MONITOR) is
//    the reference model's value, every window and session was written, and
//    the final Redis state equals the model; no failure and no restart were
//    counted, two rescales were.
//
// Its own redis-server (all 16 databases of the shared one are taken by
// other tests).
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <cstdlib>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
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

constexpr int kPartitions = 6;
constexpr int kSlices = 10;
constexpr int64_t kSliceEveryMs = 2000;

class Rescale : public PipelineEndToEnd {
 protected:
  // GetJob until `done`, with every process not stopped on purpose alive.
  std::optional<v1::JobStatus> WaitFor(CoordinatorClient& coordinator, const std::string& what, int64_t timeout_ms,
                                       const std::function<bool(const v1::JobStatus&)>& done) {
    std::vector<Process*> alive;
    for (const auto& p : processes_) {
      if (!left_.count(p.get())) alive.push_back(p.get());
    }
    return WaitForJob(coordinator, what, timeout_ms, alive, done, /*poll_ms=*/50);
  }

  std::set<Process*> left_;  // stopped on purpose
};

// What the ownership sampler found.
struct OwnershipSamples {
  std::mutex mu;
  int64_t samples = 0;
  int64_t running_samples = 0;  // samples with an attempt running
  std::vector<std::string> violations;
  void Add(std::string v) {
    std::lock_guard lock(mu);
    if (violations.size() < 20) violations.push_back(std::move(v));
  }
};

// One sample: the attempt's ranges partition the key groups, and no two
// attempts have running tasks at once.
void CheckOwnership(const v1::JobStatus& job, OwnershipSamples* out) {
  std::set<int64_t> running_attempts;
  for (const v1::WorkerStatus& w : job.workers()) {
    if (w.counters().attempt() != 0) running_attempts.insert(w.counters().attempt());
  }
  std::lock_guard lock(out->mu);
  ++out->samples;
  if (running_attempts.size() > 1) {
    if (out->violations.size() < 20) {
      out->violations.push_back(absl::StrCat("tasks of attempts ", absl::StrJoin(running_attempts, " and "),
                                             " run at the same time (job ", job.state(), ", attempt ", job.attempt(),
                                             ")"));
    }
  }
  if (job.state() != "RUNNING") return;
  ++out->running_samples;
  std::vector<int> owners(job.max_parallelism(), 0);
  for (const v1::WorkerStatus& w : job.workers()) {
    if (w.standby()) continue;
    for (const v1::KeyGroupRange& r : w.assignment().key_groups()) {
      for (int k = r.first(); k <= r.last() && k < job.max_parallelism(); ++k) ++owners[k];
    }
  }
  for (int k = 0; k < job.max_parallelism(); ++k) {
    if (owners[k] != 1 && out->violations.size() < 20) {
      out->violations.push_back(absl::StrCat("attempt ", job.attempt(), ": key group ", k, " owned by ", owners[k],
                                             " workers"));
      break;
    }
  }
}

TEST_F(Rescale, WorkersJoiningAndLeavingMidStreamLeaveRedisEqualToTheModel) {
  ASSERT_TRUE(env_ok_);
  ASSERT_NO_FATAL_FAILURE(StartPrivateRedis());
  clock_.Log(absl::StrCat("topic ", topic_, ", redis port ", env_.redis_port, ", tmp ", tmp_->path()));
  absl::StatusOr<std::unique_ptr<RedisClient>> redis;
  absl::StatusOr<std::unique_ptr<RedisMonitor>> monitor;
  ASSERT_NO_FATAL_FAILURE(OpenRecordedRedisDb(0, &redis, &monitor));
  const Workload w = GenerateWorkload(WorkloadOptions{});
  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, kPartitions).ok());
  absl::StatusOr<std::unique_ptr<TestProducer>> producer_or = TestProducer::Create(env_.kafka);
  ASSERT_TRUE(producer_or.ok()) << producer_or.status();
  TestProducer& producer = **producer_or;

  CoordinatorClient coordinator(CoordinatorAddress());
  // Two workers started 300 ms apart register well within 2 s of each other
  // even on a loaded machine (process start-up varies by some 100 ms).
  const std::vector<std::string> job_args = {"-Dscheduler-mode=reactive", "-Dcluster.stabilization-timeout=2 s",
                                             "-Dexecution.checkpointing.interval=1 s"};
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, 0, job_args));
  std::vector<Process*> workers;
  auto start_worker = [&] {
    workers.push_back(&Start("worker-" + std::to_string(workers.size() + 1), "slipstream-worker", 0, job_args));
  };
  start_worker();
  ASSERT_TRUE(WaitFor(coordinator, "the job on 1 worker", 60000,
                      [](const v1::JobStatus& j) { return JobCounters(j, 1).ok(); }));

  OwnershipSamples ownership;
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    CoordinatorClient own(CoordinatorAddress());
    while (sampling.load()) {
      if (absl::StatusOr<v1::JobStatus> job = own.GetJob(); job.ok()) CheckOwnership(*job, &ownership);
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  });
  struct StopSampler {
    std::atomic<bool>& flag;
    std::thread& thread;
    ~StopSampler() {
      flag.store(false);
      if (thread.joinable()) thread.join();
    }
  } stop_sampler{sampling, sampler};
  clock_.EndPhase("start");

  // Produce a slice every kSliceEveryMs; scale at slices 2, 5 and 8.
  const int64_t begin = SteadyNowMs();
  std::vector<std::string> pauses;
  for (int slice = 0; slice < kSlices; ++slice) {
    const int64_t due = begin + slice * kSliceEveryMs;
    if (due > SteadyNowMs()) std::this_thread::sleep_for(std::chrono::milliseconds(due - SteadyNowMs()));
    const size_t from = w.records.size() * slice / kSlices;
    const size_t to = w.records.size() * (slice + 1) / kSlices;
    for (size_t i = from; i < to; ++i) producer.Produce(topic_, w.records[i].key, w.records[i].value);
    ASSERT_TRUE(producer.Flush(60000).ok());
    if (slice != 2 && slice != 5 && slice != 8) continue;

    absl::StatusOr<v1::JobStatus> before = coordinator.GetJob();
    ASSERT_TRUE(before.ok()) << before.status();
    const int64_t changed_at = SteadyNowMs();
    int expected_workers = 0;
    if (slice == 2) {
      start_worker();
      expected_workers = 2;
    } else if (slice == 5) {
      start_worker();
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      start_worker();
      expected_workers = 4;
    } else {
      Process* leaving = workers[1];
      left_.insert(leaving);
      ASSERT_EQ(::kill(leaving->pid(), SIGTERM), 0);
      ASSERT_EQ(leaving->WaitForExit(15000).value_or(-1), 0) << "worker-2 did not leave cleanly on SIGTERM";
      expected_workers = 3;
    }
    std::optional<v1::JobStatus> after =
        WaitFor(coordinator, absl::StrCat("the job on ", expected_workers, " workers"), 60000,
                [&](const v1::JobStatus& j) { return j.attempt() > before->attempt() && JobCounters(j, expected_workers).ok(); });
    ASSERT_TRUE(after.has_value());
    pauses.push_back(absl::StrCat(before->workers_size(), " -> ", expected_workers, ": ", SteadyNowMs() - changed_at,
                                  " ms until attempt ", after->attempt(), " ran on every worker"));
    clock_.Log(pauses.back() + ", restored from " + after->restored_from());
    EXPECT_FALSE(after->restored_from().empty());
  }
  clock_.EndPhase("produce and rescale");

  const int64_t final_watermark = ProduceClosingEvents(producer, topic_, kPartitions);
  ASSERT_TRUE(producer.Flush(30000).ok());
  const ReferenceModel model(w.valid);
  const int64_t expected_keys = static_cast<int64_t>(model.user_features().size() + model.sessions().size());
  std::optional<v1::JobStatus> final_job = WaitFor(coordinator, "every feature in Redis", 120000, [&](const v1::JobStatus& j) {
    absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, 3);
    if (!c.ok() || c->watermark_ms() < final_watermark || c->features_emitted() != c->redis_features_written()) {
      return false;
    }
    absl::StatusOr<int64_t> size = (*redis)->FeatureKeyCount();
    return size.ok() && *size == expected_keys;
  });
  ASSERT_TRUE(final_job.has_value());
  sampling.store(false);
  sampler.join();
  clock_.EndPhase("drain");

  EXPECT_EQ(final_job->rescales(), 2) << final_job->DebugString();
  EXPECT_EQ(final_job->failures(), 0) << final_job->failure_cause();
  EXPECT_EQ(final_job->restarts(), 0);
  {
    std::lock_guard lock(ownership.mu);
    clock_.Log(absl::StrCat("ownership: ", ownership.samples, " samples, ", ownership.running_samples,
                            " while running; pauses: ", absl::StrJoin(pauses, "; ")));
    EXPECT_GT(ownership.running_samples, 100);
    EXPECT_TRUE(ownership.violations.empty()) << absl::StrJoin(ownership.violations, "\n");
  }
  ASSERT_NO_FATAL_FAILURE(CheckFinalRedisState(**redis, model));
  absl::StatusOr<std::vector<RedisMonitor::Command>> commands = (*monitor)->Finish(**redis, 30000);
  ASSERT_TRUE(commands.ok()) << commands.status();
  CheckFeatureWritesAreCorrectAtLeastOnce(model, *commands);
  clock_.EndPhase("check");
}

}  // namespace
}  // namespace slipstream::it
