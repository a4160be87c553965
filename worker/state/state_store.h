// StateStore: the worker's keyed state in one local RocksDB instance.
//
// Every key starts with its key group (2 bytes, big-endian; see
// common/key_groups.h) so key-group ranges can be cut out for rescaling and
// snapshotting. Writes go into a pending batch that Commit() applies
// atomically; reads see committed data only (the window engine reads state
// back only when restoring). The WAL is off: durability comes from
// checkpoints, as with Flink's RocksDB backend.
// Owned and used by the single task thread; not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/key_groups.h"

namespace slipstream {

struct StateStoreOptions {
  size_t block_cache_bytes = 64 << 20;
  size_t write_buffer_bytes = 32 << 20;
  bool wipe_existing = true;  // start from empty state (until restore exists)
  // The state.dir the directory lives under: when set, the store holds the
  // directory's StateDirLock (state_dir_lock.h) for as long as it is open.
  std::string lock_root;
};

class StateSnapshot;

// What StateStore::IngestKeyGroups took in.
struct IngestedSnapshots {
  int files = 0;        // non-empty snapshot files ingested
  int64_t bytes = 0;    // their size
  int copied = 0;       // of them copied (not on the store's file system), not linked
};

struct SnapshotFileInfo {
  int64_t keys = 0;
  int64_t bytes = 0;
};

class StateStore {
 public:
  static absl::StatusOr<std::unique_ptr<StateStore>> Open(const std::string& dir,
                                                          const StateStoreOptions& options);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // Reads committed data. Returns false when the key is absent.
  [[nodiscard]] absl::StatusOr<bool> Get(std::string_view key, std::string* value);
  void Put(std::string_view key, std::string_view value);
  void Delete(std::string_view key);

  // Visits committed keys in [lower, upper) in order until the
  // visitor returns false.
  using Visitor = std::function<bool(std::string_view key, std::string_view value)>;
  [[nodiscard]] absl::Status Scan(std::string_view lower, std::string_view upper,
                                  const Visitor& visitor);

  // Applies the pending batch atomically.
  [[nodiscard]] absl::Status Commit();
  size_t pending_bytes() const;

  // Approximate size of the live state, for metrics.
  uint64_t ApproximateSizeBytes();

  // A consistent, immutable view of the committed state as of now (a RocksDB
  // snapshot: O(1), no I/O). The synchronous part of a checkpoint.
  std::unique_ptr<StateSnapshot> TakeSnapshot();

  // Restores into this (empty) store the keys of `range` from the snapshot
  // files `snapshot_files` (each written by StateSnapshot::WriteKeyGroups,
  // possibly by another worker with another range: this is how state is
  // redistributed by key group). The files are ingested whole (hard links
  // when possible; the files themselves are never changed) and every key
  // outside `range` is deleted, so the store holds exactly `range`.
  [[nodiscard]] absl::StatusOr<IngestedSnapshots> IngestKeyGroups(const std::vector<std::string>& snapshot_files,
                                                                  KeyGroupRange range);

 private:
  struct Impl;
  explicit StateStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A RocksDB snapshot of a StateStore. Unlike the store it may be used from
// another thread (RocksDB reads are thread-safe), e.g. the checkpoint's
// asynchronous part. It must be destroyed before its store.
class StateSnapshot {
 public:
  ~StateSnapshot();
  StateSnapshot(const StateSnapshot&) = delete;
  StateSnapshot& operator=(const StateSnapshot&) = delete;

  // Writes the snapshot's keys of `range` to a new file at `path` (a
  // RocksDB SST file, sorted, LZ4 blocks; written to `path`.tmp and renamed,
  // so `path` is complete when it exists). No keys: an empty file.
  [[nodiscard]] absl::StatusOr<SnapshotFileInfo> WriteKeyGroups(const std::string& path, KeyGroupRange range) const;

 private:
  friend class StateStore;
  struct Impl;
  explicit StateSnapshot(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
