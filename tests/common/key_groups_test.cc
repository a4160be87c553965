#include "common/key_groups.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace slipstream {
namespace {

// Expected values printed by Apache Flink 1.18.1 itself (flink-core's
// MathUtils.murmurHash over java.lang.String.hashCode), so key groups here
// match the Flink job this product replaces.
struct FlinkVector {
  const char* key;
  int32_t java_hash;
  int32_t murmur;
  int key_group_128;
  int key_group_32768;
};
constexpr FlinkVector kFlinkVectors[] = {
    {"111", 48657, 1945369491, 19, 31635},
    {"1", 49, 985808566, 54, 16054},
    {"2", 50, 575907739, 27, 10139},
    {"42", 1662, 1173596941, 13, 11021},
    {"user-7", -836031819, 1498315941, 37, 31909},
    {"", 0, 593689054, 94, 31198},
    {"abc", 96354, 74834163, 115, 24819},
    {"\xc3\xbc", 252, 1206438057, 41, 18601},                   // ü
    {"\xe6\x97\xa5\xe6\x9c\xac", 835047, 1762503263, 95, 10847},  // 日本
    {"\xf0\x9f\x98\x80", 1772899, 1934073014, 54, 7350},        // 😀 (surrogate pair)
    {"999999", 1686256992, 2162039, 119, 32119},
    {"-5", 1448, 1335729385, 105, 7401},
    {"__watermark__", -1667583132, 724945513, 105, 19049},
    {"a much longer user identifier 1234567890", -160681088, 2055784119, 55, 18103},
};

TEST(KeyGroups, MatchesFlinkForKnownKeys) {
  for (const auto& v : kFlinkVectors) {
    SCOPED_TRACE(v.key);
    EXPECT_EQ(JavaStringHashCode(v.key), v.java_hash);
    EXPECT_EQ(FlinkMurmurHash(v.java_hash), v.murmur);
    EXPECT_EQ(KeyGroupForKey(v.key, 128), v.key_group_128);
    EXPECT_EQ(KeyGroupForKey(v.key, 32768), v.key_group_32768);
  }
}

// Independent reference for ASCII: Java's hashCode is s[0]*31^(n-1) + ... .
TEST(KeyGroups, JavaHashMatchesPolynomialReferenceForRandomAscii) {
  std::mt19937 rng(7);
  for (int n = 0; n < 2000; ++n) {
    std::string s(rng() % 20, ' ');
    for (char& c : s) c = static_cast<char>(32 + rng() % 95);
    int64_t h = 0;
    for (unsigned char c : s) h = (h * 31 + c) % (int64_t{1} << 32);
    EXPECT_EQ(JavaStringHashCode(s), static_cast<int32_t>(static_cast<uint32_t>(h))) << s;
  }
}

TEST(KeyGroups, KeyGroupIsAlwaysInRange) {
  std::mt19937 rng(11);
  for (int n = 0; n < 5000; ++n) {
    const int max_parallelism = 1 + rng() % 32768;
    const int kg = KeyGroupForKey(std::to_string(rng()), max_parallelism);
    EXPECT_GE(kg, 0);
    EXPECT_LT(kg, max_parallelism);
  }
}

TEST(KeyGroups, InvalidUtf8HashesAsReplacementCharacter) {
  // Java decodes a lone 0xFF byte as U+FFFD (65533).
  EXPECT_EQ(JavaStringHashCode("\xff"), 65533);
  EXPECT_EQ(JavaStringHashCode("a\xff"), 97 * 31 + 65533);
}

TEST(KeyGroupRange, OperatorRangesAreContiguousCompleteAndBalanced) {
  for (int max_parallelism : {1, 7, 128, 1000, 32768}) {
    for (int parallelism = 1; parallelism <= std::min(max_parallelism, 9); ++parallelism) {
      int next = 0;
      for (int index = 0; index < parallelism; ++index) {
        const KeyGroupRange r = KeyGroupRangeForOperatorIndex(max_parallelism, parallelism, index);
        EXPECT_EQ(r.first, next) << max_parallelism << "/" << parallelism << "/" << index;
        const int ideal_floor = max_parallelism / parallelism;
        EXPECT_TRUE(r.size() == ideal_floor || r.size() == ideal_floor + 1);
        next = r.last + 1;
      }
      EXPECT_EQ(next, max_parallelism);
    }
  }
}

TEST(KeyGroupRange, PrefixRoundTripsBigEndian) {
  for (int kg : {0, 1, 255, 256, 32767}) {
    std::string key;
    AppendKeyGroupPrefix(kg, &key);
    ASSERT_EQ(key.size(), 2u);
    EXPECT_EQ(DecodeKeyGroupPrefix(key), kg);
  }
  std::string a, b;
  AppendKeyGroupPrefix(1, &a);
  AppendKeyGroupPrefix(256, &b);
  EXPECT_LT(a, b);  // byte order sorts like the number
}

}  // namespace
}  // namespace slipstream
