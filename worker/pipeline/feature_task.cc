#include "worker/pipeline/feature_task.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/event.h"
#include "spdlog/spdlog.h"
#include "worker/checkpoint/checkpoint_inbox.h"
#include "worker/checkpoint/checkpoint_probe.h"
#include "worker/checkpoint/task_checkpointer.h"
#include "worker/exchange/data_plane.h"
#include "worker/exchange/input_gate.h"
#include "worker/pipeline/attempt_control.h"
#include "worker/pipeline/operator_probe.h"
#include "worker/pipeline/operator_runner.h"
#include "worker/pipeline/source_probe.h"
#include "worker/pipeline/source_runner.h"
#include "worker/sink/dead_letter_producer.h"
#include "worker/sink/feature_sink.h"
#include "worker/source/kafka_source.h"
#include "worker/state/state_store.h"
#include "worker/time/watermark_tracker.h"
#include "worker/window/window_engine.h"

namespace slipstream {

// The task's parts and who may touch them. Two threads run the task: the
// source thread (Run's caller, SourceRunner) and the operator thread
// (OperatorRunner); a third uploads checkpoints (TaskCheckpointer). Each
// runner owns its loop's state outright; what they share is listed here,
// with how it is synchronised:
//  - source: the source thread only.
//  - engine (and state): the operator thread only while it runs; Run's
//    thread flushes it once that thread ended; the uploader only reads a
//    RocksDB snapshot taken from it.
//  - gate: the one hand-over from source to operator (its own lock).
//  - sink, dead_letters: thread-safe (their own locks).
//  - inbox: written by gRPC threads, read by both loops (lock and atomics).
//  - control: the attempt's fate, atomics and a lock (AttemptControl).
//  - probes: each written by one thread, read by counters() from any thread
//    (each guards its published copy; CheckpointProbe is atomics).
struct FeatureTask::Impl {
  FeatureTaskOptions options;
  std::unique_ptr<KafkaSource> source;
  std::unique_ptr<DeadLetterProducer> dead_letters;
  std::unique_ptr<FeatureSink> sink;
  std::unique_ptr<StateStore> state;  // outlives the engine below
  std::unique_ptr<WindowEngine> engine;
  DataPlaneServer* data_plane = nullptr;

  std::vector<int> owner_of_key_group;  // key group -> worker index; fixed after Create
  std::unique_ptr<InputGate> gate;
  std::shared_ptr<InboundEndpoint> inbound;  // the peers' channels into the gate; null with one worker
  std::shared_ptr<CheckpointInbox> inbox;
  std::unique_ptr<AttemptControl> control;

  SourceProbe source_probe;
  OperatorProbe operator_probe;
  CheckpointProbe checkpoint_probe;

  std::unique_ptr<TaskCheckpointer> checkpointer;
  std::unique_ptr<SourceRunner> source_runner;
  std::unique_ptr<OperatorRunner> operator_runner;
  bool finished = false;  // bounded: see FeatureTask::finished()

  // Connects the parts above (all set) into the task's runners.
  void BuildRunners();
  // After both threads ended: what a graceful stop still owes (state, sink,
  // dead letters flushed), or what a cancel must answer at once.
  absl::Status Finish(absl::Status result);
};

namespace {

std::string WatermarkText(int64_t watermark_ms) {
  return watermark_ms == kMinWatermark ? std::string("none") : FormatIso8601Millis(watermark_ms);
}

// Every key group must have exactly one owner, or events would be lost or
// counted twice.
absl::StatusOr<std::vector<int>> OwnerOfKeyGroups(const FeatureTaskOptions& options) {
  std::vector<int> owner(options.max_parallelism, -1);
  for (int i = 0; i < static_cast<int>(options.workers.size()); ++i) {
    const KeyGroupRange& r = options.workers[i].key_groups;
    for (int kg = r.first; kg <= r.last; ++kg) {
      if (kg < 0 || kg >= options.max_parallelism) {
        return absl::InvalidArgumentError(absl::StrCat("worker ", options.workers[i].worker_id, " owns key group ",
                                                       kg, " outside 0..", options.max_parallelism - 1));
      }
      if (owner[kg] != -1) return absl::InvalidArgumentError(absl::StrCat("key group ", kg, " is owned by two workers"));
      owner[kg] = i;
    }
  }
  for (int kg = 0; kg < options.max_parallelism; ++kg) {
    if (owner[kg] == -1) {
      return absl::InvalidArgumentError(absl::StrCat("key group ", kg, " has no owner in the assignment"));
    }
  }
  return owner;
}

// Rebuilds the engine's working copy and watermark from a checkpoint.
absl::Status RestoreEngine(const FeatureTaskOptions& options, WindowEngine* engine) {
  if (options.restore_state) {
    const auto begin = std::chrono::steady_clock::now();
    if (absl::Status restored = engine->Restore(); !restored.ok()) return restored;
    const WindowEngineStats stats = engine->stats();
    spdlog::info("restored {} users and {} timers of key groups {} in {} ms", stats.users, stats.timers,
                 options.workers[options.worker_index].key_groups.ToString(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - begin)
                     .count());
  }
  if (options.restored_operator_watermark) {
    engine->RestoreWatermark(*options.restored_operator_watermark);
    spdlog::info("restored the operator watermark {}", WatermarkText(engine->watermark()));
  }
  return absl::OkStatus();
}

}  // namespace

void FeatureTask::Impl::BuildRunners() {
  const TaskPeer& self = options.workers[options.worker_index];
  control = std::make_unique<AttemptControl>(gate.get(), sink.get());
  checkpointer = std::make_unique<TaskCheckpointer>(
      TaskCheckpointerOptions{self.worker_id, options.job_id, options.attempt, self.key_groups, options.acknowledge,
                              options.decline},
      engine.get(), sink.get(), dead_letters.get(), inbox.get(), &control->cancel, &checkpoint_probe);
  SourceRunner::Parts source_parts;
  source_parts.options = &options;
  source_parts.owner_of_key_group = &owner_of_key_group;
  source_parts.source = source.get();
  source_parts.dead_letters = dead_letters.get();
  source_parts.sink = sink.get();
  source_parts.gate = gate.get();
  source_parts.inbox = inbox.get();
  source_parts.control = control.get();
  source_parts.probe = &source_probe;
  source_parts.operator_probe = &operator_probe;
  source_runner = std::make_unique<SourceRunner>(source_parts);
  OperatorRunner::Parts operator_parts;
  operator_parts.options = &options;
  operator_parts.topic = source->topic();
  operator_parts.engine = engine.get();
  operator_parts.state = state.get();
  operator_parts.sink = sink.get();
  operator_parts.dead_letters = dead_letters.get();
  operator_parts.gate = gate.get();
  operator_parts.inbound = inbound.get();
  operator_parts.inbox = inbox.get();
  operator_parts.control = control.get();
  operator_parts.checkpointer = checkpointer.get();
  operator_parts.probe = &operator_probe;
  operator_runner = std::make_unique<OperatorRunner>(std::move(operator_parts));
}

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
  impl_->checkpointer->Join();
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
                                                                 std::unique_ptr<FeatureSink> sink,
                                                                 std::unique_ptr<StateStore> state,
                                                                 DataPlaneServer* data_plane) {
  const int n = static_cast<int>(options.workers.size());
  if (n == 0 || options.worker_index < 0 || options.worker_index >= n) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker index ", options.worker_index, " is not among the attempt's ", n, " workers"));
  }
  if (n > 1 && data_plane == nullptr) return absl::InvalidArgumentError("several workers need a data plane");
  absl::StatusOr<std::vector<int>> owners = OwnerOfKeyGroups(options);
  if (!owners.ok()) return owners.status();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->owner_of_key_group = std::move(*owners);
  impl->source = std::move(source);
  impl->dead_letters = std::move(dead_letters);
  impl->sink = std::move(sink);
  impl->state = std::move(state);
  impl->data_plane = data_plane;
  WindowEngineOptions engine_options;
  engine_options.program = options.program;
  engine_options.restored_program = options.restored_program;
  impl->engine = std::make_unique<WindowEngine>(impl->state.get(), options.workers[options.worker_index].key_groups,
                                                engine_options);
  if (absl::Status restored = RestoreEngine(options, impl->engine.get()); !restored.ok()) return restored;
  impl->gate = std::make_unique<InputGate>(n, options.worker_index, options.credits_per_channel);
  impl->inbox = std::make_shared<CheckpointInbox>(options.job_id, options.attempt);
  if (data_plane != nullptr) data_plane->SetTaskControl(impl->inbox);
  if (n > 1) {
    std::vector<std::string> ids;
    for (const TaskPeer& p : options.workers) ids.push_back(p.worker_id);
    impl->inbound = std::make_shared<InboundEndpoint>(options.job_id, options.attempt, ids, options.worker_index,
                                                      impl->gate.get());
  }
  impl->BuildRunners();
  if (impl->inbound) data_plane->Attach(impl->inbound);
  return std::unique_ptr<FeatureTask>(new FeatureTask(std::move(impl)));
}

absl::Status FeatureTask::Run(const std::atomic<bool>& stop) {
  Impl& s = *impl_;
  spdlog::info("attempt {}: worker {} of {} owns key groups {}; {} partitions; sources route by key group", 
               s.options.attempt, s.options.worker_index, s.options.workers.size(),
               s.options.workers[s.options.worker_index].key_groups.ToString(), s.source->partitions().size());
  std::thread operator_thread([&s] { s.operator_runner->Run(); });
  std::atomic<bool> source_done{false};
  std::thread stop_watcher([&] {
    while (!source_done.load() && !stop.load() && !s.control->interrupt.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (stop.load()) s.control->interrupt.store(true);
  });
  s.source_runner->Run(stop);
  source_done.store(true);
  stop_watcher.join();
  operator_thread.join();
  if (s.data_plane) s.data_plane->Detach();
  absl::Status result = s.Finish(s.control->FirstFailure());
  s.finished = result.ok() && s.options.bounded && s.source_runner->input_finished() &&
               s.operator_runner->all_inputs_ended() && !s.control->cancel.load();
  if (s.finished) {
    spdlog::info("attempt {}: bounded input finished: every window fired, every feature acknowledged by Redis",
                 s.options.attempt);
  }
  return result;
}

bool FeatureTask::finished() const { return impl_->finished; }

absl::Status FeatureTask::Impl::Finish(absl::Status result) {
  if (!control->cancel.load()) {
    if (absl::Status flushed = engine->Flush(); !flushed.ok() && result.ok()) result = flushed;
    // A checkpoint whose state the flush just completed (e.g. the barrier
    // came with the end of input) still goes out.
    if (result.ok()) checkpointer->MaybeStartUpload();
    sink->Flush();
    if (absl::Status flushed = dead_letters->Flush(30000); !flushed.ok()) {
      spdlog::error("{}", std::string(flushed.message()));
    }
  }
  // Cancelled (the attempt ended: a failure elsewhere, a rescale, a cancel):
  // the next attempt restores the last checkpoint and replays what came
  // after it, features and dead letters included, so nothing here needs to
  // be written; the sooner this task is gone, the shorter the pause. But
  // what Redis already has must be answered now: a batch of this attempt
  // applied after the next attempt's writes would put older values back.
  if (control->cancel.load()) {
    const size_t dropped = sink->Discard();
    if (dropped > 0) spdlog::info("cancelled: {} features not written by the sink (the next attempt replays them)", dropped);
  }
  checkpointer->Join();
  if (data_plane) data_plane->SetTaskControl(nullptr);
  source_runner->PublishCounters();
  operator_runner->PublishCounters();
  source_runner->CloseChannels();
  return result;
}

void FeatureTask::Cancel() { impl_->control->Cancel(); }

TaskCounters FeatureTask::counters() const {
  const Impl& s = *impl_;
  TaskCounters c;
  s.source_probe.Fill(&c);
  s.operator_probe.Fill(&c);
  // Read live what is thread-safe: the operator thread publishes the rest,
  // and it may be blocked in a full sink (slow Redis) for a long time; these
  // are exactly the numbers that show such a stall.
  const FeatureSinkStats sink_stats = s.sink->stats();
  c.redis_features_written = sink_stats.features_written;
  c.redis_errors = sink_stats.error_replies + sink_stats.connection_errors;
  c.redis_pending_features = sink_stats.pending;
  c.redis_features_rejected = sink_stats.features_rejected;
  c.redis_features_kept_newer = sink_stats.features_kept_newer;
  c.redis_features_guarded = sink_stats.features_guarded;
  c.redis_last_error = sink_stats.last_error;
  c.redis_last_error_ms = sink_stats.last_error_ms;
  c.redis_batch_latency = sink_stats.batch_latency;
  c.dlq_delivery_failures = s.dead_letters->delivery_failures();
  c.gate_queued_bytes = s.gate->queued_bytes();
  s.checkpoint_probe.Fill(&c);
  if (s.inbound) c.channels = s.inbound->Status();
  for (v1::ChannelStatus& status : s.source_runner->ChannelStatus()) c.channels.push_back(std::move(status));
  return c;
}

}  // namespace slipstream
