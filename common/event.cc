// Event contract: JSON parsing/validation (simdjson ondemand) against the
// job's InputSchema, and ISO-8601 conversion.
//
// Decisions not spelled out in event.h (field names below are the default
// schema's, conf/features.yaml; every rule applies to any schema):
//  * Duplicate keys: a second occurrence of a schema field is rejected as
//    malformed_json ("duplicate key"), because producers disagree on which
//    copy wins (Python's json keeps the last, simdjson's lookup the first)
//    and a silent disagreement is worse than a dead letter. Duplicate
//    unknown keys are ignored like any other extra field.
//  * Problems are reported in a fixed order: malformed_json first (the whole
//    object is scanned before any field problem is reported), then fields in
//    schema order (event_time, event_type, user_id, price); for each field
//    missing_field (required fields only; an absent optional field is
//    FieldValue.present == false) / wrong_type / invalid_<field>.
//  * A top level that is not an object (array, string, number, ...) is
//    malformed_json.
//  * Types: string: a JSON string, verbatim (whitespace is not trimmed);
//    empty is invalid unless allow_empty. long: a JSON integer within int64
//    (a fraction or exponent, 1.5 or 1e3, is wrong_type; beyond int64 is
//    invalid_<field>). double: any finite JSON number; -0 is stored as 0; a
//    syntactically valid number that does not fit a double (1e400) is
//    invalid_<field>. boolean: true / false (long_value 0 / 1).
//  * Validation: `allowed` values ("x" is not one of view, cart, purchase),
//    checked before emptiness; ranges inclusive ("-1" is negative when the
//    minimum is 0, else "5" is below the minimum 10 / above the maximum 20);
//    long ranges are compared as integers, so exactly.
//  * The key field of type string also accepts a JSON integer, kept as its
//    JSON text, which is already canonical decimal (JSON forbids leading
//    zeros and '+'); "-0" becomes "0". Integers of any size are accepted (no
//    64-bit limit: it is an id, not a quantity). A number with a fraction or
//    exponent is wrong_type. Event.user_id is the key's text (a long key as
//    decimal). The key and time fields are required whatever the schema says.
//  * The time field: iso8601 reads a string (rules below); epoch_millis and
//    epoch_seconds a JSON integer (seconds are multiplied by 1000, overflow
//    is invalid_<field>). Its FieldValue holds the instant as long_value
//    epoch milliseconds, whatever the format (string_value stays empty).
//  * Field names are looked up by length, then memcmp against the few names
//    of that length (a hash map for lengths shared by many names): no chain
//    of string compares for big schemas, and no allocation per record once
//    the Event's strings have grown.
//  * The whole record must be valid JSON (RFC 8259), extra fields included:
//    simdjson ondemand would only skip unread values bracket-by-bracket, so
//    extra values are walked and checked explicitly (cost paid only by records
//    that carry extra fields). Extra values nested deeper than
//    kMaxExtraDepth are rejected as malformed_json.
//  * ISO-8601: besides 'T', a lowercase 't' and a single space are accepted
//    as the date/time separator (RFC 3339 section 5.6 allows both), and 'z' as
//    well as 'Z'. The fraction has 1..9 digits (nanoseconds at most); digits
//    beyond milliseconds are truncated on the local wall time, i.e. toward the
//    past, before the offset is applied. Offsets: "+hh:mm", "+hhmm", "+hh"
//    (and '-'), hh 00-23, mm 00-59. Leap seconds (:60) are rejected.
//  * FormatIso8601Millis covers the whole int64 range: years outside
//    0000-9999 are written with a sign and at least 4 digits ("-0001",
//    "+10000"); ParseIso8601Millis does not accept those back.

#include "common/event.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"

#include "common/event_internal.h"

namespace slipstream {
namespace {
using namespace event_internal;  // NOLINT: the parser's own internals
}  // namespace

// ---------------------------------------------------------------------------
// EventParser.

// simdjson notes: stage 1 (structural indexing, UTF-8 validation) is
// dispatched at run time to the best kernel (haswell/icelake on x86-64); the
// ondemand walk itself is inlined here and uses the "builtin" implementation,
// which is the portable one unless this file is compiled with -mavx2 or
// similar (measured: stage 1 is about a third of the cost of a typical event).
// Without NDEBUG (CMake's release build types define it) simdjson turns its
// internal assumptions into assert()s, which costs a little speed.
struct EventParser::Impl {
  explicit Impl(InputSchema input) : schema(std::move(input)) {
    const int n = static_cast<int>(schema.fields.size());
    fields.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) fields.push_back(CompileField(schema, i));
    seen.assign(static_cast<size_t>(n), 0);

    // Name lookup: fields grouped by name length, so most keys are told
    // apart by their length alone and the rest by comparing two words with
    // each name of that length. Lengths with many names (big schemas) and very
    // long names go through a hash map instead.
    size_t max_length = 0;
    for (const CompiledField& f : fields) {
      if (f.name.size() <= kMaxBucketedLength) max_length = std::max(max_length, f.name.size());
    }
    buckets.assign(n == 0 ? 0 : max_length + 1, Bucket{});
    for (const CompiledField& f : fields) {
      if (f.name.size() <= kMaxBucketedLength) ++buckets[f.name.size()].count;
    }
    uint32_t begin = 0;
    for (Bucket& b : buckets) {
      b.begin = begin;
      begin += b.count;
      b.count = 0;
    }
    entries.assign(begin, Entry{});
    for (int i = 0; i < n; ++i) {
      const std::string& name = fields[static_cast<size_t>(i)].name;
      by_name.emplace(name, i);  // the first of duplicate names wins (a validated schema has none)
      if (name.size() > kMaxBucketedLength) {
        long_names = true;
      } else {
        Bucket& b = buckets[name.size()];
        entries[b.begin + b.count++] = Entry{WordsOf(name.data(), name.size()), name.data(), i};
      }
    }
  }

  static constexpr size_t kMaxBucketedLength = 255;

  // Index of the schema field named `key`, or -1.
  int Lookup(std::string_view key) const {
    if (key.size() >= buckets.size()) return long_names ? HashLookup(key) : -1;
    const Bucket b = buckets[key.size()];
    if (b.count > kMaxLinearBucket) return HashLookup(key);
    if (b.count == 0) return -1;
    const NameWords words = WordsOf(key.data(), key.size());
    for (uint32_t i = b.begin; i < b.begin + b.count; ++i) {
      const Entry& e = entries[i];
      if (e.words == words && (key.size() <= 16 || SameBytes(e.name, key.data(), key.size()))) return e.index;
    }
    return -1;
  }

  int HashLookup(std::string_view key) const {
    const auto it = by_name.find(absl::string_view(key.data(), key.size()));
    return it == by_name.end() ? -1 : it->second;
  }

  // Copies `json` into the padded buffer (growing it geometrically).
  const char* Pad(std::string_view json) {
    if (!buffer || json.size() > capacity) {
      size_t new_capacity = capacity == 0 ? 1024 : capacity;
      while (new_capacity < json.size()) new_capacity *= 2;
      buffer = std::make_unique_for_overwrite<char[]>(new_capacity + simdjson::SIMDJSON_PADDING);
      capacity = new_capacity;
    }
    if (!json.empty()) std::memcpy(buffer.get(), json.data(), json.size());
    std::memset(buffer.get() + json.size(), 0, simdjson::SIMDJSON_PADDING);
    return buffer.get();
  }

  struct Bucket {
    uint32_t begin = 0;
    uint32_t count = 0;
  };
  // A name, with what compares it inline (no pointer chasing for names of
  // up to 16 bytes).
  struct Entry {
    NameWords words;
    const char* name = nullptr;  // fields[index].name.data()
    int index = -1;
  };

  InputSchema schema;
  std::vector<CompiledField> fields;  // by schema index
  std::vector<Bucket> buckets;        // by name length
  std::vector<Entry> entries;         // names grouped by length
  absl::flat_hash_map<std::string, int> by_name;
  bool long_names = false;            // a name longer than kMaxBucketedLength
  std::vector<uint8_t> seen;          // per record: which fields occurred

  simdjson::ondemand::parser parser;
  std::unique_ptr<char[]> buffer;  // capacity + SIMDJSON_PADDING bytes
  size_t capacity = 0;
};

namespace {

bool InAllowed(const CompiledField& field, std::string_view text) {
  if (!field.allowed_set.empty()) return field.allowed_set.contains(absl::string_view(text.data(), text.size()));
  for (const std::string& allowed : field.allowed) {
    if (allowed.size() == text.size() && SameBytes(allowed.data(), text.data(), text.size())) return true;
  }
  return false;
}

// Validation of a string value: true, or false with the field's
// invalid_<name> problem in *status.
inline bool CheckString(const CompiledField& field, std::string_view text, absl::Status* status) {
  if (!field.allowed.empty()) {
    if (!InAllowed(field, text)) {
      *status = Reason(field.reason, Cat(Quote(text), " is not one of ", field.allowed_list));
      return false;
    }
  } else if (text.empty() && !field.allow_empty) {
    *status = Reason(field.reason, Cat(field.name, " is empty"));
    return false;
  }
  return true;
}

// What reading one field's value found.
enum class ReadResult : uint8_t { kOk, kProblem, kMalformed };

// Reads a JSON integer token of `value` (of JSON type number) into *out.
// kProblem: a non-integer (wrong_type) or one outside int64 (invalid_).
ReadResult ReadInteger(const CompiledField& field, simdjson::ondemand::value& value, std::string_view* token,
                       int64_t* out, absl::Status* status) {
  *token = TrimJsonWhitespace(value.raw_json_token());
  bool is_integer = false;
  if (!IsJsonNumber(*token, &is_integer)) {
    *status = Reason(kReasonMalformedJson, Cat("invalid number ", Quote(*token)));
    return ReadResult::kMalformed;
  }
  if (!is_integer) {
    *status = WrongTypeNonInteger(field, *token);
    return ReadResult::kProblem;
  }
  if (!ParseInt64(*token, out)) {
    *status = Reason(field.reason, Cat(Quote(*token), " is out of range for a 64-bit integer"));
    return ReadResult::kProblem;
  }
  return ReadResult::kOk;
}

// Reads field `field`'s value into `fv` (and the event's key / time). On
// kMalformed or kProblem, *status says why. Forced inline: as an out-of-line
// call, `value` (simdjson's iterator state) had to live in memory, and the
// reloads cost more than the rest of the parse (measured: 228 vs 100 ns for
// the default event).
// A value of the wrong JSON type must still be valid JSON.
ReadResult NotOfType(const CompiledField& field, simdjson::ondemand::value& value,
                     simdjson::ondemand::json_type type, absl::Status* status) {
  if (auto error = ValidateIgnoredValue(value, 1)) {
    *status = Malformed(error);
    return ReadResult::kMalformed;
  }
  *status = WrongType(field, type);
  return ReadResult::kProblem;
}

inline ReadResult MalformedResult(simdjson::error_code error, absl::Status* status) {
  *status = Malformed(error);
  return ReadResult::kMalformed;
}

// The key as a string field: a JSON string, or an integer kept as its text.
[[gnu::always_inline]] inline ReadResult ReadKeyString(const CompiledField& field, simdjson::ondemand::value& value,
                                                       simdjson::ondemand::json_type type, FieldValue* fv, Event* out,
                                                       absl::Status* status) {
  using simdjson::ondemand::json_type;
  std::string_view text;
  if (type == json_type::string) {
    if (auto error = value.get_string().get(text)) return MalformedResult(error, status);
  } else if (type == json_type::number) {
    // An integer id keeps its JSON text, which is canonical decimal
    // already (JSON forbids leading zeros and '+'), of any size: it is an
    // id, not a quantity.
    text = TrimJsonWhitespace(value.raw_json_token());
    bool is_integer = false;
    if (!IsJsonNumber(text, &is_integer)) {
      *status = Reason(kReasonMalformedJson, Cat("invalid number ", Quote(text)));
      return ReadResult::kMalformed;
    }
    if (!is_integer) {
      *status = WrongTypeNonInteger(field, text);
      return ReadResult::kProblem;
    }
    if (text == "-0") text = "0";
  } else {
    return NotOfType(field, value, type, status);
  }
  if (!CheckString(field, text, status)) return ReadResult::kProblem;
  fv->string_value.assign(text);
  fv->long_value = 0;
  fv->double_value = 0;
  out->user_id.assign(text);
  return ReadResult::kOk;
}

[[gnu::always_inline]] inline ReadResult ReadDouble(const CompiledField& field, simdjson::ondemand::value& value,
                                                    simdjson::ondemand::json_type type, FieldValue* fv, Event* out,
                                                    absl::Status* status) {
  using simdjson::ondemand::json_type;
  if (type != json_type::number) return NotOfType(field, value, type, status);
  double v = 0;
  if (value.get_double().get(v) != simdjson::SUCCESS) {
    const std::string_view token = TrimJsonWhitespace(value.raw_json_token());
    bool is_integer = false;
    if (!IsJsonNumber(token, &is_integer)) {
      *status = Reason(kReasonMalformedJson, Cat("invalid number ", Quote(token)));
      return ReadResult::kMalformed;
    }
    // Valid JSON that does not fit a double (1e400).
    *status = Reason(field.reason, Cat(Quote(token), " is out of range for a ", field.name));
    return ReadResult::kProblem;
  }
  if (!std::isfinite(v)) {
    *status = Reason(field.reason, Cat(field.name, " must be finite"));
    return ReadResult::kProblem;
  }
  if (field.min && v < *field.min) {
    *status = BelowMinimum(field, TrimJsonWhitespace(value.raw_json_token()));
    return ReadResult::kProblem;
  }
  if (field.max && v > *field.max) {
    *status = AboveMaximum(field, TrimJsonWhitespace(value.raw_json_token()));
    return ReadResult::kProblem;
  }
  fv->double_value = v + 0.0;  // -0 -> +0
  fv->long_value = 0;
  fv->string_value.clear();
  if (field.is_key) out->user_id.assign(NumberText(fv->double_value));
  return ReadResult::kOk;
}

// The event time: ISO-8601 text, or epoch milliseconds / seconds.
[[gnu::always_inline]] inline ReadResult ReadTime(const CompiledField& field, simdjson::ondemand::value& value,
                                                  simdjson::ondemand::json_type type, FieldValue* fv, Event* out,
                                                  absl::Status* status) {
  using simdjson::ondemand::json_type;
  fv->double_value = 0;
  fv->string_value.clear();
  if (field.kind == ValueKind::kTimeIso8601) {
    if (type != json_type::string) return NotOfType(field, value, type, status);
    std::string_view text;
    if (auto error = value.get_string().get(text)) return MalformedResult(error, status);
    std::string why;
    if (!ParseIso8601Core(text, &out->event_time_ms, &why)) {
      *status = Reason(field.reason, Iso8601Problem(text, why));
      return ReadResult::kProblem;
    }
    fv->long_value = out->event_time_ms;
    return ReadResult::kOk;
  }
  if (type != json_type::number) return NotOfType(field, value, type, status);
  std::string_view token;
  int64_t v = 0;
  if (ReadResult r = ReadInteger(field, value, &token, &v, status); r != ReadResult::kOk) return r;
  if (field.kind == ValueKind::kTimeSeconds && __builtin_mul_overflow(v, int64_t{1000}, &v)) {
    *status = Reason(field.reason, Cat(Quote(token), " is out of range for epoch seconds"));
    return ReadResult::kProblem;
  }
  out->event_time_ms = v;
  fv->long_value = v;
  return ReadResult::kOk;
}

[[gnu::always_inline]] inline ReadResult ReadField(const CompiledField& field, simdjson::ondemand::value& value,
                                                   simdjson::ondemand::json_type type, FieldValue* fv, Event* out,
                                                   absl::Status* status) {
  using simdjson::ondemand::json_type;
  const auto wrong_type = [&]() { return NotOfType(field, value, type, status); };
  const auto malformed = [&](simdjson::error_code error) { return MalformedResult(error, status); };

  switch (field.kind) {
    case ValueKind::kString: {
      if (type != json_type::string) return wrong_type();
      std::string_view text;
      if (auto error = value.get_string().get(text)) return malformed(error);
      if (!CheckString(field, text, status)) return ReadResult::kProblem;
      fv->string_value.assign(text);
      fv->long_value = 0;
      fv->double_value = 0;
      break;
    }
    case ValueKind::kKeyString:
      if (ReadResult r = ReadKeyString(field, value, type, fv, out, status); r != ReadResult::kOk) return r;
      break;
    case ValueKind::kLong: {
      if (type != json_type::number) return wrong_type();
      std::string_view token;
      int64_t v = 0;
      if (ReadResult r = ReadInteger(field, value, &token, &v, status); r != ReadResult::kOk) return r;
      if (v < field.min_long) {
        *status = BelowMinimum(field, token);
        return ReadResult::kProblem;
      }
      if (v > field.max_long) {
        *status = AboveMaximum(field, token);
        return ReadResult::kProblem;
      }
      fv->long_value = v;
      fv->double_value = 0;
      fv->string_value.clear();
      if (field.is_key) AssignDecimal(v, &out->user_id);
      break;
    }
    case ValueKind::kDouble:
      if (ReadResult r = ReadDouble(field, value, type, fv, out, status); r != ReadResult::kOk) return r;
      break;
    case ValueKind::kBoolean: {
      if (type != json_type::boolean) return wrong_type();
      bool v = false;
      if (auto error = value.get_bool().get(v)) return malformed(error);
      fv->long_value = v ? 1 : 0;
      fv->double_value = 0;
      fv->string_value.clear();
      if (field.is_key) out->user_id.assign(v ? "true" : "false");
      break;
    }
    case ValueKind::kTimeIso8601:
    case ValueKind::kTimeMillis:
    case ValueKind::kTimeSeconds:
      if (ReadResult r = ReadTime(field, value, type, fv, out, status); r != ReadResult::kOk) return r;
      break;
  }
  fv->present = true;
  return ReadResult::kOk;
}

}  // namespace

EventParser::EventParser(InputSchema schema) : impl_(std::make_unique<Impl>(std::move(schema))) {}
EventParser::~EventParser() = default;
EventParser::EventParser(EventParser&&) noexcept = default;
EventParser& EventParser::operator=(EventParser&&) noexcept = default;

const InputSchema& EventParser::schema() const {
  static const InputSchema kEmpty;
  return impl_ ? impl_->schema : kEmpty;
}

absl::Status EventParser::Parse(std::string_view json, Event* out) {
  using simdjson::ondemand::json_type;
  if (!impl_) return absl::FailedPreconditionError("EventParser: used after being moved from");
  Impl& impl = *impl_;
  const char* padded = impl.Pad(json);

  simdjson::ondemand::document doc;
  if (auto error = impl.parser.iterate(padded, json.size(), json.size() + simdjson::SIMDJSON_PADDING).get(doc)) {
    return Malformed(error);
  }
  simdjson::ondemand::object object;
  if (auto error = doc.get_object().get(object)) {
    if (error == simdjson::INCORRECT_TYPE) {
      json_type type;
      if (doc.type().get(type) == simdjson::SUCCESS) {
        return Reason(kReasonMalformedJson, Cat("top level must be an object, got ", JsonTypeName(type)));
      }
      return Reason(kReasonMalformedJson, "top level must be an object");
    }
    return Malformed(error);
  }

  const size_t num_fields = impl.fields.size();
  // resize() keeps the existing values (and their strings' capacity).
  if (out->fields.size() != num_fields) out->fields.resize(num_fields);
  if (num_fields != 0) std::memset(impl.seen.data(), 0, num_fields);
  if (impl.schema.key_field < 0) out->user_id.clear();
  if (impl.schema.time_field < 0) out->event_time_ms = 0;

  // The first field problem in schema order; reported only once the whole
  // object has been scanned (malformed_json takes precedence).
  size_t problem_field = num_fields;
  absl::Status problem;
  absl::Status field_status;  // one per record: its destructor is not inlined

  for (auto field_result : object) {
    // References into the iterator's result rather than copies: GCC copies
    // these small structs with 16-byte loads right after narrower stores,
    // and the failed store forwarding cost about 40 ns per record.
    if (auto error = field_result.error()) return Malformed(error);
    simdjson::ondemand::field& field = field_result.value_unsafe();
    std::string_view key;
    if (auto error = field.unescaped_key().get(key)) return Malformed(error);
    const int found = impl.Lookup(key);
    if (found < 0) {  // extra field: ignored, but must be valid JSON
      if (auto error = ValidateIgnoredValue(field.value(), 1)) return Malformed(error);
      continue;
    }
    const auto index = static_cast<size_t>(found);
    const CompiledField& spec = impl.fields[index];
    if (impl.seen[index]) return Reason(kReasonMalformedJson, Cat("duplicate key \"", spec.name, "\""));
    impl.seen[index] = 1;

    simdjson::ondemand::value& value = field.value();
    json_type type;
    if (auto error = value.type().get(type)) return Malformed(error);
    switch (ReadField(spec, value, type, &out->fields[index], out, &field_status)) {
      case ReadResult::kOk:
        break;
      case ReadResult::kMalformed:
        return field_status;
      case ReadResult::kProblem:
        if (index < problem_field) {
          problem_field = index;
          problem = std::move(field_status);
        }
        break;
    }
  }

  // Trailing content after the object ("{...} x", "{...}{...}").
  const char* location = nullptr;
  if (doc.current_location().get(location) == simdjson::SUCCESS) {
    const size_t offset = std::min(static_cast<size_t>(location - padded), json.size());
    const std::string_view rest = json.substr(offset);
    return Reason(kReasonMalformedJson, Cat("unexpected content after the object: ", Quote(rest)));
  }

  for (size_t i = 0; i < num_fields; ++i) {
    if (!impl.seen[i]) {
      if (impl.fields[i].required) return Reason(kReasonMissingField, impl.fields[i].name);
      ClearValue(&out->fields[i]);
    }
    if (i == problem_field) return problem;
  }
  return absl::OkStatus();
}

}  // namespace slipstream
