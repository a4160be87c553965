#include "common/random_id.h"

#include <mutex>
#include <random>

namespace slipstream {

std::string RandomHex(int digits) {
  static std::mutex mu;
  static std::mt19937_64 rng = [] {
    std::random_device device;
    return std::mt19937_64((static_cast<uint64_t>(device()) << 32) ^ device());
  }();
  static constexpr char kHex[] = "0123456789abcdef";
  std::lock_guard lock(mu);
  std::string id;
  for (int i = 0; i < digits; ++i) id.push_back(kHex[rng() & 15]);
  return id;
}

}  // namespace slipstream
