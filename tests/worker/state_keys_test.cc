#include "worker/state/state_keys.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/key_groups.h"

namespace slipstream::state_keys {
namespace {

// Byte order as RocksDB's BytewiseComparator sees it (unsigned bytes).
bool BytesLess(std::string_view a, std::string_view b) {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return static_cast<unsigned char>(x) < static_cast<unsigned char>(y);
  });
}

std::string Time(int64_t t) {
  std::string s;
  AppendTime(t, &s);
  return s;
}

std::string User(std::string_view u) {
  std::string s;
  AppendUser(u, &s);
  return s;
}

std::vector<int64_t> InterestingTimes() {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMinT = std::numeric_limits<int64_t>::min();
  std::vector<int64_t> ts = {kMinT, kMinT + 1, -(int64_t{1} << 32), -(int64_t{1} << 32) + 1, -1'700'000'000'000,
                             -600'001, -600'000, -599'999, -256, -255, -1, 0, 1, 255, 256, 599'999, 600'000,
                             1'700'000'400'000, int64_t{1} << 56, kMax - 1, kMax};
  std::mt19937_64 rng(42);
  for (int i = 0; i < 3000; ++i) {
    const uint64_t r = rng();
    const int shift = static_cast<int>(rng() % 64);
    ts.push_back(static_cast<int64_t>(r) >> shift);  // all magnitudes, both signs
  }
  std::sort(ts.begin(), ts.end());
  ts.erase(std::unique(ts.begin(), ts.end()), ts.end());
  return ts;
}

TEST(StateKeys, TimeEncodingSortsLikeNumbersIncludingNegatives) {
  const std::vector<int64_t> ts = InterestingTimes();
  for (size_t i = 0; i + 1 < ts.size(); ++i) {
    EXPECT_TRUE(BytesLess(Time(ts[i]), Time(ts[i + 1]))) << ts[i] << " vs " << ts[i + 1];
    EXPECT_FALSE(BytesLess(Time(ts[i + 1]), Time(ts[i]))) << ts[i] << " vs " << ts[i + 1];
  }
}

TEST(StateKeys, TimeEncodingRoundTripsInEightBytes) {
  for (int64_t t : InterestingTimes()) {
    const std::string s = Time(t);
    ASSERT_EQ(s.size(), 8u);
    EXPECT_EQ(DecodeTime(s), t);
  }
}

TEST(StateKeys, TimeEncodingIsSignFlippedBigEndian) {
  EXPECT_EQ(Time(0), std::string("\x80\x00\x00\x00\x00\x00\x00\x00", 8));
  EXPECT_EQ(Time(-1), std::string("\x7f\xff\xff\xff\xff\xff\xff\xff", 8));
  EXPECT_EQ(Time(1), std::string("\x80\x00\x00\x00\x00\x00\x00\x01", 8));
  EXPECT_EQ(Time(std::numeric_limits<int64_t>::min()), std::string(8, '\0'));
  // Appends, leaving what is there.
  std::string key = "ab";
  AppendTime(258, &key);
  EXPECT_EQ(key, std::string("ab\x80\x00\x00\x00\x00\x00\x01\x02", 10));
}

TEST(StateKeys, TimerKeysSortByTimeWhateverTheUser) {
  // [kg]['t'][time:8][kind][user]: a later timer of any user sorts after.
  std::vector<std::pair<int64_t, std::string>> timers = {
      {-600'000, std::string(300, '\xff')}, {-1, "zzz"}, {0, ""}, {0, "a"}, {1, std::string("\0", 1)}};
  std::vector<std::string> keys;
  for (const auto& [t, user] : timers) {
    std::string key = Prefix(5, kTimer);
    AppendTime(t, &key);
    key.push_back('w');
    AppendUser(user, &key);
    keys.push_back(key);
  }
  for (size_t i = 0; i + 1 < keys.size(); ++i) EXPECT_TRUE(BytesLess(keys[i], keys[i + 1])) << i;
}

TEST(StateKeys, UserEncodingRoundTripsForAllLengths) {
  std::mt19937_64 rng(3);
  for (size_t len : {0u, 1u, 2u, 126u, 127u, 128u, 129u, 255u, 256u, 300u, 16383u, 16384u, 70000u}) {
    std::string user(len, '\0');
    for (char& c : user) c = static_cast<char>(rng());  // any byte, NUL included
    const std::string enc = User(user);
    const size_t header = len < 128 ? 1 : len < 16384 ? 2 : 3;
    EXPECT_EQ(enc.size(), header + len) << len;
    std::string_view decoded = "not set";
    const std::string with_trailer = enc + std::string("\x00\xff rest", 7);
    EXPECT_EQ(DecodeUser(with_trailer, &decoded), enc.size()) << len;
    EXPECT_EQ(decoded, user) << len;
  }
}

TEST(StateKeys, UserEncodingLengthHeaders) {
  EXPECT_EQ(User(""), std::string("\x00", 1));
  EXPECT_EQ(User(std::string(127, 'a')).substr(0, 1), "\x7f");
  EXPECT_EQ(User(std::string(128, 'a')).substr(0, 2), std::string("\x80\x01", 2));
  EXPECT_EQ(User(std::string(300, 'a')).substr(0, 2), std::string("\xac\x02", 2));
}

TEST(StateKeys, UserPrefixesOfDistinctUsersAreNeverPrefixesOfEachOther) {
  const std::vector<std::string> users = {"",
                                          "a",
                                          std::string("a\0", 2),
                                          std::string("\0", 1),
                                          std::string("\0\0", 2),
                                          "ab",
                                          std::string(127, 'a'),
                                          std::string(128, 'a'),
                                          std::string(129, 'a'),
                                          std::string(128, '\0'),
                                          "\x80",
                                          "\x01"
                                          "a",
                                          "\xc3\xbc"};
  for (const auto& u1 : users) {
    for (const auto& u2 : users) {
      if (u1 == u2) continue;
      const std::string p1 = UserPrefix(7, kTimer, u1);
      const std::string p2 = UserPrefix(7, kTimer, u2);
      EXPECT_NE(p2.compare(0, p1.size(), p1), 0) << "prefix of \"" << u1 << "\" starts the one of \"" << u2 << "\"";
    }
  }
}

TEST(StateKeys, DecodeUserRejectsTruncatedAndMalformedInput) {
  std::string_view user;
  for (size_t len : {0u, 5u, 128u, 300u}) {
    const std::string enc = User(std::string(len, 'q'));
    for (size_t n = 0; n < enc.size(); ++n) EXPECT_EQ(DecodeUser(enc.substr(0, n), &user), 0u) << len << " " << n;
  }
  EXPECT_EQ(DecodeUser("", &user), 0u);
  EXPECT_EQ(DecodeUser(std::string("\x80\x80\x80\x80\x80\x80\x80\x80", 8), &user), 0u);
  EXPECT_EQ(DecodeUser(std::string("\x05" "abcd", 5), &user), 0u);
}

TEST(StateKeys, PrefixStartsWithTheKeyGroupBigEndianThenTheKind) {
  std::string previous;
  for (int kg : {0, 1, 127, 128, 255, 256, 1000, 32767}) {
    const std::string p = Prefix(kg, kTimer);
    ASSERT_EQ(p.size(), 3u);
    EXPECT_EQ(DecodeKeyGroupPrefix(p), kg);
    EXPECT_EQ(p[2], kTimer);
    if (!previous.empty()) {
      EXPECT_TRUE(BytesLess(previous, p)) << kg;
    }
    previous = p;
  }
  // All of one key group's keys sort before the next key group's.
  std::string last_of_3 = UserPrefix(3, kTimer, std::string(500, '\xff'));
  EXPECT_TRUE(BytesLess(last_of_3, Prefix(4, kTimer)));
}

}  // namespace
}  // namespace slipstream::state_keys
