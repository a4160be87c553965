#include "tests/integration/kafka_client.h"

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "common/kafka_admin.h"
#include "common/kafka_handles.h"
#include "tests/integration/it_env.h"
#include "tests/integration/workload.h"

namespace slipstream::it {

namespace {
absl::StatusOr<KafkaConfPtr> MakeConf(
    const std::vector<std::pair<std::string, std::string>>& props) {
  KafkaConfPtr conf(rd_kafka_conf_new());
  char err[512];
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka ", k, "=", v, ": ", err));
    }
  }
  return conf;
}

// A producer handle: the lightest client for metadata and admin calls.
absl::StatusOr<KafkaClientPtr> NewClient(const std::string& bootstrap) {
  absl::StatusOr<KafkaConfPtr> conf = MakeConf({{"bootstrap.servers", bootstrap}});
  if (!conf.ok()) return conf.status();
  char err[512];
  rd_kafka_t* raw = rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), err, sizeof(err));
  if (raw == nullptr) return absl::InvalidArgumentError(absl::StrCat("kafka: ", err));
  conf->release();
  return KafkaClientPtr(raw);
}

absl::StatusOr<int> PartitionCount(const std::string& bootstrap, const std::string& topic) {
  return FetchPartitionCount({{"bootstrap.servers", bootstrap}}, topic, 10000);
}
}  // namespace

absl::Status CreateTopic(const std::string& bootstrap, const std::string& topic, int partitions) {
  const std::map<std::string, std::string> props = {{"bootstrap.servers", bootstrap}};
  if (absl::Status s = EnsureTopic(props, topic, partitions, -1, 30000); !s.ok()) return s;
  // Metadata propagates asynchronously; wait until the topic is visible with
  // its partitions so producers and the coordinator see the same thing.
  const int64_t deadline = SteadyNowMs() + 30000;
  for (;;) {
    absl::StatusOr<int> count = FetchPartitionCount(props, topic, 5000);
    if (count.ok() && *count == partitions) return absl::OkStatus();
    if (count.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("topic ", topic, " has ", *count, " partitions, expected ", partitions));
    }
    if (SteadyNowMs() > deadline) return count.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

absl::StatusOr<std::unique_ptr<TestProducer>> TestProducer::Create(const std::string& bootstrap) {
  absl::StatusOr<KafkaConfPtr> conf = MakeConf({
      {"bootstrap.servers", bootstrap},
      {"partitioner", "murmur2_random"},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", "5"},
      {"compression.type", "lz4"},
      {"queue.buffering.max.messages", "1000000"},
      {"client.id", "slipstream-integration-test"},
  });
  if (!conf.ok()) return conf.status();
  std::unique_ptr<TestProducer> producer(new TestProducer());
  rd_kafka_conf_set_dr_msg_cb(conf->get(), [](rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque) {
    OnDelivery(rk, m, opaque);
  });
  rd_kafka_conf_set_opaque(conf->get(), producer.get());
  char err[512];
  producer->rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), err, sizeof(err));
  if (producer->rk_ == nullptr) return absl::InvalidArgumentError(absl::StrCat("kafka producer: ", err));
  conf->release();
  return producer;
}

TestProducer::~TestProducer() {
  if (rk_) {
    rd_kafka_flush(rk_, 10000);
    rd_kafka_destroy(rk_);
  }
}

void TestProducer::OnDelivery(rd_kafka_s*, const void* message, void* opaque) {
  const auto* m = static_cast<const rd_kafka_message_t*>(message);
  auto* self = static_cast<TestProducer*>(opaque);
  const auto index = reinterpret_cast<uintptr_t>(m->_private);
  Delivery& d = self->deliveries_[index];
  d.error = m->err;
  d.partition = m->partition;
  d.offset = m->offset;
}

size_t TestProducer::Produce(const std::string& topic, const std::optional<std::string>& key,
                             const std::string& value, int32_t partition, int64_t timestamp_ms) {
  const size_t index = deliveries_.size();
  deliveries_.emplace_back();
  // Delivery callbacks run inside rd_kafka_poll/flush on this thread, so
  // `deliveries_` needs no lock.
  void* key_data = key ? const_cast<char*>(key->data()) : nullptr;
  const size_t key_size = key ? key->size() : 0;
  void* value_data = const_cast<char*>(value.data());
  const size_t value_size = value.size();
  const int32_t target = partition < 0 ? RD_KAFKA_PARTITION_UA : partition;
  void* opaque = reinterpret_cast<void*>(static_cast<uintptr_t>(index));
  for (;;) {
    const rd_kafka_resp_err_t e = rd_kafka_producev(
        rk_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(target), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key_data, key_size), RD_KAFKA_V_VALUE(value_data, value_size), RD_KAFKA_V_OPAQUE(opaque),
        RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(rk_, 50);
      continue;
    }
    deliveries_[index].error = e;
    break;
  }
  rd_kafka_poll(rk_, 0);
  return index;
}

absl::Status TestProducer::Flush(int timeout_ms) {
  if (rd_kafka_resp_err_t e = rd_kafka_flush(rk_, timeout_ms); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::DeadlineExceededError(
        absl::StrCat("kafka producer: ", rd_kafka_outq_len(rk_), " records not delivered: ", rd_kafka_err2str(e)));
  }
  for (size_t i = 0; i < deliveries_.size(); ++i) {
    if (deliveries_[i].error != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::InternalError(absl::StrCat("kafka producer: record ", i, " failed: ",
                                              rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(deliveries_[i].error))));
    }
  }
  return absl::OkStatus();
}

std::optional<std::string> ConsumedRecord::Header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return std::nullopt;
}

absl::StatusOr<std::vector<ConsumedRecord>> ReadWholeTopic(const std::string& bootstrap, const std::string& topic,
                                                           size_t min_records, int timeout_ms) {
  absl::StatusOr<int> partitions = PartitionCount(bootstrap, topic);
  if (!partitions.ok()) return partitions.status();
  absl::StatusOr<KafkaConfPtr> conf = MakeConf({
      {"bootstrap.servers", bootstrap},
      {"group.id", UniqueName("reader")},
      {"enable.auto.commit", "false"},
      {"enable.partition.eof", "true"},
      {"auto.offset.reset", "earliest"},
      {"client.id", "slipstream-integration-test-reader"},
  });
  if (!conf.ok()) return conf.status();
  char err[512];
  KafkaConsumerPtr rk(rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), err, sizeof(err)));
  if (!rk) return absl::InvalidArgumentError(absl::StrCat("kafka consumer: ", err));
  conf->release();
  KafkaPartitionListPtr list(rd_kafka_topic_partition_list_new(*partitions));
  for (int p = 0; p < *partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  if (rd_kafka_resp_err_t e = rd_kafka_assign(rk.get(), list.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(absl::StrCat("kafka assign: ", rd_kafka_err2str(e)));
  }
  std::vector<ConsumedRecord> out;
  std::vector<bool> at_end(*partitions, false);
  const int64_t deadline = SteadyNowMs() + timeout_ms;
  while (SteadyNowMs() < deadline) {
    KafkaMessagePtr m(rd_kafka_consumer_poll(rk.get(), 100));
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (m->partition >= 0 && m->partition < *partitions) at_end[m->partition] = true;
      bool all = true;
      for (bool b : at_end) all = all && b;
      if (all && out.size() >= min_records) return out;
      continue;
    }
    if (m->err) return absl::InternalError(absl::StrCat("kafka consume: ", rd_kafka_message_errstr(m.get())));
    ConsumedRecord r;
    r.partition = m->partition;
    r.offset = m->offset;
    if (m->partition >= 0 && m->partition < *partitions) at_end[m->partition] = false;
    if (m->key) r.key = std::string(static_cast<const char*>(m->key), m->key_len);
    if (m->payload) r.value = std::string(static_cast<const char*>(m->payload), m->len);
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(m.get(), &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers) {
      const char* name = nullptr;
      const void* value = nullptr;
      size_t size = 0;
      for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i) {
        r.headers.emplace_back(name, value ? std::optional<std::string>(std::string(static_cast<const char*>(value),
                                                                                    size))
                                           : std::nullopt);
      }
    }
    out.push_back(std::move(r));
  }
  return out;  // timed out: the caller compares counts and reports
}

absl::Status AddPartitions(const std::string& bootstrap, const std::string& topic, int total) {
  absl::StatusOr<KafkaClientPtr> client = NewClient(bootstrap);
  if (!client.ok()) return client.status();
  KafkaClientPtr& rk = *client;
  char err[512];
  std::unique_ptr<rd_kafka_NewPartitions_t, void (*)(rd_kafka_NewPartitions_t*)> request(
      rd_kafka_NewPartitions_new(topic.c_str(), static_cast<size_t>(total), err, sizeof(err)),
      &rd_kafka_NewPartitions_destroy);
  if (!request) return absl::InvalidArgumentError(absl::StrCat("kafka: ", err));
  KafkaQueuePtr queue(rd_kafka_queue_new(rk.get()));
  rd_kafka_NewPartitions_t* requests[] = {request.get()};
  rd_kafka_CreatePartitions(rk.get(), requests, 1, nullptr, queue.get());
  KafkaEventPtr event(rd_kafka_queue_poll(queue.get(), 30000));
  if (!event) return absl::DeadlineExceededError(absl::StrCat("kafka: adding partitions to ", topic, " timed out"));
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("kafka: adding partitions to ", topic, ": ",
                                               rd_kafka_event_error_string(event.get())));
  }
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(event.get()), &count);
  for (size_t i = 0; i < count; ++i) {
    if (rd_kafka_topic_result_error(results[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("kafka: adding partitions to ", topic, ": ",
                                                 rd_kafka_topic_result_error_string(results[i])));
    }
  }
  const int64_t deadline = SteadyNowMs() + 30000;
  for (;;) {
    absl::StatusOr<int> partitions = PartitionCount(bootstrap, topic);
    if (partitions.ok() && *partitions == total) return absl::OkStatus();
    if (SteadyNowMs() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("topic ", topic, " does not show ", total, " partitions"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

absl::StatusOr<int64_t> TopicEndOffsetSum(const std::string& bootstrap, const std::string& topic) {
  absl::StatusOr<int> partitions = PartitionCount(bootstrap, topic);
  if (!partitions.ok()) return partitions.status();
  absl::StatusOr<KafkaClientPtr> client = NewClient(bootstrap);
  if (!client.ok()) return client.status();
  KafkaClientPtr& rk = *client;
  int64_t sum = 0;
  for (int p = 0; p < *partitions; ++p) {
    int64_t low = -1, high = -1;
    if (rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &low, &high, 10000);
        e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("kafka watermark offsets of ", topic, "/", p, ": ",
                                                 rd_kafka_err2str(e)));
    }
    sum += high;
  }
  return sum;
}

absl::StatusOr<int64_t> CommittedOffsetSum(const std::string& bootstrap, const std::string& group,
                                           const std::string& topic) {
  absl::StatusOr<int> partitions = PartitionCount(bootstrap, topic);
  if (!partitions.ok()) return partitions.status();
  absl::StatusOr<KafkaConfPtr> conf = MakeConf({{"bootstrap.servers", bootstrap}, {"group.id", group}});
  if (!conf.ok()) return conf.status();
  char err[512];
  rd_kafka_t* raw = rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), err, sizeof(err));
  if (raw == nullptr) return absl::InvalidArgumentError(absl::StrCat("kafka: ", err));
  conf->release();
  std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)> rk(raw, &rd_kafka_destroy);
  std::unique_ptr<rd_kafka_topic_partition_list_t, void (*)(rd_kafka_topic_partition_list_t*)> list(
      rd_kafka_topic_partition_list_new(*partitions), &rd_kafka_topic_partition_list_destroy);
  for (int p = 0; p < *partitions; ++p) rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
  if (rd_kafka_resp_err_t e = rd_kafka_committed(rk.get(), list.get(), 10000); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("kafka committed offsets of ", group, ": ", rd_kafka_err2str(e)));
  }
  int64_t sum = 0;
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].offset >= 0) sum += list->elems[i].offset;
  }
  rd_kafka_consumer_close(rk.get());
  return sum;
}

int64_t ProduceClosingEvents(TestProducer& producer, const std::string& topic, int partitions) {
  static const std::string kUser = "__watermark__";
  const int64_t future_ms = EpochMs(9999, 12, 31, 23, 59, 59, 999);
  for (int32_t p = 0; p < partitions; ++p) {
    producer.Produce(topic, kUser, CanonicalEventJson(kUser, future_ms, EventKind::kView, 100), p);
  }
  return future_ms - 10 * kSecondMs - 1;  // forBoundedOutOfOrderness(10 s)
}

}  // namespace slipstream::it
