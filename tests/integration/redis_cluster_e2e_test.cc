// The job writing to a real Redis Cluster (three masters with a replica
// each, started from Debian's redis-server by LocalRedisCluster) against the
// real Kafka broker:
//
//  RedisClusterEndToEnd.ExactAcrossAMasterKilledMidStream
//    Two workers write through redis.cluster.nodes. Once features are in
//    the cluster, the master holding most keys is killed (SIGKILL) and its
//    replica takes over; the rest of the stream is produced. The job must
//    not fail, every key must end on the master of its slot with the
//    reference model's value, and every write on every node (MONITOR) must
//    be the model's, none going back in time, none from a superseded
//    attempt.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/integration/coordinator_client.h"
#include "tests/integration/e2e_fixture.h"
#include "tests/integration/feature_checks.h"
#include "tests/integration/it_env.h"
#include "tests/integration/kafka_client.h"
#include "tests/integration/redis_client.h"
#include "tests/integration/redis_cluster.h"
#include "tests/integration/workload.h"

namespace slipstream::it {
namespace {

constexpr int kPartitions = 4;

class RedisClusterEndToEnd : public PipelineEndToEnd {
 protected:
  // What the cluster's masters hold now, merged.
  StoredFeatures ReadCluster() {
    StoredFeatures all;
    for (int port : cluster_->MasterPorts()) {
      absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Connect("127.0.0.1", port, 0);
      EXPECT_TRUE(client.ok()) << client.status();
      if (!client.ok()) continue;
      absl::StatusOr<StoredFeatures> stored = ReadStoredFeatures(**client);
      EXPECT_TRUE(stored.ok()) << stored.status();
      if (stored.ok()) all.merge(*stored);
    }
    return all;
  }

  // Every key is on the master of its slot (the harness asks the cluster).
  void CheckKeysAreOnTheirMasters(const StoredFeatures& stored) {
    Mismatches misplaced("keys on a master that does not serve their slot");
    for (int port : cluster_->MasterPorts()) {
      absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Connect("127.0.0.1", port, 0);
      ASSERT_TRUE(client.ok()) << client.status();
      absl::StatusOr<std::vector<std::string>> keys = (*client)->FeatureKeys();
      ASSERT_TRUE(keys.ok()) << keys.status();
      for (size_t i = 0; i < keys->size(); i += 97) {  // a sample: PortOfKey asks the cluster each time
        if (cluster_->PortOfKey((*keys)[i]) != port) misplaced.Add(absl::StrCat((*keys)[i], " on ", port));
      }
    }
    misplaced.Report();
    EXPECT_GT(stored.size(), 0u);
  }

  std::unique_ptr<LocalRedisCluster> cluster_;
};

TEST_F(RedisClusterEndToEnd, ExactAcrossAMasterKilledMidStream) {
  ASSERT_TRUE(env_ok_);
  absl::StatusOr<std::unique_ptr<LocalRedisCluster>> cluster =
      LocalRedisCluster::Start(tmp_->path() + "/redis-cluster", LocalRedisCluster::FreePortRange(6));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  cluster_ = std::move(*cluster);
  clock_.EndPhase("cluster");
  absl::StatusOr<std::unique_ptr<ClusterMonitor>> monitor = ClusterMonitor::Start(*cluster_);
  ASSERT_TRUE(monitor.ok()) << monitor.status();

  WorkloadOptions options;
  options.malformed_fraction = 0;
  const Workload workload = GenerateWorkload(options);
  const ReferenceModel model(workload.valid);
  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, kPartitions).ok());
  absl::StatusOr<std::unique_ptr<TestProducer>> producer = TestProducer::Create(env_.kafka);
  ASSERT_TRUE(producer.ok()) << producer.status();

  const std::vector<std::string> cluster_args = {"-Dredis.cluster.nodes=" + cluster_->SeedNodes(),
                                                 "-Dexecution.checkpointing.interval=500 ms"};
  CoordinatorClient coordinator(CoordinatorAddress());
  std::vector<std::string> coordinator_args = cluster_args;
  coordinator_args.push_back("-Dcluster.min-workers=2");
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, 0, coordinator_args));
  std::vector<Process*> alive = {processes_[0].get()};
  for (int i = 1; i <= 2; ++i) alive.push_back(&Start("worker-" + std::to_string(i), "slipstream-worker", 0, cluster_args));
  ASSERT_TRUE(WaitForJob(coordinator, "the job on two workers", 60000, alive,
                         [](const v1::JobStatus& j) { return JobCounters(j, 2).ok(); }));
  clock_.EndPhase("start");

  const size_t half = workload.records.size() / 2;
  for (size_t i = 0; i < half; ++i) (*producer)->Produce(topic_, workload.records[i].key, workload.records[i].value);
  ASSERT_TRUE((*producer)->Flush(60000).ok());
  ASSERT_TRUE(WaitForJob(coordinator, "the first features in the cluster", 60000, alive, [](const v1::JobStatus& j) {
    absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, 2);
    return c.ok() && c->redis_features_written() > 1000;
  }));

  // The master with the most keys goes, mid-stream.
  int victim = -1;
  long long most = -1;
  for (int port : cluster_->MasterPorts()) {
    absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Connect("127.0.0.1", port, 0);
    ASSERT_TRUE(client.ok()) << client.status();
    absl::StatusOr<int64_t> keys = (*client)->FeatureKeyCount();
    if (keys.ok() && *keys > most) most = *keys, victim = port;
  }
  for (size_t i = half; i < workload.records.size(); ++i) {
    (*producer)->Produce(topic_, workload.records[i].key, workload.records[i].value);
  }
  absl::Status failover = cluster_->KillMasterAndWaitForFailover(victim, 30000);
  ASSERT_TRUE(failover.ok()) << failover << "\n" << cluster_->Logs();
  clock_.Log(absl::StrCat("killed master ", victim, " (", most, " feature keys); its replica took over"));
  clock_.EndPhase("failover");

  const int64_t final_watermark = ProduceClosingEvents(**producer, topic_, kPartitions);
  ASSERT_TRUE((*producer)->Flush(60000).ok());
  const size_t expected_keys = model.user_features().size() + model.sessions().size();
  std::optional<v1::JobStatus> final_job =
      WaitForJob(coordinator, "every feature in the cluster", 180000, alive, [&](const v1::JobStatus& j) {
        absl::StatusOr<v1::WorkerCounters> c = RunningCounters(j, 2);
        if (!c.ok() || c->watermark_ms() < final_watermark || c->features_emitted() != c->redis_features_written()) {
          return false;
        }
        long long keys = 0;
        for (int port : cluster_->MasterPorts()) {
          absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Connect("127.0.0.1", port, 0);
          absl::StatusOr<int64_t> n = client.ok() ? (*client)->FeatureKeyCount() : absl::StatusOr<int64_t>(-1);
          keys += n.ok() ? *n : 0;
        }
        return keys == static_cast<long long>(expected_keys);
      });
  ASSERT_TRUE(final_job.has_value()) << cluster_->Logs();
  clock_.EndPhase("drain");
  EXPECT_EQ(final_job->failures(), 0) << final_job->failure_cause();
  const v1::WorkerCounters counters = *JobCounters(*final_job, 2);
  EXPECT_EQ(counters.redis_features_rejected(), 0);
  EXPECT_GT(counters.redis_errors(), 0) << "the failover went unnoticed: was the killed master written to?";
  clock_.Log(Summarize(counters));

  const StoredFeatures stored = ReadCluster();
  CheckStoredFeatures(stored, model);
  CheckKeysAreOnTheirMasters(stored);
  absl::StatusOr<std::vector<RedisMonitor::Command>> writes = (*monitor)->Finish(30000);
  ASSERT_TRUE(writes.ok()) << writes.status();
  CheckFeatureWritesAreCorrectAtLeastOnce(model, *writes);
  EXPECT_EQ(CheckNoWriteOfASupersededAttempt(*writes) > 0, true) << "no write was attributed to an attempt";
}

}  // namespace
}  // namespace slipstream::it
