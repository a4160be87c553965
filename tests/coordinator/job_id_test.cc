#include "coordinator/job_id.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace slipstream {
namespace {

TEST(JobId, CreatedOnceAndFoundAgainAfterARestart) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("slipstream-job-id-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  absl::StatusOr<std::string> first = LoadOrCreateJobId(dir.string());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(IsJobId(*first)) << *first;
  EXPECT_TRUE(std::filesystem::is_directory(dir / *first));
  absl::StatusOr<std::string> again = LoadOrCreateJobId(dir.string());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);
  std::filesystem::remove_all(dir);
}

TEST(JobId, AJobThatEndedIsNotResumedButReplacedByANewOne) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("slipstream-job-ended-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  absl::StatusOr<std::string> first = LoadOrCreateJobId(dir.string());
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(RecordJobEnded((dir / *first).string(), "CANCELED", "job was CANCELED").ok());
  std::vector<std::string> ended;
  absl::StatusOr<std::string> second = LoadOrCreateJobId(dir.string(), &ended);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(*second, *first);
  EXPECT_TRUE(IsJobId(*second));
  EXPECT_EQ(ended, std::vector<std::string>{*first});
  // The new job is found again; the ended one keeps its files.
  absl::StatusOr<std::string> again = LoadOrCreateJobId(dir.string());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *second);
  EXPECT_TRUE(std::filesystem::exists(dir / *first / kJobEndedFile));
  std::filesystem::remove_all(dir);
}

TEST(JobId, RecognisesOnlyThirtyTwoLowercaseHexCharacters) {
  EXPECT_TRUE(IsJobId("0123456789abcdef0123456789abcdef"));
  EXPECT_FALSE(IsJobId("0123456789ABCDEF0123456789ABCDEF"));
  EXPECT_FALSE(IsJobId("0123456789abcdef"));
  EXPECT_FALSE(IsJobId("chk-1"));
}

TEST(JobId, UnusableDirectoryIsAnErrorNamingTheKey) {
  absl::StatusOr<std::string> id = LoadOrCreateJobId("/proc/slipstream-cannot-create-this");
  ASSERT_FALSE(id.ok());
  EXPECT_NE(std::string(id.status().message()).find("state.checkpoints.dir"), std::string::npos);
}

}  // namespace
}  // namespace slipstream
