// StateDirLock and RemoveAbandonedStateDirs: a directory held by a live
// process is never taken; one whose owner died (SIGKILL included) or that
// has no owner is removed with its parents once they are empty.
#include "worker/state/state_dir_lock.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace slipstream {
namespace {

namespace fs = std::filesystem;

class StateDirLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("state-dir-lock-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string Dir(const std::string& job, const std::string& worker, int attempt) const {
    return (root_ / job / worker / ("attempt-" + std::to_string(attempt))).string();
  }
  fs::path root_;
};

TEST_F(StateDirLockTest, AHeldDirectoryCannotBeTakenTwiceAndIsKept) {
  absl::StatusOr<std::unique_ptr<StateDirLock>> held = StateDirLock::Acquire(root_.string(), Dir("j", "w1", 1));
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_TRUE(fs::is_directory(Dir("j", "w1", 1)));
  absl::StatusOr<std::unique_ptr<StateDirLock>> again = StateDirLock::Acquire(root_.string(), Dir("j", "w1", 1));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition) << again.status();
  absl::StatusOr<int> removed = RemoveAbandonedStateDirs(root_.string());
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 0);
  EXPECT_TRUE(fs::is_directory(Dir("j", "w1", 1)));
}

TEST_F(StateDirLockTest, ReleasedAndOwnerlessDirectoriesAreRemovedWithTheirEmptyParents) {
  absl::StatusOr<std::unique_ptr<StateDirLock>> live = StateDirLock::Acquire(root_.string(), Dir("j", "live", 2));
  ASSERT_TRUE(live.ok()) << live.status();
  {
    absl::StatusOr<std::unique_ptr<StateDirLock>> released = StateDirLock::Acquire(root_.string(), Dir("j", "gone", 1));
    ASSERT_TRUE(released.ok()) << released.status();
    std::ofstream(Dir("j", "gone", 1) + "/000001.sst") << "state";
  }
  fs::create_directories(Dir("old-job", "w", 7));  // no owner file at all
  absl::StatusOr<int> removed = RemoveAbandonedStateDirs(root_.string());
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 2);
  EXPECT_TRUE(fs::is_directory(Dir("j", "live", 2)));
  EXPECT_FALSE(fs::exists(root_ / "j" / "gone"));
  EXPECT_FALSE(fs::exists(root_ / "old-job"));
}

TEST_F(StateDirLockTest, TheDirectoryOfAKilledProcessIsRemoved) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    absl::StatusOr<std::unique_ptr<StateDirLock>> lock = StateDirLock::Acquire(root_.string(), Dir("j", "killed", 3));
    const char byte = lock.ok() ? 1 : 0;
    (void)!::write(ready[1], &byte, 1);
    for (;;) ::pause();
  }
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  ASSERT_EQ(byte, 1) << "the child could not take the lock";
  absl::StatusOr<int> while_alive = RemoveAbandonedStateDirs(root_.string());
  ASSERT_TRUE(while_alive.ok());
  EXPECT_EQ(*while_alive, 0) << "the directory of a live process was taken";
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  absl::StatusOr<int> after = RemoveAbandonedStateDirs(root_.string());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, 1);
  EXPECT_FALSE(fs::exists(root_ / "j"));
  ::close(ready[0]);
  ::close(ready[1]);
}

}  // namespace
}  // namespace slipstream
