// Kafka administration the job needs: how many partitions a topic has, and
// creating a topic (the dead-letter topic, the generator's input topic) when
// it does not exist. Short-lived librdkafka handles; call from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

// librdkafka's client handle (rdkafka.h declares the same).
typedef struct rd_kafka_s rd_kafka_t;

namespace slipstream {

// NotFound when the topic does not exist; Unavailable when no broker answers
// within `timeout_ms`.
absl::StatusOr<int> FetchPartitionCount(const std::map<std::string, std::string>& client_properties,
                                        const std::string& topic, int timeout_ms);

// Creates `topic` with `partitions` partitions unless it exists (an existing
// topic is left as it is). replication_factor -1 uses the broker's default.
absl::Status EnsureTopic(const std::map<std::string, std::string>& client_properties, const std::string& topic,
                         int partitions, int replication_factor, int timeout_ms);

// Kafka's offsetsForTimes on the client `rk`: per partition, the first
// offset whose record timestamp is >= `timestamp_ms`, or the partition's end
// offset (high watermark) when no record is that late. Unavailable when the
// broker does not answer within `timeout_ms`.
absl::StatusOr<std::map<int, int64_t>> OffsetsForTimestamp(rd_kafka_t* rk, const std::string& topic,
                                                           const std::vector<int>& partitions, int64_t timestamp_ms,
                                                           int timeout_ms);

// A bounded job's stopping offsets for partitions 0..num_partitions-1
// (exclusive ends): the end offsets now, or OffsetsForTimestamp of
// `stopping_timestamp_ms` when set.
absl::StatusOr<std::map<int, int64_t>> FetchStoppingOffsets(
    const std::map<std::string, std::string>& client_properties, const std::string& topic, int num_partitions,
    std::optional<int64_t> stopping_timestamp_ms, int timeout_ms);

}  // namespace slipstream
