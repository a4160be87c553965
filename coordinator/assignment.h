// Assignment: which Kafka partitions and which key groups each worker owns.
// Partitions are dealt round-robin (worker i reads partitions i, i+N, ...);
// key groups are split into contiguous balanced ranges exactly like Flink's
// KeyGroupRangeAssignment.computeKeyGroupRangeForOperatorIndex.
#pragma once

#include <vector>

#include "common/key_groups.h"

namespace slipstream {

struct WorkerAssignment {
  std::vector<int> partitions;
  KeyGroupRange key_groups;
  bool operator==(const WorkerAssignment&) const = default;
};

// One entry per worker index (0..num_workers-1).
std::vector<WorkerAssignment> ComputeAssignment(int num_partitions, int max_parallelism, int num_workers);

}  // namespace slipstream
