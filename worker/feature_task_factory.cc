#include "worker/feature_task_factory.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/kafka_admin.h"
#include "spdlog/spdlog.h"
#include "worker/exchange/data_plane.h"
#include "worker/pipeline/state_releaser.h"
#include "worker/sink/dead_letter_producer.h"
#include "worker/state/state_store.h"

namespace slipstream {
namespace {

bool Overlaps(const KeyGroupRange& a, const KeyGroupRange& b) {
  return std::max(a.first, b.first) <= std::min(a.last, b.last);
}

// What a checkpoint gives the task besides the state it ingested.
// What the attempt computes, and what its restored state was written under.
struct TaskPrograms {
  std::shared_ptr<const FeatureProgram> current;
  std::shared_ptr<const FeatureProgram> restored;  // null: `current`
};

absl::StatusOr<std::shared_ptr<const FeatureProgram>> CompileDefinition(const std::string& yaml,
                                                                        const std::string& origin) {
  if (yaml.empty()) return FeatureProgram::Default();
  absl::StatusOr<FeatureDefinition> definition = ParseFeatureDefinition(yaml, origin);
  if (!definition.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": ", definition.status().message()));
  }
  return FeatureProgram::Compile(std::make_shared<const FeatureDefinition>(*std::move(definition)));
}

// The deployment's definition (the coordinator validated it; a worker of
// another version may still refuse it) and the restored checkpoint's.
absl::StatusOr<TaskPrograms> CompilePrograms(const v1::Assignment& assignment) {
  TaskPrograms programs;
  absl::StatusOr<std::shared_ptr<const FeatureProgram>> current =
      CompileDefinition(assignment.feature_definition(), "the job's feature definition");
  if (!current.ok()) return current.status();
  programs.current = *std::move(current);
  if (!assignment.restore().feature_definition().empty()) {
    absl::StatusOr<std::shared_ptr<const FeatureProgram>> restored = CompileDefinition(
        assignment.restore().feature_definition(),
        absl::StrCat("the feature definition of checkpoint ", assignment.restore().checkpoint_id()));
    if (!restored.ok()) return restored.status();
    programs.restored = *std::move(restored);
    spdlog::info("the restored state was written under another feature definition ({}); converting it to {}",
                 programs.restored->definition().Summary(), programs.current->definition().Summary());
  }
  return programs;
}

struct RestoredPosition {
  std::map<int, int64_t> offsets;
  std::map<int, FeatureTaskOptions::RestoredPartition> partitions;
  std::optional<int64_t> operator_watermark;
};

// Ingests the snapshots of `restore` that overlap `owned` into `state`.
// Calls `on_restored` once done, before it logs what it ingested.
absl::StatusOr<RestoredPosition> RestoreFromCheckpoint(const v1::RestoreInfo& restore, const KeyGroupRange& owned,
                                                       StateStore& state, const std::function<void()>& on_restored) {
  std::vector<std::string> snapshot_files;
  for (const v1::WorkerSnapshot& snapshot : restore.snapshots()) {
    const KeyGroupRange range{snapshot.key_groups().first(), snapshot.key_groups().last()};
    if (Overlaps(range, owned)) {
      snapshot_files.push_back((std::filesystem::path(restore.checkpoint_path()) / snapshot.state_path()).string());
    }
  }
  const auto begin = std::chrono::steady_clock::now();
  absl::StatusOr<IngestedSnapshots> ingested = state.IngestKeyGroups(snapshot_files, owned);
  if (!ingested.ok()) return ingested.status();
  RestoredPosition restored;
  for (const v1::PartitionOffset& o : restore.offsets()) {
    restored.offsets[o.partition()] = o.next_offset();
    if (o.has_watermark_ms()) restored.partitions[o.partition()] = {o.watermark_ms(), o.idle()};
  }
  // Aligned barriers give every operator the same watermark; the minimum is
  // the safe choice should they differ (unaligned mode). Unknown as soon as
  // one snapshot lacks it.
  bool watermark_known = true;
  for (const v1::WorkerSnapshot& snapshot : restore.snapshots()) {
    const KeyGroupRange range{snapshot.key_groups().first(), snapshot.key_groups().last()};
    if (!Overlaps(range, owned)) continue;
    if (!snapshot.has_operator_watermark_ms()) {
      watermark_known = false;
      continue;
    }
    restored.operator_watermark =
        std::min(restored.operator_watermark.value_or(INT64_MAX), snapshot.operator_watermark_ms());
  }
  if (!watermark_known) restored.operator_watermark.reset();
  on_restored();
  spdlog::info("ingested {} snapshot file(s) of checkpoint {} ({} bytes, {} copied, the rest linked) for key "
               "groups {} in {} ms",
               ingested->files, restore.checkpoint_id(), ingested->bytes, ingested->copied, owned.ToString(),
               std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - begin).count());
  return restored;
}

// The coordinator creates the dead-letter topic; without it every invalid
// record would wait in the producer, so wait for it (briefly). First of the
// task's Kafka calls: it says at once when the broker refuses our
// credentials (kafka.sasl.*).
absl::Status WaitForDeadLetterTopic(const FeatureTaskFactoryOptions& options, const std::atomic<bool>& stop) {
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<int> dlq = FetchPartitionCount(options.kafka_properties, options.dlq_topic, 10000);
    if (dlq.ok()) return absl::OkStatus();
    // Refused credentials do not get better by waiting.
    if (absl::IsPermissionDenied(dlq.status())) return dlq.status();
    if (attempt == 60 || stop.load()) {
      return absl::UnavailableError(absl::StrCat("kafka.dlq.topic: ", dlq.status().message()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

// The real task, with the local directory of its attempt's state.
class DeployedFeatureTask final : public DeployedTask {
 public:
  DeployedFeatureTask(std::unique_ptr<FeatureTask> task, StateReleaser& releaser, std::string state_dir,
                      int64_t attempt)
      : task_(std::move(task)), releaser_(releaser), state_dir_(std::move(state_dir)), attempt_(attempt) {}

  // The window state is freed in the background, then its directory.
  ~DeployedFeatureTask() override {
    Close();
    releaser_.Release(std::move(state_), state_dir_, absl::StrCat("attempt ", attempt_));
  }

  absl::Status Run(const std::atomic<bool>& stop) override {
    absl::Status status = task_->Run(stop);
    finished_ = task_->finished();
    return status;
  }
  bool finished() const override { return finished_; }
  void Cancel() override {
    if (task_ != nullptr) task_->Cancel();
  }
  TaskCounters counters() const override { return task_ != nullptr ? task_->counters() : TaskCounters(); }

  // Every thread has joined once Run() returned; the window state is taken
  // out, and destroying the task closes the Kafka clients and the sink.
  void Close() override {
    if (task_ == nullptr) return;
    state_ = task_->TakeState();
    task_.reset();
  }

 private:
  std::unique_ptr<FeatureTask> task_;
  StateReleaser& releaser_;
  const std::string state_dir_;
  const int64_t attempt_;
  std::unique_ptr<TaskState> state_;
  bool finished_ = false;
};

}  // namespace

struct FeatureTaskFactory::Impl {
  Impl(FeatureTaskFactoryOptions options_in, CoordinatorClient& coordinator_in, DataPlaneServer* data_plane_in)
      : options(std::move(options_in)), coordinator(coordinator_in), data_plane(data_plane_in) {}

  FeatureTaskFactoryOptions options;
  CoordinatorClient& coordinator;
  DataPlaneServer* data_plane;
  StateReleaser releaser;

  FeatureTaskOptions TaskOptions(const v1::Assignment& assignment, RestoredPosition restored,
                                 const TaskPrograms& programs) const;
  struct TaskClients {
    std::unique_ptr<KafkaSource> source;
    std::unique_ptr<DeadLetterProducer> dead_letters;
    std::unique_ptr<FeatureSink> sink;
  };
  absl::StatusOr<TaskClients> ConnectClients(const v1::Assignment& assignment,
                                             const std::map<int, int64_t>& restored_offsets,
                                             const std::atomic<bool>& stop) const;
};

FeatureTaskOptions FeatureTaskFactory::Impl::TaskOptions(const v1::Assignment& assignment,
                                                         RestoredPosition restored,
                                                         const TaskPrograms& programs) const {
  FeatureTaskOptions task_options;
  task_options.program = programs.current;
  task_options.restored_program = programs.restored;
  task_options.max_parallelism = assignment.max_parallelism();
  task_options.idle_timeout_ms = options.idle_timeout_ms;
  task_options.max_event_time_skew_ms = options.max_event_time_skew_ms;
  task_options.job_id = assignment.job_id();
  task_options.peer_security = options.peer_security;
  task_options.attempt = assignment.attempt();
  task_options.bounded = assignment.bounded();
  task_options.worker_index = assignment.worker_index();
  for (const v1::PeerEndpoint& peer : assignment.workers()) {
    task_options.workers.push_back(TaskPeer{peer.worker_id(), absl::StrCat(peer.host(), ":", peer.data_port()),
                                            KeyGroupRange{peer.key_groups().first(), peer.key_groups().last()}});
  }
  task_options.exactly_once = options.exactly_once;
  task_options.restore_state = !assignment.restore().checkpoint_path().empty();
  task_options.restored_operator_watermark = restored.operator_watermark;
  task_options.restored_partitions = std::move(restored.partitions);
  CoordinatorClient* coordinator_client = &coordinator;
  task_options.acknowledge = [coordinator_client](const v1::AcknowledgeCheckpointRequest& request) {
    return coordinator_client->AcknowledgeCheckpoint(request);
  };
  task_options.decline = [coordinator_client](const v1::DeclineCheckpointRequest& request) {
    coordinator_client->DeclineCheckpoint(request);
  };
  return task_options;
}

// The task's clients: its Kafka source, dead letters and feature sink.
absl::StatusOr<FeatureTaskFactory::Impl::TaskClients> FeatureTaskFactory::Impl::ConnectClients(
    const v1::Assignment& assignment, const std::map<int, int64_t>& restored_offsets,
    const std::atomic<bool>& stop) const {
  if (absl::Status s = WaitForDeadLetterTopic(options, stop); !s.ok()) return s;
  TaskClients clients;
  absl::StatusOr<std::unique_ptr<KafkaSource>> source = KafkaSource::Create(
      options.kafka_properties, assignment.topic(),
      std::vector<int>(assignment.partitions().begin(), assignment.partitions().end()), options.starting_offsets,
      restored_offsets,
      std::vector<int>(assignment.earliest_partitions().begin(), assignment.earliest_partitions().end()),
      // The coordinator's kafka.starting-timestamp (a bounded run's) wins
      // over this worker's own.
      assignment.has_starting_timestamp_ms() ? std::optional<int64_t>(assignment.starting_timestamp_ms())
                                             : options.starting_timestamp_ms);
  if (!source.ok()) return source.status();
  clients.source = std::move(*source);
  if (assignment.bounded()) {
    std::map<int, int64_t> stopping(assignment.stopping_offsets().begin(), assignment.stopping_offsets().end());
    for (int p : assignment.partitions()) {
      if (!stopping.count(p)) {
        return absl::InvalidArgumentError(
            absl::StrCat("the bounded assignment has no stopping offset for partition ", p));
      }
    }
    clients.source->SetStoppingOffsets(std::move(stopping));
  }
  absl::StatusOr<std::unique_ptr<DeadLetterProducer>> dead_letters =
      DeadLetterProducer::Create(options.kafka_properties, options.dlq_topic);
  if (!dead_letters.ok()) return dead_letters.status();
  clients.dead_letters = std::move(*dead_letters);
  if (options.sink_type == FeatureTaskFactoryOptions::SinkType::kFile) {
    FileSinkOptions file_options = options.file;
    file_options.job_id = assignment.job_id();
    file_options.attempt = assignment.attempt();
    file_options.writer_index = assignment.worker_index();
    file_options.restored_checkpoint = assignment.restore().checkpoint_path();
    absl::StatusOr<std::unique_ptr<FileSink>> sink = FileSink::Start(file_options);
    if (!sink.ok()) return sink.status();
    clients.sink = std::move(*sink);
    return clients;
  }
  RedisSinkOptions sink_options = options.redis;
  sink_options.job_id = assignment.job_id();
  sink_options.attempt = assignment.attempt();
  sink_options.writer_index = assignment.worker_index();
  // Runs on the sink's thread; the task destroys the sink before the
  // dead-letter producer.
  DeadLetterProducer* rejected_to = clients.dead_letters.get();
  sink_options.on_rejected = [rejected_to](const FeatureWrite& feature, std::string_view error) {
    rejected_to->SendRejectedFeature(feature.key, feature.fields, error);
  };
  absl::StatusOr<std::unique_ptr<RedisSink>> sink = RedisSink::Start(sink_options);
  if (!sink.ok()) return sink.status();
  clients.sink = std::move(*sink);
  return clients;
}

FeatureTaskFactory::FeatureTaskFactory(FeatureTaskFactoryOptions options, CoordinatorClient& coordinator,
                                       DataPlaneServer* data_plane)
    : impl_(std::make_unique<Impl>(std::move(options), coordinator, data_plane)) {}

FeatureTaskFactory::~FeatureTaskFactory() = default;

absl::StatusOr<std::unique_ptr<DeployedTask>> FeatureTaskFactory::Deploy(
    const v1::Assignment& assignment, const std::string& worker_id, const std::atomic<bool>& stop,
    const std::function<void()>& on_state_restored) {
  if (assignment.key_groups_size() != 1 || assignment.workers_size() == 0 || assignment.worker_index() < 0 ||
      assignment.worker_index() >= assignment.workers_size()) {
    return absl::InvalidArgumentError("the coordinator sent an assignment without this worker's key groups");
  }
  const KeyGroupRange owned{assignment.key_groups(0).first(), assignment.key_groups(0).last()};
  absl::StatusOr<TaskPrograms> programs = CompilePrograms(assignment);
  if (!programs.ok()) return programs.status();
  std::string partition_text;
  for (int p : assignment.partitions()) absl::StrAppend(&partition_text, partition_text.empty() ? "" : ",", p);
  const v1::RestoreInfo& restore = assignment.restore();
  spdlog::info("attempt {} of job {}: worker {} of {}: topic {} partitions [{}], key groups {} of {}{}",
               assignment.attempt(), assignment.job_id(), assignment.worker_index(), assignment.workers_size(),
               assignment.topic(), partition_text, owned.ToString(), assignment.max_parallelism(),
               restore.checkpoint_path().empty() ? std::string(", empty state")
                                                 : absl::StrCat(", restoring ", restore.checkpoint_path()));

  // Local state of this attempt: fresh, then filled from the checkpoint. One
  // directory per attempt: the previous attempt's may still be being freed
  // (StateReleaser), which then deletes it.
  const std::string attempt_state_dir = (std::filesystem::path(impl_->options.state_dir) / assignment.job_id() /
                                         worker_id / absl::StrCat("attempt-", assignment.attempt()))
                                            .string();
  // The previous attempt's state is freed once this one has restored its
  // own (StateReleaser), also when it fails before that.
  absl::Cleanup free_previous_state = [this] { impl_->releaser.Resume(); };
  bool state_handed_over = false;
  const absl::Cleanup remove_state_dir = [&] {
    if (state_handed_over) return;
    std::error_code ignored;
    std::filesystem::remove_all(attempt_state_dir, ignored);
  };
  StateStoreOptions store_options;
  store_options.lock_root = impl_->options.state_dir;  // held while the directory is in use
  absl::StatusOr<std::unique_ptr<StateStore>> state = StateStore::Open(attempt_state_dir, store_options);
  if (!state.ok()) return state.status();
  RestoredPosition restored;
  if (!restore.checkpoint_path().empty()) {
    absl::StatusOr<RestoredPosition> from_checkpoint = RestoreFromCheckpoint(restore, owned, **state, on_state_restored);
    if (!from_checkpoint.ok()) return from_checkpoint.status();
    restored = std::move(*from_checkpoint);
  }
  absl::StatusOr<Impl::TaskClients> clients = impl_->ConnectClients(assignment, restored.offsets, stop);
  if (!clients.ok()) return clients.status();
  absl::StatusOr<std::unique_ptr<FeatureTask>> task = FeatureTask::Create(
      impl_->TaskOptions(assignment, std::move(restored), *programs), std::move(clients->source),
      std::move(clients->dead_letters), std::move(clients->sink), std::move(*state), impl_->data_plane);
  std::move(free_previous_state).Invoke();
  if (!task.ok()) return task.status();
  state_handed_over = true;  // the deployed task releases it
  return std::make_unique<DeployedFeatureTask>(std::move(*task), impl_->releaser, attempt_state_dir,
                                               assignment.attempt());
}

}  // namespace slipstream
