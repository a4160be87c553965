// Deterministic synthetic e-commerce event generator (the core of
// slipstream-gen, replacing the original producer notebook). Record n has a
// base event time start + n * step; a valid event's time is its base minus a
// uniform jitter in [0, max_jitter], so the stream is out of order by at most
// max_jitter. A configurable fraction of records is "late" (base - late_by)
// or malformed (a varied mix of contract violations that EventParser must
// reject). Only std::mt19937_64 and hand-written distributions are used, so
// the same options give the same byte-identical sequence on every platform
// and standard library. Not thread-safe: one generator per thread.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace slipstream {

struct GeneratorOptions {
  int64_t num_users = 1000;     // user ids are prefix + "1".."num_users"
  std::string user_id_prefix;   // e.g. "u" gives "u1".."u1000"
  int64_t event_time_start_ms = 1704103200000;  // 2024-01-01T10:00:00Z
  int64_t event_time_step_ms = 100;             // base-time advance per record
  int64_t max_jitter_ms = 5000;                 // out-of-orderness bound
  double late_fraction = 0;
  int64_t late_by_ms = 2 * 3600 * 1000;
  double malformed_fraction = 0;
  double view_fraction = 0.7;  // purchase = 1 - view - cart
  double cart_fraction = 0.2;
  uint64_t seed = 42;
};

enum class RecordKind : uint8_t { kValid = 0, kLate = 1, kMalformed = 2 };

std::string_view RecordKindName(RecordKind kind);

struct GeneratedRecord {
  uint64_t sequence = 0;    // 0-based record number
  RecordKind kind = RecordKind::kValid;
  std::string key;          // user_id; empty when the record has no usable user
  std::string value;        // the Kafka record value
  int64_t base_time_ms = 0;   // start + sequence * step
  int64_t event_time_ms = 0;  // valid/late only
  // Malformed only: the dead-letter reason code EventParser should report
  // (one of the kReason* constants of common/event.h).
  std::string_view expected_reason;
};

class EventGenerator {
 public:
  // Validates the options (fractions in [0, 1] summing to <= 1, positive user
  // count, non-negative durations, no event time before the epoch).
  static absl::StatusOr<EventGenerator> Create(const GeneratorOptions& options);

  // Overwrites *out with the next record, reusing its string buffers.
  void Next(GeneratedRecord* out);

  // The base time of the next record to be generated.
  int64_t next_base_time_ms() const;
  uint64_t next_sequence() const { return sequence_; }

 private:
  explicit EventGenerator(const GeneratorOptions& options);

  uint64_t UniformBelow(uint64_t n);  // uniform in [0, n), n > 0
  double UniformUnit();               // uniform in [0, 1)

  GeneratorOptions options_;
  std::mt19937_64 rng_;
  uint64_t sequence_ = 0;
};

// Appends the contract JSON of one event to *out:
//   {"event_time": "...", "event_type": "view", "user_id": "111", "price": 29.99}
// The price is printed in its shortest round-trip form.
void AppendEventJson(int64_t event_time_ms, std::string_view event_type,
                     std::string_view user_id, double price, std::string* out);


// Chooses Kafka partitions so that no event crosses between workers: every
// key goes to a partition read by the worker that owns the key's key group,
// under the coordinator's assignment for `num_workers` workers (partition p is
// read by worker p % num_workers; worker i owns the contiguous key-group range
// KeyGroupRangeForOperatorIndex(max_parallelism, num_workers, i)). Among the
// owner's partitions a key always takes the same one (chosen by its key group),
// so each user's events stay in order in one partition, as with keyed
// partitioning. For benchmarks of the shuffle (slipstream-gen
// --partition-for-workers); the worker routes by key group either way.
class WorkerLocalPartitioner {
 public:
  // Needs 1 <= num_workers <= num_partitions (every worker reads a partition)
  // and num_workers <= max_parallelism (every worker owns a key group).
  static absl::StatusOr<WorkerLocalPartitioner> Create(int num_partitions, int num_workers,
                                                       int max_parallelism);

  // Index of the worker that owns `key`'s key group.
  int OwnerIndex(std::string_view key) const;
  // A partition p with p % num_workers == OwnerIndex(key); the same for the
  // same key.
  int PartitionFor(std::string_view key) const;
  // A key owned by the worker that reads `partition`: `base` itself if it is,
  // else base + "1", base + "2", ... (the first that is). For the flush
  // records the generator sends to every partition, so they stay local too.
  absl::StatusOr<std::string> LocalKeyFor(int partition, std::string_view base) const;

  int num_partitions() const { return num_partitions_; }
  int num_workers() const { return num_workers_; }
  int max_parallelism() const { return max_parallelism_; }

 private:
  WorkerLocalPartitioner() = default;

  int num_partitions_ = 0;
  int num_workers_ = 0;
  int max_parallelism_ = 0;
  std::vector<int> owner_of_key_group_;             // key group -> worker index
  std::vector<std::vector<int>> partitions_of_worker_;  // worker index -> its partitions
};

}  // namespace slipstream
