// WindowEngine: the keyed part of the job for the key groups one worker owns —
// 1 h/10 min sliding windows and 10 min-gap sessions per user (logic in
// user_window_state.h) plus their event-time timers.
//
// State layout: the working copy of every user's windows and all timers live
// in memory, so the per-event path does no I/O (that is what makes hundreds
// of thousands of events per second possible); every change is written
// behind into RocksDB (StateStore) in batches — at the latest after
// `flush_interval_ms` or `max_pending` changes, and on Flush() — under keys
// prefixed with the key group:
//   [kg:2]['u'][user]                        -> serialized UserWindowState
//   [kg:2]['t'][time:8][kind:1][user]        -> ""   (timers, ordered by time)
// (user = varint length + bytes; see worker/state/state_keys.h). RocksDB is
// therefore always a consistent copy as of the last Flush(), which is what a
// snapshot (checkpoint) takes.
//
// It knows nothing about Kafka or Redis, so tests drive it directly. Used
// from the task thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/event.h"
#include "common/key_groups.h"
#include "worker/state/state_store.h"
#include "worker/window/feature_write.h"

namespace slipstream {

struct WindowEngineStats {
  int64_t sliding_windows_fired = 0;
  int64_t sessions_fired = 0;
  int64_t users = 0;   // users with state in memory
  int64_t timers = 0;  // registered timers
};

struct WindowEngineOptions {
  int64_t flush_interval_ms = 10000;
  size_t max_pending = 1000000;  // changed users + timer changes before a flush
};

class WindowEngine {
 public:
  WindowEngine(StateStore* store, KeyGroupRange owned, WindowEngineOptions options = {});
  ~WindowEngine();

  // Adds the event to every window of both operators that has not fired yet,
  // judged against the current watermark. Returns false when it was late for
  // all of them (then nothing changed). The key group must be owned.
  [[nodiscard]] absl::StatusOr<bool> ProcessEvent(int key_group, const Event& event);

  // Moves event time forward (never backwards) and appends the results of
  // every window and session that fires, in timer order (per user: in window
  // end order).
  [[nodiscard]] absl::Status AdvanceWatermark(int64_t watermark_ms, std::vector<FeatureWrite>* out);

  // Writes pending changes to RocksDB if the flush interval has passed or
  // enough changes are pending.
  [[nodiscard]] absl::Status Commit();
  // Writes all pending changes to RocksDB now.
  [[nodiscard]] absl::Status Flush();

  // Rebuilds the working copy (every user and timer of the owned key groups)
  // from the store, e.g. after StateStore::IngestKeyGroups restored a
  // checkpoint. The engine must be empty. Its watermark stays at the minimum:
  // as in Flink, watermarks are not part of a checkpoint; the sources' new
  // watermarks fire whatever timers are due.
  [[nodiscard]] absl::Status Restore();

  int64_t watermark() const;
  WindowEngineStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
