// RAII owners for librdkafka C handles, shared by every Kafka client in the
// project (source, dead-letter producer, admin, generator, tests).
#pragma once

#include <librdkafka/rdkafka.h>

#include <memory>

namespace slipstream {

struct KafkaConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
struct KafkaQueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
struct KafkaMessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
struct KafkaTopicDeleter {
  void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
};
struct KafkaPartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const { rd_kafka_topic_partition_list_destroy(l); }
};
struct KafkaEventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
struct KafkaNewTopicDeleter {
  void operator()(rd_kafka_NewTopic_t* t) const { rd_kafka_NewTopic_destroy(t); }
};
// Producers and admin clients: destroy only.
struct KafkaClientDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
// Consumers: leave the group cleanly, then destroy.
struct KafkaConsumerDeleter {
  void operator()(rd_kafka_t* rk) const {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
  }
};

using KafkaConfPtr = std::unique_ptr<rd_kafka_conf_t, KafkaConfDeleter>;
using KafkaQueuePtr = std::unique_ptr<rd_kafka_queue_t, KafkaQueueDeleter>;
using KafkaMessagePtr = std::unique_ptr<rd_kafka_message_t, KafkaMessageDeleter>;
using KafkaTopicPtr = std::unique_ptr<rd_kafka_topic_t, KafkaTopicDeleter>;
using KafkaPartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, KafkaPartitionListDeleter>;
using KafkaEventPtr = std::unique_ptr<rd_kafka_event_t, KafkaEventDeleter>;
using KafkaNewTopicPtr = std::unique_ptr<rd_kafka_NewTopic_t, KafkaNewTopicDeleter>;
using KafkaClientPtr = std::unique_ptr<rd_kafka_t, KafkaClientDeleter>;
using KafkaConsumerPtr = std::unique_ptr<rd_kafka_t, KafkaConsumerDeleter>;

}  // namespace slipstream
