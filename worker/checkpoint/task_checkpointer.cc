#include "worker/checkpoint/task_checkpointer.h"

#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "spdlog/spdlog.h"
#include "worker/checkpoint/checkpoint_inbox.h"
#include "worker/checkpoint/checkpoint_probe.h"
#include "worker/sink/dead_letter_producer.h"
#include "worker/sink/feature_sink.h"
#include "worker/state/state_store.h"
#include "worker/window/window_engine.h"

namespace slipstream {

TaskCheckpointer::TaskCheckpointer(TaskCheckpointerOptions options, WindowEngine* engine, FeatureSink* sink,
                                   DeadLetterProducer* dead_letters, const CheckpointInbox* inbox,
                                   const std::atomic<bool>* cancel, CheckpointProbe* probe)
    : options_(std::move(options)),
      engine_(engine),
      sink_(sink),
      dead_letters_(dead_letters),
      inbox_(inbox),
      cancel_(cancel),
      probe_(probe) {}

TaskCheckpointer::~TaskCheckpointer() { Join(); }

void TaskCheckpointer::Join() {
  if (uploader_.joinable()) uploader_.join();
}

void TaskCheckpointer::Decline(int64_t checkpoint_id, const std::string& reason) {
  probe_->Declined();
  spdlog::warn("checkpoint {} declined: {}", checkpoint_id, reason);
  if (!options_.decline) return;
  v1::DeclineCheckpointRequest request;
  request.set_worker_id(options_.worker_id);
  request.set_job_id(options_.job_id);
  request.set_attempt(options_.attempt);
  request.set_checkpoint_id(checkpoint_id);
  request.set_reason(reason);
  options_.decline(request);
}

void TaskCheckpointer::DropIfAborted() {
  if (pending_ && inbox_->Aborted(pending_->ack.checkpoint_id())) pending_.reset();
}

void TaskCheckpointer::Snapshot(const BarrierAligner::Aligned& aligned) {
  const int64_t id = aligned.checkpoint_id;
  const int64_t alignment_ms = Clock::Real().SteadyMs() - aligned.started_ms;
  const int64_t sync_begin = Clock::Real().SteadyMs();
  if (pending_) {
    // Its state was never complete: a newer barrier overtook it.
    Decline(pending_->ack.checkpoint_id(), absl::StrCat("superseded by checkpoint ", id));
    pending_.reset();
  }
  // Synchronous part: mark the window state as of the barrier (O(1); the
  // engine writes it to RocksDB in bounded steps while processing goes on,
  // copy-on-write), and note how far the sink has been given features:
  // every feature emitted before the barrier must be in Redis before the
  // checkpoint counts (the uploader waits for that, not the operator).
  engine_->BeginSnapshot();
  const uint64_t sink_mark = sink_->Enqueued();
  const int64_t sync_ms = Clock::Real().SteadyMs() - sync_begin;
  probe_->Snapshotted(alignment_ms, sync_ms);
  const KeyGroupRange range = options_.key_groups;
  PendingCheckpoint pending;
  pending.sink_mark = sink_mark;
  pending.begun_ms = sync_begin;
  v1::AcknowledgeCheckpointRequest& ack = pending.ack;
  ack.set_worker_id(options_.worker_id);
  ack.set_job_id(options_.job_id);
  ack.set_attempt(options_.attempt);
  ack.set_checkpoint_id(id);
  v1::WorkerSnapshot* snapshot = ack.mutable_snapshot();
  snapshot->set_worker_id(ack.worker_id());
  snapshot->mutable_key_groups()->set_first(range.first);
  snapshot->mutable_key_groups()->set_last(range.last);
  const std::string relative = absl::StrCat("kg-", range.first, "-", range.last, ".sst");
  snapshot->set_state_path(relative);
  for (const SourcePosition& position : aligned.offsets) {
    v1::PartitionOffset* o = snapshot->add_offsets();
    o->set_partition(position.partition);
    o->set_next_offset(position.next_offset);
    o->set_watermark_ms(position.watermark_ms);
    o->set_idle(position.idle);
  }
  snapshot->set_operator_watermark_ms(engine_->watermark());
  snapshot->set_alignment_ms(alignment_ms);
  snapshot->set_sync_ms(sync_ms);
  snapshot->set_users(engine_->stats().users);
  pending.target = std::filesystem::path(aligned.checkpoint_dir) / relative;
  pending_ = std::move(pending);
  // Nothing was written yet when the engine had no change to write.
  MaybeStartUpload();
}

void TaskCheckpointer::MaybeStartUpload() {
  if (!pending_) return;
  std::unique_ptr<StateSnapshot> state_snapshot = engine_->TakeSnapshot();
  if (!state_snapshot) return;
  PendingCheckpoint pending = std::move(*pending_);
  pending_.reset();
  spdlog::info("checkpoint {}: synchronous part {} ms; window state in RocksDB {} ms after the barrier",
               pending.ack.checkpoint_id(), pending.ack.snapshot().sync_ms(),
               Clock::Real().SteadyMs() - pending.begun_ms);
  // One upload at a time.
  Join();
  uploader_ = std::thread([this, pending = std::move(pending), state_snapshot = std::move(state_snapshot)]() mutable {
    Upload(std::move(pending), std::move(state_snapshot));
  });
}

// Asynchronous part: write the snapshot's key groups to checkpoint storage,
// wait for Redis, then acknowledge.
void TaskCheckpointer::Upload(PendingCheckpoint pending, std::unique_ptr<StateSnapshot> state_snapshot) {
  const int64_t begin = Clock::Real().SteadyMs();
  v1::AcknowledgeCheckpointRequest& ack = pending.ack;
  const int64_t id = ack.checkpoint_id();
  // An aborted checkpoint's directory is gone: do not create it again.
  if (inbox_->Aborted(id)) return;
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
  if (inbox_->Aborted(id)) {
    std::filesystem::remove(pending.target, ec);
    return;
  }
  while (!sink_->WaitUntilAcked(pending.sink_mark, 100)) {
    if (cancel_->load()) {
      Decline(id, "the attempt ended before Redis acknowledged the checkpoint's features");
      return;
    }
  }
  // Dead letters of records before the barrier must be in Kafka too: the
  // replay after a restore starts after them (at least once).
  if (absl::Status flushed = dead_letters_->Flush(30000); !flushed.ok()) {
    Decline(id, absl::StrCat("dead letters not delivered: ", std::string(flushed.message())));
    return;
  }
  ack.mutable_snapshot()->set_state_bytes(written->bytes);
  ack.mutable_snapshot()->set_async_ms(Clock::Real().SteadyMs() - begin);
  if (options_.acknowledge) {
    if (absl::Status s = options_.acknowledge(ack); !s.ok()) {
      spdlog::warn("checkpoint {}: acknowledgement not accepted: {}", id, std::string(s.message()));
      return;
    }
  }
  probe_->Acknowledged();
  spdlog::info("checkpoint {}: alignment {} ms, sync {} ms, async {} ms ({} ms writing {} keys, {} bytes; then "
               "waiting for Redis), {} users",
               id, ack.snapshot().alignment_ms(), ack.snapshot().sync_ms(), ack.snapshot().async_ms(), written_ms,
               written->keys, ack.snapshot().state_bytes(), ack.snapshot().users());
}

}  // namespace slipstream
