#include "coordinator/assignment.h"

#include <gtest/gtest.h>

#include <set>

namespace slipstream {
namespace {

TEST(Assignment, EveryPartitionExactlyOnceAndBalanced) {
  for (int partitions : {1, 3, 4, 7, 12, 64}) {
    for (int workers = 1; workers <= 9; ++workers) {
      const std::vector<WorkerAssignment> plan = ComputeAssignment(partitions, 128, workers);
      ASSERT_EQ(plan.size(), static_cast<size_t>(workers));
      std::multiset<int> seen;
      size_t fewest = SIZE_MAX, most = 0;
      for (const WorkerAssignment& w : plan) {
        seen.insert(w.partitions.begin(), w.partitions.end());
        fewest = std::min(fewest, w.partitions.size());
        most = std::max(most, w.partitions.size());
      }
      EXPECT_EQ(seen.size(), static_cast<size_t>(partitions));
      for (int p = 0; p < partitions; ++p) EXPECT_EQ(seen.count(p), 1u) << p;
      EXPECT_LE(most - fewest, 1u) << partitions << " partitions over " << workers << " workers";
    }
  }
}

TEST(Assignment, KeyGroupRangesCoverAllKeyGroupsOnce) {
  for (int max_parallelism : {1, 128, 1000}) {
    for (int workers = 1; workers <= std::min(9, max_parallelism); ++workers) {
      const std::vector<WorkerAssignment> plan = ComputeAssignment(4, max_parallelism, workers);
      std::vector<int> owners(max_parallelism, 0);
      for (const WorkerAssignment& w : plan) {
        for (int kg = w.key_groups.first; kg <= w.key_groups.last; ++kg) ++owners[kg];
      }
      for (int kg = 0; kg < max_parallelism; ++kg) EXPECT_EQ(owners[kg], 1) << kg;
    }
  }
}

TEST(Assignment, OneWorkerOwnsEverything) {
  const std::vector<WorkerAssignment> plan = ComputeAssignment(4, 128, 1);
  EXPECT_EQ(plan[0].partitions, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(plan[0].key_groups, (KeyGroupRange{0, 127}));
}

}  // namespace
}  // namespace slipstream
