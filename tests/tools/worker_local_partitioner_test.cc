// WorkerLocalPartitioner (slipstream-gen --partition-for-workers): every key
// lands in a partition read by the worker owning its key group, under the
// coordinator's assignment (partition p -> worker p % N, contiguous key-group
// ranges by worker index).
#include <map>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/key_groups.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/gen/event_generator.h"

namespace slipstream {
namespace {

using ::testing::HasSubstr;

// The owner of a key group as the coordinator assigns it (independently of
// the partitioner's own table).
int OwnerOf(int key_group, int max_parallelism, int workers) {
  for (int i = 0; i < workers; ++i) {
    if (KeyGroupRangeForOperatorIndex(max_parallelism, workers, i).contains(key_group)) return i;
  }
  return -1;
}

TEST(WorkerLocalPartitionerTest, EveryKeyIsReadByTheOwnerOfItsKeyGroup) {
  for (int workers : {1, 2, 3, 4}) {
    for (int partitions : {4, 6, 7, 8}) {
      if (partitions < workers) continue;
      for (int max_parallelism : {128, 7, 32768}) {
        absl::StatusOr<WorkerLocalPartitioner> p =
            WorkerLocalPartitioner::Create(partitions, workers, max_parallelism);
        ASSERT_TRUE(p.ok()) << p.status();
        std::map<int, int> per_partition;
        for (int user = 1; user <= 5000; ++user) {
          const std::string key = absl::StrCat(user);
          const int owner = OwnerOf(KeyGroupForKey(key, max_parallelism), max_parallelism, workers);
          ASSERT_EQ(p->OwnerIndex(key), owner) << key;
          const int partition = p->PartitionFor(key);
          ASSERT_GE(partition, 0);
          ASSERT_LT(partition, partitions);
          ASSERT_EQ(partition % workers, owner)
              << "key " << key << " workers " << workers << " partitions " << partitions;
          ASSERT_EQ(p->PartitionFor(key), partition) << "not stable";
          ++per_partition[partition];
        }
        if (max_parallelism >= 128) {
          // Enough key groups per worker: every partition gets keys.
          EXPECT_EQ(static_cast<int>(per_partition.size()), partitions)
              << "workers " << workers << " partitions " << partitions;
        }
      }
    }
  }
}

TEST(WorkerLocalPartitionerTest, FlushKeysAreLocalToTheirPartition) {
  absl::StatusOr<WorkerLocalPartitioner> p = WorkerLocalPartitioner::Create(4, 2, 128);
  ASSERT_TRUE(p.ok()) << p.status();
  // "__watermark__" is in key group 105 of 128: worker 1 of 2 owns 64..127.
  ASSERT_EQ(p->OwnerIndex("__watermark__"), 1);
  std::set<std::string> keys;
  for (int partition = 0; partition < 4; ++partition) {
    absl::StatusOr<std::string> key = p->LocalKeyFor(partition, "__watermark__");
    ASSERT_TRUE(key.ok()) << key.status();
    EXPECT_EQ(p->OwnerIndex(*key), partition % 2) << *key;
    EXPECT_EQ(key->rfind("__watermark__", 0), 0u) << *key;
    keys.insert(*key);
  }
  EXPECT_TRUE(keys.count("__watermark__")) << "kept where already local";
  EXPECT_EQ(keys.size(), 2u);
  EXPECT_FALSE(p->LocalKeyFor(4, "__watermark__").ok());
}

TEST(WorkerLocalPartitionerTest, RejectsClustersItCannotServe) {
  EXPECT_THAT(std::string(WorkerLocalPartitioner::Create(2, 3, 128).status().message()),
              HasSubstr("partitions"));
  EXPECT_THAT(std::string(WorkerLocalPartitioner::Create(8, 4, 3).status().message()),
              HasSubstr("max parallelism"));
  EXPECT_FALSE(WorkerLocalPartitioner::Create(4, 0, 128).ok());
  EXPECT_FALSE(WorkerLocalPartitioner::Create(4, 1, 0).ok());
}

}  // namespace
}  // namespace slipstream
