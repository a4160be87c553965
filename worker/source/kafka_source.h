// KafkaSource: reads the Kafka partitions assigned to this worker (explicit
// assignment by the coordinator; no consumer-group rebalancing) with
// librdkafka, in batches. It also tells whether each partition is caught up
// (position at the broker's end), which idleness detection needs.
// Used from the task thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipstream {

enum class StartingOffsets { kCommitted, kEarliest, kLatest };
absl::StatusOr<StartingOffsets> ParseStartingOffsets(std::string_view text);

struct SourceRecord {
  int partition;
  int64_t offset;
  std::string_view key;    // valid until the next Poll
  std::string_view value;  // valid until the next Poll
};

class KafkaSource {
 public:
  // `restored_offsets` (partition -> next offset, from a checkpoint) wins
  // over `starting_offsets` for the partitions it names; `earliest_partitions`
  // (discovered after the job started) start at their earliest offset; the
  // others start at `starting_timestamp_ms` (kafka.starting-timestamp: the
  // first offset whose record timestamp is >= it) when set, else at
  // `starting_offsets`, resolved to a concrete offset here (asks the broker:
  // Unavailable when it does not answer within 10 s).
  static absl::StatusOr<std::unique_ptr<KafkaSource>> Create(
      const std::map<std::string, std::string>& client_properties, const std::string& topic,
      const std::vector<int>& partitions, StartingOffsets starting_offsets,
      const std::map<int, int64_t>& restored_offsets = {}, const std::vector<int>& earliest_partitions = {},
      std::optional<int64_t> starting_timestamp_ms = std::nullopt);
  ~KafkaSource();

  // Fills `out` with up to `max_records` records, waiting at most
  // `timeout_ms` for the first. Fetching starts with the first call. Transient broker errors are logged, not
  // returned: the consumer keeps retrying, like Flink's source.
  [[nodiscard]] absl::Status Poll(int max_records, int timeout_ms, std::vector<SourceRecord>* out);

  // True when the partition's position has reached the broker's high
  // watermark as last seen (or librdkafka reported end of partition since the
  // last record).
  // Commits next offsets to the consumer group (kafka.group.id),
  // asynchronously. Recovery never reads them (it uses checkpoints); they
  // are for lag monitoring, as in Flink's commit on checkpoint completion.
  void CommitOffsets(const std::vector<std::pair<int, int64_t>>& next_offsets);

  bool CaughtUp(int partition) const;

  // Bounded input (execution.runtime-mode=BATCH): each partition ends before
  // its stopping offset (a partition missing from the map has no input).
  // Records at or after it are never returned, and a partition that reached
  // it is paused: it is finished (Flink's bounded KafkaSource split end).
  // Before the first Poll.
  void SetStoppingOffsets(std::map<int, int64_t> stopping_offsets);
  bool bounded() const;
  // The partition's next offset reached its stopping offset (or the broker
  // reported its end at or after it: offsets taken by transaction markers
  // carry no records). Always false when not bounded.
  bool Finished(int partition) const;
  // Bounded, and every partition finished (true at once without partitions).
  bool AllFinished() const;
  int64_t NextOffset(int partition) const;     // the next offset to read, from the start
  int64_t HighWatermark(int partition) const;  // -1 when unknown
  const std::string& topic() const;
  const std::vector<int>& partitions() const;

 private:
  struct Impl;
  explicit KafkaSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
