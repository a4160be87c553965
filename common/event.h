// The event contract: one record per Kafka record value, a JSON object whose
// fields are declared by the job's InputSchema (the `input` section of the
// feature definition, common/features/feature_definition.h; format in
// docs/features.md). The shipped default (conf/features.yaml) is
//   {"event_time": "2024-01-01T10:00:00", "event_type": "view|cart|purchase",
//    "user_id": "111", "price": 29.99}
// Parsing never throws; an invalid record yields an InvalidArgument status
// whose message is the dead-letter reason ("<code>: <detail>", code one of
// the kReason* constants or invalid_<field>) so an operator can act on it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/features/feature_definition.h"

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

// Reason codes, the prefix of every dead-letter reason. A value that fails
// its field's validation is "invalid_<field name>"; the default schema's are
// named below because tools and tests refer to them.
inline constexpr std::string_view kReasonMalformedJson = "malformed_json";
inline constexpr std::string_view kReasonMissingField = "missing_field";
inline constexpr std::string_view kReasonWrongType = "wrong_type";
inline constexpr std::string_view kReasonInvalidPrefix = "invalid_";
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

// Reusable parser for one InputSchema (keeps simdjson's buffers and the
// compiled schema between calls). Not thread-safe: one per thread.
//
// The schema is expected to be validated (ParseFeatureDefinition does):
// unique field names, key_field and time_field valid indexes. The key and
// time fields are required whatever their `required` says.
class EventParser {
 public:
  explicit EventParser(InputSchema schema);
  ~EventParser();
  // A moved-from parser may only be destroyed or assigned to; its Parse
  // returns FailedPrecondition.
  EventParser(EventParser&&) noexcept;
  EventParser& operator=(EventParser&&) noexcept;

  // Parses and validates one record value into `out`, reusing its strings'
  // capacity: out->fields gets one value per schema field, in schema order
  // (the time field as long_value epoch milliseconds, whatever its format).
  // On error `out` is unspecified.
  [[nodiscard]] absl::Status Parse(std::string_view json, Event* out);

  const InputSchema& schema() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
