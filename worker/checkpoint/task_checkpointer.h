// TaskCheckpointer: this task's part of checkpoint n once its barriers are
// aligned. The synchronous part (Snapshot, operator thread) marks the window
// state as of the barrier and notes how far the sink has been given
// features; the engine then writes that state to RocksDB in bounded steps
// while processing goes on. The asynchronous part (one uploader thread, one
// checkpoint at a time) writes the state's key groups to checkpoint storage,
// waits until Redis acknowledged every feature before the barrier and the
// dead letters are in Kafka, then acknowledges to the coordinator with the
// source's offsets and watermarks. Anything that fails declines the
// checkpoint instead.
//
// Snapshot, MaybeStartUpload and DropIfAborted are called by one thread at a
// time (the operator thread, then Run's thread once it joined); Decline from
// any thread. Join() before the engine, the sink or the dead-letter producer
// go away.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "common/key_groups.h"
#include "proto/slipstream.pb.h"
#include "worker/checkpoint/barrier_aligner.h"

namespace slipstream {

class CheckpointInbox;
class CheckpointProbe;
class DeadLetterProducer;
class FeatureSink;
class StateSnapshot;
class WindowEngine;

struct TaskCheckpointerOptions {
  std::string worker_id;
  std::string job_id;
  int64_t attempt = 0;
  KeyGroupRange key_groups;  // this worker's: the state it snapshots
  // To the coordinator (may be empty in tests); called on the uploader
  // thread and, for declines, on the operator thread.
  std::function<absl::Status(const v1::AcknowledgeCheckpointRequest&)> acknowledge;
  std::function<void(const v1::DeclineCheckpointRequest&)> decline;
};

class TaskCheckpointer {
 public:
  // None of the pointers is owned; all outlive this object. `cancel`: the
  // attempt ended (an upload waiting for Redis gives up).
  TaskCheckpointer(TaskCheckpointerOptions options, WindowEngine* engine, FeatureSink* sink,
                   DeadLetterProducer* dead_letters, const CheckpointInbox* inbox, const std::atomic<bool>* cancel,
                   CheckpointProbe* probe);
  ~TaskCheckpointer();  // joins the uploader

  // The synchronous part, once `aligned`. Declines a checkpoint whose state
  // was not complete yet (this one overtook it).
  void Snapshot(const BarrierAligner::Aligned& aligned);
  // Starts the asynchronous part once the engine's snapshot is complete (call
  // after every engine Commit()).
  void MaybeStartUpload();
  // Forgets a snapshot not uploaded yet whose checkpoint the coordinator
  // aborted.
  void DropIfAborted();
  void Decline(int64_t checkpoint_id, const std::string& reason);
  // Waits for the upload in progress, if any.
  void Join();

 private:
  struct PendingCheckpoint {
    v1::AcknowledgeCheckpointRequest ack;
    std::filesystem::path target;  // the state file in checkpoint storage
    uint64_t sink_mark = 0;        // the sink's count of features at the barrier
    int64_t begun_ms = 0;
  };
  void Upload(PendingCheckpoint pending, std::unique_ptr<StateSnapshot> state_snapshot);

  const TaskCheckpointerOptions options_;
  WindowEngine* const engine_;
  FeatureSink* const sink_;
  DeadLetterProducer* const dead_letters_;
  const CheckpointInbox* const inbox_;
  const std::atomic<bool>* const cancel_;
  CheckpointProbe* const probe_;

  // Synchronous part done, the engine still writing its state to RocksDB.
  std::optional<PendingCheckpoint> pending_;
  std::thread uploader_;  // the asynchronous part of the last checkpoint
};

}  // namespace slipstream
