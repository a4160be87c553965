// OperatorRunner: the operator thread of a FeatureTask, Flink's window task.
// It takes batches from the InputGate (this worker's source plus one channel
// per peer, credit-bounded), feeds their records to the WindowEngine for the
// key groups this worker owns (late events -> dead-letter topic), advances
// the engine's watermark to the minimum over the channels that are not idle
// (InputWatermarks), and hands fired windows to the Redis sink, whose
// backpressure stops this loop, which stops returning credits, which stops
// every source that sends here. Barriers go through the BarrierAligner; once
// aligned, the TaskCheckpointer snapshots the state.
//
// Everything here belongs to the operator thread: the window engine is used
// by no other thread while it runs (Run's thread flushes it once this
// thread ended). What it shares: the gate and the sink (thread-safe), the
// CheckpointInbox (thread-safe) and the AttemptControl flags.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "common/event.h"
#include "worker/checkpoint/barrier_aligner.h"
#include "worker/exchange/input_gate.h"
#include "worker/pipeline/feature_task.h"
#include "worker/time/input_watermarks.h"
#include "worker/window/feature_write.h"

namespace slipstream {

class AttemptControl;
class CheckpointInbox;
class InboundEndpoint;
class OperatorProbe;
class TaskCheckpointer;

class OperatorRunner {
 public:
  // Not owned; all outlive the runner.
  struct Parts {
    const FeatureTaskOptions* options = nullptr;
    std::string topic;  // the source topic, for dead letters
    WindowEngine* engine = nullptr;
    StateStore* state = nullptr;  // the engine's, for its size
    FeatureSink* sink = nullptr;
    DeadLetterProducer* dead_letters = nullptr;
    InputGate* gate = nullptr;
    const InboundEndpoint* inbound = nullptr;  // null with one worker
    const CheckpointInbox* inbox = nullptr;
    AttemptControl* control = nullptr;
    TaskCheckpointer* checkpointer = nullptr;
    OperatorProbe* probe = nullptr;
  };
  explicit OperatorRunner(Parts parts);

  // Runs until this worker's own end of input is processed, the task stops
  // after a stop-with-savepoint, or the attempt is cancelled; then closes
  // the gate.
  void Run();
  // Operator thread (or once it ended).
  void PublishCounters();
  // Every channel delivered its end of input (bounded: every window fired).
  bool all_inputs_ended() const { return inputs_.AllEnded(); }

 private:
  // One turn of the loop; false when the loop ends.
  bool Step();
  // Finished at a stop-with-savepoint barrier: resumes if it failed.
  void ResumeIfStopFailed();
  bool NextBatch(InboundBatch* batch);
  // The rest of a turn, after the batch (if any); false when the loop ends.
  bool Housekeep(bool had_batch);
  // Records, watermark, barrier of one batch; false when the attempt ended.
  bool Process(const InboundBatch& batch);
  bool ProcessRecords(const InboundBatch& batch);
  bool FireWindows();
  void OnBarrierOrEnd(const InboundBatch& batch);
  void Replay(std::deque<InboundBatch> batches);

  Parts parts_;
  const int local_;  // this worker's channel
  InputWatermarks inputs_;
  BarrierAligner aligner_;
  std::deque<InboundBatch> replay_;  // held batches to process before the gate's
  // Stop-with-savepoint: the barrier the operator finished at; 0: running.
  // It resumes, with what was set aside meanwhile, if the savepoint fails.
  int64_t finished_at_ = 0;
  std::deque<InboundBatch> after_stop_barrier_;  // never processed unless resumed
  std::vector<FeatureWrite> features_;
  Event event_;  // reused: decoding allocates only while strings grow
  int64_t last_publish_ms_ = 0;
};

}  // namespace slipstream
