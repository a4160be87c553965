// DeadLetterProducer: sends records the job cannot use (invalid or late) to
// the dead-letter topic `kafka.dlq.topic`, unchanged (same key and value),
// with headers saying why and where they came from:
//   dlq.reason            "<code>: <detail>" (see common/event.h)
//   dlq.source.topic      the input topic
//   dlq.source.partition  decimal
//   dlq.source.offset     decimal
// Features Redis refused for good go there too (SendRejectedFeature).
// A full local queue blocks (backpressure) rather than dropping; delivery
// failures after librdkafka's own retries are logged and counted.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipstream {

class DeadLetterProducer {
 public:
  static absl::StatusOr<std::unique_ptr<DeadLetterProducer>> Create(
      const std::map<std::string, std::string>& client_properties, const std::string& dlq_topic);
  ~DeadLetterProducer();  // flushes (up to 30 s)

  void Send(std::string_view key, std::string_view value, std::string_view reason,
            std::string_view source_topic, int source_partition, int64_t source_offset);
  // A feature Redis refused for good (e.g. WRONGTYPE: another program owns
  // the key): key = the Redis key, value = the fields as a JSON object,
  // headers dlq.reason = "redis: <error>" and dlq.redis.key. Thread-safe.
  void SendRejectedFeature(std::string_view redis_key, const std::vector<std::string>& fields,
                           std::string_view redis_error);
  // Serves delivery reports; call regularly.
  void Poll();
  // Waits until every record sent so far is acknowledged (or failed).
  [[nodiscard]] absl::Status Flush(int timeout_ms);

  int64_t sent() const;
  int64_t delivery_failures() const;

 private:
  struct Impl;
  explicit DeadLetterProducer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
