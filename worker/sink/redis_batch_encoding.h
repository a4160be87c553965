// The RESP bytes of one batch of feature writes, formatted by hand into one
// buffer for the whole pipeline: hiredis's generic formatter was half of the
// sink thread's time. Both forms record the writer's high-water mark first
// (redis_write_guard.h says why).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "worker/window/feature_write.h"

namespace slipstream {

// The writer's high-water mark: its writers key (kWritersKey, or a cluster
// shard's), its field there and the value.
struct HighWaterMark {
  std::string_view key;
  std::string field;
  std::string value;
};

// Both forms: HSET + EXPIRE of the mark (two replies), then per feature
// either one EVALSHA of the guarded write script (one reply: a feature is
// written only if no stored version is newer) or HSET (all fields) +
// EXPIRE (two replies).
void EncodeGuardedBatch(std::span<const FeatureWrite> features, std::string_view script_sha,
                        const HighWaterMark& mark, std::string* resp);
// WAIT <replicas> <timeout ms>: its reply says how many replicas have every
// write sent before it on this connection.
void EncodeWaitForReplicas(int replicas, int64_t timeout_ms, std::string* resp);

void EncodePlainBatch(std::span<const FeatureWrite> features, const HighWaterMark& mark, std::string* resp);

}  // namespace slipstream
