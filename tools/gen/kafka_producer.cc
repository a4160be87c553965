#include "tools/gen/kafka_producer.h"

#include <chrono>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"

namespace slipstream {
namespace {

void PrintLog(const rd_kafka_t*, int level, const char* facility, const char* message) {
  std::fprintf(stderr, "slipstream-gen: librdkafka %s: %s\n", facility, message);
}

}  // namespace

absl::StatusOr<std::unique_ptr<KafkaProducer>> KafkaProducer::Create(
    const std::map<std::string, std::string>& properties, bool verbose) {
  auto producer = std::make_unique<KafkaProducer>(PrivateTag{});
  RdKafkaPtr<rd_kafka_conf_t> conf(rd_kafka_conf_new());
  char errstr[512];
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka.", key, ": ", errstr));
    }
  }
  rd_kafka_conf_set_opaque(conf.get(), producer.get());
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &KafkaProducer::OnDelivery);
  rd_kafka_conf_set_error_cb(conf.get(), &KafkaProducer::OnError);
  if (verbose) {
    rd_kafka_conf_set_log_cb(conf.get(), &PrintLog);
  } else {
    // Connection failures are reported once, by us, with context.
    rd_kafka_conf_set_log_cb(conf.get(),
                             [](const rd_kafka_t*, int, const char*, const char*) {});
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof errstr);
  if (rk == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("kafka: cannot create producer: ", errstr));
  }
  conf.release();  // now owned by rk
  producer->rk_.reset(rk);
  return producer;
}

KafkaProducer::~KafkaProducer() = default;

void KafkaProducer::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  auto* self = static_cast<KafkaProducer*>(opaque);
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++self->delivered_;
    return;
  }
  if (self->failed_++ == 0) self->first_delivery_error_ = rd_kafka_err2str(msg->err);
}

void KafkaProducer::OnError(rd_kafka_t*, int err, const char* reason, void* opaque) {
  static_cast<KafkaProducer*>(opaque)->last_client_error_ = reason;
}

absl::StatusOr<int> KafkaProducer::TopicPartitions(const std::string& topic, int timeout_ms) {
  const rd_kafka_metadata_t* raw = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk_.get(), /*all_topics=*/1, nullptr, &raw,
                                              timeout_ms);
  RdKafkaPtr<const rd_kafka_metadata_t> md(raw);
  Poll(0);  // collect the error callback's reason, if any
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::string detail = rd_kafka_err2str(err);
    if (!last_client_error_.empty()) absl::StrAppend(&detail, "; last error: ", last_client_error_);
    return absl::UnavailableError(detail);
  }
  for (int i = 0; i < md->topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& t = md->topics[i];
    if (topic != t.topic) continue;
    if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) return 0;
    return t.partition_cnt;
  }
  return 0;
}

absl::Status KafkaProducer::CreateTopic(const std::string& topic, int partitions,
                                        int replication, int timeout_ms) {
  char errstr[512];
  RdKafkaPtr<rd_kafka_NewTopic_t> new_topic(
      rd_kafka_NewTopic_new(topic.c_str(), partitions, replication, errstr, sizeof errstr));
  if (!new_topic) {
    return absl::InvalidArgumentError(absl::StrCat("create topic ", topic, ": ", errstr));
  }
  RdKafkaPtr<rd_kafka_AdminOptions_t> options(
      rd_kafka_AdminOptions_new(rk_.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS));
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), timeout_ms, errstr, sizeof errstr);
  rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout_ms, errstr, sizeof errstr);
  RdKafkaPtr<rd_kafka_queue_t> queue(rd_kafka_queue_new(rk_.get()));
  rd_kafka_NewTopic_t* topics[] = {new_topic.get()};
  rd_kafka_CreateTopics(rk_.get(), topics, 1, options.get(), queue.get());

  // The result arrives on our private queue; allow some slack over the
  // request timeout for the local round trip.
  RdKafkaPtr<rd_kafka_event_t> event(rd_kafka_queue_poll(queue.get(), timeout_ms + 5000));
  if (!event) {
    return absl::DeadlineExceededError(
        absl::StrCat("create topic ", topic, ": no answer after ", timeout_ms / 1000, " s"));
  }
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("create topic ", topic, ": ",
                                               rd_kafka_event_error_string(event.get())));
  }
  const rd_kafka_CreateTopics_result_t* result =
      rd_kafka_event_CreateTopics_result(event.get());
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(result, &count);
  for (size_t i = 0; i < count; ++i) {
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      const char* msg = rd_kafka_topic_result_error_string(results[i]);
      return absl::FailedPreconditionError(absl::StrCat(
          "create topic ", topic, ": ", msg != nullptr ? msg : rd_kafka_err2str(err)));
    }
  }

  // Creation is asynchronous on the broker side: wait until metadata shows
  // every partition with a leader, otherwise the first records would wait in
  // the queue (or the watermark fan-out would see too few partitions).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    const rd_kafka_metadata_t* raw = nullptr;
    if (rd_kafka_metadata(rk_.get(), 1, nullptr, &raw, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      RdKafkaPtr<const rd_kafka_metadata_t> md(raw);
      for (int i = 0; i < md->topic_cnt; ++i) {
        const rd_kafka_metadata_topic_t& t = md->topics[i];
        if (topic != t.topic || t.err != RD_KAFKA_RESP_ERR_NO_ERROR || t.partition_cnt == 0) {
          continue;
        }
        bool all_led = true;
        for (int p = 0; p < t.partition_cnt; ++p) {
          all_led = all_led && t.partitions[p].leader >= 0 &&
                    t.partitions[p].err == RD_KAFKA_RESP_ERR_NO_ERROR;
        }
        if (all_led) return absl::OkStatus();
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "create topic ", topic, ": partitions have no leader after ", timeout_ms / 1000, " s"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

absl::Status KafkaProducer::OpenTopic(const std::string& topic) {
  topic_.reset(rd_kafka_topic_new(rk_.get(), topic.c_str(), nullptr));
  if (!topic_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kafka.topic: cannot open ", topic, ": ", rd_kafka_err2str(rd_kafka_last_error())));
  }
  return absl::OkStatus();
}

absl::Status KafkaProducer::Produce(std::string_view key, std::string_view value,
                                    int32_t partition, const std::atomic<bool>* stop) {
  while (true) {
    // librdkafka takes non-const payload pointers but only reads them with
    // RD_KAFKA_MSG_F_COPY.
    if (rd_kafka_produce(topic_.get(), partition, RD_KAFKA_MSG_F_COPY,
                         const_cast<char*>(value.data()), value.size(),
                         key.empty() ? nullptr : key.data(), key.size(),
                         nullptr) == 0) {
      return absl::OkStatus();
    }
    const rd_kafka_resp_err_t err = rd_kafka_last_error();
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      return absl::InternalError(absl::StrCat("produce: ", rd_kafka_err2str(err)));
    }
    if (stop != nullptr && stop->load(std::memory_order_relaxed)) {
      return absl::CancelledError("produce: interrupted while the queue was full");
    }
    rd_kafka_poll(rk_.get(), 10);  // let deliveries free queue space
  }
}

void KafkaProducer::Poll(int timeout_ms) { rd_kafka_poll(rk_.get(), timeout_ms); }

absl::Status KafkaProducer::Flush(int timeout_ms) {
  rd_kafka_flush(rk_.get(), timeout_ms);
  const int left = rd_kafka_outq_len(rk_.get());
  if (left > 0) {
    return absl::DeadlineExceededError(absl::StrCat(
        left, " records still undelivered after ", timeout_ms / 1000, " s",
        last_client_error_.empty() ? "" : absl::StrCat(" (last error: ", last_client_error_, ")")));
  }
  return absl::OkStatus();
}

}  // namespace slipstream
