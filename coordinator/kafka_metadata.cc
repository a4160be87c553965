#include "coordinator/kafka_metadata.h"

#include <librdkafka/rdkafka.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace slipstream {

namespace {
struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
struct TopicDeleter {
  void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
};
struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
}  // namespace

absl::StatusOr<int> FetchPartitionCount(const std::map<std::string, std::string>& client_properties,
                                        const std::string& topic, int timeout_ms) {
  std::unique_ptr<rd_kafka_conf_t, ConfDeleter> conf(rd_kafka_conf_new());
  char err[512];
  for (const auto& [k, v] : client_properties) {
    if (k == "group.id") continue;  // a producer handle suffices for metadata
    if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka.", k, ": ", err));
    }
  }
  rd_kafka_conf_set(conf.get(), "allow.auto.create.topics", "false", err, sizeof(err));
  std::unique_ptr<rd_kafka_t, KafkaDeleter> rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof(err)));
  if (!rk) return absl::InvalidArgumentError(absl::StrCat("kafka: ", err));
  conf.release();
  std::unique_ptr<rd_kafka_topic_t, TopicDeleter> rkt(rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr));
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_resp_err_t e = rd_kafka_metadata(rk.get(), 0, rkt.get(), &metadata, timeout_ms);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    const auto bootstrap = client_properties.find("bootstrap.servers");
    return absl::UnavailableError(absl::StrCat("kafka.bootstrap.servers: no broker answered at ",
                                               bootstrap == client_properties.end() ? "?" : bootstrap->second,
                                               " within ", timeout_ms, " ms: ", rd_kafka_err2str(e)));
  }
  std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t*)> holder(metadata,
                                                                                          &rd_kafka_metadata_destroy);
  if (metadata->topic_cnt != 1) return absl::NotFoundError(absl::StrCat("kafka.topic: topic ", topic, " not found"));
  const rd_kafka_metadata_topic_t& t = metadata->topics[0];
  if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || t.partition_cnt == 0) {
    return absl::NotFoundError(absl::StrCat("kafka.topic: topic ", topic, " does not exist"));
  }
  if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("kafka.topic: ", topic, ": ", rd_kafka_err2str(t.err)));
  }
  return t.partition_cnt;
}

}  // namespace slipstream
