// StateReleaser: frees the window state of finished tasks (TaskState) on a
// thread of its own, at low CPU priority, then deletes each one's local
// RocksDB directory. A rescale or a recovery waits for every old task to stop
// before the next attempt starts; freeing a million users' working copy took
// 0.3–0.8 s of that wait, and need not be in it. Nor should it compete with
// the next attempt's restore on a small machine: a released state waits
// until Resume() (the next task has restored its state) or, when no task
// follows, `hold_ms`.
#pragma once

#include <memory>
#include <string>

#include "worker/pipeline/feature_task.h"

namespace slipstream {

class StateReleaser {
 public:
  explicit StateReleaser(int64_t hold_ms = 3000);
  ~StateReleaser();  // frees everything still queued
  StateReleaser(const StateReleaser&) = delete;
  StateReleaser& operator=(const StateReleaser&) = delete;

  // Frees `state`, then removes `directory` (its RocksDB files), in the
  // background. `what` names it in the log line.
  void Release(std::unique_ptr<TaskState> state, std::string directory, std::string what);
  // The next task has restored its state (or failed to): free what waits.
  void Resume();

  // Blocks until everything released so far is freed (tests, shutdown).
  void Wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
