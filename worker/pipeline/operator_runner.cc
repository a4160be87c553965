#include "worker/pipeline/operator_runner.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "common/clock.h"
#include "common/event.h"
#include "common/key_groups.h"
#include "spdlog/spdlog.h"
#include "worker/checkpoint/checkpoint_inbox.h"
#include "worker/checkpoint/task_checkpointer.h"
#include "worker/exchange/data_plane.h"
#include "worker/exchange/record_codec.h"
#include "worker/pipeline/attempt_control.h"
#include "worker/pipeline/operator_probe.h"
#include "worker/sink/dead_letter_producer.h"
#include "worker/sink/feature_sink.h"
#include "worker/state/state_store.h"
#include "worker/window/window_engine.h"

namespace slipstream {

namespace {
// Features computed per AdvanceWatermark() call before they go to the sink
// (whose queue holds 100,000): bounds memory when the watermark jumps.
constexpr size_t kFeaturesPerFiringStep = 10000;
}  // namespace

OperatorRunner::OperatorRunner(Parts parts)
    : parts_(std::move(parts)),
      local_(parts_.options->worker_index),
      inputs_(static_cast<int>(parts_.options->workers.size())),
      aligner_(static_cast<int>(parts_.options->workers.size()), local_, parts_.options->exactly_once) {}

void OperatorRunner::Run() {
  while (!parts_.control->cancel.load(std::memory_order_relaxed)) {
    if (!Step()) break;
  }
  // Nothing more is taken from the inputs: wake a source waiting for credit.
  parts_.gate->Close();
}

bool OperatorRunner::Step() {
  AttemptControl& control = *parts_.control;
  // After a graceful stop, everything this worker's source read has been
  // processed once its end of input is through. Bounded input ends only
  // when every channel ended: each peer's end carries watermark INT64_MAX,
  // and the last windows fire once all have (Flink's end of input).
  if (parts_.options->bounded ? inputs_.AllEnded() : inputs_.ended(local_)) return false;
  if (finished_at_ != 0) {
    // Finished at a stop-with-savepoint barrier (batches are set aside
    // below): the task stopping after the savepoint ends the loop.
    if (control.stopping.load()) return false;
    ResumeIfStopFailed();
  }
  // A channel closing after a stop barrier loses nothing that counts.
  if (!control.stopping.load() && finished_at_ == 0 && parts_.inbound) {
    if (std::optional<std::string> broken = parts_.inbound->BrokenChannel()) {
      control.Fail(absl::UnavailableError(*broken));
      return false;
    }
  }
  InboundBatch batch;
  bool have_batch = NextBatch(&batch);
  if (have_batch && finished_at_ != 0) {
    // After a stop-with-savepoint barrier nothing is processed or fired
    // (not even an end of input, whose watermark could fire windows): a
    // restore from the savepoint repeats nothing. The rest of the loop
    // still runs (the snapshot may need it to complete).
    after_stop_barrier_.push_back(std::move(batch));
    have_batch = false;
  }
  if (have_batch && aligner_.Blocks(batch.channel)) {
    // EXACTLY_ONCE alignment: this channel is past the barrier; its records
    // belong after the snapshot. Held without returning the credit, so the
    // sender soon stops (bounded).
    aligner_.Hold(std::move(batch));
  } else if (have_batch && !Process(batch)) {
    return false;
  }
  return Housekeep(have_batch);
}

// Between batches: the engine's RocksDB writes (and the upload they may
// complete), aborted checkpoints, dead-letter deliveries, a newer attempt
// taking over Redis, the counters.
bool OperatorRunner::Housekeep(bool had_batch) {
  AttemptControl& control = *parts_.control;
  if (had_batch || parts_.engine->writes_pending()) {
    if (absl::Status s = parts_.engine->Commit(); !s.ok()) {
      control.Fail(s);
      return false;
    }
    parts_.checkpointer->MaybeStartUpload();
  }
  parts_.checkpointer->DropIfAborted();
  if (aligner_.checkpoint_id() != 0 && parts_.inbox->Aborted(aligner_.checkpoint_id())) {
    spdlog::warn("checkpoint {}: dropping the alignment (aborted)", aligner_.checkpoint_id());
    Replay(aligner_.Abort());
  }
  parts_.dead_letters->Poll();
  if (const std::optional<int64_t> by = parts_.sink->Superseded()) {
    control.Fail(absl::AbortedError(absl::StrCat("attempt ", *by, " writes to Redis now: this attempt (",
                                                 parts_.options->attempt, ") is superseded and stops")));
    return false;
  }
  const int64_t now = Clock::Real().SteadyMs();
  if (now - last_publish_ms_ >= 200) {
    PublishCounters();
    last_publish_ms_ = now;
  }
  return true;
}

// A failed savepoint resumes with what was set aside, in order.
void OperatorRunner::ResumeIfStopFailed() {
  if (!parts_.inbox->StopFailed(finished_at_)) return;
  spdlog::warn("stop-with-savepoint {} failed: the window operator resumes", finished_at_);
  finished_at_ = 0;
  for (auto it = after_stop_barrier_.rbegin(); it != after_stop_barrier_.rend(); ++it) {
    replay_.push_front(std::move(*it));
  }
  after_stop_barrier_.clear();
}

bool OperatorRunner::NextBatch(InboundBatch* batch) {
  if (!replay_.empty()) {
    *batch = std::move(replay_.front());
    replay_.pop_front();
    return true;
  }
  // While the engine owes RocksDB writes, it writes between batches and
  // must not sleep when none come.
  return parts_.gate->Pop(batch, parts_.engine->writes_pending() ? 0 : 100);
}

bool OperatorRunner::Process(const InboundBatch& batch) {
  if (!ProcessRecords(batch)) return false;
  parts_.gate->Consumed(batch.channel);
  inputs_.Update(batch.channel, batch.watermark_ms, batch.idle, batch.end_of_input);
  if (!FireWindows()) return false;
  if (batch.barrier_id != 0 || batch.end_of_input) OnBarrierOrEnd(batch);
  return true;
}

bool OperatorRunner::ProcessRecords(const InboundBatch& batch) {
  const FeatureTaskOptions& options = *parts_.options;
  WindowEngine& engine = *parts_.engine;
  Event& event = event_;
  ShuffleRecord record;
  ShuffleRecordReader reader(batch.records);
  int64_t processed = 0;
  bool fields_ok = true;
  while (reader.Next(&record)) {
    if (!DecodeEventFields(record.fields, &event)) {
      fields_ok = false;
      break;
    }
    ++processed;
    event.event_time_ms = record.event_time_ms;
    event.user_id.assign(record.user_id);
    absl::StatusOr<bool> accepted = engine.ProcessEvent(KeyGroupForKey(event.user_id, options.max_parallelism), event);
    if (!accepted.ok()) {
      parts_.control->Fail(accepted.status());
      break;
    }
    if (!*accepted) {
      parts_.probe->RecordLate();
      const std::string reason =
          absl::StrCat(ToAbsl(kReasonLate), ": event_time ", FormatIso8601Millis(event.event_time_ms),
                       " is behind the watermark ", FormatIso8601Millis(engine.watermark()), " for all its windows");
      parts_.dead_letters->Send(record.key, record.value, reason, parts_.topic, record.partition, record.offset);
    }
  }
  if (parts_.control->cancel.load()) return false;
  if (!reader.ok() || !fields_ok || processed != batch.record_count) {
    parts_.control->Fail(absl::DataLossError(absl::StrCat("a batch from worker ",
                                                          options.workers[batch.channel].worker_id,
                                                          " is malformed (", processed, " of ", batch.record_count,
                                                          " records readable)")));
    return false;
  }
  if (batch.channel != local_) parts_.probe->ShuffledIn(processed);
  return true;
}

// Fired in bounded chunks, each handed to the sink before the next is
// computed: memory stays bounded when the watermark jumps over many windows;
// no record is processed in between.
bool OperatorRunner::FireWindows() {
  WindowEngine& engine = *parts_.engine;
  const std::optional<int64_t> combined = inputs_.Combined();
  if (!combined || *combined <= engine.watermark()) return true;
  absl::Status fired;
  do {
    fired = engine.AdvanceWatermark(*combined, &features_, kFeaturesPerFiringStep);
    if (!features_.empty()) {
      parts_.probe->FeaturesEmitted(static_cast<int64_t>(features_.size()));
      parts_.sink->Write(&features_);  // blocks while the sink is full: backpressure
    }
  } while (fired.ok() && engine.firing_pending() && !parts_.control->cancel.load());
  if (!fired.ok()) {
    parts_.control->Fail(fired);
    return false;
  }
  return true;
}

// Barrier n (or the end of a channel, which will send no barrier) arrived;
// once every channel has delivered barrier n the operator's state is exactly
// the effect of every record before the barriers: snapshot it.
void OperatorRunner::OnBarrierOrEnd(const InboundBatch& batch) {
  const bool aborted = batch.barrier_id != 0 && parts_.inbox->Aborted(batch.barrier_id);
  BarrierAligner::Step step = aligner_.OnBatchProcessed(batch, aborted, Clock::Real().SteadyMs());
  if (step.superseded) parts_.checkpointer->Decline(step.superseded->checkpoint_id, step.superseded->reason);
  if (step.aligned) {
    parts_.checkpointer->Snapshot(*step.aligned);
    // A declined snapshot aborts the savepoint, which resumes the operator.
    if (parts_.inbox->IsStop(step.aligned->checkpoint_id)) finished_at_ = step.aligned->checkpoint_id;
  }
  if (step.declined) parts_.checkpointer->Decline(step.declined->checkpoint_id, step.declined->reason);
  Replay(std::move(step.released));
}

void OperatorRunner::Replay(std::deque<InboundBatch> batches) {
  for (InboundBatch& b : batches) replay_.push_back(std::move(b));
}

void OperatorRunner::PublishCounters() {
  const WindowEngineStats engine_stats = parts_.engine->stats();
  OperatorProbe::Counts counts;
  counts.watermark_ms = parts_.engine->watermark();
  counts.sliding_windows_fired = engine_stats.sliding_windows_fired;
  counts.sessions_fired = engine_stats.sessions_fired;
  counts.users = engine_stats.users;
  counts.state_bytes = static_cast<int64_t>(parts_.state->ApproximateSizeBytes());
  parts_.probe->Publish(counts);
}

}  // namespace slipstream
