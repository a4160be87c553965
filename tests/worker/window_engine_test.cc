// Focused, deterministic tests of WindowEngine against the job's Flink
// semantics: SlidingEventTimeWindows.of(1 h, 10 min) and
// EventTimeSessionWindows.withGap(10 min), allowed lateness 0.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/worker/engine_test_util.h"

namespace slipstream {
namespace {

using namespace testing_util;  // NOLINT

// A realistic time that is a multiple of 10 minutes (aligned to the epoch).
constexpr int64_t B = 1'700'000'400'000;
static_assert(B % (10 * kMin) == 0);
constexpr int64_t kHuge = std::numeric_limits<int64_t>::max() / 2;

std::vector<std::string> SlidingFields(const std::string& user, int64_t views, int64_t carts, int64_t purchases,
                                       const std::string& avg, int64_t start, int64_t end) {
  return {"user_id",           user,
          "view_count_1h",     std::to_string(views),
          "cart_count_1h",     std::to_string(carts),
          "purchase_count_1h", std::to_string(purchases),
          "avg_viewed_price_1h", avg,
          "window_start",      std::to_string(start),
          "window_end",        std::to_string(end)};
}

std::vector<std::string> SessionFields(const std::string& user, int64_t count, int64_t first, int64_t last) {
  return {"user_id",          user,
          "event_count",      std::to_string(count),
          "duration_seconds", std::to_string((last - first) / 1000),
          "session_start",    std::to_string(first),
          "session_end",      std::to_string(last)};
}

void ExpectWindow(const FeatureWrite& w, const std::string& user, int64_t start, int64_t views, int64_t carts,
                  int64_t purchases, const std::string& avg) {
  EXPECT_EQ(w.key, "user_features:" + user);
  EXPECT_EQ(w.ttl_seconds, 7200);
  EXPECT_EQ(w.fields, SlidingFields(user, views, carts, purchases, avg, start, start + kHour)) << Describe(w);
}

void ExpectSession(const FeatureWrite& w, const std::string& user, int64_t count, int64_t first, int64_t last) {
  EXPECT_EQ(w.key, "session_features:" + user + ":" + std::to_string(first));
  EXPECT_EQ(w.ttl_seconds, 3600);
  EXPECT_EQ(w.fields, SessionFields(user, count, first, last)) << Describe(w);
}

std::vector<int64_t> WindowEnds(const std::vector<FeatureWrite>& ws) {
  std::vector<int64_t> ends;
  for (const auto& w : ws) {
    if (!IsSliding(w)) continue;
    ends.push_back(std::stoll(*Field(w, "window_end")));
  }
  return ends;
}

std::vector<int64_t> Ends(int64_t first_end, int n) {
  std::vector<int64_t> out;
  for (int i = 0; i < n; ++i) out.push_back(first_end + i * 10 * kMin);
  return out;
}

// ---------------------------------------------------------------------------
// Sliding windows

TEST(SlidingWindows, FireOnceWhenWatermarkReachesEndMinusOne) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B + 5 * kMin, EventType::kView, 10));

  EXPECT_TRUE(Sliding(h.Advance(B + 10 * kMin - 2)).empty());
  auto out = Sliding(h.Advance(B + 10 * kMin - 1));
  ASSERT_EQ(out.size(), 1u) << Describe(out);
  ExpectWindow(out[0], "u", B - 50 * kMin, 1, 0, 0, "10");

  // Exactly once: neither the same watermark again nor a slightly later one.
  EXPECT_TRUE(h.Advance(B + 10 * kMin - 1).empty());
  EXPECT_TRUE(Sliding(h.Advance(B + 10 * kMin + 5)).empty());

  out = Sliding(h.Advance(B + 60 * kMin - 1));
  EXPECT_EQ(WindowEnds(out), Ends(B + 20 * kMin, 5));
  for (const auto& w : out) EXPECT_EQ(*Field(w, "view_count_1h"), "1");
  EXPECT_TRUE(Sliding(h.Advance(kHuge)).empty());
  EXPECT_EQ(h.engine().stats().sliding_windows_fired, 6);
}

TEST(SlidingWindows, WatermarkJumpingPastSeveralEndsFiresThemInEndOrder) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B + 5 * kMin, EventType::kView, 1));
  EXPECT_TRUE(h.Process("u", B + 35 * kMin, EventType::kCart, 1));
  // Watermark exactly at an end (not end - 1) also covers that window.
  auto out = Sliding(h.Advance(B + 40 * kMin));
  EXPECT_EQ(WindowEnds(out), Ends(B + 10 * kMin, 4));
  out = Sliding(h.Advance(kHuge));
  EXPECT_EQ(WindowEnds(out), Ends(B + 50 * kMin, 5));  // ... up to B+90min
}

TEST(SlidingWindows, EventAtEndMinusOneBelongsToTheWindowEventAtEndDoesNot) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B - 1, EventType::kView, 1));
  EXPECT_TRUE(h.Process("u", B, EventType::kView, 3));

  auto out = Sliding(h.Advance(B - 1));  // window [B-60min, B) fires
  ASSERT_EQ(out.size(), 1u) << Describe(out);
  ExpectWindow(out[0], "u", B - kHour, 1, 0, 0, "1");

  out = Sliding(h.Advance(B + 50 * kMin - 1));  // windows ending B+10 .. B+50 hold both
  ASSERT_EQ(out.size(), 5u) << Describe(out);
  for (int i = 0; i < 5; ++i) ExpectWindow(out[i], "u", B - 50 * kMin + i * 10 * kMin, 2, 0, 0, "2");

  out = Sliding(h.Advance(B + 60 * kMin - 1));  // [B, B+60min) holds only the event at B
  ASSERT_EQ(out.size(), 1u) << Describe(out);
  ExpectWindow(out[0], "u", B, 1, 0, 0, "3");
}

TEST(SlidingWindows, EventArrivingAtWatermarkEndMinusTwoIsStillCounted) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Advance(B + 10 * kMin - 2).empty());
  EXPECT_TRUE(h.Process("u", B + 5 * kMin, EventType::kView, 4));
  auto out = Sliding(h.Advance(B + 10 * kMin - 1));
  ASSERT_EQ(out.size(), 1u) << Describe(out);
  ExpectWindow(out[0], "u", B - 50 * kMin, 1, 0, 0, "4");
}

TEST(SlidingWindows, LateEventIsCountedOnlyInItsStillOpenWindows) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B + 5 * kMin, EventType::kView, 10));
  auto out = h.Advance(B + 20 * kMin - 1);
  auto sliding = Sliding(out);
  ASSERT_EQ(sliding.size(), 2u) << Describe(out);
  ExpectWindow(sliding[0], "u", B - 50 * kMin, 1, 0, 0, "10");
  ExpectWindow(sliding[1], "u", B - 40 * kMin, 1, 0, 0, "10");
  auto sessions = Sessions(out);  // [B+5, B+15) fired at B+15min-1
  ASSERT_EQ(sessions.size(), 1u);
  ExpectSession(sessions[0], "u", 1, B + 5 * kMin, B + 5 * kMin);

  // Windows ending B+10 and B+20 have fired; B+30 .. B+60 are still open.
  // Its session window [B+1, B+11) is late too.
  EXPECT_TRUE(h.Process("u", B + 1 * kMin, EventType::kView, 20));
  out = h.Advance(kHuge);
  sliding = Sliding(out);
  ASSERT_EQ(sliding.size(), 4u) << Describe(out);
  for (int i = 0; i < 4; ++i) ExpectWindow(sliding[i], "u", B - 30 * kMin + i * 10 * kMin, 2, 0, 0, "15");
  EXPECT_TRUE(Sessions(out).empty()) << Describe(out);
}

TEST(SlidingWindows, EventLateForEverythingReturnsFalseAndChangesNothing) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Advance(B - 1).empty());
  // Latest window of B-60min is [B-60min, B): end - 1 = B - 1 <= watermark.
  EXPECT_FALSE(h.Process("u", B - kHour, EventType::kView, 5));
  EXPECT_FALSE(h.Process("u", B - 50 * kMin - 1, EventType::kCart, 5));
  EXPECT_TRUE(h.Advance(kHuge).empty());
  EXPECT_EQ(h.engine().stats().sliding_windows_fired, 0);
  EXPECT_EQ(h.engine().stats().sessions_fired, 0);
}

TEST(SlidingWindows, EventLateForSomeWindowsOnlyIsNotLate) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Advance(B - 1).empty());
  // Windows of B-10min+2 end at B .. B+50min; the one ending at B has fired.
  EXPECT_TRUE(h.Process("u", B - 10 * kMin + 2, EventType::kView, 5));
  auto out = h.Advance(kHuge);
  EXPECT_EQ(WindowEnds(out), Ends(B + 10 * kMin, 5));
  auto sessions = Sessions(out);  // [B-10min+2, B+2) was still open
  ASSERT_EQ(sessions.size(), 1u);
  ExpectSession(sessions[0], "u", 1, B - 10 * kMin + 2, B - 10 * kMin + 2);
}

TEST(SlidingWindows, WindowWithOnlyCartAndPurchaseEventsHasAverageZero) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B + 1 * kMin, EventType::kCart, 12.5));
  EXPECT_TRUE(h.Process("u", B + 2 * kMin, EventType::kPurchase, 99));
  EXPECT_TRUE(h.Process("u", B + 3 * kMin, EventType::kCart, 1));
  auto out = Sliding(h.Advance(kHuge));
  ASSERT_EQ(out.size(), 6u) << Describe(out);
  for (int i = 0; i < 6; ++i) ExpectWindow(out[i], "u", B - 50 * kMin + i * 10 * kMin, 0, 2, 1, "0");
}

TEST(SlidingWindows, ViewsAtPriceZeroAverageZero) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B + 1 * kMin, EventType::kView, 0));
  auto out = Sliding(h.Advance(B + 10 * kMin - 1));
  ASSERT_EQ(out.size(), 1u);
  ExpectWindow(out[0], "u", B - 50 * kMin, 1, 0, 0, "0");
}

TEST(SlidingWindows, AverageIsTheMeanOverViewEventsOnly) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B + 1 * kMin, EventType::kView, 10));
  EXPECT_TRUE(h.Process("u", B + 2 * kMin, EventType::kCart, 1000));
  EXPECT_TRUE(h.Process("u", B + 3 * kMin, EventType::kView, 20));
  EXPECT_TRUE(h.Process("u", B + 4 * kMin, EventType::kPurchase, 999));
  EXPECT_TRUE(h.Process("u", B + 5 * kMin, EventType::kView, 25.5));
  auto out = Sliding(h.Advance(B + 10 * kMin - 1));
  ASSERT_EQ(out.size(), 1u);
  ExpectWindow(out[0], "u", B - 50 * kMin, 3, 1, 1, "18.5");
}

TEST(SlidingWindows, AverageIsShortestRoundTripText) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  // 0.1 + 0.2 + 0.4 over 3 views: the exact mean of the three doubles.
  EXPECT_TRUE(h.Process("u", B + 1 * kMin, EventType::kView, 0.1));
  EXPECT_TRUE(h.Process("u", B + 2 * kMin, EventType::kView, 0.2));
  EXPECT_TRUE(h.Process("u", B + 3 * kMin, EventType::kView, 0.4));
  auto out = Sliding(h.Advance(B + 10 * kMin - 1));
  ASSERT_EQ(out.size(), 1u);
  const std::string avg = *Field(out[0], "avg_viewed_price_1h");
  auto v = ParseDouble(avg);
  ASSERT_TRUE(v.has_value()) << avg;
  EXPECT_EQ(ShortestDouble(*v), avg);
  const long double want =
      (static_cast<long double>(0.1) + static_cast<long double>(0.2) + static_cast<long double>(0.4)) / 3;
  EXPECT_NEAR(*v, static_cast<double>(want), 1e-12 * static_cast<double>(want));
}

TEST(SlidingWindows, TinyViewPriceIsAveragedNotTruncated) {
  // price is any finite double >= 0; Flink's mean of one view is the price.
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B + 1 * kMin, EventType::kView, 1e-20));
  auto out = Sliding(h.Advance(B + 10 * kMin - 1));
  ASSERT_EQ(out.size(), 1u);
  ExpectWindow(out[0], "u", B - 50 * kMin, 1, 0, 0, "1e-20");
}

TEST(SlidingWindows, WindowsOfOneUserComeInEndOrder) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  // Events in 3 panes, out of order, with gaps; one big advance.
  EXPECT_TRUE(h.Process("u", B + 95 * kMin, EventType::kView, 1));
  EXPECT_TRUE(h.Process("u", B + 5 * kMin, EventType::kView, 1));
  EXPECT_TRUE(h.Process("u", B + 41 * kMin, EventType::kView, 1));
  auto out = Sliding(h.Advance(kHuge));
  // Ends: from B+10 (first window of B+5) to B+150 (last window of B+95).
  EXPECT_EQ(WindowEnds(out), Ends(B + 10 * kMin, 15));
}

TEST(SlidingWindows, NegativeEventTimesUseFloorTowardsMinusInfinity) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  const int64_t P = 10 * kMin;  // 600000
  EXPECT_TRUE(h.Process("u", -1, EventType::kView, 1));           // pane [-P, 0)
  EXPECT_TRUE(h.Process("u", -P, EventType::kView, 2));           // pane [-P, 0)
  EXPECT_TRUE(h.Process("u", -P - 1, EventType::kView, 6));       // pane [-2P, -P)

  // The first window of -P-1 is [-7P, -P): fires at -P - 1.
  auto out = Sliding(h.Advance(-P - 2));
  EXPECT_TRUE(out.empty()) << Describe(out);
  out = Sliding(h.Advance(-P - 1));
  ASSERT_EQ(out.size(), 1u) << Describe(out);
  ExpectWindow(out[0], "u", -7 * P, 1, 0, 0, "6");

  out = Sliding(h.Advance(kHuge));
  // Windows [-6P, 0) .. [-2P, 4P) hold all three; [-P, 5P) only the two in [-P, 0).
  ASSERT_EQ(out.size(), 6u) << Describe(out);
  for (int i = 0; i < 5; ++i) ExpectWindow(out[i], "u", -6 * P + i * P, 3, 0, 0, "3");
  ExpectWindow(out[5], "u", -P, 2, 0, 0, "1.5");
}

TEST(SlidingWindows, WindowStraddlingTheEpoch) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", -30 * kMin, EventType::kView, 2));
  EXPECT_TRUE(h.Process("u", 0, EventType::kView, 4));
  EXPECT_TRUE(h.Process("u", 29 * kMin + 59'999, EventType::kView, 6));
  auto out = Sliding(h.Advance(30 * kMin - 1));  // [-30min, 30min) fires
  ASSERT_FALSE(out.empty());
  ExpectWindow(out.back(), "u", -30 * kMin, 3, 0, 0, "4");
}

TEST(SlidingWindows, WatermarkNeverGoesBackwards) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Advance(B + 30 * kMin).empty());
  EXPECT_TRUE(h.Advance(B).empty());
  EXPECT_EQ(h.engine().watermark(), B + 30 * kMin);
  // Still judged against B+30min: only windows ending B+40 .. B+60 take it,
  // and its session window [B+5, B+15) is late.
  EXPECT_TRUE(h.Process("u", B + 5 * kMin, EventType::kView, 1));
  EXPECT_TRUE(h.Advance(B + 35 * kMin).empty());
  auto out = h.Advance(kHuge);
  EXPECT_EQ(WindowEnds(out), Ends(B + 40 * kMin, 3));
  EXPECT_TRUE(Sessions(out).empty());
}

TEST(SlidingWindows, FinalInt64MaxWatermarkFiresEverything) {
  // Flink emits Long.MAX_VALUE at the end of input.
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B + 5 * kMin, EventType::kView, 1));
  EXPECT_TRUE(h.Process("v", -B, EventType::kCart, 1));
  auto out = h.Advance(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(Sliding(out).size(), 12u) << Describe(out);
  EXPECT_EQ(Sessions(out).size(), 2u) << Describe(out);
  EXPECT_EQ(h.engine().watermark(), std::numeric_limits<int64_t>::max());
  EXPECT_FALSE(h.Process("u", B + 6 * kMin, EventType::kView, 1));
  EXPECT_TRUE(h.Advance(std::numeric_limits<int64_t>::max()).empty());
}

TEST(SlidingWindows, CommitsBetweenStepsKeepEveryResult) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B + 1 * kMin, EventType::kView, 1));
  h.Commit();
  EXPECT_TRUE(h.Process("u", B + 2 * kMin, EventType::kView, 3));
  auto out = Sliding(h.Advance(B + 10 * kMin - 1));
  ASSERT_EQ(out.size(), 1u);
  ExpectWindow(out[0], "u", B - 50 * kMin, 2, 0, 0, "2");
  h.Commit();
  h.Commit();
  EXPECT_TRUE(h.Process("u", B + 12 * kMin, EventType::kCart, 3));
  h.Commit();
  out = Sliding(h.Advance(kHuge));
  ASSERT_EQ(out.size(), 6u) << Describe(out);
  for (int i = 0; i < 5; ++i) ExpectWindow(out[i], "u", B - 40 * kMin + i * 10 * kMin, 2, 1, 0, "2");
  ExpectWindow(out[5], "u", B + 10 * kMin, 0, 1, 0, "0");
}

TEST(SlidingWindows, ManyUsersAcrossKeyGroupsAreKeptApart) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  constexpr int kUsers = 400;
  std::set<int> key_groups;
  for (int i = 0; i < kUsers; ++i) {
    const std::string user = "user-" + std::to_string(i);
    key_groups.insert(KeyGroupForKey(user, kMaxParallelism));
    for (int j = 0; j <= i % 4; ++j) {
      EXPECT_TRUE(h.Process(user, B + (1 + j) * kMin + i, EventType::kView, i + j));
    }
  }
  EXPECT_GT(key_groups.size(), 100u);
  h.Commit();
  auto out = h.Advance(kHuge);
  std::map<std::string, std::vector<FeatureWrite>> sliding, sessions;
  for (const auto& w : out) (IsSliding(w) ? sliding : sessions)[*Field(w, "user_id")].push_back(w);
  ASSERT_EQ(sliding.size(), static_cast<size_t>(kUsers));
  ASSERT_EQ(sessions.size(), static_cast<size_t>(kUsers));
  for (int i = 0; i < kUsers; ++i) {
    const std::string user = "user-" + std::to_string(i);
    const int n = i % 4 + 1;
    // mean of i, i+1, ..., i+n-1 = i + (n-1)/2
    const std::string avg = ShortestDouble(i + (n - 1) / 2.0);
    const auto& ws = sliding[user];
    ASSERT_EQ(ws.size(), 6u) << user;
    for (int k = 0; k < 6; ++k) ExpectWindow(ws[k], user, B - 50 * kMin + k * 10 * kMin, n, 0, 0, avg);
    ASSERT_EQ(sessions[user].size(), 1u);
    ExpectSession(sessions[user][0], user, n, B + kMin + i, B + n * kMin + i);
  }
  EXPECT_EQ(h.engine().stats().sliding_windows_fired, 6 * kUsers);
  EXPECT_EQ(h.engine().stats().sessions_fired, kUsers);
}

TEST(SlidingWindows, EngineOwningPartOfTheKeyGroups) {
  TempDir dir;
  auto store = StateStore::Open(dir.path() + "/db", StateStoreOptions{});
  ASSERT_TRUE(store.ok());
  const KeyGroupRange owned{40, 90};
  {
    WindowEngine engine(store->get(), owned);
    std::vector<std::string> users;
    for (int i = 0; users.size() < 20; ++i) {
      std::string u = "p" + std::to_string(i);
      if (owned.contains(KeyGroupForKey(u, kMaxParallelism))) users.push_back(u);
    }
    for (const auto& u : users) {
      auto r = engine.ProcessEvent(KeyGroupForKey(u, kMaxParallelism), MakeEvent(u, B + kMin, EventType::kView, 2));
      ASSERT_TRUE(r.ok());
      EXPECT_TRUE(*r);
    }
    std::vector<FeatureWrite> out;
    ASSERT_TRUE(engine.AdvanceWatermark(B + 10 * kMin - 1, &out).ok());
    EXPECT_EQ(out.size(), users.size()) << Describe(out);
    out.clear();
    ASSERT_TRUE(engine.AdvanceWatermark(kHuge, &out).ok());
    EXPECT_EQ(out.size(), users.size() * 6) << Describe(out);  // 5 windows + 1 session each
  }
  store->reset();
}

TEST(SlidingWindows, UserIdsWithNulAndNonAsciiBytesAreDistinct) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  const std::vector<std::string> users = {
      "a", std::string("a\0", 2), std::string("a\0b", 3), std::string("\0", 1), "\xc3\xbc\xe6\x97\xa5",
      "\xff\xfe\x80",  // not UTF-8
      "a:1", std::string(300, 'x'), std::string(128, '\0')};
  for (size_t i = 0; i < users.size(); ++i) {
    for (size_t j = 0; j <= i; ++j) EXPECT_TRUE(h.Process(users[i], B + kMin + static_cast<int64_t>(j), EventType::kView, 2));
  }
  auto out = h.Advance(kHuge);
  std::map<std::string, std::vector<FeatureWrite>> sliding, sessions;
  for (const auto& w : out) (IsSliding(w) ? sliding : sessions)[*Field(w, "user_id")].push_back(w);
  ASSERT_EQ(sliding.size(), users.size()) << Describe(out);
  ASSERT_EQ(sessions.size(), users.size()) << Describe(out);
  for (size_t i = 0; i < users.size(); ++i) {
    const std::string& u = users[i];
    SCOPED_TRACE("user " + Escape(u));
    const int64_t n = static_cast<int64_t>(i) + 1;
    ASSERT_EQ(sliding[u].size(), 6u);
    for (int k = 0; k < 6; ++k) ExpectWindow(sliding[u][k], u, B - 50 * kMin + k * 10 * kMin, n, 0, 0, "2");
    ASSERT_EQ(sessions[u].size(), 1u);
    ExpectSession(sessions[u][0], u, n, B + kMin, B + kMin + n - 1);
  }
}

// ---------------------------------------------------------------------------
// Sessions

TEST(SessionWindows, EventExactlyGapAfterThePreviousJoinsTheSession) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B, EventType::kView, 1));
  EXPECT_TRUE(h.Process("u", B + 10 * kMin, EventType::kCart, 1));
  EXPECT_TRUE(Sessions(h.Advance(B + 20 * kMin - 2)).empty());
  auto out = Sessions(h.Advance(B + 20 * kMin - 1));
  ASSERT_EQ(out.size(), 1u) << Describe(out);
  ExpectSession(out[0], "u", 2, B, B + 10 * kMin);
  EXPECT_EQ(*Field(out[0], "duration_seconds"), "600");
}

TEST(SessionWindows, EventExactlyGapBeforeTheFirstJoinsTheSession) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B + 10 * kMin, EventType::kView, 1));
  EXPECT_TRUE(h.Process("u", B, EventType::kView, 1));
  auto out = Sessions(h.Advance(kHuge));
  ASSERT_EQ(out.size(), 1u) << Describe(out);
  ExpectSession(out[0], "u", 2, B, B + 10 * kMin);
}

TEST(SessionWindows, EventOneMsMoreThanGapApartStartsANewSession) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B, EventType::kView, 1));
  EXPECT_TRUE(h.Process("u", B + 10 * kMin + 1, EventType::kView, 1));
  auto out = Sessions(h.Advance(B + 10 * kMin - 1));
  ASSERT_EQ(out.size(), 1u) << Describe(out);
  ExpectSession(out[0], "u", 1, B, B);
  EXPECT_TRUE(Sessions(h.Advance(B + 20 * kMin - 1)).empty());
  out = Sessions(h.Advance(B + 20 * kMin));
  ASSERT_EQ(out.size(), 1u) << Describe(out);
  ExpectSession(out[0], "u", 1, B + 10 * kMin + 1, B + 10 * kMin + 1);
}

TEST(SessionWindows, MiddleEventArrivingLastBridgesTwoSessions) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B, EventType::kView, 1));
  EXPECT_TRUE(h.Process("u", B + 20 * kMin, EventType::kView, 1));
  EXPECT_TRUE(Sessions(h.Advance(B + 10 * kMin - 2)).empty());
  // [B+10, B+20) touches [B, B+10) and [B+20, B+30): one session.
  EXPECT_TRUE(h.Process("u", B + 10 * kMin, EventType::kPurchase, 1));
  EXPECT_TRUE(Sessions(h.Advance(B + 30 * kMin - 2)).empty());
  auto out = Sessions(h.Advance(B + 30 * kMin - 1));
  ASSERT_EQ(out.size(), 1u) << Describe(out);
  ExpectSession(out[0], "u", 3, B, B + 20 * kMin);
  EXPECT_TRUE(Sessions(h.Advance(kHuge)).empty());
  EXPECT_EQ(h.engine().stats().sessions_fired, 1);
}

TEST(SessionWindows, EventBridgingThreeSessionsMergesAllOfThem) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B, EventType::kView, 1));
  EXPECT_TRUE(h.Process("u", B + 15 * kMin, EventType::kView, 1));
  EXPECT_TRUE(h.Process("u", B + 30 * kMin, EventType::kView, 1));
  EXPECT_TRUE(h.Process("u", B + 7 * kMin, EventType::kView, 1));   // bridges 1 and 2
  EXPECT_TRUE(h.Process("u", B + 22 * kMin, EventType::kView, 1));  // bridges (1,2) and 3
  auto out = Sessions(h.Advance(kHuge));
  ASSERT_EQ(out.size(), 1u) << Describe(out);
  ExpectSession(out[0], "u", 5, B, B + 30 * kMin);
}

TEST(SessionWindows, FiresAtLastEventPlusGapMinusOne) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B + 3 * kMin, EventType::kView, 1));
  EXPECT_TRUE(h.Process("u", B + 7 * kMin, EventType::kView, 1));
  EXPECT_TRUE(Sessions(h.Advance(B + 17 * kMin - 2)).empty());
  auto out = Sessions(h.Advance(B + 17 * kMin - 1));
  ASSERT_EQ(out.size(), 1u);
  ExpectSession(out[0], "u", 2, B + 3 * kMin, B + 7 * kMin);
}

TEST(SessionWindows, LateEventStillJoinsAnOpenSession) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  // One long session: an event every 9 minutes for two hours.
  int n = 0;
  for (int64_t t = B; t <= B + 2 * kHour; t += 9 * kMin, ++n) EXPECT_TRUE(h.Process("u", t, EventType::kView, 1));
  const int64_t last = B + (n - 1) * 9 * kMin;
  auto out = h.Advance(last - 10'001);
  EXPECT_TRUE(Sessions(out).empty());
  // B + 1 min is late for all its sliding windows (the latest ends at B + 1h),
  // but [B+1min, B+11min) intersects the open session: it joins it.
  EXPECT_TRUE(h.Process("u", B + kMin, EventType::kView, 1));
  // B - 10 min touches the session's start: joins too, extending it backwards.
  EXPECT_TRUE(h.Process("u", B - 10 * kMin, EventType::kCart, 1));
  out = h.Advance(kHuge);
  auto sessions = Sessions(out);
  ASSERT_EQ(sessions.size(), 1u) << Describe(out);
  ExpectSession(sessions[0], "u", n + 2, B - 10 * kMin, last);
  // The late events are in no window: every window fired after them has only views.
  for (const auto& w : Sliding(out)) EXPECT_EQ(*Field(w, "cart_count_1h"), "0") << Describe(w);
}

TEST(SessionWindows, LateEventMergingWithNothingIsDroppedForSessions) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Advance(B + 30 * kMin).empty());
  // Session window [B+15, B+25) is late; the windows ending B+40 .. B+70 are not.
  EXPECT_TRUE(h.Process("u", B + 15 * kMin, EventType::kView, 1));
  // Session window [B+20min+1, B+30min+1) ends - 1 == B+30min: late as well.
  EXPECT_TRUE(h.Process("u", B + 20 * kMin + 1, EventType::kView, 1));
  auto out = h.Advance(kHuge);
  EXPECT_TRUE(Sessions(out).empty()) << Describe(out);
  EXPECT_EQ(WindowEnds(out), Ends(B + 40 * kMin, 5));  // B+40 .. B+80
}

TEST(SessionWindows, EventJustNotLateForSessionsOpensOne) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Advance(B + 30 * kMin).empty());
  EXPECT_TRUE(h.Process("u", B + 20 * kMin + 2, EventType::kView, 1));  // fires at B+30min+1
  auto out = Sessions(h.Advance(B + 30 * kMin + 1));
  ASSERT_EQ(out.size(), 1u);
  ExpectSession(out[0], "u", 1, B + 20 * kMin + 2, B + 20 * kMin + 2);
}

TEST(SessionWindows, EventTouchingAFiredSessionStartsANewOne) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B, EventType::kView, 1));
  auto out = Sessions(h.Advance(B + 10 * kMin - 1));
  ASSERT_EQ(out.size(), 1u);
  ExpectSession(out[0], "u", 1, B, B);
  EXPECT_TRUE(h.Process("u", B + 10 * kMin, EventType::kView, 1));
  out = Sessions(h.Advance(kHuge));
  ASSERT_EQ(out.size(), 1u);
  ExpectSession(out[0], "u", 1, B + 10 * kMin, B + 10 * kMin);
}

TEST(SessionWindows, DurationSecondsIsFloored) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B, EventType::kView, 1));
  EXPECT_TRUE(h.Process("u", B + 1999, EventType::kView, 1));
  EXPECT_TRUE(h.Process("v", B, EventType::kView, 1));
  EXPECT_TRUE(h.Process("v", B, EventType::kView, 1));
  auto out = Sessions(h.Advance(kHuge));
  ASSERT_EQ(out.size(), 2u);
  std::map<std::string, FeatureWrite> by_user;
  for (const auto& w : out) by_user[*Field(w, "user_id")] = w;
  EXPECT_EQ(*Field(by_user["u"], "duration_seconds"), "1");
  EXPECT_EQ(*Field(by_user["v"], "duration_seconds"), "0");
  EXPECT_EQ(*Field(by_user["v"], "event_count"), "2");
}

TEST(SessionWindows, NegativeTimes) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", -1, EventType::kView, 1));
  EXPECT_TRUE(h.Process("u", -1500, EventType::kView, 1));
  EXPECT_TRUE(Sessions(h.Advance(-1 + 10 * kMin - 2)).empty());
  auto out = Sessions(h.Advance(-1 + 10 * kMin - 1));
  ASSERT_EQ(out.size(), 1u);
  ExpectSession(out[0], "u", 2, -1500, -1);
  EXPECT_EQ(out[0].key, "session_features:u:-1500");
  EXPECT_EQ(*Field(out[0], "duration_seconds"), "1");
}

TEST(SessionWindows, UsersDoNotShareSessions) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B, EventType::kView, 1));
  EXPECT_TRUE(h.Process("v", B + 5 * kMin, EventType::kView, 1));
  EXPECT_TRUE(h.Process(std::string("u\0", 2), B + 5 * kMin, EventType::kView, 1));
  auto out = Sessions(h.Advance(B + 10 * kMin - 1));
  ASSERT_EQ(out.size(), 1u) << Describe(out);
  ExpectSession(out[0], "u", 1, B, B);
  out = Sessions(h.Advance(B + 15 * kMin - 1));
  ASSERT_EQ(out.size(), 2u) << Describe(out);
}

TEST(SessionWindows, SessionsOfOneUserFireInEndOrder) {
  EngineHarness h;
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.Process("u", B + 40 * kMin, EventType::kView, 1));
  EXPECT_TRUE(h.Process("u", B, EventType::kView, 1));
  EXPECT_TRUE(h.Process("u", B + 20 * kMin, EventType::kView, 1));
  auto out = Sessions(h.Advance(kHuge));
  ASSERT_EQ(out.size(), 3u) << Describe(out);
  ExpectSession(out[0], "u", 1, B, B);
  ExpectSession(out[1], "u", 1, B + 20 * kMin, B + 20 * kMin);
  ExpectSession(out[2], "u", 1, B + 40 * kMin, B + 40 * kMin);
}

TEST(Firing, InBoundedChunksGivesTheSameResults) {
  // A watermark jump fired in chunks of 3 results equals firing it at once.
  EngineHarness whole, chunked;
  ASSERT_TRUE(whole.ok() && chunked.ok());
  for (int i = 0; i < 40; ++i) {
    const std::string user = "user-" + std::to_string(i % 13);
    const int64_t t = B + i * 7 * kMin;
    EXPECT_TRUE(whole.Process(user, t, EventType::kView, i));
    EXPECT_TRUE(chunked.Process(user, t, EventType::kView, i));
  }
  const std::vector<FeatureWrite> expected = whole.Advance(kHuge);
  ASSERT_GT(expected.size(), 20u);
  std::vector<FeatureWrite> all, chunk;
  int calls = 0;
  do {
    ASSERT_TRUE(chunked.engine().AdvanceWatermark(kHuge, &chunk, 3).ok());
    // At most the limit plus what one timer fires (a user's windows).
    EXPECT_LT(chunk.size(), 3u + 40u);
    all.insert(all.end(), chunk.begin(), chunk.end());
    chunk.clear();
    ++calls;
  } while (chunked.engine().firing_pending() && calls < 1000);
  EXPECT_FALSE(chunked.engine().firing_pending());
  EXPECT_GE(calls, 4) << "the limit never stopped a call";
  ASSERT_EQ(all.size(), expected.size());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].key, expected[i].key) << i;
    EXPECT_EQ(all[i].fields, expected[i].fields) << i;
  }
}

}  // namespace
}  // namespace slipstream
