#include "worker/window/pane_aggregate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/event.h"

namespace slipstream {
namespace {

Event View(double price) {
  Event e;
  e.type = EventType::kView;
  e.user_id = "u";
  e.price = price;
  return e;
}
Event OfType(EventType type, double price = 1) {
  Event e = View(price);
  e.type = type;
  return e;
}

uint64_t Bits(double d) { return std::bit_cast<uint64_t>(d); }

long double ReferenceMean(const std::vector<double>& prices) {
  long double sum = 0;
  for (double p : prices) sum += static_cast<long double>(p);
  return sum / static_cast<long double>(prices.size());
}

void ExpectRelativelyNear(double got, long double want, long double rel = 1e-12L) {
  EXPECT_LE(std::fabs(static_cast<long double>(got) - want), rel * std::fabs(want))
      << "got " << got << " want " << static_cast<double>(want);
}

PaneAggregate AddAll(const std::vector<double>& prices) {
  PaneAggregate a;
  for (double p : prices) a.Add(View(p));
  return a;
}

TEST(PaneAggregate, CountsEachEventTypeAndAveragesViewsOnly) {
  PaneAggregate a;
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.AvgViewedPrice(), 0.0);
  a.Add(OfType(EventType::kCart, 500));
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a.AvgViewedPrice(), 0.0) << "no views: average 0";
  a.Add(OfType(EventType::kPurchase, 700));
  a.Add(View(10));
  a.Add(View(20));
  EXPECT_EQ(a.view_count, 2);
  EXPECT_EQ(a.cart_count, 1);
  EXPECT_EQ(a.purchase_count, 1);
  EXPECT_EQ(a.AvgViewedPrice(), 15.0);
}

TEST(PaneAggregate, ViewAtPriceZeroIsCountedAndAveragesZero) {
  PaneAggregate a;
  a.Add(View(0));
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a.view_count, 1);
  EXPECT_EQ(a.AvgViewedPrice(), 0.0);
  EXPECT_FALSE(std::signbit(a.AvgViewedPrice()));
}

TEST(PaneAggregate, ExactSumIsOrderIndependent) {
  std::mt19937_64 rng(20240101);
  std::vector<double> prices;
  std::uniform_int_distribution<int64_t> cents(0, 9'999'999);
  std::uniform_real_distribution<double> any(0, 1e6);
  for (int i = 0; i < 3000; ++i) {
    switch (i % 4) {
      case 0: prices.push_back(static_cast<double>(cents(rng)) / 100.0); break;  // shop prices
      case 1: prices.push_back(any(rng)); break;                                  // full mantissa
      case 2: prices.push_back(std::ldexp(any(rng), -40)); break;                 // tiny, < 2^-20
      default: prices.push_back(std::ldexp(1.0, 40) - static_cast<double>(cents(rng))); break;  // near 2^40
    }
  }
  const PaneAggregate first = AddAll(prices);
  const double avg = first.AvgViewedPrice();
  for (int round = 0; round < 20; ++round) {
    std::shuffle(prices.begin(), prices.end(), rng);
    const PaneAggregate again = AddAll(prices);
    EXPECT_EQ(Bits(again.AvgViewedPrice()), Bits(avg)) << "round " << round;
    EXPECT_EQ(again.view_price_fixed, first.view_price_fixed);
  }
  ExpectRelativelyNear(avg, ReferenceMean(prices));
}

TEST(PaneAggregate, MergeOfPartsEqualsAddingEverything) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> cents(0, 99'999);
  std::vector<Event> events;
  for (int i = 0; i < 600; ++i) {
    const int kind = static_cast<int>(rng() % 5);
    events.push_back(kind < 3 ? View(static_cast<double>(cents(rng)) / 100.0)
                              : OfType(kind == 3 ? EventType::kCart : EventType::kPurchase));
  }
  PaneAggregate all;
  for (const Event& e : events) all.Add(e);

  for (int round = 0; round < 10; ++round) {
    std::shuffle(events.begin(), events.end(), rng);
    // Cut into random parts (the six panes of a window, say) and merge them
    // in a random order.
    std::vector<PaneAggregate> parts(1 + rng() % 8);
    for (const Event& e : events) parts[rng() % parts.size()].Add(e);
    std::shuffle(parts.begin(), parts.end(), rng);
    PaneAggregate merged;
    for (const auto& p : parts) merged.Merge(p);
    EXPECT_EQ(merged.view_count, all.view_count);
    EXPECT_EQ(merged.cart_count, all.cart_count);
    EXPECT_EQ(merged.purchase_count, all.purchase_count);
    EXPECT_EQ(Bits(merged.AvgViewedPrice()), Bits(all.AvgViewedPrice())) << "round " << round;
  }
}

TEST(PaneAggregate, ExactSumBeatsNaiveDoubleSummation) {
  // One price just under 2^40 and many cents: a left-to-right double sum
  // loses the cents; the exact sum does not.
  constexpr int kCents = 100'000;
  std::vector<double> prices = {1e12};
  for (int i = 0; i < kCents; ++i) prices.push_back(0.01);
  const long double want = (1e12L + kCents * static_cast<long double>(0.01)) / (kCents + 1);
  double naive = 0;
  for (double p : prices) naive += p;
  naive /= static_cast<double>(prices.size());
  ASSERT_GT(std::fabs(static_cast<long double>(naive) - want), 1e-14L * want) << "naive sum is not off here";
  ExpectRelativelyNear(AddAll(prices).AvgViewedPrice(), want, 1e-15L);
}

TEST(PaneAggregate, LargePricesAreAveragedCorrectly) {
  const double two40 = std::ldexp(1.0, 40);
  const std::vector<std::vector<double>> cases = {
      {two40},
      {two40, two40},
      {std::nextafter(two40, 0.0), two40},
      {two40 + 0.5, 19.99},
      {3 * std::ldexp(1.0, 41) + 0.25, 0.01, 1e15, 42.42},
      {1e15, 1e15, 1e15, 0.0},
      {1e300, 1.0},
      {std::ldexp(1.0, 60), std::ldexp(1.0, 60) + std::ldexp(1.0, 8)},
  };
  for (const auto& prices : cases) {
    const PaneAggregate a = AddAll(prices);
    SCOPED_TRACE(testing::Message() << "first price " << prices[0] << ", n " << prices.size());
    EXPECT_EQ(a.view_count, static_cast<int64_t>(prices.size()));
    ExpectRelativelyNear(a.AvgViewedPrice(), ReferenceMean(prices));
  }

  std::mt19937_64 rng(99);
  std::uniform_real_distribution<double> small(0, 1000);
  std::uniform_real_distribution<double> scale(40, 52);
  for (int round = 0; round < 200; ++round) {
    std::vector<double> prices;
    const int n = 1 + static_cast<int>(rng() % 50);
    for (int i = 0; i < n; ++i) {
      prices.push_back(rng() % 3 == 0 ? std::ldexp(1.0 + small(rng) / 1000, static_cast<int>(scale(rng)))
                                      : small(rng));
    }
    ExpectRelativelyNear(AddAll(prices).AvgViewedPrice(), ReferenceMean(prices));
  }
}

// Any finite price >= 0 is valid input, and the contract asks for the mean
// within 1e-12 relative. Prices below 2^-8 have mantissa bits under 2^-60, the
// resolution of the fixed-point sum.
TEST(PaneAggregate, TinyPricesAreAveragedWithinTolerance) {
  for (double price : {1e-3, 1e-5, 1e-7, 1e-9, 1e-15, 1e-20, 3e-300}) {
    SCOPED_TRACE(testing::Message() << "price " << price);
    const std::vector<double> one = {price};
    ExpectRelativelyNear(AddAll(one).AvgViewedPrice(), ReferenceMean(one));
    const std::vector<double> mixed = {price, price, price * 3};
    ExpectRelativelyNear(AddAll(mixed).AvgViewedPrice(), ReferenceMean(mixed));
  }
}

TEST(PaneAggregate, SerializationRoundTrips) {
  std::vector<PaneAggregate> samples(4);
  samples[1].Add(OfType(EventType::kCart));
  samples[2].Add(View(12.34));
  samples[2].Add(View(std::ldexp(1.0, 45) + 0.5));
  samples[2].Add(OfType(EventType::kPurchase));
  samples[3].view_count = int64_t{1} << 40;
  samples[3].cart_count = 123456789012;
  samples[3].purchase_count = 7;
  samples[3].view_price_fixed = (static_cast<__int128>(1) << 110) + 12345;
  samples[3].view_price_large = 1.5e300;
  for (const PaneAggregate& a : samples) {
    std::string bytes;
    a.SerializeTo(&bytes);
    PaneAggregate b;
    b.view_count = 99;  // Parse must overwrite everything
    ASSERT_TRUE(PaneAggregate::Parse(bytes, &b));
    EXPECT_EQ(b.view_count, a.view_count);
    EXPECT_EQ(b.cart_count, a.cart_count);
    EXPECT_EQ(b.purchase_count, a.purchase_count);
    EXPECT_TRUE(b.view_price_fixed == a.view_price_fixed);
    EXPECT_EQ(Bits(b.view_price_large), Bits(a.view_price_large));
    EXPECT_EQ(Bits(b.AvgViewedPrice()), Bits(a.AvgViewedPrice()));
    EXPECT_EQ(b.empty(), a.empty());
    std::string again;
    b.SerializeTo(&again);
    EXPECT_EQ(again, bytes);
  }
}

TEST(PaneAggregate, SerializeReplacesTheOutput) {
  PaneAggregate a;
  a.Add(View(1));
  std::string bytes = "garbage already here";
  a.SerializeTo(&bytes);
  PaneAggregate b;
  ASSERT_TRUE(PaneAggregate::Parse(bytes, &b));
  EXPECT_EQ(b.view_count, 1);
}

TEST(PaneAggregate, ParseRejectsTruncatedOrOversizedInput) {
  PaneAggregate a;
  a.Add(View(3));
  std::string bytes;
  a.SerializeTo(&bytes);
  PaneAggregate b;
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(PaneAggregate::Parse(bytes.substr(0, n), &b)) << n;
  EXPECT_FALSE(PaneAggregate::Parse(bytes + "x", &b));
}

}  // namespace
}  // namespace slipstream
