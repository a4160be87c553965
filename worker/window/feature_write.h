// FeatureWrite: one feature computed by a window operator, in the exact form
// the Redis sink writes it: HSET key field value [field value ...] then
// EXPIRE key ttl. Values are already formatted per the output contract.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace slipstream {

struct FeatureWrite {
  std::string key;
  std::vector<std::string> fields;  // field, value, field, value, ...
  int ttl_seconds = 0;
  // Monotonic writes (worker/sink/redis_write_guard.h): the positions in
  // `fields` of the names whose values must never decrease for this key
  // (user_features: window_end; session_features: session_end, event_count),
  // -1 when unused, and the first one's value: the write's order.
  std::array<int, 2> guard_fields = {-1, -1};
  int64_t order = 0;
};

// Redis TTLs and key prefixes of the output contract.
inline constexpr int kUserFeaturesTtlSeconds = 7200;
inline constexpr int kSessionFeaturesTtlSeconds = 3600;

}  // namespace slipstream
