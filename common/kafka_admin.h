// Kafka administration the job needs: how many partitions a topic has, and
// creating a topic (the dead-letter topic, the generator's input topic) when
// it does not exist. Short-lived librdkafka handles; call from any thread.
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace slipstream {

// NotFound when the topic does not exist; Unavailable when no broker answers
// within `timeout_ms`.
absl::StatusOr<int> FetchPartitionCount(const std::map<std::string, std::string>& client_properties,
                                        const std::string& topic, int timeout_ms);

// Creates `topic` with `partitions` partitions unless it exists (an existing
// topic is left as it is). replication_factor -1 uses the broker's default.
absl::Status EnsureTopic(const std::map<std::string, std::string>& client_properties, const std::string& topic,
                         int partitions, int replication_factor, int timeout_ms);

}  // namespace slipstream
