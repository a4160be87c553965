// Who owns a local state directory (state.dir/<job>/<worker>/attempt-<n>),
// across processes: the owner holds an exclusive flock on <dir>/.owner for as
// long as it uses the directory; the kernel drops it when the process dies,
// even by SIGKILL. A starting worker removes every attempt directory whose
// lock nobody holds (a killed worker's RocksDB, with its hard links into
// checkpoint files, which would otherwise keep those files alive forever).
// Taking a lock and scanning both hold <state.dir>/.lock, so a scan never
// takes a directory that is being created for its lock.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace slipstream {

class StateDirLock {
 public:
  // Creates `dir` (under `root`, the state.dir) and locks it. Fails when
  // another live process holds it.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<StateDirLock>> Acquire(const std::string& root,
                                                                            const std::string& dir);
  ~StateDirLock();  // unlocks; the directory stays
  StateDirLock(const StateDirLock&) = delete;
  StateDirLock& operator=(const StateDirLock&) = delete;

 private:
  explicit StateDirLock(int fd) : fd_(fd) {}
  int fd_;
};

// Removes the attempt directories under root/<job>/<worker>/ that no live
// process holds, then the job and worker directories left empty. Returns
// how many attempt directories it removed.
[[nodiscard]] absl::StatusOr<int> RemoveAbandonedStateDirs(const std::string& root);

}  // namespace slipstream
