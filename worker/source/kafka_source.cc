#include "worker/source/kafka_source.h"

#include "common/clock.h"
#include "common/kafka_admin.h"
#include "common/kafka_handles.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "spdlog/spdlog.h"

namespace slipstream {

namespace {
// The concrete next offset of each partition for `starting`: earliest =
// the log start, latest = the log end, committed = the group's committed
// offset, or the log start when the group has none (auto.offset.reset
// earliest, as before).
absl::StatusOr<std::map<int, int64_t>> ResolveStartingOffsets(rd_kafka_t* rk, const std::string& topic,
                                                              const std::vector<int>& partitions,
                                                              StartingOffsets starting, int timeout_ms) {
  std::map<int, int64_t> out;
  if (partitions.empty()) return out;
  std::map<int, int64_t> committed;
  if (starting == StartingOffsets::kCommitted) {
    KafkaPartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
    for (int p : partitions) rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
    if (rd_kafka_resp_err_t e = rd_kafka_committed(rk, list.get(), timeout_ms); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("kafka.starting-offsets=committed: cannot read the committed offsets "
                                                 "of ", topic, ": ", rd_kafka_err2str(e)));
    }
    for (int i = 0; i < list->cnt; ++i) {
      if (list->elems[i].offset >= 0) committed[list->elems[i].partition] = list->elems[i].offset;
    }
  }
  for (int p : partitions) {
    if (auto it = committed.find(p); it != committed.end()) {
      out[p] = it->second;
      continue;
    }
    int64_t low = -1, high = -1;
    if (rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &low, &high, timeout_ms);
        e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("kafka: cannot read the offsets of ", topic, " partition ", p,
                                                 " to resolve kafka.starting-offsets: ", rd_kafka_err2str(e)));
    }
    out[p] = starting == StartingOffsets::kLatest ? high : low;
  }
  return out;
}

}  // namespace

absl::StatusOr<StartingOffsets> ParseStartingOffsets(std::string_view text) {
  if (text == "committed") return StartingOffsets::kCommitted;
  if (text == "earliest") return StartingOffsets::kEarliest;
  if (text == "latest") return StartingOffsets::kLatest;
  return absl::InvalidArgumentError(
      absl::StrCat("kafka.starting-offsets: \"", ToAbsl(text), "\" must be one of committed, earliest, latest"));
}

struct KafkaSource::Impl {
  KafkaConsumerPtr consumer;
  KafkaQueuePtr queue;
  std::vector<KafkaMessagePtr> batch;
  std::vector<rd_kafka_message_t*> raw_batch;
  std::string topic;
  std::vector<int> partitions;
  struct Progress {
    int64_t next_offset = -1;
    bool at_end = false;  // end of partition reported since the last record
    int64_t end_offset = -1;  // the offset of that end-of-partition report
    int64_t stopping_offset = -1;  // bounded: the partition ends before it
    bool paused = false;           // bounded: finished, no longer fetched
  };
  std::map<int, Progress> progress;
  bool bounded = false;

  bool Finished(const Progress& p) const {
    if (!bounded) return false;
    return p.next_offset >= p.stopping_offset || (p.at_end && p.end_offset >= p.stopping_offset);
  }
  // Stops fetching the partitions that finished (their later records would
  // only be dropped).
  void PauseFinished();
  int64_t last_error_log_ms = 0;
  // Assigned (and so fetched) only at the first Poll: a restoring task
  // builds its state first, and a consumer prefetching up to 128 MiB
  // meanwhile (with the broker serving it) took a quarter of the CPU that
  // the restore, the pause of a rescale, needed.
  KafkaPartitionListPtr assignment;
};

void KafkaSource::Impl::PauseFinished() {
  if (!bounded || assignment) return;  // nothing is fetched before the first Poll assigns
  KafkaPartitionListPtr list(rd_kafka_topic_partition_list_new(1));
  for (auto& [partition, p] : progress) {
    if (p.paused || !Finished(p)) continue;
    p.paused = true;
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition);
  }
  if (list->cnt == 0) return;
  if (rd_kafka_resp_err_t e = rd_kafka_pause_partitions(consumer.get(), list.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // Harmless: records past the stopping offset are dropped anyway.
    spdlog::warn("kafka source: pausing finished partitions of {}: {}", topic, rd_kafka_err2str(e));
  }
}

KafkaSource::KafkaSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KafkaSource::~KafkaSource() {
  impl_->batch.clear();  // messages must go before the handle
  impl_->queue.reset();
}

absl::StatusOr<std::unique_ptr<KafkaSource>> KafkaSource::Create(
    const std::map<std::string, std::string>& client_properties, const std::string& topic,
    const std::vector<int>& partitions, StartingOffsets starting_offsets,
    const std::map<int, int64_t>& restored_offsets, const std::vector<int>& earliest_partitions,
    std::optional<int64_t> starting_timestamp_ms) {
  KafkaConfPtr conf(rd_kafka_conf_new());
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) -> absl::Status {
    if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka.", k, ": ", err));
    }
    return absl::OkStatus();
  };
  // Our defaults first; user pass-through properties override them.
  const std::map<std::string, std::string> defaults = {
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "true"},
      {"auto.offset.reset", starting_offsets == StartingOffsets::kLatest ? "latest" : "earliest"},
      {"fetch.wait.max.ms", "100"},
      // librdkafka 2.0 pauses fetching for a fixed second once its prefetch
      // queue (one queue for all assigned partitions) holds this much; it
      // must hold more than a second of consumption or the task starves.
      // 1M records / 128 MiB doubled catch-up throughput (bench/HISTORY.md).
      {"queued.min.messages", "1000000"},
      {"queued.max.messages.kbytes", "131072"},
      {"client.id", "slipstream-worker"},
  };
  for (const auto& [k, v] : defaults) {
    if (!client_properties.count(k)) {
      if (absl::Status s = set(k, v); !s.ok()) return s;
    }
  }
  for (const auto& [k, v] : client_properties) {
    if (absl::Status s = set(k, v); !s.ok()) return s;
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), err, sizeof(err));
  if (rk == nullptr) return absl::InvalidArgumentError(absl::StrCat("kafka consumer: ", err));
  conf.release();  // owned by rk now

  auto impl = std::make_unique<Impl>();
  impl->consumer.reset(rk);
  impl->topic = topic;
  impl->partitions = partitions;

  KafkaPartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  std::vector<int> to_resolve;
  std::vector<int> from_earliest;
  for (int p : partitions) {
    auto restored = restored_offsets.find(p);
    // A checkpoint's next offset; -1 (a checkpoint of an older version that
    // had read nothing there) is resolved like a new partition.
    const bool from_checkpoint = restored != restored_offsets.end() && restored->second >= 0;
    impl->progress[p] = {};
    if (from_checkpoint) {
      impl->progress[p].next_offset = restored->second;
    } else if (std::find(earliest_partitions.begin(), earliest_partitions.end(), p) != earliest_partitions.end()) {
      from_earliest.push_back(p);
    } else {
      to_resolve.push_back(p);
    }
  }
  // kafka.starting-offsets names a position that moves (latest, committed)
  // or may (earliest, after retention): it is resolved to a concrete offset
  // now, when the partition is first assigned, so that a checkpoint taken
  // before anything arrived stores that offset and a restore resumes there
  // instead of skipping to the end again.
  absl::StatusOr<std::map<int, int64_t>> resolved =
      starting_timestamp_ms
          ? OffsetsForTimestamp(rk, topic, to_resolve, *starting_timestamp_ms, /*timeout_ms=*/10000)
          : ResolveStartingOffsets(rk, topic, to_resolve, starting_offsets, /*timeout_ms=*/10000);
  if (!resolved.ok() && starting_timestamp_ms) {
    return absl::UnavailableError(absl::StrCat("kafka.starting-timestamp: ", resolved.status().message()));
  }
  if (!resolved.ok()) return resolved.status();
  for (const auto& [p, offset] : *resolved) impl->progress[p].next_offset = offset;
  absl::StatusOr<std::map<int, int64_t>> earliest =
      ResolveStartingOffsets(rk, topic, from_earliest, StartingOffsets::kEarliest, /*timeout_ms=*/10000);
  if (!earliest.ok()) return earliest.status();
  for (const auto& [p, offset] : *earliest) impl->progress[p].next_offset = offset;
  for (int p : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = impl->progress[p].next_offset;
  }
  impl->assignment = std::move(list);
  impl->queue.reset(rd_kafka_queue_get_consumer(rk));
  return std::unique_ptr<KafkaSource>(new KafkaSource(std::move(impl)));
}

absl::Status KafkaSource::Poll(int max_records, int timeout_ms, std::vector<SourceRecord>* out) {
  out->clear();
  if (impl_->assignment) {
    if (rd_kafka_resp_err_t e = rd_kafka_assign(impl_->consumer.get(), impl_->assignment.get());
        e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::InternalError(
          absl::StrCat("kafka: cannot assign partitions of ", impl_->topic, ": ", rd_kafka_err2str(e)));
    }
    impl_->assignment.reset();
    impl_->PauseFinished();
  }
  impl_->batch.clear();
  impl_->raw_batch.resize(max_records);
  const ssize_t n = rd_kafka_consume_batch_queue(impl_->queue.get(), timeout_ms, impl_->raw_batch.data(), max_records);
  if (n < 0) return absl::InternalError(absl::StrCat("kafka: consume failed: ", rd_kafka_err2str(rd_kafka_last_error())));
  for (ssize_t i = 0; i < n; ++i) {
    rd_kafka_message_t* m = impl_->raw_batch[i];
    impl_->batch.emplace_back(m);
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      auto it = impl_->progress.find(m->partition);
      if (it != impl_->progress.end()) {
        it->second.at_end = true;
        it->second.end_offset = m->offset;
      }
      continue;
    }
    if (m->err) {
      const int64_t now = Clock::Real().SteadyMs();
      if (now - impl_->last_error_log_ms > 5000) {
        impl_->last_error_log_ms = now;
        spdlog::warn("kafka source: {} (partition {}): {}", impl_->topic, m->partition, rd_kafka_message_errstr(m));
      }
      continue;
    }
    Impl::Progress& p = impl_->progress[m->partition];
    // Bounded: the records at and after the stopping offset belong to no
    // run of this job (fetched before the partition was paused).
    if (impl_->bounded && m->offset >= p.stopping_offset) continue;
    p.next_offset = m->offset + 1;
    p.at_end = false;
    out->push_back(SourceRecord{
        m->partition, m->offset,
        std::string_view(static_cast<const char*>(m->key), m->key ? m->key_len : 0),
        std::string_view(static_cast<const char*>(m->payload), m->payload ? m->len : 0)});
  }
  impl_->PauseFinished();
  return absl::OkStatus();
}

void KafkaSource::SetStoppingOffsets(std::map<int, int64_t> stopping_offsets) {
  impl_->bounded = true;
  for (auto& [partition, p] : impl_->progress) {
    auto it = stopping_offsets.find(partition);
    // No stopping offset: no input (0 is never after the next offset).
    p.stopping_offset = it == stopping_offsets.end() ? 0 : it->second;
  }
}

bool KafkaSource::bounded() const { return impl_->bounded; }

bool KafkaSource::Finished(int partition) const {
  auto it = impl_->progress.find(partition);
  return it != impl_->progress.end() && impl_->Finished(it->second);
}

bool KafkaSource::AllFinished() const {
  if (!impl_->bounded) return false;
  for (const auto& [partition, p] : impl_->progress) {
    if (!impl_->Finished(p)) return false;
  }
  return true;
}

int64_t KafkaSource::HighWatermark(int partition) const {
  int64_t low = -1, high = -1;
  if (rd_kafka_get_watermark_offsets(impl_->consumer.get(), impl_->topic.c_str(), partition, &low, &high) !=
          RD_KAFKA_RESP_ERR_NO_ERROR ||
      high < 0) {
    return -1;
  }
  return high;
}

int64_t KafkaSource::NextOffset(int partition) const {
  auto it = impl_->progress.find(partition);
  return it == impl_->progress.end() ? -1 : it->second.next_offset;
}

bool KafkaSource::CaughtUp(int partition) const {
  auto it = impl_->progress.find(partition);
  if (it == impl_->progress.end()) return false;
  if (it->second.at_end) return true;
  const int64_t high = HighWatermark(partition);
  return high >= 0 && it->second.next_offset >= high;
}

const std::string& KafkaSource::topic() const { return impl_->topic; }
const std::vector<int>& KafkaSource::partitions() const { return impl_->partitions; }

void KafkaSource::CommitOffsets(const std::vector<std::pair<int, int64_t>>& next_offsets) {
  KafkaPartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(next_offsets.size())));
  for (const auto& [partition, offset] : next_offsets) {
    if (offset < 0) continue;  // nothing read yet
    rd_kafka_topic_partition_list_add(list.get(), impl_->topic.c_str(), partition)->offset = offset;
  }
  if (list->cnt == 0) return;
  if (rd_kafka_resp_err_t e = rd_kafka_commit(impl_->consumer.get(), list.get(), /*async=*/1);
      e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("kafka: committing offsets of {} failed: {}", impl_->topic, rd_kafka_err2str(e));
  }
}

}  // namespace slipstream
