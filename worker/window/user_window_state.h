// UserWindowState: everything the job keeps for one key (user), per feature
// group, and the pure window logic over it (no I/O), so it can be reasoned
// about and tested alone. The group's FeatureProgram says what one pane or
// session accumulates.
//
//  - Tumbling and sliding windows, Flink's TumblingEventTimeWindows.of(size)
//    and SlidingEventTimeWindows.of(size, slide) (offset 0): the key's events
//    are pre-aggregated per pane of gcd(size, slide); a window [s, s+size) is
//    the merge of its panes, so an event is stored once, not size/slide times.
//  - Sessions, Flink's EventTimeSessionWindows.withGap(gap): the open
//    sessions, sorted and pairwise non-intersecting, each with its
//    accumulator.
//
// Timers: each pane asks for a timer at the end of the earliest of its
// windows that has not fired; each session has one at its window's max
// timestamp. The caller keeps the timers (ordered by time) and calls back.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "common/event.h"
#include "worker/window/feature_program.h"
#include "worker/window/feature_write.h"

namespace slipstream {

struct Session {
  int64_t first_event_ms = 0;
  int64_t last_event_ms = 0;
  int64_t event_count = 0;
  // When its timer is armed: at most its fire time. A growing session keeps
  // its timer; when the timer fires early it is re-armed at the real fire
  // time. That saves two timer updates per event on the hot path.
  int64_t timer_ms = 0;
  std::vector<uint64_t> words;  // the group's accumulator
  std::vector<VarSlot> vars;
  bool operator==(const Session&) const = default;
};

// One group's state for one key.
struct GroupWindowState {
  // Pane windows: per pane (sorted by start) its start, then the group's
  // accumulator words: stride 1 + words(). `pane_vars` holds vars() VarSlots
  // per pane, when the group has any.
  std::vector<uint64_t> pane_words;
  std::vector<VarSlot> pane_vars;
  std::vector<Session> sessions;  // by first event
  // Not state: end of the last window emitted in watermark step
  // `emitted_step` (a timer chain emits each window once per step).
  int64_t emitted_until = std::numeric_limits<int64_t>::min();
  uint64_t emitted_step = 0;

  bool empty() const { return pane_words.empty() && sessions.empty(); }
};

struct UserWindowState {
  // One per program group (fewer: the rest have no state). Inline for two
  // groups, the default definition's: a user then costs no allocation for
  // this vector (measured: the engine's per-event path was 9 % slower with a
  // heap-allocated one).
  absl::InlinedVector<GroupWindowState, 2> groups;

  bool empty() const;

  // Pane windows of group `g`. Adds the event to its pane and returns the time
  // of the timer a NEW pane needs (`*new_pane` tells), or nullopt when every
  // window containing the event has fired (the event is late here; nothing
  // changes).
  std::optional<int64_t> AddToPaneWindows(const GroupProgram& program, size_t g, const Event& event,
                                          int64_t watermark_ms, bool* new_pane);

  // Fires the window ending at `timer_ms + 1` and every following window of
  // this key in group `g` that is due (end - 1 <= watermark) and non-empty, in
  // end order, appending them to `out`; skips windows already emitted in this
  // watermark step (`step`). Drops panes that no future window uses. Returns
  // the next timer this group needs, if any.
  std::optional<int64_t> FirePaneWindows(const GroupProgram& program, size_t g, std::string_view key,
                                         int64_t timer_ms, int64_t watermark_ms, uint64_t step,
                                         std::vector<FeatureWrite>* out);

  // Sessions of group `g`. Merges the event's window [t, t + gap) with every
  // session it intersects (touching counts, as Flink's TimeWindow.intersects).
  // Returns false when the merged window has already fired (late; nothing
  // changes). Otherwise `removed_timers` gets the timers no longer needed
  // (sessions merged away) and `new_timer` the timer a brand-new session
  // needs.
  bool AddToSession(const GroupProgram& program, size_t g, const Event& event, int64_t watermark_ms,
                    std::vector<int64_t>* removed_timers, std::optional<int64_t>* new_timer);

  // Handles the session timer `timer_ms` of group `g`: emits and removes the
  // session when this is its fire time (returns true); if the session has
  // grown since, sets `rearm_at` to its real fire time instead.
  bool FireSession(const GroupProgram& program, size_t g, std::string_view key, int64_t timer_ms,
                   std::vector<FeatureWrite>* out, std::optional<int64_t>* rearm_at);

  // Binary form, per the program's layout (worker/window/state_codec.cc).
  void SerializeTo(const FeatureProgram& program, std::string* out) const;
  [[nodiscard]] static bool Parse(const FeatureProgram& program, std::string_view data, UserWindowState* out);
};

// Max timestamp of a session's window [first, last + gap): when it fires.
int64_t SessionFireTime(const Session& session, int64_t gap_ms);

}  // namespace slipstream

namespace slipstream {

// Restoring under a definition that added groups or features
// (CheckRestoreCompatible): maps state written under `from` to `to`'s
// layout, group by name and accumulator by identity; what `to` adds starts
// empty. `group_map[g]` is the `to` index of `from`'s group g (-1: gone).
class StateConverter {
 public:
  StateConverter(const FeatureProgram& from, const FeatureProgram& to);
  const std::vector<int>& group_map() const { return group_map_; }
  void Convert(const UserWindowState& in, UserWindowState* out) const;

 private:
  struct GroupMap {
    int to = -1;
    struct Words {
      int from, to, count;  // one slot's words
    };
    std::vector<Words> words;
    std::vector<std::pair<int, int>> vars;  // (from var, to var)
  };
  const FeatureProgram& from_;
  const FeatureProgram& to_;
  std::vector<int> group_map_;
  std::vector<GroupMap> groups_;
};

}  // namespace slipstream
