#include "worker/pipeline/feature_task.h"

#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "common/clock.h"
#include "common/event.h"
#include "spdlog/spdlog.h"
#include "worker/exchange/data_plane.h"
#include "worker/exchange/input_gate.h"
#include "worker/exchange/record_codec.h"
#include "worker/sink/dead_letter_producer.h"
#include "worker/sink/redis_sink.h"
#include "worker/source/kafka_source.h"
#include "worker/state/state_store.h"
#include "worker/time/input_watermarks.h"
#include "worker/time/watermark_tracker.h"
#include "worker/window/window_engine.h"
#include "worker/window/window_math.h"

namespace slipstream {

namespace {
// Features computed per AdvanceWatermark() call before they go to the sink
// (whose queue holds 100,000): bounds memory when the watermark jumps.
constexpr size_t kFeaturesPerFiringStep = 10000;


std::string WatermarkText(int64_t watermark_ms) {
  return watermark_ms == kMinWatermark ? std::string("none") : FormatIso8601Millis(watermark_ms);
}
// Checkpoint requests from the coordinator (TaskControl calls on gRPC
// threads) for the source thread to pick up at its next poll boundary.
class CheckpointInbox final : public TaskControlHandler {
 public:
  CheckpointInbox(std::string job_id, int64_t attempt) : job_id_(std::move(job_id)), attempt_(attempt) {}

  absl::Status TriggerCheckpoint(const v1::TriggerCheckpointRequest& request) override {
    if (request.job_id() != job_id_ || request.attempt() != attempt_) {
      return absl::FailedPreconditionError(absl::StrCat("this worker runs attempt ", attempt_, " of job ", job_id_,
                                                        ", not attempt ", request.attempt(), " of ",
                                                        request.job_id()));
    }
    std::lock_guard lock(mu_);
    pending_.push_back(request);
    if (request.stop_after()) stop_id_.store(request.checkpoint_id());
    const int64_t id = request.checkpoint_id();
    int64_t current = latest_trigger_.load();
    while (id > current && !latest_trigger_.compare_exchange_weak(current, id)) {
    }
    return absl::OkStatus();
  }
  // Checkpoint `id` is a stop-with-savepoint: nothing may follow its barrier.
  bool IsStop(int64_t id) const { return id != 0 && stop_id_.load() == id; }
  // A task stopped at stop barrier `id` resumes when that savepoint failed:
  // aborted, or a newer checkpoint was triggered (the abort was lost).
  bool StopFailed(int64_t id) const { return Aborted(id) || latest_trigger_.load() > id; }
  void CheckpointComplete(const v1::CheckpointNotification& n) override {
    int64_t current = completed_up_to_.load();
    while (n.checkpoint_id() > current && !completed_up_to_.compare_exchange_weak(current, n.checkpoint_id())) {
    }
  }
  int64_t completed_up_to() const { return completed_up_to_.load(); }
  void AbortCheckpoint(const v1::CheckpointNotification& n) override {
    int64_t current = aborted_up_to_.load();
    while (n.checkpoint_id() > current && !aborted_up_to_.compare_exchange_weak(current, n.checkpoint_id())) {
    }
    spdlog::warn("checkpoint {} aborted by the coordinator: {}", n.checkpoint_id(), n.reason());
  }

  std::optional<v1::TriggerCheckpointRequest> TakeTrigger() {
    std::lock_guard lock(mu_);
    if (pending_.empty()) return std::nullopt;
    v1::TriggerCheckpointRequest r = std::move(pending_.front());
    pending_.pop_front();
    return r;
  }
  bool Aborted(int64_t checkpoint_id) const { return checkpoint_id <= aborted_up_to_.load(); }

 private:
  const std::string job_id_;
  const int64_t attempt_;
  std::mutex mu_;
  std::deque<v1::TriggerCheckpointRequest> pending_;
  std::atomic<int64_t> aborted_up_to_{0};
  std::atomic<int64_t> completed_up_to_{0};
  std::atomic<int64_t> stop_id_{0};
  std::atomic<int64_t> latest_trigger_{0};
};

}  // namespace

struct FeatureTask::Impl {
  FeatureTaskOptions options;
  std::unique_ptr<KafkaSource> source;
  std::unique_ptr<DeadLetterProducer> dead_letters;  // thread-safe: used by both threads
  std::unique_ptr<RedisSink> sink;
  std::unique_ptr<StateStore> state;  // outlives the engine below
  std::unique_ptr<WindowEngine> engine;
  DataPlaneServer* data_plane = nullptr;

  // Exchange.
  std::vector<int> owner_of_key_group;  // key group -> worker index
  std::unique_ptr<InputGate> gate;
  std::shared_ptr<InboundEndpoint> inbound;
  std::vector<std::unique_ptr<OutboundChannel>> outbound;  // by worker index; null for this worker
  std::mutex outbound_mu;  // guards clearing `outbound` against counters()

  // Attempt control, shared by both threads.
  std::atomic<bool> cancel{false};    // stop now: the attempt failed
  std::atomic<bool> stopping{false};  // graceful stop in progress
  // Set on a stop request or a failure: wakes a source blocked on credit or
  // on connecting to a peer.
  std::atomic<bool> interrupt{false};
  std::mutex failure_mu;
  absl::Status failure;  // first failure

  // Source thread state.
  WatermarkTracker watermarks{kOutOfOrdernessMs, 0};
  EventParser parser;
  struct OutBuffer {
    std::string records;
    int32_t count = 0;
    bool sent_any = false;
    int64_t sent_watermark = kMinWatermark;
    bool sent_idle = false;
    // A send failed after records may have left: nothing more goes on this
    // channel (not even end of input, whose watermark would cover the lost
    // records); the receiver sees the stream break and fails its attempt.
    bool broken = false;
  };
  std::vector<OutBuffer> out;
  int64_t source_watermark = kMinWatermark;
  bool source_idle = false;
  int64_t local_backpressure_ms = 0;

  // Checkpoints.
  std::shared_ptr<CheckpointInbox> inbox;
  struct Alignment {
    int64_t id = 0;  // 0: none in progress
    int64_t started_ms = 0;
    std::vector<bool> barrier_seen;
    int seen = 0;
    std::string checkpoint_dir;  // from the local barrier
    std::vector<SourcePosition> offsets;
    std::vector<std::deque<InboundBatch>> held;  // channels past the barrier (EXACTLY_ONCE)
  };
  Alignment alignment;
  std::deque<InboundBatch> replay;  // held batches to process after a snapshot
  // A checkpoint whose synchronous part is done while the engine still
  // writes its state to RocksDB; then uploaded by `uploader`.
  struct PendingCheckpoint {
    v1::AcknowledgeCheckpointRequest ack;
    std::filesystem::path target;  // the state file in checkpoint storage
    uint64_t sink_mark = 0;
    int64_t begun_ms = 0;
  };
  std::optional<PendingCheckpoint> pending_checkpoint;
  std::thread uploader;  // the asynchronous part of the last checkpoint
  std::atomic<int64_t> checkpoints_acknowledged{0};
  std::atomic<int64_t> checkpoints_declined{0};
  std::atomic<int64_t> last_alignment_ms{0};
  std::atomic<int64_t> last_sync_ms{0};
  // Source side: what the coordinator asked for, with the request.
  std::optional<v1::TriggerCheckpointRequest> barrier_request;  // being emitted
  std::vector<SourcePosition> barrier_offsets;
  // Offsets of barriers whose checkpoint may still complete: committed to
  // the consumer group when it does (lag monitoring only).
  std::map<int64_t, std::vector<std::pair<int, int64_t>>> offsets_to_commit;
  // Stop-with-savepoint (TriggerCheckpointRequest.stop_after): the barrier
  // the source stopped after (source thread) and the one the operator
  // finished at (operator thread); 0: running. Both resume if it fails.
  int64_t source_stopped_at = 0;
  int64_t operator_finished_at = 0;
  std::deque<InboundBatch> after_stop_barrier;  // taken while finished, never processed unless resumed

  mutable std::mutex counters_mu;
  TaskCounters counters;  // guarded by counters_mu
  TaskCounters source_local;
  TaskCounters operator_local;

  void Fail(const absl::Status& status) {
    {
      std::lock_guard lock(failure_mu);
      if (failure.ok()) failure = status;
    }
    cancel.store(true);
    interrupt.store(true);
    if (gate) gate->Close();
    if (sink) sink->DropQueued();  // as Cancel(): the next attempt replays it
  }

  absl::Status FirstFailure() {
    std::lock_guard lock(failure_mu);
    return failure;
  }

  bool local_only() const { return options.workers.size() == 1; }

  // --- source thread ----------------------------------------------------
  absl::Status EmitTo(int index, bool end_of_input, const std::atomic<bool>& give_up, int64_t barrier_id = 0);
  absl::Status InjectBarrier(const v1::TriggerCheckpointRequest& request, const std::atomic<bool>& give_up);
  absl::Status RouteBatch(const std::vector<SourceRecord>& records, int64_t now_ms, const std::atomic<bool>& give_up);
  void SourceLoop(const std::atomic<bool>& stop);
  void PublishSourceCounters();

  // --- operator thread ----------------------------------------------------
  void OperatorLoop();
  // Handles a barrier that arrived on `channel`; snapshots once aligned.
  void OnBarrier(int channel, const InboundBatch& batch, const InputWatermarks& inputs);
  void Snapshot();
  // Starts the asynchronous part once the engine's snapshot is complete.
  void MaybeStartUpload();
  void Decline(int64_t checkpoint_id, const std::string& reason);
  void ReleaseHeld();
  void PublishOperatorCounters();
};

TaskState::TaskState(std::unique_ptr<StateStore> store, std::unique_ptr<WindowEngine> engine)
    : store_(std::move(store)), engine_(std::move(engine)) {}
TaskState::TaskState(TaskState&&) noexcept = default;
TaskState& TaskState::operator=(TaskState&&) noexcept = default;
TaskState::~TaskState() {
  engine_.reset();
  store_.reset();
}

FeatureTask::FeatureTask(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::unique_ptr<TaskState> FeatureTask::TakeState() {
  return std::make_unique<TaskState>(std::move(impl_->state), std::move(impl_->engine));
}
FeatureTask::~FeatureTask() {
  if (impl_->data_plane) {
    impl_->data_plane->SetTaskControl(nullptr);
    impl_->data_plane->Detach();
  }
  if (impl_->uploader.joinable()) impl_->uploader.join();
  // Parts released one by one, timed: a rescale waits for all of it.
  std::string timings;
  auto timed = [&timings](const char* what, auto&& release) {
    const auto begin = std::chrono::steady_clock::now();
    release();
    absl::StrAppend(&timings, timings.empty() ? "" : ", ", what, " ",
                    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - begin)
                        .count(),
                    " ms");
  };
  if (impl_->engine != nullptr) timed("engine", [&] { impl_->engine.reset(); });  // before the state it points into
  if (impl_->state != nullptr) timed("state", [&] { impl_->state.reset(); });
  timed("sink", [&] { impl_->sink.reset(); });
  timed("dead letters", [&] { impl_->dead_letters.reset(); });
  timed("source", [&] { impl_->source.reset(); });
  spdlog::info("task closed: {}", timings);
}

absl::StatusOr<std::unique_ptr<FeatureTask>> FeatureTask::Create(const FeatureTaskOptions& options,
                                                                 std::unique_ptr<KafkaSource> source,
                                                                 std::unique_ptr<DeadLetterProducer> dead_letters,
                                                                 std::unique_ptr<RedisSink> sink,
                                                                 std::unique_ptr<StateStore> state,
                                                                 DataPlaneServer* data_plane) {
  const int n = static_cast<int>(options.workers.size());
  if (n == 0 || options.worker_index < 0 || options.worker_index >= n) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker index ", options.worker_index, " is not among the attempt's ", n, " workers"));
  }
  if (n > 1 && data_plane == nullptr) return absl::InvalidArgumentError("several workers need a data plane");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  // Every key group must have exactly one owner, or events would be lost or
  // counted twice.
  impl->owner_of_key_group.assign(options.max_parallelism, -1);
  for (int i = 0; i < n; ++i) {
    const KeyGroupRange& r = options.workers[i].key_groups;
    for (int kg = r.first; kg <= r.last; ++kg) {
      if (kg < 0 || kg >= options.max_parallelism) {
        return absl::InvalidArgumentError(absl::StrCat("worker ", options.workers[i].worker_id, " owns key group ",
                                                       kg, " outside 0..", options.max_parallelism - 1));
      }
      if (impl->owner_of_key_group[kg] != -1) {
        return absl::InvalidArgumentError(absl::StrCat("key group ", kg, " is owned by two workers"));
      }
      impl->owner_of_key_group[kg] = i;
    }
  }
  for (int kg = 0; kg < options.max_parallelism; ++kg) {
    if (impl->owner_of_key_group[kg] == -1) {
      return absl::InvalidArgumentError(absl::StrCat("key group ", kg, " has no owner in the assignment"));
    }
  }
  impl->source = std::move(source);
  impl->dead_letters = std::move(dead_letters);
  impl->sink = std::move(sink);
  impl->state = std::move(state);
  impl->data_plane = data_plane;
  impl->engine =
      std::make_unique<WindowEngine>(impl->state.get(), options.workers[options.worker_index].key_groups);
  if (options.restore_state) {
    const auto begin = std::chrono::steady_clock::now();
    if (absl::Status restored = impl->engine->Restore(); !restored.ok()) return restored;
    const WindowEngineStats stats = impl->engine->stats();
    spdlog::info("restored {} users and {} timers of key groups {} in {} ms", stats.users, stats.timers,
                 options.workers[options.worker_index].key_groups.ToString(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - begin)
                     .count());
  }
  if (options.restored_operator_watermark) {
    impl->engine->RestoreWatermark(*options.restored_operator_watermark);
    spdlog::info("restored the operator watermark {}", WatermarkText(impl->engine->watermark()));
  }
  impl->watermarks = WatermarkTracker(kOutOfOrdernessMs, options.idle_timeout_ms);
  const int64_t now = Clock::Real().SteadyMs();
  for (int p : impl->source->partitions()) {
    impl->watermarks.AddPartition(p, now);
    if (auto r = options.restored_partitions.find(p); r != options.restored_partitions.end()) {
      impl->watermarks.RestorePartition(p, r->second.watermark_ms, r->second.idle, now);
    }
  }
  impl->out.resize(n);
  impl->gate = std::make_unique<InputGate>(n, options.worker_index, options.credits_per_channel);
  impl->inbox = std::make_shared<CheckpointInbox>(options.job_id, options.attempt);
  if (data_plane != nullptr) data_plane->SetTaskControl(impl->inbox);
  impl->outbound.resize(n);
  if (n > 1) {
    std::vector<std::string> ids;
    for (const TaskPeer& p : options.workers) ids.push_back(p.worker_id);
    impl->inbound = std::make_shared<InboundEndpoint>(options.job_id, options.attempt, ids, options.worker_index,
                                                      impl->gate.get());
    for (int i = 0; i < n; ++i) {
      if (i == options.worker_index) continue;
      v1::ChannelOpen open;
      open.set_job_id(options.job_id);
      open.set_attempt(options.attempt);
      open.set_sender_worker_id(options.workers[options.worker_index].worker_id);
      open.set_sender_index(options.worker_index);
      impl->outbound[i] = std::make_unique<OutboundChannel>(options.workers[i].worker_id, options.workers[i].address,
                                                            std::move(open), options.peer_security);
    }
    data_plane->Attach(impl->inbound);
  }
  return std::unique_ptr<FeatureTask>(new FeatureTask(std::move(impl)));
}

// Sends what is buffered for worker `index`, followed by the source's
// watermark status (and end of input when asked).
absl::Status FeatureTask::Impl::EmitTo(int index, bool end_of_input, const std::atomic<bool>& give_up,
                                       int64_t barrier_id) {
  OutBuffer& b = out[index];
  if (b.broken) {
    return absl::UnavailableError(absl::StrCat("the data channel to worker ", options.workers[index].worker_id,
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
  if (index == options.worker_index) {
    if (!gate->AcquireCredit(give_up, &local_backpressure_ms)) {
      keep_unsent(std::move(records));
      return absl::CancelledError("the local window operator stopped");
    }
    InboundBatch batch;
    batch.channel = index;
    batch.records = std::move(records);
    batch.record_count = count;
    batch.watermark_ms = source_watermark;
    batch.idle = source_idle;
    batch.end_of_input = end_of_input;
    batch.barrier_id = barrier_id;
    if (barrier_id != 0) {
      batch.offsets = barrier_offsets;
      batch.checkpoint_dir = barrier_request->target_dir();
    }
    absl::Status pushed = gate->Push(std::move(batch));
    if (!pushed.ok()) {
      b.broken = true;
      return pushed;
    }
  } else {
    v1::DataBatch batch;
    batch.set_records(std::move(records));
    batch.set_record_count(count);
    batch.set_watermark_ms(source_watermark);
    batch.set_idle(source_idle);
    batch.set_end_of_input(end_of_input);
    batch.set_barrier_id(barrier_id);
    absl::Status sent = outbound[index]->Send(&batch, give_up);
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
    source_local.records_shuffled_out += count;
  }
  b.sent_any = true;
  b.sent_watermark = source_watermark;
  b.sent_idle = source_idle;
  return absl::OkStatus();
}

// The source's part of a checkpoint, between two poll batches: the offsets
// it has read up to, then barrier n after everything routed so far, on every
// channel (Flink's source barrier injection).
absl::Status FeatureTask::Impl::InjectBarrier(const v1::TriggerCheckpointRequest& request,
                                              const std::atomic<bool>& give_up) {
  barrier_offsets.clear();
  std::vector<std::pair<int, int64_t>> to_commit;
  for (int p : source->partitions()) {
    barrier_offsets.push_back(
        SourcePosition{p, source->NextOffset(p), watermarks.PartitionWatermark(p), watermarks.IsIdle(p)});
    to_commit.emplace_back(p, source->NextOffset(p));
  }
  barrier_request = request;
  offsets_to_commit[request.checkpoint_id()] = std::move(to_commit);
  while (offsets_to_commit.size() > 16) offsets_to_commit.erase(offsets_to_commit.begin());
  for (int i = 0; i < static_cast<int>(out.size()); ++i) {
    if (absl::Status s = EmitTo(i, false, give_up, request.checkpoint_id()); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status FeatureTask::Impl::RouteBatch(const std::vector<SourceRecord>& records, int64_t now_ms,
                                           const std::atomic<bool>& give_up) {
  Event event;
  // One record with event_time in year 9999 would move its partition's
  // watermark to the end of time and fire every open window early; with
  // source.max-event-time-skew such records are dead letters instead.
  const int64_t latest_event_ms =
      options.max_event_time_skew_ms > 0
          ? std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                    .count() +
                options.max_event_time_skew_ms
          : 0;
  for (const SourceRecord& record : records) {
    ++source_local.records_in;
    watermarks.OnRecord(record.partition, now_ms);
    if (absl::Status parsed = parser.Parse(record.value, &event); !parsed.ok()) {
      ++source_local.records_invalid;
      dead_letters->Send(record.key, record.value, ToStd(parsed.message()), source->topic(), record.partition,
                         record.offset);
      continue;
    }
    if (latest_event_ms != 0 && event.event_time_ms > latest_event_ms) {
      ++source_local.records_invalid;
      const std::string reason =
          absl::StrCat(ToAbsl(kReasonFutureEventTime), ": event_time ", FormatIso8601Millis(event.event_time_ms),
                       " is more than source.max-event-time-skew (", options.max_event_time_skew_ms,
                       " ms) ahead of the clock");
      dead_letters->Send(record.key, record.value, reason, source->topic(), record.partition, record.offset);
      continue;
    }
    ++source_local.events_valid;
    const int owner = owner_of_key_group[KeyGroupForKey(event.user_id, options.max_parallelism)];
    OutBuffer& b = out[owner];
    AppendShuffleRecord(ShuffleRecord{record.partition, record.offset, event.event_time_ms, event.type, event.price,
                                      event.user_id, record.key, record.value},
                        &b.records);
    ++b.count;
    if (b.records.size() >= options.max_batch_bytes) {
      if (absl::Status s = EmitTo(owner, false, give_up); !s.ok()) return s;
    }
    // The watermark advances after the batch (like Flink's periodic
    // emission), so this event cannot make later ones in the batch late.
    watermarks.OnEventTime(record.partition, event.event_time_ms);
  }
  for (int p : source->partitions()) watermarks.SetCaughtUp(p, source->CaughtUp(p));
  source_watermark = watermarks.Update(now_ms);
  source_idle = watermarks.AllIdle();
  for (int i = 0; i < static_cast<int>(out.size()); ++i) {
    const OutBuffer& b = out[i];
    if (b.count > 0 || !b.sent_any || b.sent_watermark != source_watermark || b.sent_idle != source_idle) {
      if (absl::Status s = EmitTo(i, false, give_up); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

void FeatureTask::Impl::PublishSourceCounters() {
  source_local.partitions.clear();
  for (int p : source->partitions()) {
    source_local.partitions.push_back(PartitionSnapshot{p, source->NextOffset(p), source->HighWatermark(p),
                                                        watermarks.PartitionWatermark(p), watermarks.IsIdle(p)});
  }
  std::lock_guard lock(counters_mu);
  counters.records_in = source_local.records_in;
  counters.events_valid = source_local.events_valid;
  counters.records_invalid = source_local.records_invalid;
  counters.records_shuffled_out = source_local.records_shuffled_out;
  counters.partitions = source_local.partitions;
}

void FeatureTask::Impl::SourceLoop(const std::atomic<bool>& stop) {
  std::vector<SourceRecord> records;
  int64_t last_publish_ms = 0;
  int64_t last_report_ms = Clock::Real().SteadyMs();
  int64_t last_report_records = 0;
  auto commit_completed_offsets = [&] {
    if (!offsets_to_commit.empty() && offsets_to_commit.begin()->first <= inbox->completed_up_to()) {
      const int64_t completed = inbox->completed_up_to();
      auto newest = offsets_to_commit.upper_bound(completed);
      --newest;  // the newest completed checkpoint this source took part in
      source->CommitOffsets(newest->second);
      offsets_to_commit.erase(offsets_to_commit.begin(), std::next(newest));
    }
  };
  while (!stop.load(std::memory_order_relaxed) && !cancel.load(std::memory_order_relaxed)) {
    if (source_stopped_at != 0) {
      // Stop-with-savepoint: nothing is read or sent after its barrier (not
      // even a watermark) until the task is stopped, or the savepoint failed.
      if (!inbox->StopFailed(source_stopped_at)) {
        commit_completed_offsets();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      spdlog::warn("stop-with-savepoint {} failed: the source resumes", source_stopped_at);
      source_stopped_at = 0;
    }
    if (absl::Status polled = source->Poll(options.poll_batch, options.poll_timeout_ms, &records); !polled.ok()) {
      Fail(polled);
      break;
    }
    const int64_t now = Clock::Real().SteadyMs();
    if (absl::Status routed = RouteBatch(records, now, interrupt); !routed.ok()) {
      if (!interrupt.load()) Fail(routed);
      break;
    }
    commit_completed_offsets();
    if (std::optional<v1::TriggerCheckpointRequest> trigger = inbox->TakeTrigger()) {
      if (absl::Status injected = InjectBarrier(*trigger, interrupt); !injected.ok()) {
        if (!interrupt.load()) Fail(injected);
        break;
      }
      if (trigger->stop_after()) {
        source_stopped_at = trigger->checkpoint_id();
        spdlog::info("stop-with-savepoint {}: the source stopped after its barrier", source_stopped_at);
      }
    }
    dead_letters->Poll();
    if (now - last_publish_ms >= 200) {
      PublishSourceCounters();
      last_publish_ms = now;
    }
    if (now - last_report_ms >= 10000) {
      const TaskCounters c = [&] {
        std::lock_guard lock(counters_mu);
        return counters;
      }();
      spdlog::info("{} records in ({:.0f}/s), {} invalid, {} late, {} sent to peers, {} features written, "
                   "watermark {}",
                   source_local.records_in, (source_local.records_in - last_report_records) * 1000.0 / (now - last_report_ms),
                   source_local.records_invalid, c.records_late, source_local.records_shuffled_out,
                   sink->stats().features_written, WatermarkText(c.watermark_ms));
      last_report_ms = now;
      last_report_records = source_local.records_in;
    }
  }
  if (!cancel.load()) {
    // Graceful stop: what is buffered, then end of input on every channel.
    // Peers that do not take it within the timeout are given up on (they
    // stopped too, or failed).
    stopping.store(true);
    std::atomic<bool> give_up{false};
    std::thread watchdog([&] {
      const int64_t deadline = Clock::Real().SteadyMs() + options.end_of_input_timeout_ms;
      while (!give_up.load() && Clock::Real().SteadyMs() < deadline && !cancel.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      give_up.store(true);
    });
    for (int i = 0; i < static_cast<int>(out.size()); ++i) {
      if (absl::Status s = EmitTo(i, true, give_up); !s.ok()) {
        spdlog::info("end of input to worker {} not delivered: {}", options.workers[i].worker_id,
                     std::string(s.message()));
        // The local operator waits for its own end of input: without it,
        // it must be told to stop.
        if (i == options.worker_index) cancel.store(true);
      }
    }
    for (auto& channel : outbound) {
      if (channel) (void)channel->Finish(1000);
    }
    give_up.store(true);
    watchdog.join();
  }
  PublishSourceCounters();
}

void FeatureTask::Impl::PublishOperatorCounters() {
  const WindowEngineStats engine_stats = engine->stats();
  operator_local.watermark_ms = engine->watermark();
  operator_local.sliding_windows_fired = engine_stats.sliding_windows_fired;
  operator_local.sessions_fired = engine_stats.sessions_fired;
  operator_local.users = engine_stats.users;
  operator_local.state_bytes = static_cast<int64_t>(state->ApproximateSizeBytes());
  // Sink totals, channels and gate bytes are read live by counters().
  std::lock_guard lock(counters_mu);
  counters.records_late = operator_local.records_late;
  counters.features_emitted = operator_local.features_emitted;
  counters.watermark_ms = operator_local.watermark_ms;
  counters.sliding_windows_fired = operator_local.sliding_windows_fired;
  counters.sessions_fired = operator_local.sessions_fired;
  counters.records_shuffled_in = operator_local.records_shuffled_in;
  counters.users = operator_local.users;
  counters.state_bytes = operator_local.state_bytes;
}

void FeatureTask::Impl::OperatorLoop() {
  InputWatermarks inputs(static_cast<int>(options.workers.size()));
  const int local = options.worker_index;
  std::vector<FeatureWrite> features;
  Event event;
  ShuffleRecord record;
  InboundBatch batch;
  int64_t last_publish_ms = 0;
  const std::string& topic = source->topic();
  while (!cancel.load(std::memory_order_relaxed)) {
    // After a graceful stop, everything this worker's source read has been
    // processed once its end of input is through.
    if (inputs.ended(local)) break;
    if (operator_finished_at != 0) {
      // Finished at a stop-with-savepoint barrier (batches are set aside
      // below): the task stopping after the savepoint ends the loop; a
      // failed savepoint resumes with what was set aside, in order.
      if (stopping.load()) break;
      if (inbox->StopFailed(operator_finished_at)) {
        spdlog::warn("stop-with-savepoint {} failed: the window operator resumes", operator_finished_at);
        operator_finished_at = 0;
        for (auto it = after_stop_barrier.rbegin(); it != after_stop_barrier.rend(); ++it) {
          replay.push_front(std::move(*it));
        }
        after_stop_barrier.clear();
      }
    }
    // A channel closing after a stop barrier loses nothing that counts.
    if (!stopping.load() && operator_finished_at == 0 && inbound) {
      if (std::optional<std::string> broken = inbound->BrokenChannel()) {
        Fail(absl::UnavailableError(*broken));
        break;
      }
    }
    bool have_batch = false;
    if (!replay.empty()) {
      batch = std::move(replay.front());
      replay.pop_front();
      have_batch = true;
    } else {
      // While the engine owes RocksDB writes, it writes between batches and
      // must not sleep when none come.
      have_batch = gate->Pop(&batch, engine->writes_pending() ? 0 : 100);
    }

    if (have_batch && operator_finished_at != 0) {
      // After a stop-with-savepoint barrier nothing is processed or fired
      // (not even an end of input, whose watermark could fire windows): a
      // restore from the savepoint repeats nothing. The rest of the loop
      // still runs (the snapshot may need it to complete).
      after_stop_barrier.push_back(std::move(batch));
      have_batch = false;
    }
    if (have_batch && alignment.id != 0 && options.exactly_once && alignment.barrier_seen[batch.channel]) {
      // EXACTLY_ONCE alignment: this channel is past the barrier; its records
      // belong after the snapshot. Held without returning the credit, so the
      // sender soon stops (bounded).
      alignment.held[batch.channel].push_back(std::move(batch));
    } else if (have_batch) {
      ShuffleRecordReader reader(batch.records);
      int64_t processed = 0;
      while (reader.Next(&record)) {
        ++processed;
        event.event_time_ms = record.event_time_ms;
        event.type = record.type;
        event.price = record.price;
        event.user_id.assign(record.user_id);
        absl::StatusOr<bool> accepted =
            engine->ProcessEvent(KeyGroupForKey(event.user_id, options.max_parallelism), event);
        if (!accepted.ok()) {
          Fail(accepted.status());
          break;
        }
        if (!*accepted) {
          ++operator_local.records_late;
          const std::string reason =
              absl::StrCat(ToAbsl(kReasonLate), ": event_time ", FormatIso8601Millis(event.event_time_ms),
                           " is behind the watermark ", FormatIso8601Millis(engine->watermark()),
                           " for all its windows");
          dead_letters->Send(record.key, record.value, reason, topic, record.partition, record.offset);
        }
      }
      if (cancel.load()) break;
      if (!reader.ok() || processed != batch.record_count) {
        Fail(absl::DataLossError(absl::StrCat("a batch from worker ", options.workers[batch.channel].worker_id,
                                              " is malformed (", processed, " of ", batch.record_count,
                                              " records readable)")));
        break;
      }
      if (batch.channel != local) operator_local.records_shuffled_in += processed;
      gate->Consumed(batch.channel);
      inputs.Update(batch.channel, batch.watermark_ms, batch.idle, batch.end_of_input);
      if (const std::optional<int64_t> combined = inputs.Combined(); combined && *combined > engine->watermark()) {
        // Fired in bounded chunks, each handed to the sink before the next
        // is computed: memory stays bounded when the watermark jumps over
        // many windows; no record is processed in between.
        absl::Status fired;
        do {
          fired = engine->AdvanceWatermark(*combined, &features, kFeaturesPerFiringStep);
          if (!features.empty()) {
            operator_local.features_emitted += static_cast<int64_t>(features.size());
            sink->Write(&features);  // blocks while the sink is full: backpressure
          }
        } while (fired.ok() && engine->firing_pending() && !cancel.load());
        if (!fired.ok()) {
          Fail(fired);
          break;
        }
      }
      if (batch.barrier_id != 0 || (batch.end_of_input && alignment.id != 0)) OnBarrier(batch.channel, batch, inputs);
    }
    if (have_batch || engine->writes_pending()) {
      if (absl::Status s = engine->Commit(); !s.ok()) {
        Fail(s);
        break;
      }
      MaybeStartUpload();
    }
    if (pending_checkpoint && inbox->Aborted(pending_checkpoint->ack.checkpoint_id())) pending_checkpoint.reset();
    if (alignment.id != 0 && inbox->Aborted(alignment.id)) {
      spdlog::warn("checkpoint {}: dropping the alignment (aborted)", alignment.id);
      ReleaseHeld();
    }
    dead_letters->Poll();
    if (const std::optional<int64_t> by = sink->Superseded()) {
      Fail(absl::AbortedError(absl::StrCat("attempt ", *by, " writes to Redis now: this attempt (", options.attempt,
                                           ") is superseded and stops")));
      break;
    }
    const int64_t now = Clock::Real().SteadyMs();
    if (now - last_publish_ms >= 200) {
      PublishOperatorCounters();
      last_publish_ms = now;
    }
  }
  // Nothing more is taken from the inputs: wake a source waiting for credit.
  gate->Close();
}

void FeatureTask::Impl::ReleaseHeld() {
  for (std::deque<InboundBatch>& held : alignment.held) {
    for (InboundBatch& b : held) replay.push_back(std::move(b));
  }
  alignment = Alignment{};
}

void FeatureTask::Impl::Decline(int64_t checkpoint_id, const std::string& reason) {
  ++checkpoints_declined;
  spdlog::warn("checkpoint {} declined: {}", checkpoint_id, reason);
  if (!options.decline) return;
  v1::DeclineCheckpointRequest request;
  request.set_worker_id(options.workers[options.worker_index].worker_id);
  request.set_job_id(options.job_id);
  request.set_attempt(options.attempt);
  request.set_checkpoint_id(checkpoint_id);
  request.set_reason(reason);
  options.decline(request);
}

// Barrier n (or the end of a channel, which will send no barrier) arrived;
// once every channel has delivered barrier n the operator's state is exactly
// the effect of every record before the barriers: snapshot it.
void FeatureTask::Impl::OnBarrier(int channel, const InboundBatch& batch, const InputWatermarks& inputs) {
  const int64_t id = batch.barrier_id;
  if (id != 0) {
    if (inbox->Aborted(id) || (alignment.id != 0 && id < alignment.id)) return;  // stale
    if (alignment.id != 0 && id > alignment.id) {
      // A newer barrier overtook an alignment that never completed.
      Decline(alignment.id, absl::StrCat("superseded by checkpoint ", id));
      ReleaseHeld();
    }
    if (alignment.id == 0) {
      const int n = static_cast<int>(options.workers.size());
      alignment.id = id;
      alignment.started_ms = Clock::Real().SteadyMs();
      alignment.barrier_seen.assign(n, false);
      alignment.held.resize(n);
    }
    if (!alignment.barrier_seen[channel]) {
      alignment.barrier_seen[channel] = true;
      ++alignment.seen;
    }
    if (channel == options.worker_index) {
      alignment.offsets = batch.offsets;
      alignment.checkpoint_dir = batch.checkpoint_dir;
    }
  }
  if (alignment.id == 0) return;
  for (size_t c = 0; c < alignment.barrier_seen.size(); ++c) {
    if (!alignment.barrier_seen[c] && !inputs.ended(static_cast<int>(c))) return;
  }
  if (!alignment.barrier_seen[options.worker_index]) {
    Decline(alignment.id, "this worker's source ended before the barrier");
  } else {
    Snapshot();
    // A declined snapshot aborts the savepoint, which resumes the operator.
    if (inbox->IsStop(alignment.id)) operator_finished_at = alignment.id;
  }
  ReleaseHeld();
}

void FeatureTask::Impl::Snapshot() {
  const int64_t id = alignment.id;
  const int64_t alignment_ms = Clock::Real().SteadyMs() - alignment.started_ms;
  const int64_t sync_begin = Clock::Real().SteadyMs();
  if (pending_checkpoint) {
    // Its state was never complete: a newer barrier overtook it.
    Decline(pending_checkpoint->ack.checkpoint_id(), absl::StrCat("superseded by checkpoint ", id));
    pending_checkpoint.reset();
  }
  // Synchronous part: mark the window state as of the barrier (O(1); the
  // engine writes it to RocksDB in bounded steps while processing goes on,
  // copy-on-write), and note how far the sink has been given features:
  // every feature emitted before the barrier must be in Redis before the
  // checkpoint counts (the uploader waits for that, not the operator).
  engine->BeginSnapshot();
  const uint64_t sink_mark = sink->Enqueued();
  const int64_t sync_ms = Clock::Real().SteadyMs() - sync_begin;
  last_alignment_ms = alignment_ms;
  last_sync_ms = sync_ms;
  const KeyGroupRange range = options.workers[options.worker_index].key_groups;
  PendingCheckpoint pending;
  pending.sink_mark = sink_mark;
  pending.begun_ms = sync_begin;
  v1::AcknowledgeCheckpointRequest& ack = pending.ack;
  ack.set_worker_id(options.workers[options.worker_index].worker_id);
  ack.set_job_id(options.job_id);
  ack.set_attempt(options.attempt);
  ack.set_checkpoint_id(id);
  v1::WorkerSnapshot* snapshot = ack.mutable_snapshot();
  snapshot->set_worker_id(ack.worker_id());
  snapshot->mutable_key_groups()->set_first(range.first);
  snapshot->mutable_key_groups()->set_last(range.last);
  const std::string relative = absl::StrCat("kg-", range.first, "-", range.last, ".sst");
  snapshot->set_state_path(relative);
  for (const SourcePosition& position : alignment.offsets) {
    v1::PartitionOffset* o = snapshot->add_offsets();
    o->set_partition(position.partition);
    o->set_next_offset(position.next_offset);
    o->set_watermark_ms(position.watermark_ms);
    o->set_idle(position.idle);
  }
  snapshot->set_operator_watermark_ms(engine->watermark());
  snapshot->set_alignment_ms(alignment_ms);
  snapshot->set_sync_ms(sync_ms);
  snapshot->set_users(engine->stats().users);
  pending.target = std::filesystem::path(alignment.checkpoint_dir) / relative;
  pending_checkpoint = std::move(pending);
  // Nothing was written yet when the engine had no change to write.
  MaybeStartUpload();
}

void FeatureTask::Impl::MaybeStartUpload() {
  if (!pending_checkpoint) return;
  std::unique_ptr<StateSnapshot> state_snapshot = engine->TakeSnapshot();
  if (!state_snapshot) return;
  PendingCheckpoint pending = std::move(*pending_checkpoint);
  pending_checkpoint.reset();
  const int64_t id = pending.ack.checkpoint_id();
  const int64_t materialized_ms = Clock::Real().SteadyMs() - pending.begun_ms;
  spdlog::info("checkpoint {}: synchronous part {} ms; window state in RocksDB {} ms after the barrier", id,
               pending.ack.snapshot().sync_ms(), materialized_ms);
  // Asynchronous part: write the snapshot's key groups to checkpoint
  // storage, wait for Redis, then acknowledge. One upload at a time.
  if (uploader.joinable()) uploader.join();
  uploader = std::thread([this, pending = std::move(pending), state_snapshot = std::move(state_snapshot), id]() mutable {
    const int64_t begin = Clock::Real().SteadyMs();
    v1::AcknowledgeCheckpointRequest& ack = pending.ack;
    // An aborted checkpoint's directory is gone: do not create it again.
    if (inbox->Aborted(id)) return;
    std::error_code ec;
    std::filesystem::create_directories(pending.target.parent_path(), ec);
    const KeyGroupRange range{ack.snapshot().key_groups().first(), ack.snapshot().key_groups().last()};
    absl::StatusOr<SnapshotFileInfo> written = state_snapshot->WriteKeyGroups(pending.target.string(), range);
    state_snapshot.reset();  // lets RocksDB drop what only the snapshot kept
    const int64_t written_ms = Clock::Real().SteadyMs() - begin;
    if (!written.ok()) {
      Decline(id, absl::StrCat("cannot write the state to ", pending.target.string(), ": ",
                               std::string(written.status().message())));
      return;
    }
    if (inbox->Aborted(id)) {
      std::filesystem::remove(pending.target, ec);
      return;
    }
    while (!sink->WaitUntilAcked(pending.sink_mark, 100)) {
      if (cancel.load()) {
        Decline(id, "the attempt ended before Redis acknowledged the checkpoint's features");
        return;
      }
    }
    // Dead letters of records before the barrier must be in Kafka too: the
    // replay after a restore starts after them (at least once).
    if (absl::Status flushed = dead_letters->Flush(30000); !flushed.ok()) {
      Decline(id, absl::StrCat("dead letters not delivered: ", std::string(flushed.message())));
      return;
    }
    ack.mutable_snapshot()->set_state_bytes(written->bytes);
    ack.mutable_snapshot()->set_async_ms(Clock::Real().SteadyMs() - begin);
    if (options.acknowledge) {
      if (absl::Status s = options.acknowledge(ack); !s.ok()) {
        spdlog::warn("checkpoint {}: acknowledgement not accepted: {}", id, std::string(s.message()));
        return;
      }
    }
    ++checkpoints_acknowledged;
    spdlog::info("checkpoint {}: alignment {} ms, sync {} ms, async {} ms ({} ms writing {} keys, {} bytes; then "
                 "waiting for Redis), {} users",
                 id, ack.snapshot().alignment_ms(), ack.snapshot().sync_ms(), ack.snapshot().async_ms(), written_ms,
                 written->keys, ack.snapshot().state_bytes(), ack.snapshot().users());
  });
}

absl::Status FeatureTask::Run(const std::atomic<bool>& stop) {
  Impl& s = *impl_;
  spdlog::info("attempt {}: worker {} of {} owns key groups {}; {} partitions; sources route by key group", 
               s.options.attempt, s.options.worker_index, s.options.workers.size(),
               s.options.workers[s.options.worker_index].key_groups.ToString(), s.source->partitions().size());
  std::thread operator_thread([&s] { s.OperatorLoop(); });
  std::atomic<bool> source_done{false};
  std::thread stop_watcher([&] {
    while (!source_done.load() && !stop.load() && !s.interrupt.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (stop.load()) s.interrupt.store(true);
  });
  s.SourceLoop(stop);
  source_done.store(true);
  stop_watcher.join();
  operator_thread.join();
  if (s.data_plane) s.data_plane->Detach();
  absl::Status result = s.FirstFailure();
  if (!s.cancel.load()) {
    if (absl::Status flushed = s.engine->Flush(); !flushed.ok() && result.ok()) result = flushed;
    // A checkpoint whose state the flush just completed (e.g. the barrier
    // came with the end of input) still goes out.
    if (result.ok()) s.MaybeStartUpload();
    s.sink->Flush();
    if (absl::Status flushed = s.dead_letters->Flush(30000); !flushed.ok()) {
      spdlog::error("{}", std::string(flushed.message()));
    }
  }
  // Cancelled (the attempt ended: a failure elsewhere, a rescale, a cancel):
  // the next attempt restores the last checkpoint and replays what came
  // after it, features and dead letters included, so nothing here needs to
  // be written; the sooner this task is gone, the shorter the pause. But
  // what Redis already has must be answered now: a batch of this attempt
  // applied after the next attempt's writes would put older values back.
  if (s.cancel.load()) {
    const size_t dropped = s.sink->Discard();
    if (dropped > 0) spdlog::info("cancelled: {} features not sent to Redis (the next attempt replays them)", dropped);
  }
  if (s.uploader.joinable()) s.uploader.join();
  if (s.data_plane) s.data_plane->SetTaskControl(nullptr);
  s.PublishSourceCounters();
  s.PublishOperatorCounters();
  std::lock_guard lock(s.outbound_mu);
  s.outbound.clear();
  return result;
}

void FeatureTask::Cancel() {
  Impl& s = *impl_;
  s.cancel.store(true);
  s.interrupt.store(true);
  if (s.gate) s.gate->Close();
  // An operator blocked on a full sink returns at once (its features are
  // replayed by the next attempt, like the sink's queue).
  s.sink->DropQueued();
}

TaskCounters FeatureTask::counters() const {
  TaskCounters c;
  {
    std::lock_guard lock(impl_->counters_mu);
    c = impl_->counters;
  }
  // Read live what is thread-safe: the operator thread publishes the rest,
  // and it may be blocked in a full sink (slow Redis) for a long time; these
  // are exactly the numbers that show such a stall.
  const RedisSinkStats sink_stats = impl_->sink->stats();
  c.redis_features_written = sink_stats.features_written;
  c.redis_errors = sink_stats.error_replies + sink_stats.connection_errors;
  c.redis_pending_features = sink_stats.pending;
  c.redis_features_rejected = sink_stats.features_rejected;
  c.redis_features_kept_newer = sink_stats.features_kept_newer;
  c.redis_features_guarded = sink_stats.features_guarded;
  c.redis_last_error = sink_stats.last_error;
  c.redis_last_error_ms = sink_stats.last_error_ms;
  c.redis_batch_latency = sink_stats.batch_latency;
  c.dlq_delivery_failures = impl_->dead_letters->delivery_failures();
  c.gate_queued_bytes = impl_->gate->queued_bytes();
  c.checkpoints_acknowledged = impl_->checkpoints_acknowledged.load();
  c.checkpoints_declined = impl_->checkpoints_declined.load();
  c.last_alignment_ms = impl_->last_alignment_ms.load();
  c.last_sync_ms = impl_->last_sync_ms.load();
  c.channels.clear();
  if (impl_->inbound) c.channels = impl_->inbound->Status();
  std::lock_guard lock(impl_->outbound_mu);
  for (const auto& channel : impl_->outbound) {
    if (channel) c.channels.push_back(channel->Status());
  }
  return c;
}

}  // namespace slipstream
