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
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipstream {

// One field's value in an event. Strings keep their capacity when an Event
// is reused, so parsing a stream allocates only while strings grow.
struct FieldValue {
  bool present = false;      // false: an optional field the record lacks
  int64_t long_value = 0;    // long; boolean as 0 / 1
  double double_value = 0;   // double
  std::string string_value;  // string
};

// A parsed, valid record, per the job's InputSchema (common/features/
// feature_definition.h): its key, its event time, and every input field's
// value in the schema's order (the key and time fields included).
struct Event {
  int64_t event_time_ms = 0;  // epoch milliseconds, UTC
  std::string user_id;        // the key field's value as text (JSON integers as decimal text)
  std::vector<FieldValue> fields;
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
