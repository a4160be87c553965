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

// When the cluster grows or shrinks by one worker, contiguous ranges move as
// little as Flink's do: every worker that stays keeps part of its range, at
// most about half of the key groups change owner, and the plan depends only
// on the worker count (so every worker computes the same map).
TEST(Assignment, KeyGroupsMoveLittleWhenWorkersChangeByOne) {
  for (int max_parallelism : {128, 1000}) {
    for (int workers = 1; workers <= 12; ++workers) {
      const std::vector<WorkerAssignment> before = ComputeAssignment(4, max_parallelism, workers);
      const std::vector<WorkerAssignment> after = ComputeAssignment(4, max_parallelism, workers + 1);
      EXPECT_EQ(before, ComputeAssignment(4, max_parallelism, workers));
      std::vector<int> owner_before(max_parallelism), owner_after(max_parallelism);
      for (int i = 0; i < workers; ++i) {
        for (int kg = before[i].key_groups.first; kg <= before[i].key_groups.last; ++kg) owner_before[kg] = i;
      }
      for (int i = 0; i <= workers; ++i) {
        for (int kg = after[i].key_groups.first; kg <= after[i].key_groups.last; ++kg) owner_after[kg] = i;
      }
      int moved = 0;
      for (int kg = 0; kg < max_parallelism; ++kg) moved += owner_before[kg] != owner_after[kg] ? 1 : 0;
      // Contiguous ranges shift by about half in total (plus rounding, at
      // most one key group per boundary); a modulo-style assignment would
      // move workers/(workers+1) of them.
      EXPECT_LE(moved, max_parallelism / 2 + workers + 1) << workers << " -> " << workers + 1 << " workers";
      for (int i = 0; i < workers; ++i) {
        const KeyGroupRange& a = before[i].key_groups;
        const KeyGroupRange& b = after[i].key_groups;
        EXPECT_LE(std::max(a.first, b.first), std::min(a.last, b.last))
            << "worker " << i << " keeps nothing of " << a.ToString() << " when " << workers + 1
            << " workers share " << max_parallelism << " key groups (now " << b.ToString() << ")";
      }
      // Balanced: range sizes differ by at most one.
      int smallest = max_parallelism, largest = 0;
      for (const WorkerAssignment& w : after) {
        smallest = std::min(smallest, w.key_groups.size());
        largest = std::max(largest, w.key_groups.size());
      }
      EXPECT_LE(largest - smallest, 1) << workers + 1 << " workers";
    }
  }
}

}  // namespace
}  // namespace slipstream
