// count_distinct's state: exact up to a limit of distinct values per window,
// then a HyperLogLog estimate (precision 12: 4,096 one-byte registers, about
// 1.6 % standard error). Values are identified by a 64-bit hash that is the
// same in every process and run (not absl::Hash, which is seeded per
// process), so a replay after a failure computes the same counts; the exact
// count is exact up to hash collisions (for 1,000 values, about 3e-14).
#pragma once

#include <cstdint>

#include "common/event.h"
#include "common/features/feature_definition.h"
#include "worker/window/feature_program.h"

namespace slipstream {

inline constexpr int kHyperLogLogPrecision = 12;

uint64_t DistinctHash(const FieldValue& value, FieldType type);
void AddDistinct(uint64_t hash, int64_t exact_limit, VarSlot* slot);
void MergeDistinct(const VarSlot& from, int64_t exact_limit, VarSlot* into);
int64_t DistinctCount(const VarSlot& slot);

}  // namespace slipstream
