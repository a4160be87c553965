#include "worker/window/user_window_state.h"

#include <algorithm>

#include "worker/window/window_math.h"

namespace slipstream {
namespace {

size_t Stride(const GroupProgram& program) { return 1 + program.words(); }
size_t PaneCount(const GroupWindowState& s, const GroupProgram& program) {
  return s.pane_words.size() / Stride(program);
}
int64_t PaneStartAt(const GroupWindowState& s, const GroupProgram& program, size_t i) {
  return static_cast<int64_t>(s.pane_words[i * Stride(program)]);
}

// Index of the first pane starting at or after `start`.
size_t LowerBoundPane(const GroupWindowState& s, const GroupProgram& program, int64_t start) {
  size_t lo = 0, hi = PaneCount(s, program);
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (PaneStartAt(s, program, mid) < start) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// The merge of a window's panes, reused between calls (one operator thread).
struct Scratch {
  std::vector<uint64_t> words;
  std::vector<VarSlot> vars;
  void Reset(const GroupProgram& program) {
    words.assign(program.words(), 0);
    vars.assign(program.vars(), VarSlot{});
  }
};
Scratch& WindowScratch() {
  thread_local Scratch scratch;
  return scratch;
}

}  // namespace

int64_t SessionFireTime(const Session& s, int64_t gap_ms) { return FireTime(s.last_event_ms + gap_ms); }

bool UserWindowState::empty() const {
  return std::all_of(groups.begin(), groups.end(), [](const GroupWindowState& g) { return g.empty(); });
}

std::optional<int64_t> UserWindowState::AddToPaneWindows(const GroupProgram& program, size_t g, const Event& event,
                                                         int64_t watermark_ms, bool* new_pane) {
  *new_pane = false;
  const int64_t t = event.event_time_ms;
  const int64_t slide = program.slide_ms();
  const int64_t size = program.size_ms();
  // Windows start at the multiples of `slide` (Flink's offset 0) and last
  // `size`: those containing t start in (t - size, WindowStart(t, slide)].
  // Flink skips windows that are already late (maxTimestamp <= watermark);
  // the element is dropped when all are.
  const int64_t last_end = WindowStart(t, slide) + size;
  if (FireTime(last_end) <= watermark_ms) return std::nullopt;  // (also keeps the sums below in range)
  int64_t first_open_end = WindowStart(t - size, slide) + slide + size;
  if (FireTime(first_open_end) <= watermark_ms) {
    // The first end after the watermark: ends are k * slide + size.
    first_open_end = WindowStart(watermark_ms + 1 - size, slide) + slide + size;
  }
  if (first_open_end > last_end) return std::nullopt;

  if (groups.size() <= g) groups.resize(g + 1);
  GroupWindowState& s = groups[g];
  const size_t stride = Stride(program);
  const int64_t pane = WindowStart(t, program.pane_ms());
  const size_t i = LowerBoundPane(s, program, pane);
  if (i == PaneCount(s, program) || PaneStartAt(s, program, i) != pane) {
    s.pane_words.insert(s.pane_words.begin() + static_cast<std::ptrdiff_t>(i * stride), stride, 0);
    s.pane_words[i * stride] = static_cast<uint64_t>(pane);
    if (program.vars() > 0) {
      s.pane_vars.insert(s.pane_vars.begin() + static_cast<std::ptrdiff_t>(i * program.vars()), program.vars(),
                         VarSlot{});
    }
    *new_pane = true;
  }
  program.Accumulate(event, s.pane_words.data() + i * stride + 1,
                     program.vars() > 0 ? s.pane_vars.data() + i * program.vars() : nullptr);
  return FireTime(first_open_end);
}

std::optional<int64_t> UserWindowState::FirePaneWindows(const GroupProgram& program, size_t g, std::string_view key,
                                                        int64_t timer_ms, int64_t watermark_ms, uint64_t step,
                                                        std::vector<FeatureWrite>* out) {
  if (groups.size() <= g) return std::nullopt;
  GroupWindowState& s = groups[g];
  if (s.emitted_step != step) {
    s.emitted_step = step;
    s.emitted_until = std::numeric_limits<int64_t>::min();
  }
  const int64_t first_end = timer_ms + 1;
  // An earlier timer of this key in the same watermark step already emitted
  // this window as part of its chain (and registered what follows).
  if (s.emitted_until >= first_end) return std::nullopt;

  const size_t stride = Stride(program);
  const size_t vars = program.vars();
  const size_t panes = PaneCount(s, program);
  Scratch& window = WindowScratch();
  // Emit every due, non-empty window in end order. A window without panes
  // ends the chain: later panes have timers of their own.
  int64_t end = first_end;
  int64_t last_emitted_end = INT64_MIN;
  while (FireTime(end) <= watermark_ms) {
    const int64_t start = end - program.size_ms();
    bool any = false;
    for (size_t i = LowerBoundPane(s, program, start); i < panes; ++i) {
      if (PaneStartAt(s, program, i) >= end) break;
      if (!any) window.Reset(program);
      any = true;
      program.Merge(s.pane_words.data() + i * stride + 1, vars > 0 ? s.pane_vars.data() + i * vars : nullptr,
                    window.words.data(), window.vars.data());
    }
    if (!any) break;
    GroupProgram::WindowValues values;
    values.start_ms = start;
    values.end_ms = end;
    out->push_back(program.MakeWrite(key, values, window.words.data(), window.vars.data()));
    last_emitted_end = end;
    end += program.slide_ms();
  }
  if (last_emitted_end == INT64_MIN) return std::nullopt;  // stale timer: nothing due
  s.emitted_until = last_emitted_end;

  // Panes before the next window's start are in no future window.
  const int64_t next_start = last_emitted_end + program.slide_ms() - program.size_ms();
  const size_t drop = LowerBoundPane(s, program, next_start);
  s.pane_words.erase(s.pane_words.begin(), s.pane_words.begin() + static_cast<std::ptrdiff_t>(drop * stride));
  if (vars > 0) s.pane_vars.erase(s.pane_vars.begin(), s.pane_vars.begin() + static_cast<std::ptrdiff_t>(drop * vars));
  // The next window needs a timer only for panes that have none of their
  // own, i.e. those that started before the last emitted end.
  if (!s.pane_words.empty() && PaneStartAt(s, program, 0) < last_emitted_end) {
    return FireTime(last_emitted_end + program.slide_ms());
  }
  return std::nullopt;
}

bool UserWindowState::AddToSession(const GroupProgram& program, size_t g, const Event& event, int64_t watermark_ms,
                                   std::vector<int64_t>* removed_timers, std::optional<int64_t>* new_timer) {
  const int64_t t = event.event_time_ms;
  const int64_t gap = program.window().gap_ms;
  removed_timers->clear();
  new_timer->reset();
  if (groups.size() <= g) groups.resize(g + 1);
  std::vector<Session>& sessions = groups[g].sessions;
  // Flink: [a, b) and [c, d) intersect iff a <= d && b >= c. The event's
  // window is [t, t + gap); a session's is [first, last + gap).
  auto intersects = [&](const Session& s) { return s.first_event_ms <= t + gap && s.last_event_ms + gap >= t; };
  size_t first_hit = sessions.size();
  size_t hits = 0;
  int64_t first = t, last = t, count = 1, timer = 0;
  for (size_t i = 0; i < sessions.size(); ++i) {
    const Session& s = sessions[i];
    if (!intersects(s)) continue;
    if (hits++ == 0) {
      first_hit = i;
      timer = s.timer_ms;
    }
    first = std::min(first, s.first_event_ms);
    last = std::max(last, s.last_event_ms);
    count += s.event_count;
    timer = std::min(timer, s.timer_ms);
  }
  // Open sessions have not fired, so a merge can never be late; a lone
  // window is late when its max timestamp is behind the watermark.
  if (FireTime(last + gap) <= watermark_ms) {
    if (groups[g].empty() && g + 1 == groups.size()) groups.pop_back();  // leave nothing behind
    return false;
  }

  Session* target;
  if (hits == 0) {
    Session fresh;
    fresh.first_event_ms = t;
    fresh.last_event_ms = t;
    fresh.timer_ms = FireTime(t + gap);
    fresh.words.assign(program.words(), 0);
    fresh.vars.assign(program.vars(), VarSlot{});
    *new_timer = fresh.timer_ms;
    auto at = std::lower_bound(sessions.begin(), sessions.end(), t,
                               [](const Session& a, int64_t start) { return a.first_event_ms < start; });
    target = &*sessions.insert(at, std::move(fresh));
  } else {
    // The event extends one session, or bridges several: they collapse into
    // the first one (sorted and disjoint, so the hits are contiguous),
    // keeping the earliest timer; with one hit the order is unchanged.
    target = &sessions[first_hit];
    for (size_t i = first_hit + 1; i < first_hit + hits; ++i) {
      program.Merge(sessions[i].words.data(), sessions[i].vars.data(), target->words.data(), target->vars.data());
    }
    for (size_t i = first_hit; i < first_hit + hits; ++i) {
      if (sessions[i].timer_ms != timer) removed_timers->push_back(sessions[i].timer_ms);
    }
    target->timer_ms = timer;
    if (hits > 1) {
      sessions.erase(sessions.begin() + static_cast<std::ptrdiff_t>(first_hit + 1),
                     sessions.begin() + static_cast<std::ptrdiff_t>(first_hit + hits));
      target = &sessions[first_hit];
    }
  }
  target->first_event_ms = first;
  target->last_event_ms = last;
  target->event_count = count;
  program.Accumulate(event, target->words.data(), target->vars.data());
  return true;
}

bool UserWindowState::FireSession(const GroupProgram& program, size_t g, std::string_view key, int64_t timer_ms,
                                  std::vector<FeatureWrite>* out, std::optional<int64_t>* rearm_at) {
  rearm_at->reset();
  if (groups.size() <= g) return false;
  std::vector<Session>& sessions = groups[g].sessions;
  const int64_t gap = program.window().gap_ms;
  auto it = std::find_if(sessions.begin(), sessions.end(), [&](const Session& s) { return s.timer_ms == timer_ms; });
  if (it == sessions.end()) return false;
  if (SessionFireTime(*it, gap) != timer_ms) {
    it->timer_ms = SessionFireTime(*it, gap);  // it grew after the timer was armed
    *rearm_at = it->timer_ms;
    return false;
  }
  GroupProgram::WindowValues values;
  values.start_ms = it->first_event_ms;
  values.end_ms = it->last_event_ms + gap;
  values.first_event_ms = it->first_event_ms;
  values.last_event_ms = it->last_event_ms;
  values.event_count = it->event_count;
  out->push_back(program.MakeWrite(key, values, it->words.data(), it->vars.data()));
  sessions.erase(it);
  return true;
}

}  // namespace slipstream
