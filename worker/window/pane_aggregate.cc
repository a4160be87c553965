#include "worker/window/pane_aggregate.h"

#include <cmath>
#include <cstring>

namespace slipstream {
namespace {
constexpr int kFractionBits = 60;
constexpr double kFixedLimit = 1099511627776.0;  // 2^40
// Below 2^-8 a price has significant bits under 2^-60 that the fixed-point
// sum would drop; such prices (and 0) go to the double term instead.
constexpr double kFixedFloor = 1.0 / 256;
constexpr size_t kSerializedSize = 3 * 8 + 16 + 8;
}  // namespace

void PaneAggregate::Add(const Event& event) {
  switch (event.type) {
    case EventType::kView:
      ++view_count;
      if (event.price >= kFixedFloor && event.price < kFixedLimit) {
        // ldexp is exact; the conversion drops bits below 2^-60 only.
        view_price_fixed += static_cast<__int128>(std::ldexp(event.price, kFractionBits));
      } else {
        view_price_large += event.price;
      }
      break;
    case EventType::kCart:
      ++cart_count;
      break;
    case EventType::kPurchase:
      ++purchase_count;
      break;
  }
}

void PaneAggregate::Merge(const PaneAggregate& other) {
  view_count += other.view_count;
  cart_count += other.cart_count;
  purchase_count += other.purchase_count;
  view_price_fixed += other.view_price_fixed;
  view_price_large += other.view_price_large;
}

double PaneAggregate::AvgViewedPrice() const {
  if (view_count == 0) return 0;
  const double sum = std::ldexp(static_cast<double>(view_price_fixed), -kFractionBits) + view_price_large;
  return sum / static_cast<double>(view_count);
}

void PaneAggregate::SerializeTo(std::string* out) const {
  char buf[kSerializedSize];
  char* p = buf;
  auto put = [&p](const void* v, size_t n) {
    std::memcpy(p, v, n);
    p += n;
  };
  put(&view_count, 8);
  put(&cart_count, 8);
  put(&purchase_count, 8);
  put(&view_price_fixed, 16);
  put(&view_price_large, 8);
  out->assign(buf, kSerializedSize);
}

bool PaneAggregate::Parse(std::string_view data, PaneAggregate* out) {
  if (data.size() != kSerializedSize) return false;
  const char* p = data.data();
  auto get = [&p](void* v, size_t n) {
    std::memcpy(v, p, n);
    p += n;
  };
  get(&out->view_count, 8);
  get(&out->cart_count, 8);
  get(&out->purchase_count, 8);
  get(&out->view_price_fixed, 16);
  get(&out->view_price_large, 8);
  return true;
}

}  // namespace slipstream
