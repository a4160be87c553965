// The event contract: one e-commerce event per Kafka record value, as JSON
//   {"event_time": "2024-01-01T10:00:00", "event_type": "view|cart|purchase",
//    "user_id": "111", "price": 29.99}
// Parsing never throws; an invalid record yields an InvalidArgument status
// whose message is the dead-letter reason ("<code>: <detail>", code one of
// the kReason* constants) so an operator can act on it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipstream {

enum class EventType : uint8_t { kView = 0, kCart = 1, kPurchase = 2 };

std::string_view EventTypeName(EventType type);

struct Event {
  int64_t event_time_ms = 0;  // epoch milliseconds, UTC
  EventType type = EventType::kView;
  std::string user_id;  // non-empty; JSON integers are kept as decimal text
  double price = 0;     // finite, >= 0
};

// Reason codes, the prefix of every dead-letter reason.
inline constexpr std::string_view kReasonMalformedJson = "malformed_json";
inline constexpr std::string_view kReasonMissingField = "missing_field";
inline constexpr std::string_view kReasonWrongType = "wrong_type";
inline constexpr std::string_view kReasonInvalidEventType = "invalid_event_type";
inline constexpr std::string_view kReasonInvalidEventTime = "invalid_event_time";
inline constexpr std::string_view kReasonInvalidUserId = "invalid_user_id";
inline constexpr std::string_view kReasonInvalidPrice = "invalid_price";
inline constexpr std::string_view kReasonLate = "late";
// Only with source.max-event-time-skew: event_time too far ahead of the clock.
inline constexpr std::string_view kReasonFutureEventTime = "future_event_time";

// ISO-8601 date-time to epoch milliseconds: "YYYY-MM-DDTHH:MM:SS" with optional
// fractional seconds (any number of digits, truncated to milliseconds) and an
// optional zone ("Z" or "+hh:mm"/"-hh:mm"; none means UTC). Impossible dates
// (month 13, Feb 30, hour 24, ...) are errors.
absl::StatusOr<int64_t> ParseIso8601Millis(std::string_view text);

// Epoch milliseconds to "YYYY-MM-DDTHH:MM:SS.mmmZ" (or without ".mmm" when the
// millisecond part is 0).
std::string FormatIso8601Millis(int64_t epoch_ms);

// Reusable parser (keeps simdjson's buffers between calls). Not thread-safe:
// one per thread.
class EventParser {
 public:
  EventParser();
  ~EventParser();
  EventParser(EventParser&&) noexcept;
  EventParser& operator=(EventParser&&) noexcept;

  // Parses and validates one record value. On error `out` is unspecified.
  absl::Status Parse(std::string_view json, Event* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
