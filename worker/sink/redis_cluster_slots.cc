#include "worker/sink/redis_cluster_slots.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <numeric>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"

namespace slipstream::redis {

namespace {

// CRC16-CCITT as XMODEM computes it (polynomial 0x1021, initial value 0, no
// reflection): the checksum Redis Cluster hashes keys with (its crc16.c),
// one table lookup per byte. The table is derived from the polynomial at
// compile time rather than pasted in.
constexpr std::array<uint16_t, 256> MakeCrc16Table() {
  std::array<uint16_t, 256> table{};
  for (int i = 0; i < 256; ++i) {
    uint16_t crc = static_cast<uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : static_cast<uint16_t>(crc << 1);
    }
    table[i] = crc;
  }
  return table;
}
constexpr std::array<uint16_t, 256> kCrc16Table = MakeCrc16Table();
// Spot checks against Redis's literal table (src/crc16.c).
static_assert(kCrc16Table[1] == 0x1021 && kCrc16Table[2] == 0x2042 && kCrc16Table[255] == 0x1ef0);

uint16_t Crc16(std::string_view bytes) {
  uint16_t crc = 0;
  for (const char c : bytes) {
    crc = static_cast<uint16_t>((crc << 8) ^ kCrc16Table[((crc >> 8) ^ static_cast<uint8_t>(c)) & 0xff]);
  }
  return crc;
}

constexpr std::string_view kSeedNodesKey = "redis.cluster.nodes";

// A port in 1..65535 written in decimal digits only.
std::optional<int> ParsePort(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  int port = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + (c - '0');
  }
  if (port < 1 || port > 65535) return std::nullopt;
  return port;
}

// "host:port" or "[v6]:port". A host with a colon outside brackets is
// refused, so a user who forgets the brackets hears about it.
std::optional<NodeAddress> ParseHostPort(std::string_view text) {
  NodeAddress node;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    node.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    node.host = std::string(text.substr(0, colon));
    if (node.host.find(':') != std::string::npos) return std::nullopt;
    port = text.substr(colon + 1);
  }
  if (node.host.empty() || node.host.find_first_of(" \t[]") != std::string::npos) return std::nullopt;
  const std::optional<int> p = ParsePort(port);
  if (!p) return std::nullopt;
  node.port = *p;
  return node;
}

std::string_view ReplyString(const redisReply& r) {
  return r.str == nullptr ? std::string_view() : std::string_view(r.str, r.len);
}

absl::Status Malformed(const NodeAddress& queried, std::string_view what) {
  return absl::InternalError(
      absl::StrCat("unexpected CLUSTER SLOTS reply from ", queried.ToString(), ": ", ToAbsl(what)));
}

// One tag per slot (see TagForSlot).
struct SlotTag {
  std::array<char, 7> chars{};
  uint8_t size = 0;
};

// Enumerates strings over [0-9a-zA-Z] by length, then in alphabet order,
// and keeps the first one that lands in each slot. Deterministic, so every
// process names a slot's keys alike. All slots are covered by strings of at
// most 3 characters (checked by the unit test); the length bound is only a
// backstop.
std::vector<SlotTag> ComputeSlotTags() {
  static constexpr std::string_view kAlphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::vector<SlotTag> tags(kClusterSlotCount);
  int missing = kClusterSlotCount;
  for (size_t length = 1; length <= SlotTag{}.chars.size() && missing > 0; ++length) {
    std::vector<size_t> digits(length, 0);  // an odometer over kAlphabet
    for (;;) {
      SlotTag tag;
      tag.size = static_cast<uint8_t>(length);
      for (size_t i = 0; i < length; ++i) tag.chars[i] = kAlphabet[digits[i]];
      SlotTag& slot_tag = tags[KeySlot(std::string_view(tag.chars.data(), length))];
      if (slot_tag.size == 0) {
        slot_tag = tag;
        if (--missing == 0) break;
      }
      size_t i = length;
      while (i > 0 && ++digits[i - 1] == kAlphabet.size()) digits[--i] = 0;
      if (i == 0) break;
    }
  }
  return tags;
}

}  // namespace

uint16_t KeySlot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return static_cast<uint16_t>(Crc16(key) & (kClusterSlotCount - 1));
}

std::string NodeAddress::ToString() const {
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<std::vector<NodeAddress>> ParseSeedNodes(std::string_view list) {
  std::vector<NodeAddress> nodes;
  size_t begin = 0;
  for (;;) {
    const size_t comma = list.find(',', begin);
    const size_t length = comma == std::string_view::npos ? comma : comma - begin;
    const std::string_view entry = ToStd(absl::StripAsciiWhitespace(ToAbsl(list.substr(begin, length))));
    if (entry.empty()) {
      if (comma == std::string_view::npos && nodes.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            ToAbsl(kSeedNodesKey), ": no nodes given (expected host:port,host:port,..., e.g. 127.0.0.1:7000)"));
      }
      return absl::InvalidArgumentError(absl::StrCat(ToAbsl(kSeedNodesKey), ": empty entry in \"", ToAbsl(list),
                                                     "\" (expected host:port,host:port,...)"));
    }
    std::optional<NodeAddress> node = ParseHostPort(entry);
    if (!node) {
      return absl::InvalidArgumentError(absl::StrCat(ToAbsl(kSeedNodesKey), ": \"", ToAbsl(entry),
                                                     "\" is not host:port with a port in 1..65535 (e.g. "
                                                     "127.0.0.1:7000; IPv6 in brackets: [::1]:7000)"));
    }
    if (std::find(nodes.begin(), nodes.end(), *node) != nodes.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(ToAbsl(kSeedNodesKey), ": \"", ToAbsl(entry), "\" is listed twice"));
    }
    nodes.push_back(*std::move(node));
    if (comma == std::string_view::npos) break;
    begin = comma + 1;
  }
  return nodes;
}

SlotMap::SlotMap() : owner_(kClusterSlotCount, -1) {}

absl::StatusOr<SlotMap> SlotMap::FromClusterSlots(const redisReply& reply, const NodeAddress& queried) {
  if (reply.type == REDIS_REPLY_ERROR) {
    return absl::FailedPreconditionError(
        absl::StrCat("CLUSTER SLOTS on ", queried.ToString(), " failed: ", ToAbsl(ReplyString(reply))));
  }
  if (reply.type != REDIS_REPLY_ARRAY) return Malformed(queried, "not an array");
  SlotMap map;
  for (size_t i = 0; i < reply.elements; ++i) {
    const redisReply& entry = *reply.element[i];
    // [start, end, [host, port, id, ...], replica..., ]
    if (entry.type != REDIS_REPLY_ARRAY || entry.elements < 3 || entry.element[0]->type != REDIS_REPLY_INTEGER ||
        entry.element[1]->type != REDIS_REPLY_INTEGER || entry.element[2]->type != REDIS_REPLY_ARRAY) {
      return Malformed(queried, absl::StrCat("entry ", i, " is not [start, end, [host, port, ...], ...]"));
    }
    const long long start = entry.element[0]->integer;
    const long long end = entry.element[1]->integer;
    if (start < 0 || end < start || end >= kClusterSlotCount) {
      return Malformed(queried, absl::StrCat("entry ", i, " has the slot range ", start, "-", end));
    }
    const redisReply& master = *entry.element[2];
    if (master.elements < 2 || master.element[1]->type != REDIS_REPLY_INTEGER ||
        (master.element[0]->type != REDIS_REPLY_STRING && master.element[0]->type != REDIS_REPLY_NIL)) {
      return Malformed(queried, absl::StrCat("entry ", i, "'s master is not [host, port, ...]"));
    }
    NodeAddress node{std::string(ReplyString(*master.element[0])), static_cast<int>(master.element[1]->integer)};
    if (node.port < 1 || node.port > 65535) {
      return Malformed(queried, absl::StrCat("entry ", i, "'s master has the port ", master.element[1]->integer));
    }
    // Redis's "I don't know my address" and "no preferred endpoint": the
    // node that answered, per the CLUSTER SLOTS documentation.
    if (node.host.empty() || node.host == "?") node.host = queried.host;
    auto it = std::find(map.masters_.begin(), map.masters_.end(), node);
    const int index = static_cast<int>(it - map.masters_.begin());
    if (it == map.masters_.end()) {
      map.masters_.push_back(std::move(node));
      map.replicas_.push_back(0);
    }
    map.replicas_[index] = std::max(map.replicas_[index], static_cast<int>(entry.elements) - 3);
    for (long long slot = start; slot <= end; ++slot) {
      if (map.owner_[slot] != -1) {
        return Malformed(queried, absl::StrCat("slot ", slot, " is served by ",
                                               map.masters_[map.owner_[slot]].ToString(), " and ",
                                               map.masters_[index].ToString()));
      }
      map.owner_[slot] = static_cast<int16_t>(index);
    }
  }
  // Order the masters by their lowest slot, whatever order the reply had.
  std::vector<uint16_t> first(map.masters_.size(), 0);
  for (int slot = kClusterSlotCount - 1; slot >= 0; --slot) {
    if (map.owner_[slot] >= 0) first[map.owner_[slot]] = static_cast<uint16_t>(slot);
  }
  std::vector<int> order(map.masters_.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return first[a] < first[b]; });
  std::vector<int16_t> new_index(order.size());
  std::vector<NodeAddress> masters;
  std::vector<int> replicas;
  for (size_t i = 0; i < order.size(); ++i) {
    new_index[order[i]] = static_cast<int16_t>(i);
    masters.push_back(std::move(map.masters_[order[i]]));
    replicas.push_back(map.replicas_[order[i]]);
    map.first_slot_.push_back(first[order[i]]);
  }
  map.masters_ = std::move(masters);
  map.replicas_ = std::move(replicas);
  for (int16_t& owner : map.owner_) {
    if (owner >= 0) owner = new_index[owner];
  }
  return map;
}

int SlotMap::MasterOf(uint16_t slot) const { return slot < kClusterSlotCount ? owner_[slot] : -1; }

bool SlotMap::CoversAllSlots() const {
  return std::none_of(owner_.begin(), owner_.end(), [](int16_t owner) { return owner < 0; });
}

uint16_t SlotMap::FirstSlotOf(int master) const { return first_slot_.at(master); }

int SlotMap::ReplicasOf(int master) const { return replicas_.at(master); }

std::string SlotMap::Describe() const {
  // A resharded cluster can split a master's slots into many ranges: the
  // line names the first few of each.
  constexpr int kRangesShown = 6;
  std::vector<std::string> ranges(masters_.size());
  std::vector<int> range_count(masters_.size(), 0);
  int unassigned = 0;
  for (int start = 0; start < kClusterSlotCount;) {
    int end = start;
    while (end + 1 < kClusterSlotCount && owner_[end + 1] == owner_[start]) ++end;
    const int owner = owner_[start];
    if (owner < 0) {
      unassigned += end - start + 1;
    } else if (++range_count[owner] <= kRangesShown) {
      absl::StrAppend(&ranges[owner], ranges[owner].empty() ? "" : " ", start);
      if (end > start) absl::StrAppend(&ranges[owner], "-", end);
    }
    start = end + 1;
  }
  std::string out = absl::StrCat(masters_.size(), masters_.size() == 1 ? " master" : " masters");
  for (size_t i = 0; i < masters_.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? ": " : ", ", masters_[i].ToString(), " ", ranges[i]);
    if (range_count[i] > kRangesShown) absl::StrAppend(&out, " and ", range_count[i] - kRangesShown, " more ranges");
  }
  if (unassigned > 0) absl::StrAppend(&out, "; ", unassigned, " slots unassigned");
  return out;
}

std::string_view TagForSlot(uint16_t slot) {
  // Computed on first use (about 250 000 CRCs, a few milliseconds); C++
  // makes the initialisation of a function-local static thread-safe.
  static const std::vector<SlotTag> tags = ComputeSlotTags();
  const SlotTag& tag = tags.at(slot);
  return std::string_view(tag.chars.data(), tag.size);
}

}  // namespace slipstream::redis
