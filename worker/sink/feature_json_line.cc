#include "worker/sink/feature_json_line.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace slipstream {

namespace {

constexpr char kHex[] = "0123456789abcdef";

void AppendEscapedByte(unsigned char byte, std::string* out) {
  out->append("\\u00");
  out->push_back(kHex[byte >> 4]);
  out->push_back(kHex[byte & 0xF]);
}

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// The length of the valid UTF-8 sequence starting at s[i] (lead byte >=
// 0x80), or 0 when it is not one. Rejects overlong forms, surrogates
// (U+D800..U+DFFF) and code points above U+10FFFF, as RFC 3629 does.
size_t ValidUtf8Length(std::string_view s, size_t i) {
  const auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = at(i);
  const size_t left = s.size() - i;
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && IsContinuation(at(i + 1)) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3 || !IsContinuation(at(i + 1)) || !IsContinuation(at(i + 2))) return 0;
    if (c == 0xE0 && at(i + 1) < 0xA0) return 0;   // overlong
    if (c == 0xED && at(i + 1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4 || !IsContinuation(at(i + 1)) || !IsContinuation(at(i + 2)) || !IsContinuation(at(i + 3))) {
      return 0;
    }
    if (c == 0xF0 && at(i + 1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && at(i + 1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;  // a continuation byte, C0/C1 (always overlong) or F5..FF
}

}  // namespace

void AppendJsonString(std::string_view bytes, std::string* out) {
  out->reserve(out->size() + bytes.size() + 2);
  out->push_back('"');
  size_t i = 0;
  while (i < bytes.size()) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x80) {
      const size_t n = ValidUtf8Length(bytes, i);
      if (n == 0) {
        AppendEscapedByte(c, out);
        ++i;
      } else {
        out->append(bytes.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20) {
          AppendEscapedByte(c, out);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

void AppendFeatureJsonLine(const FeatureWrite& feature, std::string* out) {
  out->append("{\"key\":");
  AppendJsonString(feature.key, out);
  out->append(",\"fields\":{");
  // `fields` alternates names and values; an odd trailing name (never made
  // by the window code) would be a bug upstream, so it is written with an
  // empty value rather than producing invalid JSON.
  for (size_t i = 0; i < feature.fields.size(); i += 2) {
    if (i > 0) out->push_back(',');
    AppendJsonString(feature.fields[i], out);
    out->push_back(':');
    AppendJsonString(i + 1 < feature.fields.size() ? std::string_view(feature.fields[i + 1]) : std::string_view(), out);
  }
  absl::StrAppend(out, "},\"valid_from\":", feature.order, ",\"ttl_seconds\":", feature.ttl_seconds, "}\n");
}

}  // namespace slipstream
