// Kafka clients for the integration tests (librdkafka C API): a producer that
// remembers where every record landed (partition, offset), and a reader that
// returns a whole topic with keys, values and headers.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct rd_kafka_s;

namespace slipstream::it {

// Creates `topic` with `partitions` partitions (replication: broker default)
// and waits until its metadata shows them.
absl::Status CreateTopic(const std::string& bootstrap, const std::string& topic, int partitions);

struct Delivery {
  int32_t partition = -1;
  int64_t offset = -1;
  int error = -1;  // rd_kafka_resp_err_t; -1 while not yet reported
};

class TestProducer;

// The closing events of a test: one event of user "__watermark__" far in the
// future (9999-12-31T23:59:59.999Z) on each of `partitions` partitions, so
// that once the job reads them every window and session fires. Returns the
// operator watermark they lead to (that time - 10 s - 1 ms). Not flushed.
int64_t ProduceClosingEvents(TestProducer& producer, const std::string& topic, int partitions);

class TestProducer {
 public:
  // Key-hashed partitioning as the Java client (murmur2), random for null
  // keys; idempotent, acks=all, so order within a partition is kept.
  static absl::StatusOr<std::unique_ptr<TestProducer>> Create(const std::string& bootstrap);
  ~TestProducer();

  // Enqueues one record; returns its index (for delivery()). `key` nullopt
  // sends a null key; `partition` -1 lets the partitioner choose;
  // `timestamp_ms` is the record's CreateTime (0: now).
  size_t Produce(const std::string& topic, const std::optional<std::string>& key, const std::string& value,
                 int32_t partition = -1, int64_t timestamp_ms = 0);
  // Waits for every delivery report; an error if any record failed.
  absl::Status Flush(int timeout_ms);
  const Delivery& delivery(size_t index) const { return deliveries_[index]; }
  size_t produced() const { return deliveries_.size(); }

 private:
  TestProducer() = default;
  static void OnDelivery(rd_kafka_s* rk, const void* message, void* opaque);
  rd_kafka_s* rk_ = nullptr;
  std::vector<Delivery> deliveries_;
};

struct ConsumedRecord {
  int32_t partition = -1;
  int64_t offset = -1;
  std::optional<std::string> key;    // nullopt: null key
  std::optional<std::string> value;  // nullopt: null value
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;

  // The value of the first header named `name`.
  std::optional<std::string> Header(const std::string& name) const;
};

// Reads `topic` from the beginning of every partition (assign, no group
// offsets) until every partition reached its end and at least `min_records`
// were read, or until `timeout_ms`. Records come in per-partition order.
absl::StatusOr<std::vector<ConsumedRecord>> ReadWholeTopic(const std::string& bootstrap, const std::string& topic,
                                                           size_t min_records, int timeout_ms);

// Grows `topic` to `total` partitions (kafka-topics --alter --partitions)
// and waits until the broker's metadata shows them.
absl::Status AddPartitions(const std::string& bootstrap, const std::string& topic, int total);

// Sum over partitions of the log end offsets of `topic`.
absl::StatusOr<int64_t> TopicEndOffsetSum(const std::string& bootstrap, const std::string& topic);

// Sum over the topic's partitions of `group`'s committed offsets (partitions
// without one count 0).
absl::StatusOr<int64_t> CommittedOffsetSum(const std::string& bootstrap, const std::string& group,
                                           const std::string& topic);

}  // namespace slipstream::it
