// StateReleaser: a finished task's state is freed (and its directory
// deleted) only after the next task's restore, or after the hold; never lost.
#include "worker/pipeline/state_releaser.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "common/key_groups.h"
#include "tests/worker/engine_test_util.h"
#include "worker/state/state_store.h"
#include "worker/window/window_engine.h"

namespace slipstream {
namespace {

using Clock = std::chrono::steady_clock;
using testing_util::TempDir;

// A task's state with one user in it, in `dir`.
std::unique_ptr<TaskState> StateWithOneUser(const std::string& dir) {
  absl::StatusOr<std::unique_ptr<StateStore>> store = StateStore::Open(dir, StateStoreOptions{});
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return nullptr;
  auto engine = std::make_unique<WindowEngine>(store->get(), KeyGroupRange{0, 127});
  Event event;
  event.user_id = "u1";
  event.fields.resize(4);  // the default schema's four fields, all present
  for (FieldValue& f : event.fields) f.present = true;
  event.fields[1].string_value = "view";
  event.event_time_ms = 1'700'000'000'000;
  EXPECT_TRUE(engine->ProcessEvent(KeyGroupForKey(event.user_id, 128), event).ok());
  EXPECT_TRUE(engine->Flush().ok());
  return std::make_unique<TaskState>(std::move(*store), std::move(engine));
}

TEST(StateReleaser, HoldsTheStateUntilResumedThenFreesItAndDeletesItsDirectory) {
  TempDir root;
  const std::string dir = root.path() + "/attempt-1";
  StateReleaser releaser(/*hold_ms=*/60000);
  releaser.Release(StateWithOneUser(dir), dir, "attempt 1");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(std::filesystem::exists(dir)) << "freed while the next task may still restore";
  releaser.Resume();
  releaser.Wait();
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(StateReleaser, FreesAfterTheHoldWhenNoTaskFollows) {
  TempDir root;
  const std::string dir = root.path() + "/attempt-1";
  StateReleaser releaser(/*hold_ms=*/300);
  const Clock::time_point released_at = Clock::now();
  releaser.Release(StateWithOneUser(dir), dir, "attempt 1");
  releaser.Wait();
  EXPECT_GE(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - released_at).count(), 300);
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(StateReleaser, DestructionFreesWhatIsStillHeld) {
  TempDir root;
  const std::string first = root.path() + "/attempt-1";
  const std::string second = root.path() + "/attempt-2";
  {
    StateReleaser releaser(/*hold_ms=*/60000);
    releaser.Release(StateWithOneUser(first), first, "attempt 1");
    releaser.Release(StateWithOneUser(second), second, "attempt 2");
  }
  EXPECT_FALSE(std::filesystem::exists(first));
  EXPECT_FALSE(std::filesystem::exists(second));
}

}  // namespace
}  // namespace slipstream
