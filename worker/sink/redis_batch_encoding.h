// The RESP bytes of one batch of feature writes, formatted by hand into one
// buffer for the whole pipeline: hiredis's generic formatter was half of the
// sink thread's time. Both forms record the writer's high-water mark first
// (redis_write_guard.h says why).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "worker/window/feature_write.h"

namespace slipstream {

// The writer's high-water mark: its field in kWritersKey and the value.
struct HighWaterMark {
  std::string field;
  std::string value;
};

// One EVALSHA of the guarded write script (kGuardedWriteScript's ARGV
// layout): a feature is written only if no stored version is newer.
void EncodeGuardedBatch(std::span<const FeatureWrite> features, std::string_view script_sha,
                        const HighWaterMark& mark, std::string* resp);

// HSET + EXPIRE of the mark, then HSET (all fields) + EXPIRE per feature.
void EncodePlainBatch(std::span<const FeatureWrite> features, const HighWaterMark& mark, std::string* resp);

}  // namespace slipstream
