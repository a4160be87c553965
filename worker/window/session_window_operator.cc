#include "worker/window/session_window_operator.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "worker/state/state_keys.h"
#include "worker/window/window_math.h"

namespace slipstream {

namespace sk = state_keys;

namespace {
// Session window [first, last + gap); fires at its max timestamp.
int64_t SessionFireTime(const Session& s) { return FireTime(s.last_event_ms + kSessionGapMs); }
}  // namespace

std::string SerializeSessions(const std::vector<Session>& sessions) {
  std::string out(sessions.size() * sizeof(Session), '\0');
  std::memcpy(out.data(), sessions.data(), out.size());
  return out;
}

bool ParseSessions(std::string_view data, std::vector<Session>* out) {
  if (data.size() % sizeof(Session) != 0) return false;
  out->resize(data.size() / sizeof(Session));
  std::memcpy(out->data(), data.data(), data.size());
  return true;
}

FeatureWrite MakeSessionFeatures(std::string_view user_id, const Session& session) {
  FeatureWrite write;
  write.key = absl::StrCat("session_features:", ToAbsl(user_id), ":", session.first_event_ms);
  write.ttl_seconds = kSessionFeaturesTtlSeconds;
  const int64_t duration_ms = session.last_event_ms - session.first_event_ms;
  write.fields = {"user_id",          std::string(user_id),
                  "event_count",      absl::StrCat(session.event_count),
                  "duration_seconds", absl::StrCat(duration_ms / 1000),  // >= 0: rounds down
                  "session_start",    absl::StrCat(session.first_event_ms),
                  "session_end",      absl::StrCat(session.last_event_ms)};
  return write;
}

SessionWindowOperator::SessionWindowOperator(StateStore* store, TimerService* timers)
    : store_(store), timers_(timers) {}

absl::StatusOr<bool> SessionWindowOperator::ProcessEvent(int key_group, const Event& event,
                                                         int64_t watermark_ms) {
  const std::string key = sk::SessionsKey(key_group, event.user_id);
  sessions_.clear();
  absl::StatusOr<bool> found = store_->Get(key, &scratch_);
  if (!found.ok()) return found.status();
  if (*found && !ParseSessions(scratch_, &sessions_)) {
    return absl::DataLossError(absl::StrCat("corrupt session state for user ", event.user_id));
  }

  // Merge the event's window [t, t + gap) with every session window
  // [first, last + gap) it intersects (Flink: start <= other.end && end >= other.start).
  const int64_t t = event.event_time_ms;
  Session merged{t, t, 1};
  std::vector<Session> kept;
  kept.reserve(sessions_.size() + 1);
  std::vector<Session> absorbed;
  for (const Session& s : sessions_) {
    const bool intersects = s.first_event_ms <= t + kSessionGapMs && s.last_event_ms + kSessionGapMs >= t;
    if (intersects) {
      absorbed.push_back(s);
      merged.first_event_ms = std::min(merged.first_event_ms, s.first_event_ms);
      merged.last_event_ms = std::max(merged.last_event_ms, s.last_event_ms);
      merged.event_count += s.event_count;
    } else {
      kept.push_back(s);
    }
  }
  // Open sessions have not fired, so merging with one can never be late; a
  // lone window is late when its max timestamp is behind the watermark.
  if (SessionFireTime(merged) <= watermark_ms) return false;

  for (const Session& s : absorbed) {
    if (SessionFireTime(s) != SessionFireTime(merged)) {
      timers_->Delete(key_group, SessionFireTime(s), TimerKind::kSession, event.user_id);
    }
  }
  timers_->Register(key_group, SessionFireTime(merged), TimerKind::kSession, event.user_id);
  kept.push_back(merged);
  std::sort(kept.begin(), kept.end(),
            [](const Session& a, const Session& b) { return a.first_event_ms < b.first_event_ms; });
  store_->Put(key, SerializeSessions(kept));
  return true;
}

absl::Status SessionWindowOperator::OnTimer(const Timer& timer, std::vector<FeatureWrite>* out) {
  const std::string key = sk::SessionsKey(timer.key_group, timer.user);
  sessions_.clear();
  absl::StatusOr<bool> found = store_->Get(key, &scratch_);
  if (!found.ok()) return found.status();
  if (!*found) return absl::OkStatus();
  if (!ParseSessions(scratch_, &sessions_)) {
    return absl::DataLossError(absl::StrCat("corrupt session state for user ", timer.user));
  }
  auto it = std::find_if(sessions_.begin(), sessions_.end(),
                         [&](const Session& s) { return SessionFireTime(s) == timer.time_ms; });
  if (it == sessions_.end()) return absl::OkStatus();  // moved by a merge
  out->push_back(MakeSessionFeatures(timer.user, *it));
  ++sessions_fired_;
  sessions_.erase(it);
  if (sessions_.empty()) {
    store_->Delete(key);
  } else {
    store_->Put(key, SerializeSessions(sessions_));
  }
  return absl::OkStatus();
}

}  // namespace slipstream
