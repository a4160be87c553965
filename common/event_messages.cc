// Dead-letter messages and JSON checks of the event parser (the rules are
// at the top of common/event.cc).
#include <algorithm>
#include <cstring>

#include "common/event_internal.h"

namespace slipstream::event_internal {
namespace {

constexpr size_t kMaxQuotedBytes = 64;

}  // namespace

// ---------------------------------------------------------------------------
// Message helpers (error path only).

// Length of the well-formed UTF-8 sequence at s[i], or 0 if it is not one.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // > U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return len;
}

// `value` in double quotes, at most kMaxQuotedBytes of it (cut on a UTF-8
// boundary), with '"', '\\', control characters and invalid UTF-8 escaped so
// the reason is always printable, valid UTF-8 and of bounded size. A cut value
// is followed by `... (N bytes)`.
std::string Quote(std::string_view value) {
  size_t n = value.size();
  if (n > kMaxQuotedBytes) {
    n = kMaxQuotedBytes;
    while (n > 0 && (static_cast<unsigned char>(value[n]) & 0xC0) == 0x80) --n;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n + 32);
  out.push_back('"');
  for (size_t i = 0; i < n;) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
      ++i;
    } else if (c >= 0x20 && c < 0x7F) {
      out.push_back(static_cast<char>(c));
      ++i;
    } else if (size_t len = c >= 0x80 ? Utf8SequenceLength(value.substr(0, n), i) : 0; len > 0) {
      out.append(value.data() + i, len);
      i += len;
    } else {
      out.append("\\x");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
      ++i;
    }
  }
  out.push_back('"');
  if (n < value.size()) out += Cat("... (", value.size(), " bytes)");
  return out;
}

absl::Status Reason(std::string_view code, std::string_view detail) {
  return absl::InvalidArgumentError(Cat(code, ": ", detail));
}

std::string_view DescribeJsonError(simdjson::error_code error) {
  switch (error) {
    case simdjson::EMPTY:
      return "empty input";
    case simdjson::UTF8_ERROR:
      return "invalid UTF-8";
    case simdjson::UNCLOSED_STRING:
      return "unclosed string";
    case simdjson::STRING_ERROR:
      return "invalid string (bad escape or control character)";
    case simdjson::UNESCAPED_CHARS:
      return "unescaped control character in string";
    case simdjson::NUMBER_ERROR:
      return "invalid number";
    case simdjson::T_ATOM_ERROR:
    case simdjson::F_ATOM_ERROR:
    case simdjson::N_ATOM_ERROR:
      return "invalid literal";
    case simdjson::DEPTH_ERROR:
      return "nested too deeply";
    case simdjson::INCOMPLETE_ARRAY_OR_OBJECT:
      // Also what simdjson reports for content after the top-level object.
      return "unbalanced braces (truncated, or content after the object)";
    case simdjson::CAPACITY:
      return "document too large";
    case simdjson::MEMALLOC:
      return "out of memory";
    default:
      return "invalid structure";
  }
}

absl::Status Malformed(simdjson::error_code error) {
  return Reason(kReasonMalformedJson, DescribeJsonError(error));
}

std::string_view JsonTypeName(simdjson::ondemand::json_type type) {
  using simdjson::ondemand::json_type;
  switch (type) {
    case json_type::array:
      return "array";
    case json_type::object:
      return "object";
    case json_type::number:
      return "number";
    case json_type::string:
      return "string";
    case json_type::boolean:
      return "boolean";
    case json_type::null:
      return "null";
  }
  return "unknown";
}

// Strict JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsJsonNumber(std::string_view s, bool* is_integer) {
  const auto digit = [&](size_t i) { return i < s.size() && s[i] >= '0' && s[i] <= '9'; };
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  if (!digit(i)) return false;
  if (s[i] == '0') {
    ++i;
  } else {
    while (digit(i)) ++i;
  }
  *is_integer = true;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
    *is_integer = false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
    *is_integer = false;
  }
  return i == s.size();
}

// raw_json_token() includes the whitespace up to the next token.
std::string_view TrimJsonWhitespace(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' ||
                        s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

constexpr int kMaxExtraDepth = 128;

// Fully validates a value the contract does not read (ondemand would skip it
// without checking numbers, literals, commas or escapes).
simdjson::error_code ValidateIgnoredValue(simdjson::ondemand::value value, int depth) {
  using simdjson::ondemand::json_type;
  if (depth > kMaxExtraDepth) return simdjson::DEPTH_ERROR;
  json_type type;
  if (auto error = value.type().get(type)) return error;
  switch (type) {
    case json_type::array: {
      simdjson::ondemand::array array;
      if (auto error = value.get_array().get(array)) return error;
      for (auto element : array) {
        simdjson::ondemand::value child;
        if (auto error = std::move(element).get(child)) return error;
        if (auto error = ValidateIgnoredValue(child, depth + 1)) return error;
      }
      return simdjson::SUCCESS;
    }
    case json_type::object: {
      simdjson::ondemand::object object;
      if (auto error = value.get_object().get(object)) return error;
      for (auto field_result : object) {
        simdjson::ondemand::field field;
        if (auto error = std::move(field_result).get(field)) return error;
        std::string_view key;
        if (auto error = field.unescaped_key().get(key)) return error;
        if (auto error = ValidateIgnoredValue(field.value(), depth + 1)) return error;
      }
      return simdjson::SUCCESS;
    }
    case json_type::number: {
      bool is_integer = false;
      return IsJsonNumber(TrimJsonWhitespace(value.raw_json_token()), &is_integer)
                 ? simdjson::SUCCESS
                 : simdjson::NUMBER_ERROR;
    }
    case json_type::string: {
      std::string_view text;
      return value.get_string().get(text);
    }
    case json_type::boolean: {
      bool flag = false;
      return value.get_bool().get(flag);
    }
    case json_type::null: {
      bool is_null = false;
      if (auto error = value.is_null().get(is_null)) return error;
      return is_null ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    }
  }
  return simdjson::TAPE_ERROR;
}

}  // namespace slipstream::event_internal
