// UserWindowState: everything the job keeps for one user, and the pure window
// logic over it (no I/O), so it can be reasoned about and tested alone.
//
//  - Sliding windows, Flink's SlidingEventTimeWindows.of(1 h, 10 min): the
//    user's events are pre-aggregated per 10-minute pane; a window [s, s+1h)
//    is the sum of its six panes, so an event is stored once, not six times.
//  - Sessions, Flink's EventTimeSessionWindows.withGap(10 min): the open
//    sessions, sorted and pairwise non-intersecting.
//
// Timers: each pane asks for a timer at the end of the earliest of its
// windows that has not fired; each session has one at its window's max
// timestamp. The caller keeps the timers (ordered by time) and calls back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/event.h"
#include "worker/window/feature_write.h"
#include "worker/window/pane_aggregate.h"

namespace slipstream {

struct Session {
  int64_t first_event_ms;
  int64_t last_event_ms;
  int64_t event_count;
  // When its timer is armed: at most its fire time. A growing session keeps
  // its timer; when the timer fires early it is re-armed at the real fire
  // time. That saves two timer updates per event on the hot path.
  int64_t timer_ms;
  bool operator==(const Session&) const = default;
};

// Max timestamp of a session's window [first, last + gap): when it fires.
int64_t SessionFireTime(const Session& session);

struct UserWindowState {
  std::vector<std::pair<int64_t, PaneAggregate>> panes;  // by pane start
  std::vector<Session> sessions;                          // by first event

  bool empty() const { return panes.empty() && sessions.empty(); }

  // Sliding windows. Adds the event to its pane and returns the time of the
  // timer the pane needs, or nullopt when every window containing the event
  // has fired (the event is late here; nothing changes).
  std::optional<int64_t> AddToSlidingWindows(const Event& event, int64_t watermark_ms);

  // Fires the sliding window ending at `timer_ms + 1` and every following
  // window of this user that is due (end - 1 <= watermark) and non-empty, in
  // end order, appending them to `out`; skips windows ending at or before
  // `*emitted_until` (already emitted by an earlier timer in the same
  // watermark step) and updates it. Drops panes that no future window uses.
  // Returns the next timer this user needs, if any.
  std::optional<int64_t> FireSlidingWindows(std::string_view user_id, int64_t timer_ms, int64_t watermark_ms,
                                            int64_t* emitted_until, std::vector<FeatureWrite>* out);

  // Sessions. Merges the event's window [t, t + gap) with every session it
  // intersects (touching counts, as Flink's TimeWindow.intersects). Returns
  // false when the merged window has already fired (late; nothing changes).
  // Otherwise `removed_timers` gets the timers no longer needed (sessions
  // merged away) and `new_timer` the timer a brand-new session needs.
  bool AddToSession(const Event& event, int64_t watermark_ms, std::vector<int64_t>* removed_timers,
                    std::optional<int64_t>* new_timer);

  // Handles the session timer `timer_ms`: emits and removes the session when
  // this is its fire time (returns true); if the session has grown since,
  // sets `rearm_at` to its real fire time instead.
  bool FireSession(std::string_view user_id, int64_t timer_ms, std::vector<FeatureWrite>* out,
                   std::optional<int64_t>* rearm_at);

  void SerializeTo(std::string* out) const;
  static bool Parse(std::string_view data, UserWindowState* out);
};

// Output formatting, per the Redis contract.
FeatureWrite MakeUserFeatures(std::string_view user_id, int64_t window_start_ms, int64_t window_end_ms,
                              const PaneAggregate& aggregate);
FeatureWrite MakeSessionFeatures(std::string_view user_id, const Session& session);
// Shortest round-trip text of a double ("0" for zero).
std::string FormatDouble(double value);

}  // namespace slipstream
