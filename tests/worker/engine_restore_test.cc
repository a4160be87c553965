// Snapshot and restore of the window engine's state, the basis of
// checkpoints: an engine restored from a snapshot begun at any point must
// continue exactly like the engine that never stopped — also though the
// original went on processing while its snapshot was still being written
// (copy-on-write), and when the snapshot file is split by key-group range onto
// several engines (how state is redistributed onto another number of workers).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/worker/engine_test_util.h"

namespace slipstream {
namespace {

using testing_util::EngineHarness;
using testing_util::kHour;
using testing_util::kMaxParallelism;
using testing_util::kMin;
using testing_util::TempDir;
using testing_util::EventType;
using testing_util::MakeEvent;

struct Op {
  bool advance = false;  // else an event
  Event event;
  int64_t watermark = 0;
};

std::vector<Op> Generate(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Op> ops;
  const int users = 5 + static_cast<int>(rng() % 60);
  int64_t now = 1'700'000'000'000 + static_cast<int64_t>(rng() % kHour);
  int64_t watermark = now - kHour;
  const int n = 300 + static_cast<int>(rng() % 1500);
  for (int i = 0; i < n; ++i) {
    if (rng() % 12 == 0) {
      watermark = std::max(watermark, now - static_cast<int64_t>(rng() % (20 * kMin)));
      ops.push_back(Op{true, {}, watermark});
      continue;
    }
    now += static_cast<int64_t>(rng() % (3 * kMin));
    Op op;
    const std::string user = "u" + std::to_string(rng() % users);
    // Mostly in order, some behind (late or not), as in a real stream.
    const int64_t t = now - (rng() % 5 == 0 ? static_cast<int64_t>(rng() % (40 * kMin)) : 0);
    const auto type = static_cast<EventType>(rng() % 3);
    op.event = MakeEvent(user, t, type, static_cast<double>(rng() % 10000) / 100.0);
    ops.push_back(op);
  }
  ops.push_back(Op{true, {}, now + 3 * kHour});
  return ops;
}

// Every write, grouped by Redis key in emission order (the order across keys
// depends on timer order only, which a restore may renumber).
using WritesByKey = std::map<std::string, std::vector<std::vector<std::string>>>;

void Collect(const std::vector<FeatureWrite>& writes, WritesByKey* out) {
  for (const FeatureWrite& w : writes) (*out)[w.key].push_back(w.fields);
}

// Applies ops[from, to) to `engine`, collecting writes and late decisions.
void Apply(EngineHarness& h, const std::vector<Op>& ops, size_t from, size_t to, WritesByKey* writes,
           std::vector<bool>* accepted) {
  for (size_t i = from; i < to; ++i) {
    if (ops[i].advance) {
      Collect(h.Advance(ops[i].watermark), writes);
    } else {
      accepted->push_back(h.Process(ops[i].event));
    }
    if (i % 7 == 0) h.Commit();
  }
}

// An engine over `range` restored from `snapshots`.
class RestoredEngine {
 public:
  RestoredEngine(const std::vector<std::string>& snapshots, KeyGroupRange range) : range_(range) {
    auto store = StateStore::Open(dir_.path() + "/db", StateStoreOptions{});
    if (!store.ok()) {
      ADD_FAILURE() << std::string(store.status().message());
      return;
    }
    store_ = std::move(*store);
    absl::StatusOr<IngestedSnapshots> ingested = store_->IngestKeyGroups(snapshots, range);
    if (!ingested.ok()) {
      ADD_FAILURE() << std::string(ingested.status().message());
      return;
    }
    ingested_ = *ingested;
    engine_ = std::make_unique<WindowEngine>(store_.get(), range);
    absl::Status restored = engine_->Restore();
    if (!restored.ok()) {
      ADD_FAILURE() << std::string(restored.message());
      engine_.reset();
    }
  }
  ~RestoredEngine() {
    engine_.reset();
    store_.reset();
  }
  bool ok() const { return engine_ != nullptr; }
  bool owns(const std::string& user) const { return range_.contains(KeyGroupForKey(user, kMaxParallelism)); }
  WindowEngine& engine() { return *engine_; }
  // Users restored (the engine's working copy).
  int64_t users() const { return engine_->stats().users; }
  const IngestedSnapshots& ingested() const { return ingested_; }
  StateStore& store() { return *store_; }

 private:
  KeyGroupRange range_;
  TempDir dir_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<WindowEngine> engine_;
  IngestedSnapshots ingested_;
};

// For `seed`, cuts the run at a random op, checkpoints, restores onto
// `parts` engines splitting the key groups like Flink's ranges, and checks
// the continuation. Returns the number of failures added.
void CheckSeed(uint64_t seed, int parts) {
  SCOPED_TRACE("seed " + std::to_string(seed) + ", restored onto " + std::to_string(parts) + " engine(s)");
  const std::vector<Op> ops = Generate(seed);
  std::mt19937_64 rng(seed ^ 0xabcdef);
  const size_t cut = 1 + rng() % (ops.size() - 1);

  // Tiny write steps and frequent rounds: the snapshot's round is written
  // over many later operations, most users change before it is (copy-on-
  // write), and several rounds are in flight.
  WindowEngineOptions options;
  options.write_step_min = 1 + rng() % 8;
  options.flush_interval_ms = rng() % 2 == 0 ? 0 : 10000;
  options.max_pending = 1 + rng() % 200;
  EngineHarness original(options);
  ASSERT_TRUE(original.ok());
  WritesByKey before, after_original;
  std::vector<bool> accepted_before, accepted_original;
  Apply(original, ops, 0, cut, &before, &accepted_before);
  // The synchronous part of a checkpoint: mark the state.
  original.engine().BeginSnapshot();
  const int64_t watermark_at_cut = original.engine().watermark();
  // The stream goes on while the engine writes the marked state.
  std::unique_ptr<StateSnapshot> snapshot;
  for (size_t i = cut; i < ops.size(); ++i) {
    Apply(original, ops, i, i + 1, &after_original, &accepted_original);
    if (!snapshot) snapshot = original.engine().TakeSnapshot();
  }
  if (!snapshot) {
    ASSERT_TRUE(original.engine().Flush().ok());
    snapshot = original.engine().TakeSnapshot();
  }
  ASSERT_NE(snapshot, nullptr);
  EXPECT_FALSE(original.engine().snapshot_pending());
  TempDir snapshot_root;
  const std::string snapshot_file = snapshot_root.path() + "/kg-0-127.sst";
  ASSERT_TRUE(snapshot->WriteKeyGroups(snapshot_file, KeyGroupRange{0, kMaxParallelism - 1}).ok());
  snapshot.reset();

  std::vector<std::unique_ptr<RestoredEngine>> restored;
  int64_t users = 0;
  for (int i = 0; i < parts; ++i) {
    restored.push_back(std::make_unique<RestoredEngine>(
        std::vector<std::string>{snapshot_file}, KeyGroupRangeForOperatorIndex(kMaxParallelism, parts, i)));
    ASSERT_TRUE(restored.back()->ok());
    users += restored.back()->users();
  }
  WritesByKey after_restored;
  for (auto& r : restored) {
    // The watermark is not in the checkpoint; bring it back to where it was:
    // nothing may fire (everything due had fired before the cut).
    if (watermark_at_cut > INT64_MIN) {
      std::vector<FeatureWrite> fired;
      ASSERT_TRUE(r->engine().AdvanceWatermark(watermark_at_cut, &fired).ok());
      EXPECT_TRUE(fired.empty()) << fired.size() << " writes fired again right after the restore, first "
                                 << fired.front().key;
    }
  }
  std::vector<bool> accepted_restored;
  for (size_t i = cut; i < ops.size(); ++i) {
    if (ops[i].advance) {
      for (auto& r : restored) {
        std::vector<FeatureWrite> fired;
        ASSERT_TRUE(r->engine().AdvanceWatermark(ops[i].watermark, &fired).ok());
        Collect(fired, &after_restored);
      }
    } else {
      for (auto& r : restored) {
        if (!r->owns(ops[i].event.user_id)) continue;
        absl::StatusOr<bool> ok = r->engine().ProcessEvent(KeyGroupForKey(ops[i].event.user_id, kMaxParallelism),
                                                           ops[i].event);
        ASSERT_TRUE(ok.ok()) << std::string(ok.status().message());
        accepted_restored.push_back(*ok);
      }
    }
  }
  EXPECT_EQ(accepted_restored, accepted_original) << "late decisions differ after the restore";
  EXPECT_EQ(after_restored.size(), after_original.size());
  for (const auto& [key, writes] : after_original) {
    auto it = after_restored.find(key);
    if (it == after_restored.end()) {
      ADD_FAILURE() << key << ": " << writes.size() << " writes missing after the restore";
      continue;
    }
    EXPECT_EQ(it->second, writes) << key;
  }
  for (const auto& [key, writes] : after_restored) {
    if (!after_original.count(key)) ADD_FAILURE() << key << ": written only after the restore";
  }
  if (cut > 10) {
    EXPECT_GT(users, 0) << "the checkpoint held no state";
  }
}

// Checkpoints every key group of `h` now into the SST file `path`.
SnapshotFileInfo SnapshotEverything(EngineHarness& h, const std::string& path) {
  h.engine().BeginSnapshot();
  EXPECT_TRUE(h.engine().Flush().ok());
  std::unique_ptr<StateSnapshot> snapshot = h.engine().TakeSnapshot();
  if (snapshot == nullptr) {
    ADD_FAILURE() << "no snapshot after Flush()";
    return {};
  }
  absl::StatusOr<SnapshotFileInfo> written = snapshot->WriteKeyGroups(path, KeyGroupRange{0, kMaxParallelism - 1});
  if (!written.ok()) {
    ADD_FAILURE() << std::string(written.status().message());
    return {};
  }
  return *written;
}

TEST(EngineRestore, ContinuesExactlyLikeTheOriginal) {
  for (uint64_t seed = 1; seed <= 40; ++seed) CheckSeed(seed, 1);
}

TEST(EngineRestore, SplitByKeyGroupRangeOntoSeveralEngines) {
  for (uint64_t seed = 100; seed <= 130; ++seed) CheckSeed(seed, 1 + static_cast<int>(seed % 3) + 1);
}

TEST(EngineRestore, RestoreNeedsAnEmptyEngine) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.Process("a", 1'700'000'000'000));
  EXPECT_FALSE(h.engine().Restore().ok());
}

TEST(EngineRestore, IngestSelectsOnlyTheRange) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  int in_low_half = 0;
  for (int i = 0; i < 200; ++i) {
    const std::string user = "user-" + std::to_string(i);
    ASSERT_TRUE(h.Process(user, 1'700'000'000'000 + i));
    if (KeyGroupForKey(user, kMaxParallelism) < 64) ++in_low_half;
  }
  TempDir root;
  const std::string file = root.path() + "/all.sst";
  const SnapshotFileInfo written = SnapshotEverything(h, file);
  EXPECT_GT(written.keys, 200);  // users and their timers
  EXPECT_GT(written.bytes, 0);
  RestoredEngine low({file}, KeyGroupRange{0, 63});
  ASSERT_TRUE(low.ok());
  EXPECT_EQ(low.engine().stats().users, in_low_half);
  EXPECT_GT(low.engine().stats().timers, 0);
  RestoredEngine high({file}, KeyGroupRange{64, 127});
  ASSERT_TRUE(high.ok());
  EXPECT_EQ(high.engine().stats().users, 200 - in_low_half);
}

TEST(EngineRestore, IngestKeepsOnlyTheOwnedKeyGroupsAndLeavesTheSnapshotFileUntouched) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  std::set<std::string> low_users;
  for (int i = 0; i < 300; ++i) {
    const std::string user = "user-" + std::to_string(i);
    ASSERT_TRUE(h.Process(user, 1'700'000'000'000 + i * 1000));
    if (KeyGroupForKey(user, kMaxParallelism) <= 40) low_users.insert(user);
  }
  TempDir root;
  const std::string file = root.path() + "/all.sst";
  SnapshotEverything(h, file);
  const auto read_file = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  const std::string original = read_file(file);
  ASSERT_FALSE(original.empty());
  {
    RestoredEngine low({file}, KeyGroupRange{0, 40});
    ASSERT_TRUE(low.ok());
    EXPECT_EQ(low.ingested().files, 1);
    EXPECT_EQ(low.ingested().bytes, static_cast<int64_t>(original.size()));
    EXPECT_EQ(low.engine().stats().users, static_cast<int64_t>(low_users.size()));
    // The store holds nothing outside its range: a scan of every key and a
    // snapshot of every key group see the owned users only.
    std::set<std::string> scanned_users;
    int64_t scanned = 0;
    ASSERT_TRUE(low.store()
                    .Scan(std::string(2, '\0'), std::string(3, '\xff'),
                          [&](std::string_view key, std::string_view) {
                            ++scanned;
                            const int kg =
                                (static_cast<unsigned char>(key[0]) << 8) | static_cast<unsigned char>(key[1]);
                            EXPECT_LE(kg, 40) << "key of key group " << kg << " survived the restore of 0-40";
                            return true;
                          })
                    .ok());
    EXPECT_GT(scanned, static_cast<int64_t>(low_users.size()));  // users and their timers
    std::unique_ptr<StateSnapshot> again = low.store().TakeSnapshot();
    absl::StatusOr<SnapshotFileInfo> rewritten = again->WriteKeyGroups(root.path() + "/again.sst", {0, 127});
    ASSERT_TRUE(rewritten.ok()) << std::string(rewritten.status().message());
    EXPECT_EQ(rewritten->keys, scanned);
  }  // the store and its hard link are gone; the checkpoint's file is not
  EXPECT_EQ(read_file(file), original) << "the restore changed the checkpoint's file";
  RestoredEngine high({file}, KeyGroupRange{41, 127});
  ASSERT_TRUE(high.ok());
  EXPECT_EQ(high.engine().stats().users, 300 - static_cast<int64_t>(low_users.size()));
}

TEST(EngineRestore, RangeWithoutStateIsAnEmptyFile) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.Process("a", 1'700'000'000'000));
  const int kg = KeyGroupForKey("a", kMaxParallelism);
  const KeyGroupRange other = kg < 64 ? KeyGroupRange{64, 127} : KeyGroupRange{0, 63};
  h.engine().BeginSnapshot();
  h.Commit();
  std::unique_ptr<StateSnapshot> snapshot = h.engine().TakeSnapshot();
  ASSERT_NE(snapshot, nullptr) << "one Commit() writes a small round";
  TempDir root;
  const std::string file = root.path() + "/empty.sst";
  absl::StatusOr<SnapshotFileInfo> written = snapshot->WriteKeyGroups(file, other);
  ASSERT_TRUE(written.ok()) << std::string(written.status().message());
  EXPECT_EQ(written->keys, 0);
  EXPECT_EQ(std::filesystem::file_size(file), 0u);
  snapshot.reset();
  RestoredEngine restored({file}, other);
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(restored.engine().stats().users, 0);
  // A missing file is an error, not an empty range.
  auto store = StateStore::Open(root.path() + "/db", StateStoreOptions{});
  ASSERT_TRUE(store.ok());
  EXPECT_FALSE((*store)->IngestKeyGroups({root.path() + "/missing.sst"}, other).ok());
}

TEST(EngineRestore, SnapshotIsTheStateAtBeginNotAfter) {
  // Changes after BeginSnapshot() — also to users the snapshot still owes —
  // are not in it.
  WindowEngineOptions options;
  options.write_step_min = 1;
  EngineHarness h(options);
  ASSERT_TRUE(h.ok());
  const int64_t t0 = 1'700'000'000'000;
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(h.Process("user-" + std::to_string(i), t0 + i));
  h.engine().BeginSnapshot();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(h.Process("user-" + std::to_string(i), t0 + 1000 + i));
  for (int i = 50; i < 60; ++i) ASSERT_TRUE(h.Process("user-" + std::to_string(i), t0 + 1000 + i));
  std::unique_ptr<StateSnapshot> snapshot;
  for (int step = 0; step < 1000 && !snapshot; ++step) {
    h.Commit();
    snapshot = h.engine().TakeSnapshot();
  }
  ASSERT_NE(snapshot, nullptr) << "Commit() steps never completed the snapshot";
  TempDir root;
  const std::string file = root.path() + "/all.sst";
  ASSERT_TRUE(snapshot->WriteKeyGroups(file, KeyGroupRange{0, 127}).ok());
  snapshot.reset();
  RestoredEngine restored({file}, KeyGroupRange{0, 127});
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(restored.engine().stats().users, 50);
  // Each restored user's one-hour windows hold one view, not two.
  std::vector<FeatureWrite> fired;
  ASSERT_TRUE(restored.engine().AdvanceWatermark(t0 + 10 * kHour, &fired).ok());
  int sliding = 0;
  for (const FeatureWrite& w : fired) {
    if (!testing_util::IsSliding(w)) continue;
    ++sliding;
    EXPECT_EQ(testing_util::Field(w, "view_count_1h"), "1") << testing_util::Describe(w);
  }
  EXPECT_GT(sliding, 0);
}

}  // namespace
}  // namespace slipstream
