#include "common/file_sink_commit.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"

namespace slipstream {

namespace fs = std::filesystem;

namespace {

constexpr char kInProgressDir[] = ".inprogress";

absl::Status FsError(const std::string& what, const fs::path& path, const std::error_code& ec) {
  return absl::InternalError(absl::StrCat("file sink: ", what, " ", path.string(), ": ", ec.message()));
}

// Makes the renames in `dir` durable: rename(2) changes the directory, and
// only an fsync of the directory itself persists that.
absl::Status SyncDirectory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("file sink: open ", dir.string(), ": ", std::strerror(errno)));
  const int rc = ::fsync(fd);
  const int fsync_errno = errno;
  ::close(fd);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("file sink: fsync ", dir.string(), ": ", std::strerror(fsync_errno)));
  }
  return absl::OkStatus();
}

}  // namespace

std::string FileSinkJobDir(const std::string& sink_dir, const std::string& job_id) {
  return (fs::path(sink_dir) / job_id).string();
}

std::string FileSinkAttemptDir(const std::string& sink_dir, const std::string& job_id, int64_t attempt) {
  return (fs::path(FileSinkJobDir(sink_dir, job_id)) / kInProgressDir / absl::StrCat("attempt-", attempt)).string();
}

std::string FileSinkInProgressPart(const std::string& sink_dir, const std::string& job_id, int64_t attempt,
                                   int worker_index) {
  return (fs::path(FileSinkAttemptDir(sink_dir, job_id, attempt)) / absl::StrCat("part-", worker_index, ".jsonl"))
      .string();
}

std::string FileSinkRestoredMarker(const std::string& sink_dir, const std::string& job_id, int64_t attempt,
                                   int worker_index) {
  return (fs::path(FileSinkAttemptDir(sink_dir, job_id, attempt)) / absl::StrCat("part-", worker_index, ".restored"))
      .string();
}

std::string FileSinkFinalPart(const std::string& sink_dir, const std::string& job_id, int worker_index,
                              int num_workers) {
  return (fs::path(FileSinkJobDir(sink_dir, job_id)) / absl::StrCat("part-", worker_index, "-of-", num_workers, ".jsonl"))
      .string();
}

absl::Status CommitFileSinkAttempt(const std::string& sink_dir_in, const std::string& job_id, int64_t attempt,
                                   int num_workers) {
  if (num_workers < 1) {
    return absl::InvalidArgumentError(absl::StrCat("file sink: cannot commit attempt ", attempt, " of ", num_workers,
                                                   " workers"));
  }
  if (job_id.empty()) return absl::InvalidArgumentError("file sink: cannot commit without a job id");
  absl::StatusOr<std::string> sink_dir = LocalPathFromUri("sink.path", sink_dir_in);
  if (!sink_dir.ok()) return sink_dir.status();
  const fs::path job_dir = FileSinkJobDir(*sink_dir, job_id);

  // Everything is checked before anything changes: a failed check leaves the
  // previous commit's output in place.
  for (int i = 0; i < num_workers; ++i) {
    std::error_code ec;
    const fs::path part = FileSinkInProgressPart(*sink_dir, job_id, attempt, i);
    if (!fs::is_regular_file(part, ec)) {
      return absl::NotFoundError(absl::StrCat("file sink: cannot commit attempt ", attempt, " of job ", job_id,
                                              ": part ", i, " of ", num_workers, " is missing (", part.string(),
                                              ")"));
    }
    // A worker that restored a checkpoint wrote only what came after it;
    // the rest is in an earlier attempt's files, so this attempt's parts are
    // not the whole output.
    const fs::path marker = FileSinkRestoredMarker(*sink_dir, job_id, attempt, i);
    if (fs::exists(marker, ec)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "file sink: cannot commit attempt ", attempt, " of job ", job_id, ": worker ", i,
          " restored a checkpoint, so its part holds only the features written after it (", marker.string(),
          "); the file sink commits only runs that computed their whole output in one attempt"));
    }
  }

  // The final parts of an earlier commit (possibly with another number of
  // workers) must not mix with this one's.
  std::error_code list_ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(job_dir, list_ec)) {
    const std::string name = entry.path().filename().string();
    if (!absl::StartsWith(name, "part-") || !absl::EndsWith(name, ".jsonl")) continue;
    std::error_code type_ec;
    if (!entry.is_regular_file(type_ec)) continue;
    std::error_code remove_ec;
    if (!fs::remove(entry.path(), remove_ec) && remove_ec) return FsError("remove", entry.path(), remove_ec);
  }
  if (list_ec) return FsError("list", job_dir, list_ec);

  for (int i = 0; i < num_workers; ++i) {
    const fs::path from = FileSinkInProgressPart(*sink_dir, job_id, attempt, i);
    const fs::path to = FileSinkFinalPart(*sink_dir, job_id, i, num_workers);
    std::error_code rename_ec;
    fs::rename(from, to, rename_ec);
    if (rename_ec) return FsError(absl::StrCat("rename ", from.string(), " to"), to, rename_ec);
  }
  if (absl::Status s = SyncDirectory(job_dir); !s.ok()) return s;

  // The failed attempts' parts (and this attempt's empty directory).
  std::error_code cleanup_ec;
  fs::remove_all(job_dir / kInProgressDir, cleanup_ec);
  if (cleanup_ec) return FsError("remove", job_dir / kInProgressDir, cleanup_ec);
  return absl::OkStatus();
}

}  // namespace slipstream
