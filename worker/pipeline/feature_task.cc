#include "worker/pipeline/feature_task.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "common/event.h"
#include "spdlog/spdlog.h"
#include "worker/sink/dead_letter_producer.h"
#include "worker/sink/redis_sink.h"
#include "worker/source/kafka_source.h"
#include "worker/state/state_store.h"
#include "worker/time/watermark_tracker.h"
#include "worker/window/window_engine.h"
#include "worker/window/window_math.h"

namespace slipstream {

namespace {
int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

struct FeatureTask::Impl {
  FeatureTaskOptions options;
  std::unique_ptr<KafkaSource> source;
  std::unique_ptr<DeadLetterProducer> dead_letters;
  std::unique_ptr<RedisSink> sink;
  std::unique_ptr<StateStore> state;  // outlives the engine below
  std::unique_ptr<WindowEngine> engine;
  WatermarkTracker watermarks{kOutOfOrdernessMs, 0};
  EventParser parser;

  mutable std::mutex counters_mu;
  TaskCounters counters;  // guarded by counters_mu; task-thread copy below
  TaskCounters local;

  absl::Status ProcessBatch(const std::vector<struct SourceRecord>& records, int64_t now_ms,
                            std::vector<FeatureWrite>* out);
  void PublishCounters();
};

FeatureTask::FeatureTask(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FeatureTask::~FeatureTask() {
  impl_->engine.reset();  // before the state it points into
}

absl::StatusOr<std::unique_ptr<FeatureTask>> FeatureTask::Create(const FeatureTaskOptions& options,
                                                                 std::unique_ptr<KafkaSource> source,
                                                                 std::unique_ptr<DeadLetterProducer> dead_letters,
                                                                 std::unique_ptr<RedisSink> sink,
                                                                 std::unique_ptr<StateStore> state) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->source = std::move(source);
  impl->dead_letters = std::move(dead_letters);
  impl->sink = std::move(sink);
  impl->state = std::move(state);
  impl->engine = std::make_unique<WindowEngine>(impl->state.get(), options.owned_key_groups);
  impl->watermarks = WatermarkTracker(kOutOfOrdernessMs, options.idle_timeout_ms);
  const int64_t now = SteadyNowMs();
  for (int p : impl->source->partitions()) impl->watermarks.AddPartition(p, now);
  return std::unique_ptr<FeatureTask>(new FeatureTask(std::move(impl)));
}

absl::Status FeatureTask::Impl::ProcessBatch(const std::vector<SourceRecord>& records, int64_t now_ms,
                                             std::vector<FeatureWrite>* out) {
  Event event;
  for (const SourceRecord& record : records) {
    ++local.records_in;
    watermarks.OnRecord(record.partition, now_ms);
    if (absl::Status parsed = parser.Parse(record.value, &event); !parsed.ok()) {
      ++local.records_invalid;
      dead_letters->Send(record.key, record.value, ToStd(parsed.message()), source->topic(), record.partition,
                         record.offset);
      continue;
    }
    ++local.events_valid;
    // With one worker every key group is owned; the engine rejects any other
    // (an inconsistent assignment must not pass silently).
    const int key_group = KeyGroupForKey(event.user_id, options.max_parallelism);
    absl::StatusOr<bool> accepted = engine->ProcessEvent(key_group, event);
    if (!accepted.ok()) return accepted.status();
    if (!*accepted) {
      ++local.records_late;
      const std::string reason =
          absl::StrCat(ToAbsl(kReasonLate), ": event_time ", FormatIso8601Millis(event.event_time_ms),
                       " is behind the watermark ", FormatIso8601Millis(engine->watermark()),
                       " for all its windows");
      dead_letters->Send(record.key, record.value, reason, source->topic(), record.partition, record.offset);
    }
    // The watermark advances after the batch (like Flink's periodic
    // emission), so this event cannot make later ones in the batch late.
    watermarks.OnEventTime(record.partition, event.event_time_ms);
  }
  if (absl::Status s = engine->Commit(); !s.ok()) return s;
  for (int p : source->partitions()) watermarks.SetCaughtUp(p, source->CaughtUp(p));
  const int64_t watermark = watermarks.Update(now_ms);
  if (watermark > engine->watermark()) {
    if (absl::Status s = engine->AdvanceWatermark(watermark, out); !s.ok()) return s;
    if (absl::Status s = engine->Commit(); !s.ok()) return s;
  }
  local.features_emitted += static_cast<int64_t>(out->size());
  return absl::OkStatus();
}

void FeatureTask::Impl::PublishCounters() {
  const RedisSinkStats sink_stats = sink->stats();
  const WindowEngineStats engine_stats = engine->stats();
  local.redis_features_written = sink_stats.features_written;
  local.redis_errors = sink_stats.command_errors + sink_stats.connection_errors;
  local.dlq_delivery_failures = dead_letters->delivery_failures();
  local.watermark_ms = engine->watermark();
  local.sliding_windows_fired = engine_stats.sliding_windows_fired;
  local.sessions_fired = engine_stats.sessions_fired;
  local.partitions.clear();
  for (int p : source->partitions()) {
    local.partitions.push_back(PartitionSnapshot{p, source->NextOffset(p), source->HighWatermark(p),
                                                 watermarks.PartitionWatermark(p), watermarks.IsIdle(p)});
  }
  std::lock_guard lock(counters_mu);
  counters = local;
}

absl::Status FeatureTask::Run(const std::atomic<bool>& stop) {
  Impl& s = *impl_;
  std::vector<SourceRecord> records;
  std::vector<FeatureWrite> features;
  int64_t last_publish_ms = 0;
  int64_t last_report_ms = SteadyNowMs();
  int64_t last_report_records = 0;
  absl::Status result;
  while (!stop.load(std::memory_order_relaxed)) {
    if (absl::Status polled = s.source->Poll(s.options.poll_batch, s.options.poll_timeout_ms, &records);
        !polled.ok()) {
      result = polled;
      break;
    }
    const int64_t now = SteadyNowMs();
    if (absl::Status processed = s.ProcessBatch(records, now, &features); !processed.ok()) {
      result = processed;
      break;
    }
    s.sink->Write(&features);  // blocks while the sink is full
    s.dead_letters->Poll();
    if (now - last_publish_ms >= 200) {
      s.PublishCounters();
      last_publish_ms = now;
    }
    if (now - last_report_ms >= 10000) {
      const TaskCounters& c = s.local;
      spdlog::info("{} records in ({:.0f}/s), {} invalid, {} late, {} features written, watermark {}", c.records_in,
                   (c.records_in - last_report_records) * 1000.0 / (now - last_report_ms), c.records_invalid,
                   c.records_late, c.redis_features_written,
                   c.watermark_ms == INT64_MIN ? std::string("none") : FormatIso8601Millis(c.watermark_ms));
      last_report_ms = now;
      last_report_records = c.records_in;
    }
  }
  if (absl::Status flushed = s.engine->Flush(); !flushed.ok() && result.ok()) result = flushed;
  s.sink->Flush();
  if (absl::Status flushed = s.dead_letters->Flush(30000); !flushed.ok()) spdlog::error("{}", std::string(flushed.message()));
  s.PublishCounters();
  return result;
}

TaskCounters FeatureTask::counters() const {
  std::lock_guard lock(impl_->counters_mu);
  return impl_->counters;
}

}  // namespace slipstream
