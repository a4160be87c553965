// A thin RAII wrapper over librdkafka's C producer for slipstream-gen: checks
// that a broker is reachable, looks up / creates the topic through the Admin
// API, enqueues records (keyed, default partitioner, or to an explicit
// partition), retries on a full local queue by serving delivery reports, and
// counts delivery failures through the delivery-report callback. The C API is
// used rather than the C++ one because it avoids a per-message allocation on
// the hot path. Not thread-safe: all calls (and therefore all callbacks,
// which librdkafka serves inside poll/flush) happen on the caller's thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <librdkafka/rdkafka.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipstream {

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); }
  void operator()(rd_kafka_conf_t* p) const { rd_kafka_conf_destroy(p); }
  void operator()(rd_kafka_topic_t* p) const { rd_kafka_topic_destroy(p); }
  void operator()(const rd_kafka_metadata_t* p) const { rd_kafka_metadata_destroy(p); }
  void operator()(rd_kafka_queue_t* p) const { rd_kafka_queue_destroy(p); }
  void operator()(rd_kafka_event_t* p) const { rd_kafka_event_destroy(p); }
  void operator()(rd_kafka_NewTopic_t* p) const { rd_kafka_NewTopic_destroy(p); }
  void operator()(rd_kafka_AdminOptions_t* p) const { rd_kafka_AdminOptions_destroy(p); }
};
template <typename T>
using RdKafkaPtr = std::unique_ptr<T, RdKafkaDeleter>;

class KafkaProducer {
 public:
  static constexpr int32_t kAnyPartition = RD_KAFKA_PARTITION_UA;

  // `properties` are librdkafka keys (no "kafka." prefix). A rejected property
  // is an InvalidArgument error naming it as "kafka.<key>". librdkafka's own
  // log lines are printed to stderr only when `verbose`.
  static absl::StatusOr<std::unique_ptr<KafkaProducer>> Create(
      const std::map<std::string, std::string>& properties, bool verbose);

  ~KafkaProducer();
  KafkaProducer(const KafkaProducer&) = delete;
  KafkaProducer& operator=(const KafkaProducer&) = delete;

  // Partition count of `topic`, 0 if it does not exist. Fetches metadata for
  // all topics (asking for one topic could auto-create it). Unavailable if no
  // broker answers within timeout_ms.
  absl::StatusOr<int> TopicPartitions(const std::string& topic, int timeout_ms);

  // Creates the topic; an already existing topic is not an error. Waits until
  // every partition has a leader, so producing can start right away.
  absl::Status CreateTopic(const std::string& topic, int partitions, int replication,
                           int timeout_ms);

  // Must be called once before Produce.
  absl::Status OpenTopic(const std::string& topic);

  // Enqueues one record (copied). An empty key produces a null key. On a full
  // queue, serves delivery reports and retries until `stop` becomes true
  // (then Cancelled).
  absl::Status Produce(std::string_view key, std::string_view value,
                       int32_t partition = kAnyPartition,
                       const std::atomic<bool>* stop = nullptr);

  // Serves delivery reports and errors for up to timeout_ms.
  void Poll(int timeout_ms);

  // Waits for all enqueued records; DeadlineExceeded naming how many are
  // still undelivered after timeout_ms.
  absl::Status Flush(int timeout_ms);

  int64_t delivered() const { return delivered_; }
  int64_t failed() const { return failed_; }
  const std::string& first_delivery_error() const { return first_delivery_error_; }
  // The most recent client-level error (e.g. "Connect to ... refused").
  const std::string& last_client_error() const { return last_client_error_; }

 private:
  struct PrivateTag {};  // lets Create use make_unique with a private-only ctor

 public:
  explicit KafkaProducer(PrivateTag) {}

 private:
  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque);
  static void OnError(rd_kafka_t*, int err, const char* reason, void* opaque);

  int64_t delivered_ = 0;
  int64_t failed_ = 0;
  std::string first_delivery_error_;
  std::string last_client_error_;
  // Declaration order matters: the topic handle must go before the client.
  RdKafkaPtr<rd_kafka_t> rk_;
  RdKafkaPtr<rd_kafka_topic_t> topic_;
};

}  // namespace slipstream
