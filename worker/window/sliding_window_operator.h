// SlidingWindowOperator: per-user 1 h windows sliding by 10 min, Flink's
// SlidingEventTimeWindows.of(1 h, 10 min) with a count/average aggregate and
// allowed lateness 0.
//
// State: one PaneAggregate per (user, 10-min pane). A window [s, s+1h) is the
// sum of its six panes. Each pane registers one timer at the end of the
// earliest of its windows that has not fired; when a timer fires the operator
// emits every due window of that user in end order, then registers the next
// timer if later panes still need it, and drops panes no future window uses.
// Output: `user_features:{user_id}` with EXPIRE 7200.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/event.h"
#include "worker/state/state_store.h"
#include "worker/window/feature_write.h"
#include "worker/window/timer_service.h"

namespace slipstream {

class SlidingWindowOperator {
 public:
  SlidingWindowOperator(StateStore* store, TimerService* timers);

  // Adds the event to its pane. Returns false (and changes nothing) when every
  // window containing the event has already fired: the event is late here.
  [[nodiscard]] absl::StatusOr<bool> ProcessEvent(int key_group, const Event& event,
                                                  int64_t watermark_ms);

  // Call once per watermark advance, before its timers fire.
  void BeginWatermark();

  // Handles a sliding-window timer due at `timer.time_ms` <= watermark.
  [[nodiscard]] absl::Status OnTimer(const Timer& timer, int64_t watermark_ms,
                                     std::vector<FeatureWrite>* out);

  int64_t windows_fired() const { return windows_fired_; }

 private:
  StateStore* store_;
  TimerService* timers_;
  int64_t windows_fired_ = 0;
  std::string scratch_;
  // user -> end of the last window emitted during the current watermark step.
  absl::flat_hash_map<std::string, int64_t> emitted_until_;
};

// Formats a sliding-window result per the output contract.
FeatureWrite MakeUserFeatures(std::string_view user_id, int64_t window_start_ms,
                              int64_t window_end_ms, const struct PaneAggregate& aggregate);

// Shortest round-trip text of a double ("0" for zero), as the contract asks.
std::string FormatDouble(double value);

}  // namespace slipstream
