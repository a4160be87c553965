// The input schema's fields, compiled once per parser for the hot path, and
// the messages of their validation.
#include <cmath>

#include "common/event_internal.h"

namespace slipstream::event_internal {

// Shortest round-trip text of a bound ("0", "10", "0.5", "1e+20").
std::string NumberText(double value) {
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, result.ptr);
}

int64_t CeilToInt64(double bound) {
  const double c = std::ceil(bound);
  if (c <= -9223372036854775808.0) return std::numeric_limits<int64_t>::min();
  if (c >= 9223372036854775808.0) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(c);
}

int64_t FloorToInt64(double bound) {
  const double f = std::floor(bound);
  if (f <= -9223372036854775808.0) return std::numeric_limits<int64_t>::min();
  if (f >= 9223372036854775808.0) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(f);
}

CompiledField CompileField(const InputSchema& schema, int index) {
  const InputField& in = schema.fields[static_cast<size_t>(index)];
  CompiledField f;
  f.name = in.name;
  f.is_key = index == schema.key_field;
  f.is_time = index == schema.time_field;
  // Every event has a key and a time: those are required regardless.
  f.required = in.required || f.is_key || f.is_time;
  f.allow_empty = in.allow_empty;
  f.reason = Cat(kReasonInvalidPrefix, in.name);
  f.min = in.min;
  f.max = in.max;
  if (in.min) f.min_long = CeilToInt64(*in.min);
  if (in.max) f.max_long = FloorToInt64(*in.max);
  f.allowed = in.allowed;
  if (f.allowed.size() > kMaxLinearBucket) f.allowed_set.insert(f.allowed.begin(), f.allowed.end());
  for (size_t i = 0; i < f.allowed.size(); ++i) {
    if (i > 0) f.allowed_list += ", ";
    f.allowed_list += f.allowed[i];
  }
  if (f.is_time) {
    switch (schema.time_format) {
      case TimeFormat::kIso8601:
        f.kind = ValueKind::kTimeIso8601;
        f.expected = "a string";
        break;
      case TimeFormat::kEpochMillis:
        f.kind = ValueKind::kTimeMillis;
        f.expected = "an integer";
        break;
      case TimeFormat::kEpochSeconds:
        f.kind = ValueKind::kTimeSeconds;
        f.expected = "an integer";
        break;
    }
    return f;
  }
  switch (in.type) {
    case FieldType::kString:
      f.kind = f.is_key ? ValueKind::kKeyString : ValueKind::kString;
      f.expected = f.is_key ? "a string or an integer" : "a string";
      break;
    case FieldType::kLong:
      f.kind = ValueKind::kLong;
      f.expected = "an integer";
      break;
    case FieldType::kDouble:
      f.kind = ValueKind::kDouble;
      f.expected = "a number";
      break;
    case FieldType::kBoolean:
      f.kind = ValueKind::kBoolean;
      f.expected = "a boolean";
      break;
  }
  return f;
}

absl::Status WrongType(const CompiledField& field, simdjson::ondemand::json_type got) {
  return Reason(kReasonWrongType, Cat(field.name, " must be ", field.expected, ", got ", JsonTypeName(got)));
}

absl::Status WrongTypeNonInteger(const CompiledField& field, std::string_view token) {
  return Reason(kReasonWrongType,
                Cat(field.name, " must be ", field.expected, ", got non-integer number ", Quote(token)));
}

// The range problem of a number outside [min, max]; `token` is its JSON text.
absl::Status BelowMinimum(const CompiledField& field, std::string_view token) {
  // "is negative" for the common min 0 (and the wording the original
  // contract's invalid_price used).
  if (*field.min == 0) return Reason(field.reason, Cat(Quote(token), " is negative"));
  return Reason(field.reason, Cat(Quote(token), " is below the minimum ", NumberText(*field.min)));
}

absl::Status AboveMaximum(const CompiledField& field, std::string_view token) {
  return Reason(field.reason, Cat(Quote(token), " is above the maximum ", NumberText(*field.max)));
}

}  // namespace slipstream::event_internal
