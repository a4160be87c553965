// WindowEngine: the keyed part of the job for the key groups one worker owns —
// every feature group's windows per key (tumbling, sliding, sessions; logic in
// user_window_state.h, what they accumulate in feature_program.h) plus their
// event-time timers.
//
// State layout: the working copy of every user's windows and all timers live
// in memory, so the per-event path does no I/O (that is what makes hundreds
// of thousands of events per second possible); every change is written
// behind into RocksDB (StateStore) under keys prefixed with the key group:
//   [kg:2]['u'][user]                        -> serialized UserWindowState
//   [kg:2]['t'][time:8][group:1][user]       -> ""   (timers, ordered by time)
// (user = varint length + bytes; see worker/state/state_keys.h).
//
// Write-behind works in rounds, so that neither it nor a checkpoint stops the
// stream for long: changes collect in the open round; the round closes in
// O(1) (after `flush_interval_ms`, at `max_pending` changes, or for a
// checkpoint) and each later Commit() writes a bounded share of the closed
// rounds' users and timers. A user that is about to change while a closed
// round still owes RocksDB its state is written first (copy-on-write), so
// RocksDB receives every closed round exactly as it was when it closed.
//
// Checkpoints: BeginSnapshot() closes a round (the synchronous part of a
// checkpoint: O(1)); once Commit() calls have written it, TakeSnapshot()
// returns a RocksDB snapshot of exactly the state at BeginSnapshot(), which
// another thread can write out while processing goes on.
//
// It knows nothing about Kafka or Redis, so tests drive it directly. Used
// from the task thread only (the returned snapshot may travel).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/event.h"
#include "common/key_groups.h"
#include "worker/state/state_store.h"
#include "worker/window/feature_program.h"
#include "worker/window/feature_write.h"

namespace slipstream {

struct WindowEngineStats {
  int64_t sliding_windows_fired = 0;
  int64_t sessions_fired = 0;
  int64_t users = 0;   // users with state in memory
  int64_t timers = 0;  // registered timers
};

struct WindowEngineOptions {
  // What to compute; null: the built-in default definition.
  std::shared_ptr<const FeatureProgram> program;
  // The program the state to Restore() was written under, when it differs
  // from `program` (a definition that added groups or features; null: the
  // same). Restore() converts the state (StateConverter); the next writes
  // store it in `program`'s layout.
  std::shared_ptr<const FeatureProgram> restored_program;
  int64_t flush_interval_ms = 10000;  // a write-behind round closes after this
  size_t max_pending = 1000000;       // ... or at this many changed users + timers
  // Users + timers written per Commit() at least (plus 4 per event or timer
  // handled since the previous Commit()).
  size_t write_step_min = 2048;
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
  // end order). Stops once `out` holds `max_out` results (or a few more: a
  // timer fires all of its user's due windows) with timers still due (a
  // watermark jump over a million users fires millions of windows):
  // then firing_pending() is true and the caller must call again (with the
  // same or a later watermark) before ProcessEvent, as Flink fires every due
  // timer before the next record.
  [[nodiscard]] absl::Status AdvanceWatermark(int64_t watermark_ms, std::vector<FeatureWrite>* out,
                                              size_t max_out = SIZE_MAX);
  bool firing_pending() const;

  // Write-behind step, to call after every batch of events: closes the open
  // round when it is due and writes a bounded share of the closed rounds.
  [[nodiscard]] absl::Status Commit();
  // Writes every change to RocksDB now (end of input, tests); completes a
  // pending snapshot on the way.
  [[nodiscard]] absl::Status Flush();
  // True while closed rounds still owe RocksDB writes: keep calling Commit().
  bool writes_pending() const;

  // Marks the current state as a checkpoint's content, in O(1). A snapshot
  // still pending is superseded (its state is written as a round anyway).
  void BeginSnapshot();
  bool snapshot_pending() const;
  // The RocksDB snapshot of the state at the last BeginSnapshot(), once
  // Commit() calls have written all of it; null before (and after it was
  // taken).
  std::unique_ptr<StateSnapshot> TakeSnapshot();

  // Rebuilds the working copy (every user and timer of the owned key groups)
  // from the store, e.g. after StateStore::IngestKeyGroups restored a
  // checkpoint. The engine must be empty.
  [[nodiscard]] absl::Status Restore();
  // The watermark the checkpoint's operators had at the barrier (unlike
  // Flink, watermarks are part of a checkpoint): a record late before a
  // failure stays late after it. Every timer up to it had fired then, so
  // nothing fires now; later watermarks fire what is due.
  void RestoreWatermark(int64_t watermark_ms);

  int64_t watermark() const;
  WindowEngineStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
