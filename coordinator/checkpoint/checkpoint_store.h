// CheckpointStore: where checkpoints live on disk (Flink's
// CompletedCheckpointStore and checkpoint storage location, for a local
// file system). One job's checkpoints are `<job dir>/chk-<n>/`; a checkpoint
// is *completed* exactly when its directory holds a `_metadata` file, written
// atomically and durably. Savepoints are `<dir>/savepoint-<job>-<hex>/`
// directories elsewhere, self-contained, never touched by retention.
//
// Does blocking file I/O: call it from the checkpoint coordinator's own
// thread (or before it starts), never under a lock others wait on. Holds no
// state but the job directory, so it is cheap to copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/slipstream.pb.h"

namespace slipstream {

struct CompletedCheckpoint {
  v1::CheckpointMetadata metadata;
  std::string path;  // absolute chk-<n> (or savepoint) directory
};

// Reads a completed checkpoint or savepoint: `path` is its directory (with a
// `_metadata` file) or the `_metadata` file itself. The returned path is the
// absolute directory. NotFound without `_metadata`, DataLoss when it does not
// parse. A `chk-<n>` directory's name sets the checkpoint id.
absl::StatusOr<CompletedCheckpoint> ReadCompletedCheckpoint(const std::string& path);

// Resolves a savepoint target directory (`target_dir`, or `default_dir`
// = state.savepoints.dir when empty; file:// URI or absolute path), creates it
// when missing and checks it is writable, and returns the new savepoint's
// directory `<dir>/savepoint-<first 6 characters of job_id>-<12 hex>` (not
// created yet). InvalidArgument, naming the problem, otherwise. Does I/O:
// call it without holding locks.
absl::StatusOr<std::string> NewSavepointDirectory(std::string_view target_dir, std::string_view default_dir,
                                                  std::string_view job_id);

class CheckpointStore {
 public:
  // What an earlier run left in the job directory.
  struct Contents {
    int64_t last_id = 0;  // the largest chk-<n>, completed or not (0: none)
    std::optional<CompletedCheckpoint> latest_completed;
  };

  // The store of `job_dir` (<state.checkpoints.dir>/<job-id>), made
  // absolute. InvalidArgument naming state.checkpoints.dir for an empty or
  // unusable path. Touches nothing on disk.
  [[nodiscard]] static absl::StatusOr<CheckpointStore> Open(std::string_view job_dir);

  const std::string& job_dir() const { return job_dir_; }
  // <job dir>/chk-<id>.
  std::string CheckpointDir(int64_t id) const;

  // Creates the job directory if needed and finds the checkpoints in it;
  // the newest chk-<n> with a readable `_metadata` is the latest completed
  // (one whose `_metadata` does not parse is skipped with a warning).
  [[nodiscard]] absl::StatusOr<Contents> Scan() const;

  // Creates a checkpoint's or savepoint's directory (and its parents).
  [[nodiscard]] absl::Status CreateDirectory(const std::string& dir) const;
  // Writes `metadata` as `<dir>/_metadata` (JSON) so that a reader sees
  // either nothing or all of it, also after a crash: from then on the
  // checkpoint is completed.
  [[nodiscard]] absl::Status WriteMetadata(const std::string& dir, const v1::CheckpointMetadata& metadata) const;
  // Removes a directory and everything in it (an aborted or abandoned checkpoint).
  [[nodiscard]] absl::Status Remove(const std::string& dir) const;

  // Retention: keeps the newest `num_retained` (at least 1) completed
  // checkpoints and deletes the others, plus incomplete directories older
  // than `completed_id` (aborted, or abandoned by an earlier coordinator
  // run). `keep` (a restore source, "" for none) stays in any case.
  void DeleteSubsumed(int64_t completed_id, int num_retained, const std::string& keep) const;
  // DELETE_ON_CANCELLATION: every chk-<n> directory goes, completed or not.
  // Returns how many were deleted.
  size_t DeleteAll() const;

 private:
  explicit CheckpointStore(std::string job_dir) : job_dir_(std::move(job_dir)) {}

  std::string job_dir_;  // absolute
};

}  // namespace slipstream
