// KafkaSource's bounded input (execution.runtime-mode=BATCH) without a
// broker: partitions positioned from restored offsets need no broker call,
// and nothing is fetched before the first Poll.
#include "worker/source/kafka_source.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

namespace slipstream {
namespace {

std::unique_ptr<KafkaSource> SourceAt(const std::vector<int>& partitions, const std::map<int, int64_t>& next) {
  // Nothing listens here; nothing is asked of it either.
  const std::map<std::string, std::string> properties = {{"bootstrap.servers", "127.0.0.1:1"}};
  absl::StatusOr<std::unique_ptr<KafkaSource>> source =
      KafkaSource::Create(properties, "events", partitions, StartingOffsets::kEarliest, next);
  EXPECT_TRUE(source.ok()) << source.status();
  return source.ok() ? *std::move(source) : nullptr;
}

TEST(KafkaSourceBounds, UnboundedPartitionsNeverFinish) {
  std::unique_ptr<KafkaSource> source = SourceAt({0, 1}, {{0, 10}, {1, 0}});
  ASSERT_NE(source, nullptr);
  EXPECT_FALSE(source->bounded());
  EXPECT_FALSE(source->Finished(0));
  EXPECT_FALSE(source->AllFinished());
}

TEST(KafkaSourceBounds, APartitionAtItsStoppingOffsetIsFinished) {
  std::unique_ptr<KafkaSource> source = SourceAt({0, 1, 2}, {{0, 10}, {1, 3}, {2, 7}});
  ASSERT_NE(source, nullptr);
  // 0: next offset 10, stops at 10 (read to its end); 1: 3 < 5 still to
  // read; 2: starts after its stopping offset (a start timestamp after the
  // stop): nothing to read.
  source->SetStoppingOffsets({{0, 10}, {1, 5}, {2, 4}});
  EXPECT_TRUE(source->bounded());
  EXPECT_TRUE(source->Finished(0));
  EXPECT_FALSE(source->Finished(1));
  EXPECT_TRUE(source->Finished(2));
  EXPECT_FALSE(source->AllFinished());
}

TEST(KafkaSourceBounds, APartitionWithoutAStoppingOffsetHasNoInput) {
  std::unique_ptr<KafkaSource> source = SourceAt({0}, {{0, 0}});
  ASSERT_NE(source, nullptr);
  source->SetStoppingOffsets({});
  EXPECT_TRUE(source->Finished(0));
  EXPECT_TRUE(source->AllFinished());
}

TEST(KafkaSourceBounds, AWorkerWithoutPartitionsIsFinishedAtOnce) {
  std::unique_ptr<KafkaSource> source = SourceAt({}, {});
  ASSERT_NE(source, nullptr);
  EXPECT_FALSE(source->AllFinished());  // unbounded: runs until stopped
  source->SetStoppingOffsets({});
  EXPECT_TRUE(source->AllFinished());
}

}  // namespace
}  // namespace slipstream
