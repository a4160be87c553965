#include "worker/window/distinct_values.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace slipstream {
namespace {

constexpr size_t kRegisters = size_t{1} << kHyperLogLogPrecision;

// splitmix64's finalizer: a fixed, well-mixing permutation of 64 bits.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

void AddToRegisters(uint64_t hash, std::vector<uint8_t>* registers) {
  const size_t index = hash >> (64 - kHyperLogLogPrecision);
  const uint64_t rest = hash << kHyperLogLogPrecision;
  // Position of the first 1 bit in the remaining 52 bits (52 + 1 when none).
  const uint8_t rank =
      rest == 0 ? static_cast<uint8_t>(64 - kHyperLogLogPrecision + 1) : static_cast<uint8_t>(__builtin_clzll(rest) + 1);
  uint8_t& r = (*registers)[index];
  if (rank > r) r = rank;
}

void ToRegisters(VarSlot* slot) {
  slot->registers.assign(kRegisters, 0);
  for (uint64_t h : slot->hashes) AddToRegisters(h, &slot->registers);
  slot->hashes.clear();
  slot->hashes.shrink_to_fit();
}

}  // namespace

uint64_t DistinctHash(const FieldValue& value, FieldType type) {
  if (type == FieldType::kString) {
    // FNV-1a over the bytes, then mixed: FNV alone leaves the high bits (the
    // HyperLogLog register index) poorly spread for short strings.
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : value.string_value) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
    return Mix(h);
  }
  uint64_t bits;
  if (type == FieldType::kDouble) {
    std::memcpy(&bits, &value.double_value, 8);
  } else {
    bits = static_cast<uint64_t>(value.long_value);
  }
  return Mix(bits ^ 0x9e3779b97f4a7c15ULL);
}

void AddDistinct(uint64_t hash, int64_t exact_limit, VarSlot* slot) {
  slot->present = true;
  if (!slot->registers.empty()) {
    AddToRegisters(hash, &slot->registers);
    return;
  }
  auto it = std::lower_bound(slot->hashes.begin(), slot->hashes.end(), hash);
  if (it != slot->hashes.end() && *it == hash) return;
  slot->hashes.insert(it, hash);
  if (static_cast<int64_t>(slot->hashes.size()) > exact_limit) ToRegisters(slot);
}

void MergeDistinct(const VarSlot& from, int64_t exact_limit, VarSlot* into) {
  if (!from.present) return;
  into->present = true;
  if (!from.registers.empty() && into->registers.empty()) ToRegisters(into);
  if (!into->registers.empty()) {
    if (!from.registers.empty()) {
      for (size_t i = 0; i < kRegisters; ++i) into->registers[i] = std::max(into->registers[i], from.registers[i]);
    } else {
      for (uint64_t h : from.hashes) AddToRegisters(h, &into->registers);
    }
    return;
  }
  std::vector<uint64_t> merged;
  merged.reserve(into->hashes.size() + from.hashes.size());
  std::set_union(into->hashes.begin(), into->hashes.end(), from.hashes.begin(), from.hashes.end(),
                 std::back_inserter(merged));
  into->hashes.swap(merged);
  if (static_cast<int64_t>(into->hashes.size()) > exact_limit) ToRegisters(into);
}

int64_t DistinctCount(const VarSlot& slot) {
  if (slot.registers.empty()) return static_cast<int64_t>(slot.hashes.size());
  // Flajolet et al.'s estimator with the small-range (linear counting)
  // correction; 64-bit hashes need no large-range correction.
  const double m = static_cast<double>(kRegisters);
  double sum = 0;
  int zeros = 0;
  for (uint8_t r : slot.registers) {
    sum += std::ldexp(1.0, -r);
    if (r == 0) ++zeros;
  }
  const double alpha = 0.7213 / (1 + 1.079 / m);
  double estimate = alpha * m * m / sum;
  if (estimate <= 2.5 * m && zeros > 0) estimate = m * std::log(m / zeros);
  return static_cast<int64_t>(std::llround(estimate));
}

}  // namespace slipstream
