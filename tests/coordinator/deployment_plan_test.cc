// PlanDeployment and CheckRestorable: pure functions, checked value by value.
#include "coordinator/job/deployment_plan.h"

#include <gtest/gtest.h>

namespace slipstream {
namespace {

v1::PartitionOffset Offset(int partition, int64_t next, int64_t watermark = 0) {
  v1::PartitionOffset o;
  o.set_partition(partition);
  o.set_next_offset(next);
  o.set_watermark_ms(watermark);
  return o;
}

DeploymentInput TwoWorkers() {
  DeploymentInput input;
  input.job_id = "job-1";
  input.topic = "events";
  input.max_parallelism = 8;
  input.attempt = 3;
  input.num_partitions = 4;
  input.workers = {{"w-a", "10.0.0.1", 7001}, {"w-b", "10.0.0.2", 7002}};
  return input;
}

TEST(DeploymentPlan, EveryWorkerGetsItsPartitionsItsRangeAndEveryPeer) {
  const DeploymentPlan plan = PlanDeployment(TwoWorkers());
  ASSERT_EQ(plan.assignments.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const v1::Assignment& a = plan.assignments[i];
    EXPECT_EQ(a.job_id(), "job-1");
    EXPECT_EQ(a.attempt(), 3);
    EXPECT_EQ(a.topic(), "events");
    EXPECT_EQ(a.worker_index(), i);
    ASSERT_EQ(a.workers_size(), 2);
    EXPECT_EQ(a.workers(1).host(), "10.0.0.2");
    EXPECT_EQ(a.workers(1).data_port(), 7002);
    EXPECT_FALSE(a.has_restore());
  }
  EXPECT_EQ(plan.assignments[0].partitions_size(), 2);
  EXPECT_EQ(plan.assignments[0].key_groups(0).first(), 0);
  EXPECT_EQ(plan.assignments[0].key_groups(0).last(), 3);
  EXPECT_EQ(plan.assignments[1].key_groups(0).first(), 4);
  EXPECT_EQ(plan.assignments[1].key_groups(0).last(), 7);
  EXPECT_EQ(plan.peers[1].worker_id(), "w-b");
}

TEST(DeploymentPlan, ARestoreCarriesTheNewestOffsetOfEachPartitionAndSkipsUnreadOnes) {
  CompletedCheckpoint checkpoint;
  checkpoint.path = "/ck/chk-9";
  checkpoint.metadata.set_checkpoint_id(9);
  v1::WorkerSnapshot* old_owner = checkpoint.metadata.add_workers();
  *old_owner->add_offsets() = Offset(0, 100, 1000);
  *old_owner->add_offsets() = Offset(1, -1);
  v1::WorkerSnapshot* new_owner = checkpoint.metadata.add_workers();
  *new_owner->add_offsets() = Offset(0, 150, 2000);
  *new_owner->add_offsets() = Offset(2, 7);
  DeploymentInput input = TwoWorkers();
  input.restore = &checkpoint;
  const DeploymentPlan plan = PlanDeployment(input);
  EXPECT_EQ(plan.restored_offsets, 2) << "partition 1 was never read";
  bool saw_partition_0 = false;
  for (const v1::Assignment& a : plan.assignments) {
    EXPECT_EQ(a.restore().checkpoint_path(), "/ck/chk-9");
    EXPECT_EQ(a.restore().checkpoint_id(), 9);
    EXPECT_EQ(a.restore().snapshots_size(), 2);
    for (const v1::PartitionOffset& o : a.restore().offsets()) {
      EXPECT_NE(o.partition(), 1);
      if (o.partition() == 0) {
        saw_partition_0 = true;
        EXPECT_EQ(o.next_offset(), 150);
        EXPECT_EQ(o.watermark_ms(), 2000) << "the watermark goes with its offset";
      }
    }
  }
  EXPECT_TRUE(saw_partition_0);
}

TEST(DeploymentPlan, DiscoveredPartitionsStartEarliestUntilACheckpointHasThem) {
  CompletedCheckpoint checkpoint;
  checkpoint.path = "/ck/chk-2";
  *checkpoint.metadata.add_workers()->add_offsets() = Offset(3, 40);
  DeploymentInput input = TwoWorkers();
  input.discovered_partitions = {2, 3};
  input.restore = &checkpoint;
  const DeploymentPlan plan = PlanDeployment(input);
  std::vector<int> earliest;
  for (const v1::Assignment& a : plan.assignments) {
    for (int p : a.earliest_partitions()) earliest.push_back(p);
  }
  EXPECT_EQ(earliest, std::vector<int>({2})) << "partition 3 has a checkpointed offset";
}

TEST(DeploymentPlan, ACheckpointOfAnotherJobShapeIsNotRestorable) {
  std::vector<std::string> added;
  CompletedCheckpoint checkpoint;
  checkpoint.path = "/ck/chk-5";
  checkpoint.metadata.set_checkpoint_id(5);
  checkpoint.metadata.set_max_parallelism(8);
  checkpoint.metadata.set_topic("events");
  v1::WorkerSnapshot* s = checkpoint.metadata.add_workers();
  s->mutable_key_groups()->set_first(0);
  s->mutable_key_groups()->set_last(7);
  EXPECT_TRUE(CheckRestorable(checkpoint, 8, "events", DefaultFeatureDefinition(), &added).ok());

  const absl::Status parallelism = CheckRestorable(checkpoint, 16, "events", DefaultFeatureDefinition(), &added);
  EXPECT_EQ(parallelism.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(parallelism.message().find("pipeline.max-parallelism=8"), std::string::npos) << parallelism;

  const absl::Status topic = CheckRestorable(checkpoint, 8, "clicks", DefaultFeatureDefinition(), &added);
  EXPECT_NE(topic.message().find("kafka.topic \"events\""), std::string::npos) << topic;

  s->mutable_key_groups()->set_last(5);
  const absl::Status gap = CheckRestorable(checkpoint, 8, "events", DefaultFeatureDefinition(), &added);
  EXPECT_NE(gap.message().find("do not cover key group 6 of 0-7"), std::string::npos) << gap;
}

// The shipped definition with `replace` applied (from -> to) and `append`ed.
FeatureDefinition Edited(const std::string& from, const std::string& to, const std::string& append = "") {
  std::string text(DefaultFeaturesYaml());
  if (!from.empty()) {
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
  }
  absl::StatusOr<FeatureDefinition> parsed = ParseFeatureDefinition(text + append, "edited.yaml");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *std::move(parsed) : DefaultFeatureDefinition();
}

CompletedCheckpoint CheckpointUnder(const FeatureDefinition* definition) {
  CompletedCheckpoint checkpoint;
  checkpoint.path = "/ck/chk-9";
  checkpoint.metadata.set_checkpoint_id(9);
  checkpoint.metadata.set_max_parallelism(8);
  checkpoint.metadata.set_topic("events");
  if (definition != nullptr) {
    checkpoint.metadata.set_feature_definition(definition->text);
    checkpoint.metadata.set_feature_fingerprint(definition->fingerprint);
  }
  v1::WorkerSnapshot* s = checkpoint.metadata.add_workers();
  s->mutable_key_groups()->set_first(0);
  s->mutable_key_groups()->set_last(7);
  return checkpoint;
}

TEST(DeploymentPlan, ACheckpointRestoresUnderItsDefinitionOrOneThatOnlyAdds) {
  std::vector<std::string> added;
  const FeatureDefinition& shipped = DefaultFeatureDefinition();
  EXPECT_TRUE(CheckRestorable(CheckpointUnder(&shipped), 8, "events", shipped, &added).ok());
  EXPECT_TRUE(added.empty());
  // Before definitions existed a checkpoint held the shipped groups.
  EXPECT_TRUE(CheckRestorable(CheckpointUnder(nullptr), 8, "events", shipped, &added).ok());

  const FeatureDefinition more = Edited("", "", R"yaml(
  - name: purchase_features
    window: {type: sliding, size: 24 h, slide: 1 h}
    key: "purchase_features:{user_id}"
    ttl: 25 h
    features: [{name: purchase_amount_24h, aggregate: sum, field: price, filter: "event_type == 'purchase'"}, window_end]
)yaml");
  EXPECT_TRUE(CheckRestorable(CheckpointUnder(&shipped), 8, "events", more, &added).ok());
  EXPECT_EQ(added, std::vector<std::string>({"purchase_features"}));

  const FeatureDefinition changed = Edited("filter: \"event_type == 'cart'\"", "filter: \"event_type != 'cart'\"");
  const absl::Status refused = CheckRestorable(CheckpointUnder(&shipped), 8, "events", changed, &added);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("cart_count_1h"), std::string::npos) << refused;
  EXPECT_NE(refused.message().find("user_features"), std::string::npos) << refused;

  // The plan sends the checkpoint's definition only when the job's differs.
  DeploymentInput input;
  input.job_id = "job";
  input.topic = "events";
  input.max_parallelism = 8;
  input.attempt = 2;
  input.num_partitions = 1;
  input.workers = {{"w1", "127.0.0.1", 7001}};
  const CompletedCheckpoint old = CheckpointUnder(nullptr);
  input.restore = &old;
  input.features = &more;
  DeploymentPlan plan = PlanDeployment(input);
  EXPECT_EQ(plan.assignments[0].feature_definition(), more.text);
  EXPECT_EQ(plan.assignments[0].restore().feature_definition(), std::string(DefaultFeaturesYaml()));
  input.features = &shipped;
  plan = PlanDeployment(input);
  EXPECT_TRUE(plan.assignments[0].restore().feature_definition().empty());
}

}  // namespace
}  // namespace slipstream
