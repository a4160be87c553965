// The RocksDB key layout. Every key is
//   [key group: 2 bytes BE][kind: 1 byte][...]
// so one key group's state is one contiguous key range, and within it each
// kind of state is contiguous too:
//   't' timer       [kg]['t'][time:8][feature group:1][user]  -> ""  (ordered by time)
//   'u' user state  [kg]['u'][user]                      -> UserWindowState
// [user] is a varint length followed by the bytes (user ids may hold any
// byte, including 0). Times are int64 with the sign bit flipped, big-endian,
// so byte order equals numeric order also for negative (pre-1970) times.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/key_groups.h"

namespace slipstream::state_keys {

inline constexpr char kTimer = 't';
inline constexpr char kUser = 'u';

inline void AppendTime(int64_t t, std::string* out) {
  const uint64_t u = static_cast<uint64_t>(t) ^ (uint64_t{1} << 63);
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>((u >> shift) & 0xff));
}

inline int64_t DecodeTime(std::string_view bytes) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<uint8_t>(bytes[i]);
  return static_cast<int64_t>(u ^ (uint64_t{1} << 63));
}

inline void AppendUser(std::string_view user, std::string* out) {
  uint64_t n = user.size();
  while (n >= 0x80) {
    out->push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  out->push_back(static_cast<char>(n));
  out->append(user);
}

// Decodes a user written by AppendUser at the start of `bytes`; returns the
// number of bytes consumed, 0 on malformed input.
inline size_t DecodeUser(std::string_view bytes, std::string_view* user) {
  uint64_t n = 0;
  size_t i = 0;
  for (int shift = 0; i < bytes.size() && shift < 35; shift += 7) {
    const uint8_t b = static_cast<uint8_t>(bytes[i++]);
    n |= uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) {
      if (bytes.size() - i < n) return 0;
      *user = bytes.substr(i, n);
      return i + n;
    }
  }
  return 0;
}

inline std::string Prefix(int key_group, char kind) {
  std::string key;
  key.reserve(48);
  AppendKeyGroupPrefix(key_group, &key);
  key.push_back(kind);
  return key;
}

inline std::string UserPrefix(int key_group, char kind, std::string_view user) {
  std::string key = Prefix(key_group, kind);
  AppendUser(user, &key);
  return key;
}

}  // namespace slipstream::state_keys
