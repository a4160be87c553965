// PlanDeployment: the next attempt's assignments, as a pure function of the
// workers that take part, the topic's partitions and the checkpoint it
// restores. Partitions go round-robin and key groups in Flink's contiguous
// ranges (coordinator/assignment.h); each worker learns every peer's data
// endpoint, and its partitions' offsets, watermarks and idleness from the
// restored checkpoint.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/features/feature_definition.h"
#include "coordinator/assignment.h"
#include "coordinator/checkpoint/checkpoint_store.h"
#include "proto/slipstream.pb.h"

namespace slipstream {

struct DeploymentWorker {
  std::string id;
  std::string host;
  int data_port = 0;
};

struct DeploymentInput {
  std::string job_id;
  std::string topic;
  int max_parallelism = 128;
  int64_t attempt = 0;  // the attempt being deployed
  int num_partitions = 0;
  // In index order (registration order: indices, and with them partitions
  // and key-group ranges, stay stable for workers that stay).
  std::vector<DeploymentWorker> workers;
  const CompletedCheckpoint* restore = nullptr;  // null: empty state, kafka.starting-offsets
  // Partitions found by partition discovery: read from their earliest
  // offset until a checkpoint has theirs.
  std::set<int> discovered_partitions;
  // The job's feature definition; every assignment carries its text, and a
  // restore whose checkpoint was written under another (compatible) one
  // carries that one's too.
  const FeatureDefinition* features = nullptr;
  // execution.runtime-mode=BATCH: each assignment carries its partitions'
  // stopping offsets (a partition missing here has none: no input).
  bool bounded = false;
  const std::map<int, int64_t>* stopping_offsets = nullptr;
  std::optional<int64_t> starting_timestamp_ms;  // kafka.starting-timestamp
};

struct DeploymentPlan {
  std::vector<v1::Assignment> assignments;  // one per input worker, same order
  std::vector<v1::PeerEndpoint> peers;
  std::vector<WorkerAssignment> ranges;     // partitions and key groups per worker
  int restored_offsets = 0;                 // partitions the checkpoint has an offset for
};

DeploymentPlan PlanDeployment(const DeploymentInput& input);

// A checkpoint can be restored into this job: same key groups and topic,
// its snapshots cover every key group, and its feature definition is the
// job's or one the job only added groups or features to (`*added` lists
// those; they start empty). FailedPrecondition naming the key to keep (or
// the group and feature that changed) otherwise.
[[nodiscard]] absl::Status CheckRestorable(const CompletedCheckpoint& checkpoint, int max_parallelism,
                                           const std::string& topic, const FeatureDefinition& features,
                                           std::vector<std::string>* added);

}  // namespace slipstream
