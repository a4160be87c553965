// SessionWindowOperator: per-user sessions with a 10-minute gap, Flink's
// EventTimeSessionWindows.withGap(10 min) with allowed lateness 0.
//
// Each event opens a window [t, t + gap); windows that intersect (touching
// counts, as in Flink's TimeWindow.intersects) merge. The open sessions of a
// user live in one RocksDB value (usually a single session). Each session has
// one timer at its window's max timestamp (last event + gap - 1), moved when
// the session grows. When it fires the session is written to
// `session_features:{user_id}:{session_start}` with EXPIRE 3600 and removed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/event.h"
#include "worker/state/state_store.h"
#include "worker/window/feature_write.h"
#include "worker/window/timer_service.h"

namespace slipstream {

struct Session {
  int64_t first_event_ms;
  int64_t last_event_ms;
  int64_t event_count;
  bool operator==(const Session&) const = default;
};

// Sessions of one user, sorted by start, pairwise non-intersecting.
std::string SerializeSessions(const std::vector<Session>& sessions);
bool ParseSessions(std::string_view data, std::vector<Session>* out);

class SessionWindowOperator {
 public:
  SessionWindowOperator(StateStore* store, TimerService* timers);

  // Adds the event to its (possibly merged) session. Returns false when the
  // resulting session window has already fired: the event is late here.
  [[nodiscard]] absl::StatusOr<bool> ProcessEvent(int key_group, const Event& event,
                                                  int64_t watermark_ms);

  [[nodiscard]] absl::Status OnTimer(const Timer& timer, std::vector<FeatureWrite>* out);

  int64_t sessions_fired() const { return sessions_fired_; }

 private:
  StateStore* store_;
  TimerService* timers_;
  int64_t sessions_fired_ = 0;
  std::string scratch_;
  std::vector<Session> sessions_;
};

FeatureWrite MakeSessionFeatures(std::string_view user_id, const Session& session);

}  // namespace slipstream
