// The end-to-end test's input and its independent reference model.
//
// Workload: a deterministic (seeded) stream of e-commerce events for ~500
// users over several hours of event time. Each event's time is a
// non-decreasing base minus a uniform jitter in [0, 5 s], so within a Kafka
// partition no event is more than 5 s behind an earlier one and (with a
// 10 s out-of-orderness bound) no valid event can be late. Users go online
// and offline so sessions start and end, some exactly one gap apart (touching
// session windows merge) or one millisecond more; some events sit exactly on
// pane boundaries. About 0.5 % of the records are invalid, of many kinds.
//
// ReferenceModel: computes from the valid events alone, written from the
// output contract and not from engine code:
//  - sliding windows [s, s + 1 h), s a multiple of 10 min: every window that
//    contains at least one event of the user fires exactly once, with the
//    events that arrived before it fired; the Redis hash of the user holds
//    the window with the largest end;
//  - sessions: a user's events sorted by time, split where two consecutive
//    events are more than 10 min apart (exactly 10 min still joins).
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace slipstream::it {

inline constexpr int64_t kSecondMs = 1000;
inline constexpr int64_t kMinuteMs = 60 * kSecondMs;
inline constexpr int64_t kHourMs = 60 * kMinuteMs;
inline constexpr int64_t kSlideMs = 10 * kMinuteMs;
inline constexpr int64_t kWindowMs = kHourMs;
inline constexpr int64_t kGapMs = 10 * kMinuteMs;
inline constexpr int64_t kMaxJitterMs = 5 * kSecondMs;

// Floor division toward negative infinity.
int64_t FloorTo(int64_t t, int64_t unit);

// Epoch ms <-> civil UTC time (independent of the engine's date code).
int64_t EpochMs(int year, int month, int day, int hour, int minute, int second, int millis);

// Time text formats the event contract accepts; all denote the same instant.
enum class TimeFormat {
  kZuluMillis,   // 2024-01-01T10:00:00.250Z  (the canonical form)
  kZeroOffset,   // 2024-01-01T10:00:00.250+00:00
  kPlusTwo,      // 2024-01-01T12:00:00.250+02:00
  kMinusFiveThirty,  // 2024-01-01T04:30:00.250-05:30
  kMicros,       // 2024-01-01T10:00:00.250000Z
};
std::string FormatTime(int64_t epoch_ms, TimeFormat format = TimeFormat::kZuluMillis);

std::string JsonEscape(const std::string& s);

enum class EventKind : char { kView = 'v', kCart = 'c', kPurchase = 'p' };

struct ValidEvent {
  std::string user;
  int64_t time_ms = 0;
  EventKind kind = EventKind::kView;
  int64_t price_cents = 0;  // the JSON price is exactly price_cents / 100
  // The job's watermark when the event arrives, when known and relevant:
  // windows that fired before (end - 1 <= watermark) do not contain it.
  int64_t arrival_watermark = INT64_MIN;
};

// One record as produced: key, value and what the pipeline must do with it.
struct RecordSpec {
  std::optional<std::string> key;  // nullopt: null key
  std::string value;
  // Empty for records that must not reach the dead-letter topic; otherwise
  // the expected reason code (malformed_json, ..., late).
  std::string dlq_code;
  int event_index = -1;  // index into Workload::valid for valid events
};

struct WorkloadOptions {
  uint64_t seed = 20240310;
  int users = 500;
  int valid_events = 110000;
  int64_t step_ms = 180;  // base advance per event: 110000 * 180 ms = 5.5 h
  double malformed_fraction = 0.005;
};

struct Workload {
  int64_t start_ms = 0;
  std::vector<std::string> users;
  std::vector<ValidEvent> valid;    // phase-1 valid events (+ closing events, appended later)
  std::vector<RecordSpec> records;  // phase-1 records in production order
  int64_t malformed = 0;
  std::map<std::string, int64_t> malformed_by_code;
  int64_t max_time_ms = 0;
};

Workload GenerateWorkload(const WorkloadOptions& options);

// The canonical JSON of an event (used for the closing and late events).
std::string CanonicalEventJson(const std::string& user, int64_t time_ms, EventKind kind, int64_t price_cents);

// Events behind `watermark` that are nevertheless not late: each lies inside
// the still-open last session of its user (that session fires only at
// last + 10 min - 1 > watermark), so the session takes it, and so does every
// sliding window ending after the watermark; windows that already fired do
// not. Some are more than an hour behind (no sliding window left, only the
// session). At most one per user; `arrival_watermark` is set.
std::vector<ValidEvent> BehindWatermarkEvents(const std::vector<ValidEvent>& events, int64_t watermark, int count,
                                              uint64_t seed);

struct ExpectedSession {
  std::string user;
  int64_t first_ms = 0;
  int64_t last_ms = 0;
  int64_t count = 0;
};

// One sliding window [start, start + 1 h) of one user.
struct ExpectedWindow {
  int64_t start = 0;
  int64_t views = 0, carts = 0, purchases = 0;
  int64_t view_price_cents = 0;
  int64_t end() const { return start + kWindowMs; }
  // Exact mean view price (prices are whole cents); 0 without views.
  long double AvgViewedPrice() const {
    return views == 0 ? 0.0L : static_cast<long double>(view_price_cents) / 100.0L / static_cast<long double>(views);
  }
};

class ReferenceModel {
 public:
  explicit ReferenceModel(const std::vector<ValidEvent>& events);

  int64_t sliding_windows() const { return sliding_windows_; }
  // The newest window of every user: what user_features:{user} must hold.
  const std::map<std::string, ExpectedWindow>& user_features() const { return user_features_; }
  // Keyed by the Redis key session_features:{user}:{start}.
  const std::map<std::string, ExpectedSession>& sessions() const { return sessions_; }
  // Every non-empty window per user, by start.
  const std::map<std::string, std::vector<ExpectedWindow>>& windows() const { return windows_; }

 private:
  int64_t sliding_windows_ = 0;
  std::map<std::string, ExpectedWindow> user_features_;
  std::map<std::string, ExpectedSession> sessions_;
  std::map<std::string, std::vector<ExpectedWindow>> windows_;
};

}  // namespace slipstream::it
