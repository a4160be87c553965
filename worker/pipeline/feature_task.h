// FeatureTask: one worker's part of one attempt of the job, as two threads
// joined by the data plane (Flink's source -> keyBy -> window chain):
//
//   source thread (Run's caller, SourceRunner):  Kafka source -> parse + validate
//       (invalid -> dead-letter topic) -> per-partition watermarks
//       -> route each event by key group to the worker that owns it:
//          owned here -> the local channel of the InputGate (never leaves the
//          process); owned by a peer -> that peer's OutboundChannel (gRPC).
//       After every poll batch the source's watermark (or its idleness)
//       follows the records on every channel, in band.
//   operator thread (OperatorRunner): InputGate (local + one channel per peer, credit-bounded)
//       -> WindowEngine (RocksDB) for the key groups this worker owns; late
//       events -> dead-letter topic; its watermark is the minimum over the
//       channels that are not idle; fired windows -> Redis sink, whose
//       backpressure stops the operator, which stops returning credits, which
//       stops every source that sends here.
//
// Checkpoints: the source injects barriers; the operator aligns them
// (worker/checkpoint/barrier_aligner.h) and snapshots its state, which a
// third thread uploads (worker/checkpoint/task_checkpointer.h). What the
// threads share, and how, is listed on FeatureTask::Impl.
//
// One worker is the special case without peers. A stream that breaks while
// the attempt runs fails it (records in flight could be lost); a graceful
// stop sends end-of-input on every channel.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/features/feature_definition.h"
#include "worker/window/feature_program.h"
#include "common/grpc_security.h"
#include "common/key_groups.h"
#include "proto/slipstream.pb.h"
#include "worker/pipeline/task_counters.h"

namespace slipstream {

class KafkaSource;
class DeadLetterProducer;
class FeatureSink;
class StateStore;
class WindowEngine;
class DataPlaneServer;

// The window state of a finished task: the working copy in memory (up to a
// million users here) and its RocksDB instance. Freeing it takes up to a
// second, which the next attempt need not wait for: see StateReleaser.
class TaskState {
 public:
  TaskState(std::unique_ptr<StateStore> store, std::unique_ptr<WindowEngine> engine);
  TaskState(TaskState&&) noexcept;
  TaskState& operator=(TaskState&&) noexcept;
  ~TaskState();  // the engine first: it points into the store

 private:
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<WindowEngine> engine_;
};

// One worker of the attempt, as the coordinator announced it.
struct TaskPeer {
  std::string worker_id;
  std::string address;  // host:port of its data endpoint
  KeyGroupRange key_groups;
};

struct FeatureTaskOptions {
  // What the job reads and computes (the deployment's definition, compiled);
  // the source parses records with `program->definition().input`. Null: the
  // built-in default.
  std::shared_ptr<const FeatureProgram> program;
  // The definition the restored checkpoint's state was written under, when
  // the job's only added groups or features to it (null: the same).
  std::shared_ptr<const FeatureProgram> restored_program;
  int max_parallelism = 128;
  int64_t idle_timeout_ms = 30000;
  // source.max-event-time-skew: records whose event time is further ahead of
  // the wall clock go to the dead-letter topic (0: off, Flink's semantics).
  int64_t max_event_time_skew_ms = 0;
  int poll_batch = 2000;
  int poll_timeout_ms = 100;
  std::string job_id;
  int64_t attempt = 1;
  // execution.runtime-mode=BATCH: the source's partitions end at their
  // stopping offsets (KafkaSource::SetStoppingOffsets). Once all did, the
  // source sends watermark INT64_MAX and end of input on every channel; the
  // operator ends once every channel ended (every window fired), and Run()
  // returns OK after the sink acknowledged every feature (finished()).
  bool bounded = false;
  // Every worker of the attempt by index (their key-group ranges must cover
  // every key group exactly once); this worker is `worker_index`.
  std::vector<TaskPeer> workers;
  int worker_index = 0;
  // Flow control: batches a channel may have in flight, and a batch's size.
  int credits_per_channel = 8;
  size_t max_batch_bytes = 256 * 1024;
  // On a graceful stop, how long to wait for peers to take the end of input.
  int64_t end_of_input_timeout_ms = 5000;
  // TLS and the internal token of the channels to peers (security.*).
  GrpcSecurity peer_security;

  // Checkpoints (Chandy-Lamport barriers, as in Flink). The coordinator's
  // TriggerCheckpoint reaches the task through the data plane's TaskControl
  // service; the task answers through these.
  bool exactly_once = true;         // align barriers (AT_LEAST_ONCE: do not hold channels)
  // The state store holds state restored from a checkpoint: rebuild the
  // window engine's working copy from it.
  bool restore_state = false;
  // From the checkpoint, when it has them: the window operators' watermark
  // at the barrier (the minimum over the snapshots this worker restores), and
  // each of this worker's partitions' watermark and idleness.
  std::optional<int64_t> restored_operator_watermark;
  struct RestoredPartition {
    int64_t watermark_ms = 0;
    bool idle = false;
  };
  std::map<int, RestoredPartition> restored_partitions;
  std::function<absl::Status(const v1::AcknowledgeCheckpointRequest&)> acknowledge;
  std::function<void(const v1::DeclineCheckpointRequest&)> decline;
};

class FeatureTask {
 public:
  // Takes ownership of its parts. `data_plane` (not owned, outlives the
  // task) receives the peers' streams; it may be null with one worker.
  static absl::StatusOr<std::unique_ptr<FeatureTask>> Create(const FeatureTaskOptions& options,
                                                             std::unique_ptr<KafkaSource> source,
                                                             std::unique_ptr<DeadLetterProducer> dead_letters,
                                                             std::unique_ptr<FeatureSink> sink,
                                                             std::unique_ptr<StateStore> state,
                                                             DataPlaneServer* data_plane);
  ~FeatureTask();

  // Runs until `stop` becomes true (then stops gracefully: end of input to
  // every peer, state and sink flushed) or the attempt fails (returned).
  [[nodiscard]] absl::Status Run(const std::atomic<bool>& stop);

  // Cancels the running task from another thread, as Flink cancels a task:
  // it stops at once, without end of input to its peers (they are being
  // cancelled too) and without processing what is queued. Features the sink
  // has not sent yet are dropped and its batches in flight answered before
  // Run() returns (OK): the next attempt replays everything after its
  // checkpoint, and nothing of this one may reach Redis after it starts.
  void Cancel();

  // After Run() returned: takes the window state out of the task, so that
  // destroying the task only closes the Kafka clients and the sink, and the
  // state can be freed while the next attempt starts.
  std::unique_ptr<TaskState> TakeState();

  TaskCounters counters() const;

  // After Run() returned OK: a bounded task read all its input, fired every
  // window and had every feature acknowledged (not stopped or cancelled).
  bool finished() const;

 private:
  struct Impl;
  explicit FeatureTask(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
