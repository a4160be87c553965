// slipstream-bench-consumer: the throughput ceiling for bench/run_throughput.sh.
//
// A bare librdkafka consumer that does as little as a consumer can: assign
// every partition of --topic at the beginning (no group, no commits), read
// with rd_kafka_consume_batch_queue until every partition has reported EOF,
// and touch each payload (sum its bytes) so nothing can be optimised away.
// It uses the same fetch settings as the worker's KafkaSource, so the gap to
// the pipeline is the pipeline's own cost.
//
// Prints one line of key=value:
//   records=N bytes=B seconds=S records_per_s=R first_record_s=F checksum=C
// `seconds` runs from the first record received to the last EOF (connection
// set-up and metadata are excluded, as the pipeline's measurement excludes its
// start-up); first_record_s is the time from start to that first record.
#include <librdkafka/rdkafka.h>

#include "common/kafka_handles.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using slipstream::KafkaConfPtr;
using slipstream::KafkaConsumerPtr;
using slipstream::KafkaPartitionListPtr;
using slipstream::KafkaQueuePtr;
using slipstream::KafkaTopicPtr;

constexpr char kProgram[] = "slipstream-bench-consumer";

int Fail(const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", kProgram, message.c_str());
  return 1;
}

int Run(int argc, char** argv) {
  std::string bootstrap = "127.0.0.1:9092";
  std::string topic;
  int batch_size = 2000;
  double timeout_s = 600;
  CLI::App app{
      "Reads every partition of a Kafka topic from the beginning to the end with a bare "
      "librdkafka consumer and prints records, seconds and records/s: the ceiling for "
      "bench/run_throughput.sh.",
      kProgram};
  app.add_option("--bootstrap", bootstrap, "Kafka bootstrap.servers")->capture_default_str();
  app.add_option("--topic", topic, "topic to read")->required();
  app.add_option("--batch", batch_size, "records per rd_kafka_consume_batch_queue call (the worker uses 2000)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("--timeout", timeout_s, "give up after this many seconds without reaching the end")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  const Clock::time_point t_start = Clock::now();
  char err[512];
  KafkaConfPtr conf(rd_kafka_conf_new());
  // The same fetch settings as the worker's KafkaSource (worker/source/kafka_source.cc).
  const std::vector<std::pair<std::string, std::string>> settings = {
      {"bootstrap.servers", bootstrap},
      {"group.id", "slipstream-bench-consumer"},  // required by the consumer API; never joined
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "true"},
      {"auto.offset.reset", "earliest"},
      {"fetch.wait.max.ms", "100"},
      {"queued.max.messages.kbytes", "16384"},  // per partition
      {"client.id", kProgram},
  };
  for (const auto& [k, v] : settings) {
    if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      return Fail(k + ": " + err);
    }
  }
  rd_kafka_t* raw = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), err, sizeof(err));
  if (raw == nullptr) return Fail(std::string("rd_kafka_new: ") + err);
  conf.release();  // owned by the handle now
  KafkaConsumerPtr rk(raw);

  // Learn the partitions.
  KafkaTopicPtr rkt(rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr));
  if (!rkt) return Fail("rd_kafka_topic_new: " + std::string(rd_kafka_err2str(rd_kafka_last_error())));
  const rd_kafka_metadata_t* metadata = nullptr;
  if (rd_kafka_resp_err_t e = rd_kafka_metadata(rk.get(), 0, rkt.get(), &metadata, 10000);
      e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Fail("metadata for " + topic + " from " + bootstrap + ": " + rd_kafka_err2str(e));
  }
  std::vector<int32_t> partitions;
  rd_kafka_resp_err_t topic_err = RD_KAFKA_RESP_ERR_NO_ERROR;
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    topic_err = metadata->topics[i].err;
    for (int j = 0; j < metadata->topics[i].partition_cnt; ++j) {
      partitions.push_back(metadata->topics[i].partitions[j].id);
    }
  }
  rd_kafka_metadata_destroy(metadata);
  rkt.reset();
  if (topic_err != RD_KAFKA_RESP_ERR_NO_ERROR) return Fail("topic " + topic + ": " + rd_kafka_err2str(topic_err));
  if (partitions.empty()) return Fail("topic " + topic + " has no partitions");

  // Empty partitions report EOF at once, so they need no special case.
  KafkaPartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (int32_t p : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  if (rd_kafka_resp_err_t e = rd_kafka_assign(rk.get(), list.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Fail(std::string("assign: ") + rd_kafka_err2str(e));
  }
  KafkaQueuePtr queue(rd_kafka_queue_get_consumer(rk.get()));

  std::set<int32_t> pending(partitions.begin(), partitions.end());
  std::vector<rd_kafka_message_t*> batch(batch_size);
  int64_t records = 0;
  int64_t bytes = 0;
  uint64_t checksum = 0;
  Clock::time_point t_first{};
  bool have_first = false;
  const Clock::time_point deadline = t_start + std::chrono::duration_cast<Clock::duration>(
                                                   std::chrono::duration<double>(timeout_s));
  int64_t errors = 0;
  while (!pending.empty()) {
    if (Clock::now() > deadline) {
      return Fail("no EOF on " + std::to_string(pending.size()) + " partition(s) after " +
                  std::to_string(timeout_s) + " s (" + std::to_string(records) + " records read)");
    }
    const ssize_t n = rd_kafka_consume_batch_queue(queue.get(), 100, batch.data(), batch.size());
    if (n < 0) return Fail(std::string("consume: ") + rd_kafka_err2str(rd_kafka_last_error()));
    for (ssize_t i = 0; i < n; ++i) {
      rd_kafka_message_t* m = batch[i];
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        pending.erase(m->partition);
      } else if (m->err) {
        if (errors++ < 10) std::fprintf(stderr, "%s: %s\n", kProgram, rd_kafka_message_errstr(m));
      } else {
        if (!have_first) {
          t_first = Clock::now();
          have_first = true;
        }
        ++records;
        bytes += static_cast<int64_t>(m->len);
        const auto* p = static_cast<const unsigned char*>(m->payload);
        uint64_t sum = 0;
        for (size_t k = 0; k < m->len; ++k) sum += p[k];
        checksum += sum;
      }
      rd_kafka_message_destroy(m);
    }
  }
  const Clock::time_point t_end = Clock::now();
  if (!have_first) t_first = t_end;
  const double seconds = std::chrono::duration<double>(t_end - t_first).count();
  const double first_s = std::chrono::duration<double>(t_first - t_start).count();
  std::printf("records=%lld bytes=%lld seconds=%.3f records_per_s=%.0f first_record_s=%.3f checksum=%llu\n",
              static_cast<long long>(records), static_cast<long long>(bytes), seconds,
              seconds > 0 ? static_cast<double>(records) / seconds : 0.0, first_s,
              static_cast<unsigned long long>(checksum));
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
