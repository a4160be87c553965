// Key groups: the unit of state partitioning, exactly as Flink's
// KeyGroupRangeAssignment. A key's group is
//   MathUtils.murmurHash(key.hashCode()) % maxParallelism
// where hashCode is Java's String.hashCode over UTF-16 code units, so a user
// lands in the same key group here as in the Flink job we replace. Key-group
// ranges are contiguous and inclusive, and every RocksDB key starts with its
// key group (2 bytes, big-endian) so ranges can be cut out for rescaling.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace slipstream {

// Java's String.hashCode() of the UTF-16 form of a UTF-8 string. Invalid
// UTF-8 bytes are hashed as U+FFFD, like Java's decoder.
int32_t JavaStringHashCode(std::string_view utf8);

// Flink's MathUtils.murmurHash(int): a non-negative 31-bit hash.
int32_t FlinkMurmurHash(int32_t code);

// The key group of `key` for the given max parallelism (1..32768).
int KeyGroupForKey(std::string_view key, int max_parallelism);

// An inclusive range of key groups [first, last]; empty when first > last.
struct KeyGroupRange {
  int first = 0;
  int last = -1;

  bool empty() const { return first > last; }
  int size() const { return empty() ? 0 : last - first + 1; }
  bool contains(int key_group) const { return key_group >= first && key_group <= last; }
  bool operator==(const KeyGroupRange&) const = default;
  std::string ToString() const;
};

// The worker (index) that reads Kafka partition `partition` when a job runs
// on `num_workers` workers: dealt round-robin, so worker i reads i, i+N, ...
// The coordinator assigns by it (coordinator/assignment.cc) and the
// generator's worker-local partitioning follows it (tools/gen).
inline int WorkerOfPartition(int partition, int num_workers) { return partition % num_workers; }

// Flink's computeKeyGroupRangeForOperatorIndex: the contiguous range owned by
// operator `index` of `parallelism`, given `max_parallelism` key groups.
KeyGroupRange KeyGroupRangeForOperatorIndex(int max_parallelism, int parallelism, int index);

// Big-endian 2-byte prefix used on every state key.
inline void AppendKeyGroupPrefix(int key_group, std::string* out) {
  out->push_back(static_cast<char>((key_group >> 8) & 0xff));
  out->push_back(static_cast<char>(key_group & 0xff));
}
inline int DecodeKeyGroupPrefix(std::string_view key) {
  return (static_cast<uint8_t>(key[0]) << 8) | static_cast<uint8_t>(key[1]);
}

}  // namespace slipstream
