// CheckpointStore on a temporary directory: the chk-<n> layout, durable
// `_metadata`, scanning what an earlier run left, retention (with a restore
// source kept), DELETE_ON_CANCELLATION, and reading a checkpoint or
// savepoint back.
#include "coordinator/checkpoint/checkpoint_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/coordinator/checkpoint_dirs.h"

namespace slipstream {
namespace {

namespace fs = std::filesystem;

constexpr char kJobId[] = "0123456789abcdef0123456789abcdef";

class CheckpointStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::temp_directory_path() / absl::StrCat("slipstream-store-test-", ::getpid(), "-", info->name());
    fs::remove_all(root_);
    job_dir_ = root_ / kJobId;
  }
  void TearDown() override { fs::remove_all(root_); }

  CheckpointStore Store() {
    absl::StatusOr<CheckpointStore> store = CheckpointStore::Open(job_dir_.string());
    EXPECT_TRUE(store.ok()) << store.status();
    return *store;
  }

  static v1::CheckpointMetadata Metadata(int64_t id) {
    v1::CheckpointMetadata m;
    m.set_job_id(kJobId);
    m.set_checkpoint_id(id);
    m.set_trigger_time_ms(1000 * id);
    m.set_completion_time_ms(1000 * id + 50);
    m.set_topic("events");
    m.set_max_parallelism(128);
    m.set_num_partitions(4);
    m.set_attempt(1);
    v1::WorkerSnapshot* w = m.add_workers();
    w->set_worker_id("worker-0");
    w->set_state_path("worker-0");
    w->set_state_bytes(100 + id);
    return m;
  }

  // Writes a completed chk-<id> the way the coordinator does.
  void Complete(const CheckpointStore& store, int64_t id) {
    const std::string dir = store.CheckpointDir(id);
    ASSERT_TRUE(store.CreateDirectory(dir).ok());
    ASSERT_TRUE(store.WriteMetadata(dir, Metadata(id)).ok());
  }

  std::vector<int64_t> CheckpointDirs() const { return test_support::CheckpointIdsOnDisk(job_dir_); }

  fs::path root_;
  fs::path job_dir_;
};

TEST_F(CheckpointStoreTest, CheckpointDirectoriesAreChkNUnderTheAbsoluteJobDirectory) {
  const CheckpointStore store = Store();
  EXPECT_TRUE(fs::path(store.job_dir()).is_absolute());
  EXPECT_EQ(store.CheckpointDir(12), (job_dir_ / "chk-12").string());
  EXPECT_TRUE(absl::IsInvalidArgument(CheckpointStore::Open("").status()));
  EXPECT_FALSE(fs::exists(job_dir_)) << "Open touches nothing";
}

TEST_F(CheckpointStoreTest, ScanFindsTheNewestCompletedAndTheLargestId) {
  const CheckpointStore store = Store();
  absl::StatusOr<CheckpointStore::Contents> empty = store.Scan();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(fs::is_directory(job_dir_)) << "Scan creates the job directory";
  EXPECT_EQ(empty->last_id, 0);
  EXPECT_FALSE(empty->latest_completed.has_value());

  Complete(store, 2);
  Complete(store, 3);
  fs::create_directories(job_dir_ / "chk-5" / "worker-0");  // left by a crash: not completed
  fs::create_directories(job_dir_ / "chk-4");
  std::ofstream(job_dir_ / "chk-4" / "_metadata") << "not json";  // unreadable: skipped
  fs::create_directories(job_dir_ / "chk-x");
  absl::StatusOr<CheckpointStore::Contents> found = store.Scan();
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->last_id, 5);
  ASSERT_TRUE(found->latest_completed.has_value());
  EXPECT_EQ(found->latest_completed->path, store.CheckpointDir(3));
  EXPECT_EQ(found->latest_completed->metadata.SerializeAsString(), Metadata(3).SerializeAsString());
}

TEST_F(CheckpointStoreTest, MetadataIsWrittenWholeWithoutATemporaryFileLeft) {
  const CheckpointStore store = Store();
  Complete(store, 1);
  EXPECT_TRUE(fs::exists(job_dir_ / "chk-1" / "_metadata"));
  EXPECT_FALSE(fs::exists(job_dir_ / "chk-1" / "_metadata.tmp"));
  EXPECT_FALSE(store.WriteMetadata((root_ / "missing" / "dir").string(), Metadata(1)).ok());
}

TEST_F(CheckpointStoreTest, RetentionKeepsTheNewestAndDeletesOlderIncompleteDirectories) {
  const CheckpointStore store = Store();
  for (int64_t id = 1; id <= 4; ++id) Complete(store, id);
  fs::create_directories(job_dir_ / "chk-5");  // aborted, older than 6
  fs::create_directories(job_dir_ / "chk-7");  // in progress, newer than 6: stays
  Complete(store, 6);
  store.DeleteSubsumed(6, /*num_retained=*/2, /*keep=*/store.CheckpointDir(1));
  EXPECT_EQ(CheckpointDirs(), (std::vector<int64_t>{1, 4, 6, 7})) << "chk-1 is a restore source";
  store.DeleteSubsumed(6, /*num_retained=*/0, /*keep=*/"");
  EXPECT_EQ(CheckpointDirs(), (std::vector<int64_t>{6, 7})) << "at least one is retained";
}

TEST_F(CheckpointStoreTest, DeleteAllRemovesEveryCheckpointDirectoryAndNothingElse) {
  const CheckpointStore store = Store();
  Complete(store, 1);
  fs::create_directories(job_dir_ / "chk-2");
  fs::create_directories(job_dir_ / "other");
  EXPECT_EQ(store.DeleteAll(), 2u);
  EXPECT_TRUE(CheckpointDirs().empty());
  EXPECT_TRUE(fs::exists(job_dir_ / "other"));
  EXPECT_TRUE(store.Remove((job_dir_ / "other").string()).ok());
  EXPECT_FALSE(fs::exists(job_dir_ / "other"));
}

TEST_F(CheckpointStoreTest, ReadsACompletedCheckpointFromItsDirectoryOrMetadataFile) {
  const CheckpointStore store = Store();
  Complete(store, 3);
  const std::string chk = store.CheckpointDir(3);
  // A copy elsewhere, named like a savepoint, read through its _metadata file.
  const fs::path copy = root_ / "savepoint-x";
  fs::create_directories(copy);
  fs::copy_file(fs::path(chk) / "_metadata", copy / "_metadata");
  for (const std::string& path : {chk, chk + "/", (fs::path(chk) / "_metadata").string()}) {
    absl::StatusOr<CompletedCheckpoint> read = ReadCompletedCheckpoint(path);
    ASSERT_TRUE(read.ok()) << path << ": " << read.status();
    EXPECT_EQ(read->path, chk);
    EXPECT_EQ(read->metadata.SerializeAsString(), Metadata(3).SerializeAsString());
  }
  absl::StatusOr<CompletedCheckpoint> savepoint = ReadCompletedCheckpoint((copy / "_metadata").string());
  ASSERT_TRUE(savepoint.ok()) << savepoint.status();
  EXPECT_EQ(savepoint->path, copy.string());
  EXPECT_EQ(savepoint->metadata.checkpoint_id(), 3);
  // A chk-<n> directory's name sets the id.
  fs::create_directories(root_ / "chk-9");
  fs::copy_file(fs::path(chk) / "_metadata", root_ / "chk-9" / "_metadata");
  EXPECT_EQ(ReadCompletedCheckpoint((root_ / "chk-9").string())->metadata.checkpoint_id(), 9);
  EXPECT_EQ(ReadCompletedCheckpoint((root_ / "missing").string()).status().code(), absl::StatusCode::kNotFound);
  fs::create_directories(root_ / "empty");
  absl::StatusOr<CompletedCheckpoint> empty = ReadCompletedCheckpoint((root_ / "empty").string());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(empty.status().message()).find("_metadata"), std::string::npos) << empty.status();
  fs::create_directories(root_ / "garbage");
  std::ofstream(root_ / "garbage" / "_metadata") << "not json";
  EXPECT_EQ(ReadCompletedCheckpoint((root_ / "garbage").string()).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(CheckpointStoreTest, NewSavepointDirectoryIsNamedAfterTheJobInsideTheTarget) {
  absl::StatusOr<std::string> dir = NewSavepointDirectory((root_ / "savepoints").string(), "", kJobId);
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_EQ(fs::path(*dir).parent_path(), root_ / "savepoints");
  EXPECT_TRUE(fs::is_directory(root_ / "savepoints"));
  EXPECT_EQ(fs::path(*dir).filename().string().rfind("savepoint-012345-", 0), 0u) << *dir;
  EXPECT_EQ(fs::path(*dir).filename().string().size(), std::string("savepoint-012345-").size() + 12);
  EXPECT_FALSE(fs::exists(*dir)) << "created by the savepoint, not here";
  absl::StatusOr<std::string> by_default = NewSavepointDirectory("", (root_ / "default").string(), kJobId);
  ASSERT_TRUE(by_default.ok()) << by_default.status();
  EXPECT_EQ(fs::path(*by_default).parent_path(), root_ / "default");
  absl::StatusOr<std::string> none = NewSavepointDirectory("", "", kJobId);
  EXPECT_TRUE(absl::IsInvalidArgument(none.status()));
  EXPECT_NE(std::string(none.status().message()).find("state.savepoints.dir"), std::string::npos);
  EXPECT_TRUE(absl::IsInvalidArgument(NewSavepointDirectory("relative/dir", "", kJobId).status()));
}

}  // namespace
}  // namespace slipstream
