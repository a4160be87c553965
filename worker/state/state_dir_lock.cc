#include "worker/state/state_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace slipstream {

namespace {

namespace fs = std::filesystem;

constexpr const char* kOwnerFile = ".owner";
constexpr const char* kRootLockFile = ".lock";

// An open, flocked file; closed (and so unlocked) on destruction.
class FileLock {
 public:
  FileLock() = default;
  explicit FileLock(int fd) : fd_(fd) {}
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  int Release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// Opens (creating) `path` and takes an exclusive flock, waiting for it or
// not (FailedPrecondition when another process holds it).
absl::StatusOr<FileLock> Lock(const fs::path& path, bool wait) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("state.dir: cannot open ", path.string(), ": ", std::strerror(errno)));
  FileLock lock(fd);
  while (::flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return absl::FailedPreconditionError(absl::StrCat(path.string(), " is held by a live process"));
    return absl::InternalError(absl::StrCat("state.dir: cannot lock ", path.string(), ": ", std::strerror(errno)));
  }
  return lock;
}

}  // namespace

absl::StatusOr<std::unique_ptr<StateDirLock>> StateDirLock::Acquire(const std::string& root, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return absl::InternalError(absl::StrCat("state.dir: cannot create ", root, ": ", ec.message()));
  absl::StatusOr<FileLock> root_lock = Lock(fs::path(root) / kRootLockFile, /*wait=*/true);
  if (!root_lock.ok()) return root_lock.status();
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("state.dir: cannot create ", dir, ": ", ec.message()));
  absl::StatusOr<FileLock> owner = Lock(fs::path(dir) / kOwnerFile, /*wait=*/false);
  if (!owner.ok()) return owner.status();
  return std::unique_ptr<StateDirLock>(new StateDirLock(owner->Release()));
}

StateDirLock::~StateDirLock() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<int> RemoveAbandonedStateDirs(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return 0;
  absl::StatusOr<FileLock> root_lock = Lock(fs::path(root) / kRootLockFile, /*wait=*/true);
  if (!root_lock.ok()) return root_lock.status();
  int removed = 0;
  for (const fs::directory_entry& job : fs::directory_iterator(root, ec)) {
    if (!job.is_directory(ec)) continue;
    for (const fs::directory_entry& worker : fs::directory_iterator(job.path(), ec)) {
      if (!worker.is_directory(ec)) continue;
      for (const fs::directory_entry& attempt : fs::directory_iterator(worker.path(), ec)) {
        if (!attempt.is_directory(ec) || attempt.path().filename().string().rfind("attempt-", 0) != 0) continue;
        // Free when nobody holds its owner file (or it has none: a directory
        // of a version before locks, whose owner is gone by now).
        absl::StatusOr<FileLock> probe = Lock(attempt.path() / kOwnerFile, /*wait=*/false);
        if (!probe.ok()) continue;
        std::error_code removal;
        fs::remove_all(attempt.path(), removal);
        if (!removal) ++removed;
      }
      std::error_code ignored;
      fs::remove(worker.path(), ignored);  // only when empty
    }
    std::error_code ignored;
    fs::remove(job.path(), ignored);  // only when empty
  }
  return removed;
}

}  // namespace slipstream
