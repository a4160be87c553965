// WindowEngine: the keyed part of the job for the key groups one worker owns:
// the sliding-window and session-window operators over one StateStore and one
// TimerService, driven by events and watermarks. It knows nothing about Kafka
// or Redis, so tests can drive it directly. Used from the task thread only.
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
};

class WindowEngine {
 public:
  WindowEngine(StateStore* store, KeyGroupRange owned);
  ~WindowEngine();

  // Adds the event to every window of both operators that has not fired yet,
  // judged against the current watermark. Returns false when it was late for
  // all of them (then nothing changed). The key group must be owned.
  [[nodiscard]] absl::StatusOr<bool> ProcessEvent(int key_group, const Event& event);

  // Moves event time forward (never backwards) and appends the results of
  // every window and session that fires, in firing order.
  [[nodiscard]] absl::Status AdvanceWatermark(int64_t watermark_ms, std::vector<FeatureWrite>* out);

  // Makes the state changes since the last call durable in RocksDB.
  [[nodiscard]] absl::Status Commit();

  int64_t watermark() const { return watermark_; }
  WindowEngineStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int64_t watermark_;
};

}  // namespace slipstream
