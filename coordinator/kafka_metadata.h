// Kafka metadata the coordinator needs to plan the job: how many partitions
// the input topic has.
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace slipstream {

// NotFound when the topic does not exist; Unavailable when no broker answers
// within `timeout_ms`.
absl::StatusOr<int> FetchPartitionCount(const std::map<std::string, std::string>& client_properties,
                                        const std::string& topic, int timeout_ms);

}  // namespace slipstream
