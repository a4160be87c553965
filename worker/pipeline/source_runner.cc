#include "worker/pipeline/source_runner.h"

#include <chrono>
#include <iterator>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "common/clock.h"
#include "common/key_groups.h"
#include "spdlog/spdlog.h"
#include "worker/checkpoint/checkpoint_inbox.h"
#include "worker/exchange/data_plane.h"
#include "worker/exchange/record_codec.h"
#include "worker/pipeline/attempt_control.h"
#include "worker/pipeline/operator_probe.h"
#include "worker/pipeline/source_probe.h"
#include "worker/sink/dead_letter_producer.h"
#include "worker/sink/feature_sink.h"
#include "worker/source/kafka_source.h"
#include "worker/window/window_math.h"

namespace slipstream {

namespace {
std::string WatermarkText(int64_t watermark_ms) {
  return watermark_ms == kMinWatermark ? std::string("none") : FormatIso8601Millis(watermark_ms);
}

const InputSchema& InputOf(const FeatureTaskOptions& options) {
  return options.program ? options.program->definition().input : DefaultFeatureDefinition().input;
}
}  // namespace

SourceRunner::SourceRunner(const Parts& parts)
    : options_(*parts.options),
      owner_of_key_group_(*parts.owner_of_key_group),
      source_(parts.source),
      dead_letters_(parts.dead_letters),
      sink_(parts.sink),
      gate_(parts.gate),
      inbox_(parts.inbox),
      control_(parts.control),
      probe_(parts.probe),
      operator_probe_(parts.operator_probe),
      watermarks_(kOutOfOrdernessMs, options_.idle_timeout_ms),
      parser_(InputOf(options_)) {
  const int64_t now = Clock::Real().SteadyMs();
  for (int p : source_->partitions()) {
    watermarks_.AddPartition(p, now);
    if (auto r = options_.restored_partitions.find(p); r != options_.restored_partitions.end()) {
      watermarks_.RestorePartition(p, r->second.watermark_ms, r->second.idle, now);
    }
  }
  const int n = static_cast<int>(options_.workers.size());
  out_.resize(n);
  outbound_.resize(n);
  if (n == 1) return;
  for (int i = 0; i < n; ++i) {
    if (i == options_.worker_index) continue;
    v1::ChannelOpen open;
    open.set_job_id(options_.job_id);
    open.set_attempt(options_.attempt);
    open.set_sender_worker_id(options_.workers[options_.worker_index].worker_id);
    open.set_sender_index(options_.worker_index);
    outbound_[i] = std::make_unique<OutboundChannel>(options_.workers[i].worker_id, options_.workers[i].address,
                                                     std::move(open), options_.peer_security);
  }
}

SourceRunner::~SourceRunner() = default;

// Sends what is buffered for worker `index`, followed by the source's
// watermark status (and end of input when asked).
absl::Status SourceRunner::EmitTo(int index, bool end_of_input, const std::atomic<bool>& give_up,
                                  int64_t barrier_id) {
  OutBuffer& b = out_[index];
  if (b.broken) {
    return absl::UnavailableError(absl::StrCat("the data channel to worker ", options_.workers[index].worker_id,
                                               " broke earlier; nothing more is sent on it"));
  }
  std::string records = std::move(b.records);
  const int32_t count = b.count;
  b.records.clear();
  b.count = 0;
  // A send cancelled before anything left (a stop while waiting for credit)
  // keeps its records for the end of input that follows: dropping them
  // while that end of input carries the newer watermark would let the
  // receiver fire windows without them.
  auto keep_unsent = [&b, count](std::string unsent) {
    b.records = std::move(unsent);
    b.count = count;
  };
  if (index == options_.worker_index) {
    if (!gate_->AcquireCredit(give_up, &local_backpressure_ms_)) {
      keep_unsent(std::move(records));
      return absl::CancelledError("the local window operator stopped");
    }
    InboundBatch batch;
    batch.channel = index;
    batch.records = std::move(records);
    batch.record_count = count;
    batch.watermark_ms = source_watermark_;
    batch.idle = source_idle_;
    batch.end_of_input = end_of_input;
    batch.barrier_id = barrier_id;
    if (barrier_id != 0) {
      batch.offsets = barrier_offsets_;
      batch.checkpoint_dir = barrier_request_->target_dir();
    }
    absl::Status pushed = gate_->Push(std::move(batch));
    if (!pushed.ok()) {
      b.broken = true;
      return pushed;
    }
  } else {
    v1::DataBatch batch;
    batch.set_records(std::move(records));
    batch.set_record_count(count);
    batch.set_watermark_ms(source_watermark_);
    batch.set_idle(source_idle_);
    batch.set_end_of_input(end_of_input);
    batch.set_barrier_id(barrier_id);
    absl::Status sent = outbound_[index]->Send(&batch, give_up);
    if (absl::IsCancelled(sent)) {
      // Cancelled before the batch was written (connecting or waiting for
      // credit): it is still whole.
      keep_unsent(std::move(*batch.mutable_records()));
      return sent;
    }
    if (!sent.ok()) {
      b.broken = true;
      return sent;
    }
    probe_->ShuffledOut(count);
  }
  b.sent_any = true;
  b.sent_watermark = source_watermark_;
  b.sent_idle = source_idle_;
  return absl::OkStatus();
}

// The source's part of a checkpoint, between two poll batches: the offsets
// it has read up to, then barrier n after everything routed so far, on every
// channel (Flink's source barrier injection).
absl::Status SourceRunner::InjectBarrier(const v1::TriggerCheckpointRequest& request,
                                         const std::atomic<bool>& give_up) {
  barrier_offsets_.clear();
  std::vector<std::pair<int, int64_t>> to_commit;
  for (int p : source_->partitions()) {
    barrier_offsets_.push_back(
        SourcePosition{p, source_->NextOffset(p), watermarks_.PartitionWatermark(p), watermarks_.IsIdle(p)});
    to_commit.emplace_back(p, source_->NextOffset(p));
  }
  barrier_request_ = request;
  offsets_to_commit_[request.checkpoint_id()] = std::move(to_commit);
  while (offsets_to_commit_.size() > 16) offsets_to_commit_.erase(offsets_to_commit_.begin());
  for (int i = 0; i < static_cast<int>(out_.size()); ++i) {
    if (absl::Status s = EmitTo(i, false, give_up, request.checkpoint_id()); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status SourceRunner::RouteBatch(const std::vector<SourceRecord>& records, int64_t now_ms,
                                      const std::atomic<bool>& give_up) {
  Event& event = event_;
  // One record with event_time in year 9999 would move its partition's
  // watermark to the end of time and fire every open window early; with
  // source.max-event-time-skew such records are dead letters instead.
  const int64_t latest_event_ms =
      options_.max_event_time_skew_ms > 0
          ? std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                    .count() +
                options_.max_event_time_skew_ms
          : 0;
  for (const SourceRecord& record : records) {
    probe_->RecordIn();
    watermarks_.OnRecord(record.partition, now_ms);
    if (absl::Status parsed = parser_.Parse(record.value, &event); !parsed.ok()) {
      probe_->RecordInvalid();
      dead_letters_->Send(record.key, record.value, ToStd(parsed.message()), source_->topic(), record.partition,
                          record.offset);
      continue;
    }
    if (latest_event_ms != 0 && event.event_time_ms > latest_event_ms) {
      probe_->RecordInvalid();
      const std::string reason =
          absl::StrCat(ToAbsl(kReasonFutureEventTime), ": event_time ", FormatIso8601Millis(event.event_time_ms),
                       " is more than source.max-event-time-skew (", options_.max_event_time_skew_ms,
                       " ms) ahead of the clock");
      dead_letters_->Send(record.key, record.value, reason, source_->topic(), record.partition, record.offset);
      continue;
    }
    probe_->EventValid();
    const int owner = owner_of_key_group_[KeyGroupForKey(event.user_id, options_.max_parallelism)];
    OutBuffer& b = out_[owner];
    EncodeEventFields(event, &event_fields_);
    AppendShuffleRecord(ShuffleRecord{record.partition, record.offset, event.event_time_ms, event_fields_,
                                      event.user_id, record.key, record.value},
                        &b.records);
    ++b.count;
    if (b.records.size() >= options_.max_batch_bytes) {
      if (absl::Status s = EmitTo(owner, false, give_up); !s.ok()) return s;
    }
    // The watermark advances after the batch (like Flink's periodic
    // emission), so this event cannot make later ones in the batch late.
    watermarks_.OnEventTime(record.partition, event.event_time_ms);
  }
  for (int p : source_->partitions()) {
    watermarks_.SetCaughtUp(p, source_->CaughtUp(p));
    if (source_->Finished(p)) watermarks_.SetFinished(p);
  }
  source_watermark_ = watermarks_.Update(now_ms);
  source_idle_ = watermarks_.AllIdle();
  // Bounded and every partition finished (also a worker without any):
  // Flink's end of input, MAX_WATERMARK, which fires every window. It
  // follows the records on every channel, as any watermark does.
  if (source_->AllFinished()) {
    source_watermark_ = kMaxWatermark;
    source_idle_ = false;
  }
  for (int i = 0; i < static_cast<int>(out_.size()); ++i) {
    const OutBuffer& b = out_[i];
    if (b.count > 0 || !b.sent_any || b.sent_watermark != source_watermark_ || b.sent_idle != source_idle_) {
      if (absl::Status s = EmitTo(i, false, give_up); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

void SourceRunner::PublishCounters() {
  std::vector<PartitionSnapshot> partitions;
  for (int p : source_->partitions()) {
    partitions.push_back(PartitionSnapshot{p, source_->NextOffset(p), source_->HighWatermark(p),
                                           watermarks_.PartitionWatermark(p), watermarks_.IsIdle(p)});
  }
  probe_->Publish(std::move(partitions));
}

void SourceRunner::CommitCompletedOffsets() {
  if (!offsets_to_commit_.empty() && offsets_to_commit_.begin()->first <= inbox_->completed_up_to()) {
    const int64_t completed = inbox_->completed_up_to();
    auto newest = offsets_to_commit_.upper_bound(completed);
    --newest;  // the newest completed checkpoint this source took part in
    source_->CommitOffsets(newest->second);
    offsets_to_commit_.erase(offsets_to_commit_.begin(), std::next(newest));
  }
}

void SourceRunner::LogProgress(int64_t now_ms) {
  if (now_ms - last_report_ms_ < 10000) return;
  const OperatorProbe::Counts o = operator_probe_->published();
  const SourceProbe::Counts& s = probe_->local();
  spdlog::info("{} records in ({:.0f}/s), {} invalid, {} late, {} sent to peers, {} features written, "
               "watermark {}",
               s.records_in, (s.records_in - last_report_records_) * 1000.0 / (now_ms - last_report_ms_),
               s.records_invalid, o.records_late, s.records_shuffled_out, sink_->stats().features_written,
               WatermarkText(o.watermark_ms));
  last_report_ms_ = now_ms;
  last_report_records_ = s.records_in;
}

bool SourceRunner::HeldAtStopBarrier() {
  if (stopped_at_ == 0) return false;
  // Stop-with-savepoint: nothing is read or sent after its barrier (not
  // even a watermark) until the task is stopped, or the savepoint failed.
  if (!inbox_->StopFailed(stopped_at_)) {
    CommitCompletedOffsets();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return true;
  }
  spdlog::warn("stop-with-savepoint {} failed: the source resumes", stopped_at_);
  stopped_at_ = 0;
  return false;
}

bool SourceRunner::Step() {
  if (absl::Status polled = source_->Poll(options_.poll_batch, options_.poll_timeout_ms, &records_); !polled.ok()) {
    control_->Fail(polled);
    return false;
  }
  const int64_t now = Clock::Real().SteadyMs();
  if (absl::Status routed = RouteBatch(records_, now, control_->interrupt); !routed.ok()) {
    if (!control_->interrupt.load()) control_->Fail(routed);
    return false;
  }
  CommitCompletedOffsets();
  if (std::optional<v1::TriggerCheckpointRequest> trigger = inbox_->TakeTrigger()) {
    if (absl::Status injected = InjectBarrier(*trigger, control_->interrupt); !injected.ok()) {
      if (!control_->interrupt.load()) control_->Fail(injected);
      return false;
    }
    if (trigger->stop_after()) {
      stopped_at_ = trigger->checkpoint_id();
      spdlog::info("stop-with-savepoint {}: the source stopped after its barrier", stopped_at_);
    }
  }
  dead_letters_->Poll();
  if (now - last_publish_ms_ >= 200) {
    PublishCounters();
    last_publish_ms_ = now;
  }
  LogProgress(now);
  if (source_->AllFinished()) {
    // The watermark INT64_MAX went out above; end of input follows (Run).
    input_finished_ = true;
    spdlog::info("bounded input: all {} partition(s) reached their stopping offsets; sending end of input",
                 source_->partitions().size());
    return false;
  }
  return true;
}

void SourceRunner::Run(const std::atomic<bool>& stop) {
  last_report_ms_ = Clock::Real().SteadyMs();
  while (!stop.load(std::memory_order_relaxed) && !control_->cancel.load(std::memory_order_relaxed)) {
    if (HeldAtStopBarrier()) continue;
    if (!Step()) break;
  }
  if (!control_->cancel.load()) SendEndOfInput();
  PublishCounters();
}

// Graceful stop: what is buffered, then end of input on every channel.
// Peers that do not take it within the timeout are given up on (they
// stopped too, or failed).
void SourceRunner::SendEndOfInput() {
  control_->stopping.store(true);
  std::atomic<bool> give_up{false};
  std::thread watchdog([&] {
    // Bounded: every peer needs this end of input to fire its last windows;
    // a slow one is waited for (a cancel still ends the wait).
    const int64_t deadline =
        options_.bounded ? INT64_MAX : Clock::Real().SteadyMs() + options_.end_of_input_timeout_ms;
    while (!give_up.load() && Clock::Real().SteadyMs() < deadline && !control_->cancel.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    give_up.store(true);
  });
  for (int i = 0; i < static_cast<int>(out_.size()); ++i) {
    if (absl::Status s = EmitTo(i, true, give_up); !s.ok()) {
      spdlog::info("end of input to worker {} not delivered: {}", options_.workers[i].worker_id,
                   std::string(s.message()));
      // The local operator waits for its own end of input: without it,
      // it must be told to stop (the flag only: the operator still ends
      // its loop as it would on a cancel).
      if (i == options_.worker_index) control_->cancel.store(true);
    }
  }
  for (auto& channel : outbound_) {
    if (channel) (void)channel->Finish(1000);
  }
  give_up.store(true);
  watchdog.join();
}

std::vector<v1::ChannelStatus> SourceRunner::ChannelStatus() const {
  std::vector<v1::ChannelStatus> status;
  std::lock_guard lock(outbound_mu_);
  for (const auto& channel : outbound_) {
    if (channel) status.push_back(channel->Status());
  }
  return status;
}

void SourceRunner::CloseChannels() {
  std::lock_guard lock(outbound_mu_);
  outbound_.clear();
}

}  // namespace slipstream
