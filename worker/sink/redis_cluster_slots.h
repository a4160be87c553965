// Redis Cluster's addressing, as the Redis sink needs it (issue 16): which of
// the 16384 hash slots a key lives in (KeySlot, Redis's CRC16 with its
// hash-tag rule), the seed nodes of `redis.cluster.nodes`, the slot map a
// CLUSTER SLOTS reply describes, and a short hash tag per slot so that the
// sink's per-shard bookkeeping keys (`slipstream:writers:{<tag>}`) can be
// placed on the shard that owns a given slot.
//
// Pure functions and values, no I/O and no locks: any thread may use them.
// A SlotMap is a snapshot; the sink reads a new one when a MOVED (or a lost
// master) says it is stale.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

// hiredis's reply type; its header stays in the .cc files that read replies.
struct redisReply;

namespace slipstream::redis {

inline constexpr int kClusterSlotCount = 16384;

// The hash slot of `key`, as Redis Cluster computes it (CLUSTER KEYSLOT):
// CRC16-XMODEM of the key modulo 16384, or of the hash tag only when the key
// has one (the text between the first '{' and the first '}' after it, when
// that text is not empty).
uint16_t KeySlot(std::string_view key);

// One Redis node. `host` is a name or an IP address, IPv6 without brackets.
struct NodeAddress {
  std::string host;
  int port = 0;

  // "host:port", "[v6]:port" for an IPv6 address.
  std::string ToString() const;

  friend bool operator==(const NodeAddress&, const NodeAddress&) = default;
  friend auto operator<=>(const NodeAddress&, const NodeAddress&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const NodeAddress& a) {
    return H::combine(std::move(h), a.host, a.port);
  }
};

// `redis.cluster.nodes`: "host:port,host:port,..." (spaces around entries are
// ignored; an IPv6 address goes in brackets, "[::1]:7000"). InvalidArgument,
// naming the key and the entry, when the list is empty or an entry is not
// host:port with a port in 1..65535, or appears twice.
[[nodiscard]] absl::StatusOr<std::vector<NodeAddress>> ParseSeedNodes(std::string_view list);

// Which master serves each slot, from one node's CLUSTER SLOTS reply.
class SlotMap {
 public:
  // `reply` is the CLUSTER SLOTS reply of `queried`. A master whose host is
  // empty, nil or "?" is `queried`'s host (Redis prints those when a node
  // does not know its own address or has no preferred endpoint). Slots the
  // reply does not name are unassigned. FailedPrecondition when the reply is
  // an error (e.g. the node is not in cluster mode); Internal when it is not
  // shaped like a CLUSTER SLOTS reply or names a slot twice.
  [[nodiscard]] static absl::StatusOr<SlotMap> FromClusterSlots(const redisReply& reply, const NodeAddress& queried);

  // The distinct masters that serve at least one slot, ordered by their
  // lowest slot.
  const std::vector<NodeAddress>& masters() const { return masters_; }
  // Index into masters() of the master serving `slot`; -1 when the slot is
  // unassigned (or out of range).
  int MasterOf(uint16_t slot) const;
  // True when every slot has a master (a cluster in state ok).
  bool CoversAllSlots() const;
  // The lowest slot `master` (an index into masters()) serves.
  uint16_t FirstSlotOf(int master) const;
  // How many replicas the reply lists for `master` (the most of its ranges).
  // Redis lists a replica only once it has replicated something.
  int ReplicasOf(int master) const;
  // One line for the log: "3 masters: 127.0.0.1:7000 0-5460, 127.0.0.1:7001
  // 5461-10922, 127.0.0.1:7002 10923-16383" (plus how many slots have no
  // master, when some have none).
  std::string Describe() const;

 private:
  SlotMap();

  std::vector<NodeAddress> masters_;
  std::vector<uint16_t> first_slot_;  // per master
  std::vector<int> replicas_;         // per master
  std::vector<int16_t> owner_;        // per slot: index into masters_, or -1
};

// A short tag s (letters and digits, no braces) with KeySlot(s) == slot, so
// that the key "prefix{s}" lives in `slot`. The same tag every time, in every
// process (the table is computed once, on first use). `slot` must be below
// kClusterSlotCount.
std::string_view TagForSlot(uint16_t slot);

}  // namespace slipstream::redis
