#include "common/key_groups.h"

#include "absl/strings/str_cat.h"

namespace slipstream {
namespace {

// Decodes one UTF-8 sequence starting at s[*i]; advances *i. Malformed input
// yields U+FFFD and consumes one byte, as Java's replacing decoder does.
uint32_t NextCodePoint(std::string_view s, size_t* i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b0 = byte(*i);
  constexpr uint32_t kReplacement = 0xFFFD;
  if (b0 < 0x80) {
    ++*i;
    return b0;
  }
  int extra;
  uint32_t cp;
  uint32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    extra = 1, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    extra = 2, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    extra = 3, cp = b0 & 0x07, min = 0x10000;
  } else {
    ++*i;
    return kReplacement;
  }
  for (int k = 1; k <= extra; ++k) {
    if (*i + k >= s.size() || (byte(*i + k) & 0xC0) != 0x80) {
      ++*i;
      return kReplacement;
    }
    cp = (cp << 6) | (byte(*i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++*i;
    return kReplacement;
  }
  *i += extra + 1;
  return cp;
}

uint32_t RotateLeft(uint32_t v, int n) { return (v << n) | (v >> (32 - n)); }

}  // namespace

int32_t JavaStringHashCode(std::string_view utf8) {
  uint32_t h = 0;  // unsigned: Java int overflow wraps
  size_t i = 0;
  while (i < utf8.size()) {
    const uint32_t cp = NextCodePoint(utf8, &i);
    if (cp >= 0x10000) {
      const uint32_t v = cp - 0x10000;
      h = 31 * h + (0xD800 + (v >> 10));
      h = 31 * h + (0xDC00 + (v & 0x3FF));
    } else {
      h = 31 * h + cp;
    }
  }
  return static_cast<int32_t>(h);
}

int32_t FlinkMurmurHash(int32_t code) {
  uint32_t h = static_cast<uint32_t>(code);
  h *= 0xcc9e2d51u;
  h = RotateLeft(h, 15);
  h *= 0x1b873593u;
  h = RotateLeft(h, 13);
  h = h * 5 + 0xe6546b64u;
  h ^= 4;
  // bitMix (fmix32)
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  const int32_t signed_h = static_cast<int32_t>(h);
  if (signed_h >= 0) return signed_h;
  if (signed_h != INT32_MIN) return -signed_h;
  return 0;
}

int KeyGroupForKey(std::string_view key, int max_parallelism) {
  return FlinkMurmurHash(JavaStringHashCode(key)) % max_parallelism;
}

std::string KeyGroupRange::ToString() const {
  if (empty()) return "[]";
  return absl::StrCat("[", first, "-", last, "]");
}

KeyGroupRange KeyGroupRangeForOperatorIndex(int max_parallelism, int parallelism, int index) {
  // Flink: start = ceil(index * max / parallelism), end = floor(((index+1) * max - 1) / parallelism)
  const int64_t start = (static_cast<int64_t>(index) * max_parallelism + parallelism - 1) / parallelism;
  const int64_t end = ((static_cast<int64_t>(index) + 1) * max_parallelism - 1) / parallelism;
  return KeyGroupRange{static_cast<int>(start), static_cast<int>(end)};
}

}  // namespace slipstream
