// Redis Cluster addressing (worker/sink/redis_cluster_slots.h): key slots
// against values a real server computed, seed-node lists, slot maps parsed
// from CLUSTER SLOTS replies (raw RESP bytes run through hiredis's own
// reader, so the parser meets the reply trees hiredis really builds), the
// per-slot tags and MOVED / ASK redirects.
#include "worker/sink/redis_cluster_slots.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace slipstream::redis {
namespace {

// ---- RESP bytes, as a server sends them ----

std::string Int(long long v) { return absl::StrCat(":", v, "\r\n"); }
std::string Bulk(std::string_view s) {
  return absl::StrCat("$", s.size(), "\r\n", absl::string_view(s.data(), s.size()), "\r\n");
}
std::string Nil() { return "$-1\r\n"; }
std::string Array(const std::vector<std::string>& items) {
  std::string out = absl::StrCat("*", items.size(), "\r\n");
  for (const std::string& item : items) out += item;
  return out;
}
// A node of a Redis 7.0 CLUSTER SLOTS entry: ip, port, id, metadata.
std::string Node(std::string_view host, int port, std::string_view id, const std::vector<std::string>& meta = {}) {
  return Array({Bulk(host), Int(port), Bulk(id), Array(meta)});
}

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// The reply hiredis's reader builds from `resp` (null, and a test failure,
// when the bytes are not one complete reply).
Reply Parse(const std::string& resp) {
  std::unique_ptr<redisReader, void (*)(redisReader*)> reader(redisReaderCreate(), redisReaderFree);
  EXPECT_EQ(redisReaderFeed(reader.get(), resp.data(), resp.size()), REDIS_OK);
  void* raw = nullptr;
  EXPECT_EQ(redisReaderGetReply(reader.get(), &raw), REDIS_OK);
  EXPECT_NE(raw, nullptr) << "incomplete RESP: " << resp;
  return Reply(static_cast<redisReply*>(raw));
}

const NodeAddress kQueried{"10.0.0.9", 7000};

absl::StatusOr<SlotMap> MapFrom(const std::string& resp, const NodeAddress& queried = kQueried) {
  Reply reply = Parse(resp);
  if (!reply) return absl::InternalError("no reply");
  return SlotMap::FromClusterSlots(*reply, queried);
}

// ---- KeySlot ----

TEST(KeySlot, MatchesWhatARealRedisServerComputes) {
  // Measured with `redis-cli -p <port> CLUSTER KEYSLOT <key>` against
  // redis-server 7.0.15 started with --cluster-enabled yes (it answers
  // before any slot is assigned).
  const std::map<std::string, uint16_t> measured = {
      {"foo", 12182},
      {"bar", 5061},
      {"", 0},
      {"a", 15495},
      {"123456789", 12739},  // 0x31C3, CRC16-XMODEM's check value
      {"slipstream:writers", 9546},
      {"user_features:u1", 38},
      {"session_features:s42", 6985},
      {"{user1000}.following", 3443},
      {"{user1000}.followers", 3443},
      {"foo{}{bar}", 8363},
      {"foo{{bar}}zap", 4015},
      {"{bar", 4015},
      {"foo{bar}{zap}", 5061},
      {"{}", 15257},
      {"}{", 12793},
      {"{a}", 15495},
      {"a{b", 13340},
      {"x}y{z}", 8157},
      {"caf\xc3\xa9", 5735},
      {"\xff\xfe", 3374},
  };
  for (const auto& [key, slot] : measured) EXPECT_EQ(KeySlot(key), slot) << "key \"" << key << "\"";
}

TEST(KeySlot, HashesOnlyANonEmptyHashTag) {
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  // Empty braces: the whole key.
  EXPECT_NE(KeySlot("foo{}{bar}"), KeySlot("bar"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), 8363);
  // The first '{' and the first '}' after it: the tag is "{bar".
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), KeySlot("{bar"));
  // No '}' after the '{': the whole key.
  EXPECT_EQ(KeySlot("a{b"), 13340);
  // A '}' before the '{' does not close it.
  EXPECT_EQ(KeySlot("x}y{z}"), KeySlot("z"));
  // Keys with binary bytes and NULs.
  EXPECT_EQ(KeySlot(std::string_view("a\0b", 3)), KeySlot(std::string_view("{a\0b}", 5)));
}

// ---- NodeAddress and ParseSeedNodes ----

TEST(NodeAddress, PrintsIpv6InBracketsAndKeysMapsAndHashSets) {
  EXPECT_EQ((NodeAddress{"127.0.0.1", 7000}).ToString(), "127.0.0.1:7000");
  EXPECT_EQ((NodeAddress{"::1", 7000}).ToString(), "[::1]:7000");
  EXPECT_EQ((NodeAddress{"redis-1", 6379}).ToString(), "redis-1:6379");
  std::map<NodeAddress, int> ordered{{{"b", 1}, 1}, {{"a", 2}, 2}, {{"a", 1}, 3}};
  EXPECT_EQ(ordered.begin()->first, (NodeAddress{"a", 1}));
  absl::flat_hash_set<NodeAddress> set{{"a", 1}, {"a", 1}, {"a", 2}};
  EXPECT_EQ(set.size(), 2u);
}

TEST(ParseSeedNodes, ReadsHostPortListsWithSpacesAndIpv6) {
  absl::StatusOr<std::vector<NodeAddress>> nodes =
      ParseSeedNodes(" 127.0.0.1:7000, redis-2.local:7001 ,[::1]:7002,[fe80::1%eth0]:7003");
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  EXPECT_EQ(*nodes, (std::vector<NodeAddress>{
                        {"127.0.0.1", 7000}, {"redis-2.local", 7001}, {"::1", 7002}, {"fe80::1%eth0", 7003}}));
  nodes = ParseSeedNodes("localhost:65535");
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  EXPECT_EQ(*nodes, (std::vector<NodeAddress>{{"localhost", 65535}}));
}

TEST(ParseSeedNodes, NamesTheKeyAndTheBadEntry) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "no nodes"},
      {"   ", "no nodes"},
      {"127.0.0.1", "\"127.0.0.1\""},
      {"127.0.0.1:7000,,127.0.0.1:7001", "empty entry"},
      {"127.0.0.1:7000,", "empty entry"},
      {"127.0.0.1:0", "\"127.0.0.1:0\""},
      {"127.0.0.1:65536", "\"127.0.0.1:65536\""},
      {"127.0.0.1:70a", "\"127.0.0.1:70a\""},
      {"127.0.0.1:-1", "\"127.0.0.1:-1\""},
      {":7000", "\":7000\""},
      {"::1:7000", "\"::1:7000\""},  // IPv6 without brackets
      {"[::1]7000", "\"[::1]7000\""},
      {"[]:7000", "\"[]:7000\""},
      {"a b:7000", "\"a b:7000\""},
      {"h:1, h:1", "\"h:1\" is listed twice"},
  };
  for (const auto& [list, expected] : bad) {
    absl::StatusOr<std::vector<NodeAddress>> nodes = ParseSeedNodes(list);
    ASSERT_FALSE(nodes.ok()) << "\"" << list << "\" was accepted";
    EXPECT_EQ(nodes.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(nodes.status().message(), "redis.cluster.nodes: ")) << nodes.status();
    EXPECT_TRUE(absl::StrContains(nodes.status().message(), expected)) << nodes.status();
  }
}

// ---- SlotMap ----

TEST(SlotMap, ReadsARedis70ReplyWithReplicasAndMetadata) {
  // The shape redis-server 7.0.15 sends for a 3 + 3 cluster (captured from
  // scripts/redis-cluster.sh's cluster), plus one node's hostname metadata.
  const std::string resp = Array({
      Array({Int(0), Int(5460), Node("127.0.0.1", 17100, "09a1df7f"), Node("127.0.0.1", 17104, "95ca8756")}),
      Array({Int(5461), Int(10922), Node("127.0.0.1", 17101, "93aaf7ca", {Bulk("hostname"), Bulk("redis-2")}),
             Node("127.0.0.1", 17105, "a905cd88")}),
      Array({Int(10923), Int(16383), Node("127.0.0.1", 17102, "7d789b95"), Node("127.0.0.1", 17103, "7fb43e8d")}),
  });
  absl::StatusOr<SlotMap> map = MapFrom(resp);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->masters(), (std::vector<NodeAddress>{
                                {"127.0.0.1", 17100}, {"127.0.0.1", 17101}, {"127.0.0.1", 17102}}));
  EXPECT_TRUE(map->CoversAllSlots());
  EXPECT_EQ(map->MasterOf(0), 0);
  EXPECT_EQ(map->MasterOf(5460), 0);
  EXPECT_EQ(map->MasterOf(5461), 1);
  EXPECT_EQ(map->MasterOf(KeySlot("foo")), 2);  // 12182
  EXPECT_EQ(map->MasterOf(16383), 2);
  EXPECT_EQ(map->MasterOf(16384), -1);
  EXPECT_EQ(map->FirstSlotOf(0), 0);
  EXPECT_EQ(map->FirstSlotOf(1), 5461);
  EXPECT_EQ(map->FirstSlotOf(2), 10923);
  EXPECT_EQ(map->Describe(),
            "3 masters: 127.0.0.1:17100 0-5460, 127.0.0.1:17101 5461-10922, 127.0.0.1:17102 10923-16383");
}

TEST(SlotMap, ReadsTheRealBytesOfARedis70Reply) {
  // Byte for byte what redis-server 7.0.15 answered right after
  // `redis-cli --cluster create` (replicas are listed only once the masters
  // know their replication offsets).
  const std::string resp =
      "*3\r\n*3\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:17100\r\n$40\r\n09a1df7fac0746cf595c64cc0b3a056aa132af9d"
      "\r\n*0\r\n*3\r\n:5461\r\n:10922\r\n*4\r\n$9\r\n127.0.0.1\r\n:17101\r\n$40\r\n93aaf7ca8e9a9786adf13a3a8c6c28a6"
      "7aaebea5\r\n*0\r\n*3\r\n:10923\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:17102\r\n$40\r\n7d789b95858f7b95baf30e27"
      "d8da6296900b6d0e\r\n*0\r\n";
  absl::StatusOr<SlotMap> map = MapFrom(resp);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->masters().size(), 3u);
  EXPECT_TRUE(map->CoversAllSlots());
  EXPECT_EQ(map->masters()[map->MasterOf(KeySlot("bar"))], (NodeAddress{"127.0.0.1", 17100}));
}

TEST(SlotMap, UnknownHostsAreTheQueriedNodesHost) {
  const std::string resp = Array({
      Array({Int(0), Int(8191), Node("", 7000, "a")}),
      Array({Int(8192), Int(16000), Node("?", 7001, "b")}),
      Array({Int(16001), Int(16383), Array({Nil(), Int(7002), Bulk("c")})}),
  });
  absl::StatusOr<SlotMap> map = MapFrom(resp, NodeAddress{"redis-0", 7000});
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->masters(),
            (std::vector<NodeAddress>{{"redis-0", 7000}, {"redis-0", 7001}, {"redis-0", 7002}}));
}

TEST(SlotMap, OrdersMastersByTheirLowestSlotAndJoinsTheirRanges) {
  // A resharded cluster: ranges out of order, one master with three ranges.
  const std::string resp = Array({
      Array({Int(10001), Int(16383), Node("10.0.0.3", 7002, "c")}),
      Array({Int(100), Int(5000), Node("10.0.0.1", 7000, "a")}),
      Array({Int(0), Int(99), Node("10.0.0.2", 7001, "b")}),
      Array({Int(5001), Int(5001), Node("10.0.0.2", 7001, "b")}),
      Array({Int(5002), Int(10000), Node("10.0.0.2", 7001, "b")}),
  });
  absl::StatusOr<SlotMap> map = MapFrom(resp);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->masters(),
            (std::vector<NodeAddress>{{"10.0.0.2", 7001}, {"10.0.0.1", 7000}, {"10.0.0.3", 7002}}));
  EXPECT_EQ(map->FirstSlotOf(0), 0);
  EXPECT_EQ(map->FirstSlotOf(1), 100);
  EXPECT_EQ(map->FirstSlotOf(2), 10001);
  EXPECT_EQ(map->MasterOf(5001), 0);
  EXPECT_EQ(map->MasterOf(4999), 1);
  EXPECT_TRUE(map->CoversAllSlots());
  // 5001 and 5002-10000 are adjacent: Describe joins them.
  EXPECT_EQ(map->Describe(),
            "3 masters: 10.0.0.2:7001 0-99 5001-10000, 10.0.0.1:7000 100-5000, 10.0.0.3:7002 10001-16383");
}

TEST(SlotMap, KnowsUnassignedSlots) {
  const std::string resp = Array({
      Array({Int(0), Int(99), Node("10.0.0.1", 7000, "a")}),
      Array({Int(16383), Int(16383), Node("10.0.0.1", 7000, "a")}),
  });
  absl::StatusOr<SlotMap> map = MapFrom(resp);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_FALSE(map->CoversAllSlots());
  EXPECT_EQ(map->MasterOf(100), -1);
  EXPECT_EQ(map->MasterOf(16383), 0);
  EXPECT_EQ(map->Describe(), "1 master: 10.0.0.1:7000 0-99 16383; 16283 slots unassigned");

  absl::StatusOr<SlotMap> empty = MapFrom(Array({}));
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->masters().empty());
  EXPECT_FALSE(empty->CoversAllSlots());
  EXPECT_EQ(empty->Describe(), "0 masters; 16384 slots unassigned");
}

TEST(SlotMap, DescribeShortensManyRanges) {
  std::vector<std::string> entries;
  for (int i = 0; i < 10; ++i) entries.push_back(Array({Int(i * 2), Int(i * 2), Node("h", 1, "a")}));
  absl::StatusOr<SlotMap> map = MapFrom(Array(entries));
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->Describe(), "1 master: h:1 0 2 4 6 8 10 and 4 more ranges; 16374 slots unassigned");
}

TEST(SlotMap, RefusesErrorsAndMalformedReplies) {
  absl::StatusOr<SlotMap> error = MapFrom("-ERR This instance has cluster support disabled\r\n");
  EXPECT_EQ(error.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(error.status().message(), "10.0.0.9:7000")) << error.status();
  EXPECT_TRUE(absl::StrContains(error.status().message(), "cluster support disabled")) << error.status();

  const std::vector<std::string> malformed = {
      "+OK\r\n",
      Array({Int(1)}),
      Array({Array({Int(0), Int(10)})}),                                     // no master
      Array({Array({Int(0), Int(16384), Node("h", 1, "a")})}),               // slot out of range
      Array({Array({Int(10), Int(9), Node("h", 1, "a")})}),                  // end before start
      Array({Array({Int(-1), Int(9), Node("h", 1, "a")})}),                  // negative
      Array({Array({Bulk("0"), Int(9), Node("h", 1, "a")})}),                // start is not an integer
      Array({Array({Int(0), Int(9), Array({Bulk("h")})})}),                  // master without port
      Array({Array({Int(0), Int(9), Array({Bulk("h"), Int(0), Bulk("a")})})}),  // port 0
      Array({Array({Int(0), Int(9), Node("h", 1, "a")}), Array({Int(9), Int(20), Node("h", 2, "b")})}),  // overlap
  };
  for (const std::string& resp : malformed) {
    absl::StatusOr<SlotMap> map = MapFrom(resp);
    EXPECT_EQ(map.status().code(), absl::StatusCode::kInternal) << resp;
    EXPECT_TRUE(absl::StrContains(map.status().message(), "CLUSTER SLOTS reply from 10.0.0.9:7000")) << map.status();
  }
  EXPECT_TRUE(absl::StrContains(
      MapFrom(malformed.back()).status().message(), "slot 9 is served by h:1 and h:2"));
}

// ---- TagForSlot ----

TEST(TagForSlot, NamesEverySlotWithAShortBracelessTag) {
  std::set<std::string> distinct;
  size_t longest = 0;
  for (int slot = 0; slot < kClusterSlotCount; ++slot) {
    const std::string_view tag = TagForSlot(static_cast<uint16_t>(slot));
    ASSERT_FALSE(tag.empty()) << slot;
    ASSERT_EQ(tag.find_first_of("{}"), std::string_view::npos) << slot;
    ASSERT_EQ(KeySlot(tag), slot) << "tag \"" << tag << "\"";
    // Used as a hash tag the key lands in the same slot.
    ASSERT_EQ(KeySlot(absl::StrCat("slipstream:writers:{", absl::string_view(tag.data(), tag.size()), "}")), slot);
    distinct.emplace(tag);
    longest = std::max(longest, tag.size());
  }
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kClusterSlotCount));
  EXPECT_LE(longest, 3u);  // the header promises "short"
  // Stable across calls (and, being computed deterministically, processes).
  EXPECT_EQ(TagForSlot(KeySlot("0")), "0");
  EXPECT_EQ(TagForSlot(12182).data(), TagForSlot(12182).data());
}


}  // namespace
}  // namespace slipstream::redis
