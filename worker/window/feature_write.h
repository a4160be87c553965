// FeatureWrite: one feature computed by a window operator, in the exact form
// the Redis sink writes it: HSET key field value [field value ...] then
// EXPIRE key ttl. Values are already formatted per the output contract.
#pragma once

#include <string>
#include <vector>

namespace slipstream {

struct FeatureWrite {
  std::string key;
  std::vector<std::string> fields;  // field, value, field, value, ...
  int ttl_seconds = 0;
};

// Redis TTLs and key prefixes of the output contract.
inline constexpr int kUserFeaturesTtlSeconds = 7200;
inline constexpr int kSessionFeaturesTtlSeconds = 3600;

}  // namespace slipstream
