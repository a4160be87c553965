// PaneAggregate: the per-user aggregate of one 10-minute pane. A sliding
// window's features are the sum of its six panes, so each event is stored
// once instead of six times.
//
// The viewed-price sum is kept exactly: prices in [2^-8, 2^40) — every real
// shop price — are added as fixed-point integers with 60 fractional bits, so
// the sum (and therefore avg_viewed_price_1h) does not depend on the order
// events arrive in: a replay after a failure writes bit-identical features.
// Flink adds doubles left to right; results agree to within a few ulps.
// Prices outside that range (valid input, but absurd for a shop) are summed
// as doubles in a separate term, whose result may vary in the last bits with
// arrival order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/event.h"

namespace slipstream {

struct PaneAggregate {
  int64_t view_count = 0;
  int64_t cart_count = 0;
  int64_t purchase_count = 0;
  __int128 view_price_fixed = 0;  // sum of view prices * 2^60, prices in [2^-8, 2^40)
  double view_price_large = 0;    // sum of the other view prices

  void Add(const Event& event);
  void Merge(const PaneAggregate& other);
  bool empty() const { return view_count == 0 && cart_count == 0 && purchase_count == 0; }
  // Mean price over view events; 0 when there are none.
  double AvgViewedPrice() const;

  void SerializeTo(std::string* out) const;
  static bool Parse(std::string_view data, PaneAggregate* out);
};

}  // namespace slipstream
