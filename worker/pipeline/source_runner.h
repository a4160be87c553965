// SourceRunner: the source thread of a FeatureTask (Run's caller), Flink's
// source task with its keyBy partitioner. It polls the Kafka source, parses
// and validates records (invalid ones -> dead-letter topic), tracks each
// partition's watermark and idleness, and routes every event by key group
// to the worker that owns it: the local channel of the InputGate, or that
// peer's OutboundChannel (gRPC). After every poll batch the source's
// watermark (or its idleness) follows the records on every channel, in band.
// Between two poll batches it injects the barriers the coordinator asked for
// (CheckpointInbox), and commits the offsets of completed checkpoints.
//
// Everything here belongs to the source thread, except the outbound
// channels' status (ChannelStatus, any thread). It never touches the window
// state; what it shares with the operator thread is the gate (thread-safe),
// the dead-letter producer (thread-safe) and the AttemptControl flags.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/event.h"
#include "proto/slipstream.pb.h"
#include "worker/exchange/input_gate.h"
#include "worker/pipeline/feature_task.h"
#include "worker/time/watermark_tracker.h"

namespace slipstream {

class AttemptControl;
class CheckpointInbox;
class OperatorProbe;
class OutboundChannel;
class SourceProbe;
struct SourceRecord;

class SourceRunner {
 public:
  // Not owned; all outlive the runner.
  struct Parts {
    const FeatureTaskOptions* options = nullptr;
    const std::vector<int>* owner_of_key_group = nullptr;  // key group -> worker index
    KafkaSource* source = nullptr;
    DeadLetterProducer* dead_letters = nullptr;
    const FeatureSink* sink = nullptr;  // for the progress log
    InputGate* gate = nullptr;
    CheckpointInbox* inbox = nullptr;
    AttemptControl* control = nullptr;
    SourceProbe* probe = nullptr;
    const OperatorProbe* operator_probe = nullptr;  // for the progress log
  };
  // Sets up the partitions' watermarks (restored ones from the checkpoint)
  // and one channel per peer (connected on first use).
  explicit SourceRunner(const Parts& parts);
  ~SourceRunner();

  // Runs until `stop` (then sends what is buffered and end of input on every
  // channel) or the attempt is cancelled.
  void Run(const std::atomic<bool>& stop);
  // Source thread (or once it ended).
  void PublishCounters();
  // Bounded: every partition reached its stopping offset and end of input
  // (watermark INT64_MAX) went out on every channel.
  bool input_finished() const { return input_finished_; }

  // Any thread: the channels to peers, until CloseChannels().
  std::vector<v1::ChannelStatus> ChannelStatus() const;
  // Once the source thread ended: closes the channels to peers.
  void CloseChannels();

 private:
  // What is buffered for one worker, and what it was last sent.
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

  absl::Status EmitTo(int index, bool end_of_input, const std::atomic<bool>& give_up, int64_t barrier_id = 0);
  absl::Status InjectBarrier(const v1::TriggerCheckpointRequest& request, const std::atomic<bool>& give_up);
  absl::Status RouteBatch(const std::vector<SourceRecord>& records, int64_t now_ms, const std::atomic<bool>& give_up);
  // One poll batch and what follows it; false when the loop ends.
  bool Step();
  // Stopped after a stop-with-savepoint barrier; false once it failed.
  bool HeldAtStopBarrier();
  void CommitCompletedOffsets();
  void LogProgress(int64_t now_ms);
  void SendEndOfInput();

  const FeatureTaskOptions& options_;
  const std::vector<int>& owner_of_key_group_;
  KafkaSource* const source_;
  DeadLetterProducer* const dead_letters_;
  const FeatureSink* const sink_;
  InputGate* const gate_;
  CheckpointInbox* const inbox_;
  AttemptControl* const control_;
  SourceProbe* const probe_;
  const OperatorProbe* const operator_probe_;

  WatermarkTracker watermarks_;
  EventParser parser_;
  Event event_;               // reused: parsing allocates only while strings grow
  std::string event_fields_;  // reused: the event's encoded fields (record_codec.h)
  std::vector<SourceRecord> records_;  // the last poll batch
  std::vector<OutBuffer> out_;         // by worker index
  int64_t source_watermark_ = kMinWatermark;
  bool source_idle_ = false;
  int64_t local_backpressure_ms_ = 0;
  // The barrier being emitted: its request and the offsets it carries.
  std::optional<v1::TriggerCheckpointRequest> barrier_request_;
  std::vector<SourcePosition> barrier_offsets_;
  // Offsets of barriers whose checkpoint may still complete: committed to
  // the consumer group when it does (lag monitoring only).
  std::map<int64_t, std::vector<std::pair<int, int64_t>>> offsets_to_commit_;
  // Stop-with-savepoint (TriggerCheckpointRequest.stop_after): the barrier
  // the source stopped after; 0: running. It resumes if the savepoint fails.
  int64_t stopped_at_ = 0;
  bool input_finished_ = false;  // bounded: every partition finished
  int64_t last_publish_ms_ = 0;
  int64_t last_report_ms_ = 0;
  int64_t last_report_records_ = 0;

  // By worker index; null for this worker. The source thread sends on them
  // without the lock: only clearing them (CloseChannels, after the source
  // thread ended) and reading their status take it.
  std::vector<std::unique_ptr<OutboundChannel>> outbound_;
  mutable std::mutex outbound_mu_;
};

}  // namespace slipstream
