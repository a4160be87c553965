#include "worker/sink/dead_letter_producer.h"

#include "common/kafka_handles.h"

#include <atomic>
#include <initializer_list>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "spdlog/spdlog.h"

namespace slipstream {


struct DeadLetterProducer::Impl {
  KafkaClientPtr producer;
  std::string topic;
  std::atomic<int64_t> sent{0};
  std::atomic<int64_t> failures{0};

  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    if (m->err) {
      self->failures.fetch_add(1);
      spdlog::error("dead-letter topic {}: delivery failed: {}", self->topic, rd_kafka_err2str(m->err));
    }
  }

  // Enqueues one record with its headers, waiting while librdkafka's queue
  // is full (backpressure); `what` names it in the log when that fails.
  void Produce(std::string_view key, std::string_view value,
               std::initializer_list<std::pair<const char*, std::string_view>> headers, const std::string& what) {
    for (;;) {
      rd_kafka_headers_t* list = rd_kafka_headers_new(headers.size());
      for (const auto& [name, text] : headers) {
        rd_kafka_header_add(list, name, -1, text.data(), static_cast<ssize_t>(text.size()));
      }
      rd_kafka_resp_err_t e =
          rd_kafka_producev(producer.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                            RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                            RD_KAFKA_V_HEADERS(list), RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {  // the message owns `list` now
        sent.fetch_add(1);
        return;
      }
      rd_kafka_headers_destroy(list);
      if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(producer.get(), 100);  // backpressure: wait for deliveries
        continue;
      }
      failures.fetch_add(1);
      spdlog::error("dead-letter topic {}: cannot enqueue {}: {}", topic, what, rd_kafka_err2str(e));
      return;
    }
  }
};

DeadLetterProducer::DeadLetterProducer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DeadLetterProducer::~DeadLetterProducer() {
  if (absl::Status s = Flush(30000); !s.ok()) spdlog::error("dead-letter producer: {}", s.message());
}

absl::StatusOr<std::unique_ptr<DeadLetterProducer>> DeadLetterProducer::Create(
    const std::map<std::string, std::string>& client_properties, const std::string& dlq_topic) {
  auto impl = std::make_unique<Impl>();
  impl->topic = dlq_topic;
  KafkaConfPtr conf(rd_kafka_conf_new());
  char err[512];
  const std::map<std::string, std::string> defaults = {
      {"linger.ms", "20"}, {"acks", "all"}, {"enable.idempotence", "true"}, {"client.id", "slipstream-dlq"}};
  std::map<std::string, std::string> props = defaults;
  for (const auto& [k, v] : client_properties) {
    // Consumer-only settings would make the producer complain.
    if (k == "group.id" || k.rfind("enable.auto", 0) == 0 || k == "auto.offset.reset") continue;
    props[k] = v;
  }
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka.", k, ": ", err));
    }
  }
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &Impl::OnDelivery);
  rd_kafka_conf_set_opaque(conf.get(), impl.get());
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof(err));
  if (rk == nullptr) return absl::InvalidArgumentError(absl::StrCat("kafka dead-letter producer: ", err));
  conf.release();
  impl->producer.reset(rk);
  return std::unique_ptr<DeadLetterProducer>(new DeadLetterProducer(std::move(impl)));
}

void DeadLetterProducer::Send(std::string_view key, std::string_view value, std::string_view reason,
                              std::string_view source_topic, int source_partition, int64_t source_offset) {
  const std::string partition_text = absl::StrCat(source_partition);
  const std::string offset_text = absl::StrCat(source_offset);
  impl_->Produce(key, value,
                 {{"dlq.reason", reason},
                  {"dlq.source.topic", source_topic},
                  {"dlq.source.partition", partition_text},
                  {"dlq.source.offset", offset_text}},
                 absl::StrCat("the record from partition ", source_partition, " offset ", source_offset));
}

namespace {

void AppendJsonString(std::string_view text, std::string* out) {
  out->push_back('"');
  for (const char c : text) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppend(out, "\\u00", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

}  // namespace

void DeadLetterProducer::SendRejectedFeature(std::string_view redis_key, const std::vector<std::string>& fields,
                                             std::string_view redis_error) {
  std::string value = "{";
  for (size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (i > 0) value.push_back(',');
    AppendJsonString(fields[i], &value);
    value.push_back(':');
    AppendJsonString(fields[i + 1], &value);
  }
  value.push_back('}');
  const std::string reason = absl::StrCat("redis: ", ToAbsl(redis_error));
  impl_->Produce(redis_key, value, {{"dlq.reason", reason}, {"dlq.redis.key", redis_key}},
                 absl::StrCat("the feature for Redis key ", ToAbsl(redis_key)));
}

void DeadLetterProducer::Poll() { rd_kafka_poll(impl_->producer.get(), 0); }

absl::Status DeadLetterProducer::Flush(int timeout_ms) {
  rd_kafka_resp_err_t e = rd_kafka_flush(impl_->producer.get(), timeout_ms);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::DeadlineExceededError(absl::StrCat("dead-letter topic ", impl_->topic, ": ",
                                                    rd_kafka_outq_len(impl_->producer.get()),
                                                    " records not delivered: ", rd_kafka_err2str(e)));
  }
  return absl::OkStatus();
}

int64_t DeadLetterProducer::sent() const { return impl_->sent.load(); }
int64_t DeadLetterProducer::delivery_failures() const { return impl_->failures.load(); }

}  // namespace slipstream
