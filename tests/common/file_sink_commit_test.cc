// CommitFileSinkAttempt: a finished bounded run's part files renamed into
// place, earlier output replaced, failed attempts' files removed.
#include "common/file_sink_commit.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipstream {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class FileSinkCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / absl::StrCat("file_sink_commit_test_", ::getpid(), "_",
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  void WritePart(int64_t attempt, int index, const std::string& contents) const {
    const std::string path = FileSinkInProgressPart(root_.string(), "job", attempt, index);
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << contents;
  }

  static std::string Read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::set<std::string> JobDirEntries() const {
    std::set<std::string> names;
    for (const fs::directory_entry& e : fs::directory_iterator(root_ / "job")) names.insert(e.path().filename());
    return names;
  }

  fs::path root_;
};

TEST_F(FileSinkCommitTest, LayoutIsTheDocumentedOne) {
  EXPECT_EQ(FileSinkInProgressPart("/out", "j1", 4, 2), "/out/j1/.inprogress/attempt-4/part-2.jsonl");
  EXPECT_EQ(FileSinkRestoredMarker("/out", "j1", 4, 2), "/out/j1/.inprogress/attempt-4/part-2.restored");
  EXPECT_EQ(FileSinkFinalPart("/out", "j1", 2, 3), "/out/j1/part-2-of-3.jsonl");
}

TEST_F(FileSinkCommitTest, RenamesEveryPartAndRemovesFailedAttempts) {
  WritePart(1, 0, "failed attempt\n");
  WritePart(2, 0, "a\n");
  WritePart(2, 1, "b\n");
  WritePart(2, 2, "");  // a worker that wrote nothing still has its part
  ASSERT_TRUE(CommitFileSinkAttempt(root_.string(), "job", 2, 3).ok());
  EXPECT_EQ(JobDirEntries(), (std::set<std::string>{"part-0-of-3.jsonl", "part-1-of-3.jsonl", "part-2-of-3.jsonl"}));
  EXPECT_EQ(Read(root_ / "job" / "part-0-of-3.jsonl"), "a\n");
  EXPECT_EQ(Read(root_ / "job" / "part-1-of-3.jsonl"), "b\n");
  EXPECT_EQ(Read(root_ / "job" / "part-2-of-3.jsonl"), "");
  EXPECT_FALSE(fs::exists(root_ / "job" / ".inprogress"));
}

TEST_F(FileSinkCommitTest, AcceptsAFileUri) {
  WritePart(1, 0, "a\n");
  ASSERT_TRUE(CommitFileSinkAttempt("file://" + root_.string(), "job", 1, 1).ok());
  EXPECT_EQ(Read(root_ / "job" / "part-0-of-1.jsonl"), "a\n");
  const absl::Status remote = CommitFileSinkAttempt("s3://bucket/x", "job", 1, 1);
  EXPECT_FALSE(remote.ok());
  EXPECT_THAT(std::string(remote.message()), HasSubstr("sink.path"));
}

TEST_F(FileSinkCommitTest, AMissingPartIsAnErrorNamingItAndChangesNothing) {
  WritePart(1, 0, "old\n");
  ASSERT_TRUE(CommitFileSinkAttempt(root_.string(), "job", 1, 1).ok());
  WritePart(2, 0, "a\n");
  WritePart(2, 2, "c\n");
  const absl::Status s = CommitFileSinkAttempt(root_.string(), "job", 2, 3);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("part 1 of 3"));
  EXPECT_THAT(std::string(s.message()), HasSubstr(FileSinkInProgressPart(root_.string(), "job", 2, 1)));
  // The earlier commit's output and this attempt's parts are untouched.
  EXPECT_EQ(Read(root_ / "job" / "part-0-of-1.jsonl"), "old\n");
  EXPECT_TRUE(fs::exists(FileSinkInProgressPart(root_.string(), "job", 2, 0)));
}

TEST_F(FileSinkCommitTest, ReplacesTheFinalPartsOfAnEarlierCommit) {
  WritePart(1, 0, "x0\n");
  WritePart(1, 1, "x1\n");
  WritePart(1, 2, "x2\n");
  ASSERT_TRUE(CommitFileSinkAttempt(root_.string(), "job", 1, 3).ok());
  std::ofstream(root_ / "job" / "README") << "not a part: kept";
  // The job ran again with two workers.
  WritePart(5, 0, "y0\n");
  WritePart(5, 1, "y1\n");
  ASSERT_TRUE(CommitFileSinkAttempt(root_.string(), "job", 5, 2).ok());
  EXPECT_EQ(JobDirEntries(), (std::set<std::string>{"README", "part-0-of-2.jsonl", "part-1-of-2.jsonl"}));
  EXPECT_EQ(Read(root_ / "job" / "part-0-of-2.jsonl"), "y0\n");
  EXPECT_EQ(Read(root_ / "job" / "part-1-of-2.jsonl"), "y1\n");
}

TEST_F(FileSinkCommitTest, RefusesAnAttemptThatRestoredACheckpoint) {
  WritePart(3, 0, "a\n");
  WritePart(3, 1, "after the checkpoint only\n");
  std::ofstream(FileSinkRestoredMarker(root_.string(), "job", 3, 1)) << "/chk/chk-4\n";
  const absl::Status s = CommitFileSinkAttempt(root_.string(), "job", 3, 2);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("worker 1 restored a checkpoint"));
  EXPECT_TRUE(fs::exists(FileSinkInProgressPart(root_.string(), "job", 3, 0)));
}

TEST_F(FileSinkCommitTest, RejectsNonsense) {
  EXPECT_TRUE(absl::IsInvalidArgument(CommitFileSinkAttempt(root_.string(), "job", 1, 0)));
  EXPECT_TRUE(absl::IsInvalidArgument(CommitFileSinkAttempt(root_.string(), "", 1, 1)));
  EXPECT_TRUE(absl::IsNotFound(CommitFileSinkAttempt(root_.string(), "job", 1, 1)));  // nothing written at all
}

}  // namespace
}  // namespace slipstream
