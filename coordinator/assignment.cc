#include "coordinator/assignment.h"

namespace slipstream {

std::vector<WorkerAssignment> ComputeAssignment(int num_partitions, int max_parallelism, int num_workers) {
  std::vector<WorkerAssignment> result(num_workers);
  for (int p = 0; p < num_partitions; ++p) result[WorkerOfPartition(p, num_workers)].partitions.push_back(p);
  for (int i = 0; i < num_workers; ++i) {
    result[i].key_groups = KeyGroupRangeForOperatorIndex(max_parallelism, num_workers, i);
  }
  return result;
}

}  // namespace slipstream
