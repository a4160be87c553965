#include "worker/window/user_window_state.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "worker/window/window_math.h"

namespace slipstream {

int64_t SessionFireTime(const Session& s) { return FireTime(s.last_event_ms + kSessionGapMs); }

std::string FormatDouble(double value) {
  char buf[32];
  auto result = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, result.ptr);
}

FeatureWrite MakeUserFeatures(std::string_view user_id, int64_t window_start_ms, int64_t window_end_ms,
                              const PaneAggregate& aggregate) {
  FeatureWrite write;
  write.key = absl::StrCat("user_features:", ToAbsl(user_id));
  write.ttl_seconds = kUserFeaturesTtlSeconds;
  write.fields = {"user_id",           std::string(user_id),
                  "view_count_1h",     absl::StrCat(aggregate.view_count),
                  "cart_count_1h",     absl::StrCat(aggregate.cart_count),
                  "purchase_count_1h", absl::StrCat(aggregate.purchase_count),
                  "avg_viewed_price_1h", FormatDouble(aggregate.AvgViewedPrice()),
                  "window_start",      absl::StrCat(window_start_ms),
                  "window_end",        absl::StrCat(window_end_ms)};
  write.guard_fields = {static_cast<int>(write.fields.size()) - 2, -1};
  write.order = window_end_ms;
  return write;
}

FeatureWrite MakeSessionFeatures(std::string_view user_id, const Session& session) {
  FeatureWrite write;
  write.key = absl::StrCat("session_features:", ToAbsl(user_id), ":", session.first_event_ms);
  write.ttl_seconds = kSessionFeaturesTtlSeconds;
  const int64_t duration_ms = session.last_event_ms - session.first_event_ms;
  write.fields = {"user_id",          std::string(user_id),
                  "event_count",      absl::StrCat(session.event_count),
                  "duration_seconds", absl::StrCat(duration_ms / 1000),  // >= 0, so this rounds down
                  "session_start",    absl::StrCat(session.first_event_ms),
                  "session_end",      absl::StrCat(session.last_event_ms)};
  write.guard_fields = {8, 2};  // session_end, then event_count
  write.order = session.last_event_ms;
  return write;
}

std::optional<int64_t> UserWindowState::AddToSlidingWindows(const Event& event, int64_t watermark_ms) {
  const int64_t pane = PaneStart(event.event_time_ms);
  // The pane's windows end at pane + 10 min, ..., pane + 60 min. Flink skips
  // windows that are already late (maxTimestamp <= watermark); the element is
  // dropped when all of them are.
  int64_t first_open_end = pane + kSlideMs;
  const int64_t last_end = pane + kWindowSizeMs;
  while (first_open_end <= last_end && FireTime(first_open_end) <= watermark_ms) first_open_end += kSlideMs;
  if (first_open_end > last_end) return std::nullopt;

  auto it = std::lower_bound(panes.begin(), panes.end(), pane,
                             [](const auto& entry, int64_t start) { return entry.first < start; });
  if (it == panes.end() || it->first != pane) it = panes.insert(it, {pane, PaneAggregate{}});
  it->second.Add(event);
  return FireTime(first_open_end);
}

std::optional<int64_t> UserWindowState::FireSlidingWindows(std::string_view user_id, int64_t timer_ms,
                                                          int64_t watermark_ms, int64_t* emitted_until,
                                                          std::vector<FeatureWrite>* out) {
  const int64_t first_end = timer_ms + 1;
  // An earlier timer of this user in the same watermark step already emitted
  // this window as part of its chain (and registered what follows).
  if (*emitted_until >= first_end) return std::nullopt;

  // Emit every due, non-empty window in end order. A window without panes
  // ends the chain: later panes have timers of their own.
  int64_t end = first_end;
  int64_t last_emitted_end = INT64_MIN;
  while (FireTime(end) <= watermark_ms) {
    PaneAggregate window;
    for (const auto& [start, aggregate] : panes) {
      if (start >= end) break;
      if (start >= end - kWindowSizeMs) window.Merge(aggregate);
    }
    if (window.empty()) break;
    out->push_back(MakeUserFeatures(user_id, end - kWindowSizeMs, end, window));
    last_emitted_end = end;
    end += kSlideMs;
  }
  if (last_emitted_end == INT64_MIN) return std::nullopt;  // stale timer: nothing due
  *emitted_until = last_emitted_end;

  // Panes before the next window's start are in no future window.
  const int64_t next_start = last_emitted_end + kSlideMs - kWindowSizeMs;
  panes.erase(panes.begin(), std::lower_bound(panes.begin(), panes.end(), next_start,
                                              [](const auto& entry, int64_t s) { return entry.first < s; }));
  // The next window needs a timer only for panes that have none of their
  // own, i.e. those that started before the last emitted end.
  if (!panes.empty() && panes.front().first < last_emitted_end) return FireTime(last_emitted_end + kSlideMs);
  return std::nullopt;
}

bool UserWindowState::AddToSession(const Event& event, int64_t watermark_ms, std::vector<int64_t>* removed_timers,
                                   std::optional<int64_t>* new_timer) {
  const int64_t t = event.event_time_ms;
  removed_timers->clear();
  new_timer->reset();
  // Flink: [a, b) and [c, d) intersect iff a <= d && b >= c. The event's
  // window is [t, t + gap); a session's is [first, last + gap).
  auto intersects = [&](const Session& s) {
    return s.first_event_ms <= t + kSessionGapMs && s.last_event_ms + kSessionGapMs >= t;
  };
  size_t first_hit = sessions.size();
  size_t hits = 0;
  Session merged{t, t, 1, 0};
  for (size_t i = 0; i < sessions.size(); ++i) {
    const Session& s = sessions[i];
    if (!intersects(s)) continue;
    if (hits++ == 0) {
      first_hit = i;
      merged.timer_ms = s.timer_ms;
    }
    merged.first_event_ms = std::min(merged.first_event_ms, s.first_event_ms);
    merged.last_event_ms = std::max(merged.last_event_ms, s.last_event_ms);
    merged.event_count += s.event_count;
    merged.timer_ms = std::min(merged.timer_ms, s.timer_ms);
  }
  // Open sessions have not fired, so a merge can never be late; a lone
  // window is late when its max timestamp is behind the watermark.
  if (SessionFireTime(merged) <= watermark_ms) return false;

  if (hits == 0) {
    merged.timer_ms = SessionFireTime(merged);
    *new_timer = merged.timer_ms;
    sessions.insert(std::lower_bound(sessions.begin(), sessions.end(), merged,
                                     [](const Session& a, const Session& b) {
                                       return a.first_event_ms < b.first_event_ms;
                                     }),
                    merged);
  } else if (hits == 1) {
    // The common case: the event extends one session. It intersects no other
    // session, so the order is unchanged; the armed timer stays.
    sessions[first_hit] = merged;
  } else {
    // The event bridges sessions: they collapse into the first one (sorted
    // and disjoint, so the hits are contiguous), keeping the earliest timer.
    for (size_t i = first_hit; i < first_hit + hits; ++i) {
      if (sessions[i].timer_ms != merged.timer_ms) removed_timers->push_back(sessions[i].timer_ms);
    }
    sessions[first_hit] = merged;
    sessions.erase(sessions.begin() + static_cast<std::ptrdiff_t>(first_hit + 1),
                   sessions.begin() + static_cast<std::ptrdiff_t>(first_hit + hits));
  }
  return true;
}

bool UserWindowState::FireSession(std::string_view user_id, int64_t timer_ms, std::vector<FeatureWrite>* out,
                                  std::optional<int64_t>* rearm_at) {
  rearm_at->reset();
  auto it = std::find_if(sessions.begin(), sessions.end(), [&](const Session& s) { return s.timer_ms == timer_ms; });
  if (it == sessions.end()) return false;
  if (SessionFireTime(*it) != timer_ms) {
    it->timer_ms = SessionFireTime(*it);  // it grew after the timer was armed
    *rearm_at = it->timer_ms;
    return false;
  }
  out->push_back(MakeSessionFeatures(user_id, *it));
  sessions.erase(it);
  return true;
}

namespace {
constexpr size_t kPaneBytes = 8 + 48;
constexpr size_t kSessionBytes = 32;

void AppendU32(uint32_t v, std::string* out) { out->append(reinterpret_cast<const char*>(&v), 4); }
}  // namespace

// Layout (little-endian, this machine's): u32 pane count, per pane the start
// and the PaneAggregate bytes; u32 session count, per session four int64.
void UserWindowState::SerializeTo(std::string* out) const {
  out->clear();
  out->reserve(8 + panes.size() * kPaneBytes + sessions.size() * kSessionBytes);
  AppendU32(static_cast<uint32_t>(panes.size()), out);
  std::string aggregate_bytes;
  for (const auto& [start, aggregate] : panes) {
    out->append(reinterpret_cast<const char*>(&start), 8);
    aggregate.SerializeTo(&aggregate_bytes);
    out->append(aggregate_bytes);
  }
  AppendU32(static_cast<uint32_t>(sessions.size()), out);
  for (const Session& s : sessions) {
    out->append(reinterpret_cast<const char*>(&s.first_event_ms), 8);
    out->append(reinterpret_cast<const char*>(&s.last_event_ms), 8);
    out->append(reinterpret_cast<const char*>(&s.event_count), 8);
    out->append(reinterpret_cast<const char*>(&s.timer_ms), 8);
  }
}

bool UserWindowState::Parse(std::string_view data, UserWindowState* out) {
  auto read = [&data](void* dst, size_t n) {
    if (data.size() < n) return false;
    std::memcpy(dst, data.data(), n);
    data.remove_prefix(n);
    return true;
  };
  uint32_t count = 0;
  if (!read(&count, 4) || data.size() < count * kPaneBytes) return false;
  out->panes.resize(count);
  for (auto& [start, aggregate] : out->panes) {
    if (!read(&start, 8) || !PaneAggregate::Parse(data.substr(0, 48), &aggregate)) return false;
    data.remove_prefix(48);
  }
  if (!read(&count, 4) || data.size() != count * kSessionBytes) return false;
  out->sessions.resize(count);
  for (Session& s : out->sessions) {
    read(&s.first_event_ms, 8);
    read(&s.last_event_ms, 8);
    read(&s.event_count, 8);
    read(&s.timer_ms, 8);
  }
  return true;
}

}  // namespace slipstream
