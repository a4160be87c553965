#include "common/kafka_admin.h"

#include "common/kafka_handles.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"

namespace slipstream {

namespace {

// Errors librdkafka reports through its error callback (served by
// rd_kafka_poll), which a metadata request alone never shows: a refused
// SASL login or TLS handshake looks like a broker that never answers.
struct ClientErrors {
  std::string authentication;  // the first authentication failure
};

extern "C" void OnClientError(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* errors = static_cast<ClientErrors*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION && errors->authentication.empty()) errors->authentication = reason;
}

// A producer handle is the lightest client for metadata and admin calls.
// `errors` (optional) must outlive the client.
absl::StatusOr<KafkaClientPtr> NewAdminClient(const std::map<std::string, std::string>& client_properties,
                                              ClientErrors* errors = nullptr) {
  KafkaConfPtr conf(rd_kafka_conf_new());
  if (errors != nullptr) {
    rd_kafka_conf_set_error_cb(conf.get(), &OnClientError);
    rd_kafka_conf_set_opaque(conf.get(), errors);
  }
  char err[512];
  for (const auto& [k, v] : client_properties) {
    if (k == "group.id" || k.rfind("enable.auto", 0) == 0 || k == "auto.offset.reset") continue;
    if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka.", k, ": ", err));
    }
  }
  rd_kafka_conf_set(conf.get(), "allow.auto.create.topics", "false", err, sizeof(err));
  KafkaClientPtr rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof(err)));
  if (!rk) return absl::InvalidArgumentError(absl::StrCat("kafka: ", err));
  conf.release();
  return rk;
}
}  // namespace

absl::StatusOr<int> FetchPartitionCount(const std::map<std::string, std::string>& client_properties,
                                        const std::string& topic, int timeout_ms) {
  ClientErrors errors;  // declared before the client, which uses it until destroyed
  absl::StatusOr<KafkaClientPtr> rk = NewAdminClient(client_properties, &errors);
  if (!rk.ok()) return rk.status();
  KafkaTopicPtr rkt(rd_kafka_topic_new(rk->get(), topic.c_str(), nullptr));
  const rd_kafka_metadata_t* metadata = nullptr;
  // In slices, checking for a refused login between them: wrong credentials
  // are a configuration error to report at once, not a broker to wait for.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    const auto slice_start = std::chrono::steady_clock::now();
    e = rd_kafka_metadata(rk->get(), 0, rkt.get(), &metadata,
                          static_cast<int>(std::clamp<int64_t>(left.count(), 1, 1000)));
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
    // An early failure (no broker up) must not become a busy loop.
    if (std::chrono::steady_clock::now() - slice_start < std::chrono::milliseconds(50)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    rd_kafka_poll(rk->get(), 0);
    if (!errors.authentication.empty()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "kafka.security.protocol/kafka.sasl.*: the broker refused this client: ", errors.authentication));
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
  }
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    const auto bootstrap = client_properties.find("bootstrap.servers");
    return absl::UnavailableError(absl::StrCat("kafka.bootstrap.servers: no broker answered at ",
                                               bootstrap == client_properties.end() ? "?" : bootstrap->second,
                                               " within ", timeout_ms, " ms: ", rd_kafka_err2str(e)));
  }
  std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t*)> holder(metadata,
                                                                                          &rd_kafka_metadata_destroy);
  if (metadata->topic_cnt != 1) return absl::NotFoundError(absl::StrCat("topic ", topic, " not found"));
  const rd_kafka_metadata_topic_t& t = metadata->topics[0];
  if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || t.partition_cnt == 0) {
    return absl::NotFoundError(absl::StrCat("topic ", topic, " does not exist"));
  }
  if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("topic ", topic, ": ", rd_kafka_err2str(t.err)));
  }
  return t.partition_cnt;
}

absl::Status EnsureTopic(const std::map<std::string, std::string>& client_properties, const std::string& topic,
                         int partitions, int replication_factor, int timeout_ms) {
  absl::StatusOr<int> existing = FetchPartitionCount(client_properties, topic, timeout_ms);
  if (existing.ok()) return absl::OkStatus();
  if (!absl::IsNotFound(existing.status())) return existing.status();
  absl::StatusOr<KafkaClientPtr> rk = NewAdminClient(client_properties);
  if (!rk.ok()) return rk.status();
  char err[512];
  KafkaNewTopicPtr new_topic(
      rd_kafka_NewTopic_new(topic.c_str(), partitions, replication_factor, err, sizeof(err)));
  if (!new_topic) return absl::InvalidArgumentError(absl::StrCat("kafka: cannot describe topic ", topic, ": ", err));
  KafkaQueuePtr queue(rd_kafka_queue_new(rk->get()));
  rd_kafka_NewTopic_t* topics[] = {new_topic.get()};
  rd_kafka_CreateTopics(rk->get(), topics, 1, nullptr, queue.get());
  KafkaEventPtr event(rd_kafka_queue_poll(queue.get(), timeout_ms));
  if (!event) return absl::DeadlineExceededError(absl::StrCat("kafka: creating topic ", topic, " timed out"));
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("kafka: creating topic ", topic, ": ", rd_kafka_event_error_string(event.get())));
  }
  const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event.get());
  size_t count = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &count);
  for (size_t i = 0; i < count; ++i) {
    const rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      return absl::UnavailableError(absl::StrCat("kafka: creating topic ", topic, ": ", rd_kafka_err2str(e),
                                                 " ", rd_kafka_topic_result_error_string(results[i]) ? rd_kafka_topic_result_error_string(results[i]) : ""));
    }
  }
  // Creation is acknowledged by the controller before every broker's
  // metadata shows the topic; wait until it is visible so the next client
  // (a worker) does not see it missing.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    absl::StatusOr<int> visible = FetchPartitionCount(client_properties, topic, timeout_ms);
    if (visible.ok()) return absl::OkStatus();
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("kafka: topic ", topic, " created but not visible after ",
                                                      timeout_ms, " ms: ", visible.status().message()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

namespace {

absl::StatusOr<int64_t> EndOffset(rd_kafka_t* rk, const std::string& topic, int partition, int timeout_ms) {
  int64_t low = -1, high = -1;
  if (rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high, timeout_ms);
      e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("kafka: cannot read the end offset of ", topic, " partition ", partition, ": ",
                     rd_kafka_err2str(e)));
  }
  return high;
}

}  // namespace

absl::StatusOr<std::map<int, int64_t>> OffsetsForTimestamp(rd_kafka_t* rk, const std::string& topic,
                                                           const std::vector<int>& partitions, int64_t timestamp_ms,
                                                           int timeout_ms) {
  std::map<int, int64_t> out;
  if (partitions.empty()) return out;
  KafkaPartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  // offsetsForTimes takes the timestamp in the offset field.
  for (int p : partitions) rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = timestamp_ms;
  if (rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, list.get(), timeout_ms); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("kafka: offsetsForTimes(", timestamp_ms, ") on ", topic,
                                               " failed: ", rd_kafka_err2str(e)));
  }
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& tp = list->elems[i];
    if (tp.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("kafka: offsetsForTimes(", timestamp_ms, ") on ", topic,
                                                 " partition ", tp.partition, ": ", rd_kafka_err2str(tp.err)));
    }
    int64_t offset = tp.offset;
    if (offset < 0) {  // no record that late: the end of the partition
      absl::StatusOr<int64_t> end = EndOffset(rk, topic, tp.partition, timeout_ms);
      if (!end.ok()) return end.status();
      offset = *end;
    }
    out[tp.partition] = offset;
  }
  return out;
}

absl::StatusOr<std::map<int, int64_t>> FetchStoppingOffsets(
    const std::map<std::string, std::string>& client_properties, const std::string& topic, int num_partitions,
    std::optional<int64_t> stopping_timestamp_ms, int timeout_ms) {
  absl::StatusOr<KafkaClientPtr> rk = NewAdminClient(client_properties);
  if (!rk.ok()) return rk.status();
  std::vector<int> partitions;
  for (int p = 0; p < num_partitions; ++p) partitions.push_back(p);
  if (stopping_timestamp_ms) {
    return OffsetsForTimestamp(rk->get(), topic, partitions, *stopping_timestamp_ms, timeout_ms);
  }
  std::map<int, int64_t> out;
  for (int p : partitions) {
    absl::StatusOr<int64_t> end = EndOffset(rk->get(), topic, p, timeout_ms);
    if (!end.ok()) return end.status();
    out[p] = *end;
  }
  return out;
}

}  // namespace slipstream
