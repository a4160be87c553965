// Internals of the event parser (common/event.cc), shared by its parts:
// message helpers and JSON checks (event_messages.cc), ISO-8601
// (event_time.cc) and the schema's fields compiled for the hot path
// (event_fields.cc). Not part of the public API: include common/event.h.
#pragma once

#include <simdjson.h>

#include <charconv>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "common/event.h"
#include "common/features/feature_definition.h"

namespace slipstream::event_internal {

// String concatenation for messages. (absl::StrCat is not usable with
// std::string_view here: Debian's abseil is built with its own
// absl::string_view, ABSL_OPTION_USE_STD_STRING_VIEW=0.)
inline void AppendPiece(std::string* out, std::string_view piece) { out->append(piece); }
template <std::integral Int>
void AppendPiece(std::string* out, Int value) {
  out->append(std::to_string(value));
}
template <typename... Pieces>
std::string Cat(const Pieces&... pieces) {
  std::string out;
  (AppendPiece(&out, pieces), ...);
  return out;
}

// ---------------------------------------------------------------------------
// Messages and JSON checks (event_messages.cc).

// `value` in double quotes for a message, escaped and cut at 64 bytes.
std::string Quote(std::string_view value);
// InvalidArgument "<code>: <detail>": a dead-letter reason.
absl::Status Reason(std::string_view code, std::string_view detail);
absl::Status Malformed(simdjson::error_code error);
std::string_view JsonTypeName(simdjson::ondemand::json_type type);
// Whether `s` is a JSON number (RFC 8259), and whether an integer one.
bool IsJsonNumber(std::string_view s, bool* is_integer);
std::string_view TrimJsonWhitespace(std::string_view s);
// Walks a value the schema does not read, so the whole record must be JSON.
simdjson::error_code ValidateIgnoredValue(simdjson::ondemand::value value, int depth);

// ---------------------------------------------------------------------------
// ISO-8601 (event_time.cc).

bool ParseIso8601Core(std::string_view s, int64_t* out_ms, std::string* why);
std::string Iso8601Problem(std::string_view text, std::string_view why);

// ---------------------------------------------------------------------------
// Fields (event_fields.cc).

// ---------------------------------------------------------------------------
// Schema fields, compiled for the hot path.

// How a field's JSON value is read.
enum class ValueKind : uint8_t {
  kString,        // a JSON string
  kKeyString,     // the key as string: a JSON string or integer (as decimal text)
  kLong,          // a JSON integer within int64
  kDouble,        // any finite JSON number
  kBoolean,       // true / false
  kTimeIso8601,   // the time field: an ISO-8601 string
  kTimeMillis,    // the time field: a JSON integer, epoch milliseconds
  kTimeSeconds,   // the time field: a JSON integer, epoch seconds
};

struct CompiledField {
  std::string name;
  ValueKind kind = ValueKind::kString;
  bool required = true;
  bool is_key = false;
  bool is_time = false;
  bool allow_empty = false;
  std::string reason;          // "invalid_<name>"
  std::string_view expected;   // for wrong_type: "a string", "an integer", ...
  // Strings: allowed values (empty: any). Few are compared one by one
  // (length first); many go through a hash set.
  std::vector<std::string> allowed;
  absl::flat_hash_set<std::string> allowed_set;
  std::string allowed_list;  // "view, cart, purchase", for messages
  // Numbers: the inclusive range. For longs also as integers (ceil/floor of
  // the bounds, clamped), so the check is exact for any int64.
  std::optional<double> min, max;
  int64_t min_long = std::numeric_limits<int64_t>::min();
  int64_t max_long = std::numeric_limits<int64_t>::max();
};

// Above this many fields of one name length, lookups hash instead of
// comparing one by one.
constexpr size_t kMaxLinearBucket = 4;

// a == b for two strings of the same length `n`, inline: fixed-size loads
// (overlapping at the ends) instead of a call to memcmp, which cost about
// 15 ns per record through the PLT for the default schema's four keys.
inline bool SameBytes(const char* a, const char* b, size_t n) {
  const auto load8 = [](const char* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  };
  const auto load4 = [](const char* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  };
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) {
      if (load8(a + i) != load8(b + i)) return false;
    }
    return load8(a + n - 8) == load8(b + n - 8);
  }
  if (n >= 4) return load4(a) == load4(b) && load4(a + n - 4) == load4(b + n - 4);
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

// Two words that, for strings of one length n <= 16, are equal exactly when
// the strings are: the first and last 8 (or 4) bytes, overlapping; for
// n < 4 bytes 0, n/2 and n-1, which cover every position.
struct NameWords {
  uint64_t head = 0;
  uint64_t tail = 0;
  bool operator==(const NameWords&) const = default;
};

inline NameWords WordsOf(const char* p, size_t n) {
  NameWords w;
  if (n >= 8) {
    std::memcpy(&w.head, p, 8);
    std::memcpy(&w.tail, p + n - 8, 8);
  } else if (n >= 4) {
    uint32_t h, t;
    std::memcpy(&h, p, 4);
    std::memcpy(&t, p + n - 4, 4);
    w.head = h;
    w.tail = t;
  } else if (n > 0) {
    w.head = static_cast<uint64_t>(static_cast<unsigned char>(p[0])) |
             static_cast<uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8 |
             static_cast<uint64_t>(static_cast<unsigned char>(p[n - 1])) << 16;
  }
  return w;
}

// Shortest round-trip text of a bound ("0", "10", "0.5", "1e+20").
std::string NumberText(double value);
CompiledField CompileField(const InputSchema& schema, int index);
absl::Status WrongType(const CompiledField& field, simdjson::ondemand::json_type got);
absl::Status WrongTypeNonInteger(const CompiledField& field, std::string_view token);
absl::Status BelowMinimum(const CompiledField& field, std::string_view token);
absl::Status AboveMaximum(const CompiledField& field, std::string_view token);

// A JSON integer token (already checked by IsJsonNumber) as int64.
inline bool ParseInt64(std::string_view token, int64_t* out) {
  const auto result = std::from_chars(token.data(), token.data() + token.size(), *out);
  return result.ec == std::errc() && result.ptr == token.data() + token.size();
}

// Decimal text of an int64 (no allocation beyond `out`'s growth).
inline void AssignDecimal(int64_t value, std::string* out) {
  char buf[24];
  const auto result = std::to_chars(buf, buf + sizeof buf, value);
  out->assign(buf, result.ptr);
}

inline void ClearValue(FieldValue* value) {
  value->present = false;
  value->long_value = 0;
  value->double_value = 0;
  value->string_value.clear();
}

}  // namespace slipstream::event_internal
