#include "worker/sink/redis_sink_writer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "common/clock.h"
#include "spdlog/spdlog.h"
#include "worker/sink/redis_batch_encoding.h"
#include "worker/sink/redis_write_guard.h"

namespace slipstream {

RedisSinkWriter::RedisSinkWriter(const RedisSinkOptions& options, ShardRouter router,
                                 std::shared_ptr<const redis::TlsContext> tls, RedisSinkQueue& queue,
                                 RedisSinkProbe& probe)
    : options_(options),
      router_(std::move(router)),
      tls_(std::move(tls)),
      queue_(queue),
      probe_(probe),
      handshake_(options),
      replies_(probe, options.on_rejected),
      mark_field_(HighWaterField(options.job_id, options.writer_index)) {}

absl::Status RedisSinkWriter::ConnectAtStart() {
  absl::Status s = ConnectAll();
  if (absl::IsUnavailable(s)) {
    // Redis may come up after us: the writer keeps retrying and holds the
    // pipeline back meanwhile, exactly as after a connection loss.
    spdlog::warn("redis sink: {}; retrying in the background", s.message());
    return absl::OkStatus();
  }
  // OK, or AUTH, SELECT or TLS refused (a configuration error), or fenced out.
  return s;
}

void RedisSinkWriter::Run() {
  for (;;) {
    Step step = Step::kContinue;
    if (connections_.empty() && in_flight_.empty()) {
      step = ConnectForWork();
    } else {
      if (retry_.empty()) {
        step = FillPipeline();
      } else if (in_flight_.empty()) {
        step = ResendRefused();
      }
      if (step == Step::kContinue && !in_flight_.empty()) step = ReadOldestBatch();
    }
    if (step == Step::kStop) return;
    if (step == Step::kGiveUp) return GiveUp();
  }
}

// Connects lazily, but before anything is sent: the handshake fences older
// attempts and reads the marks first.
RedisSinkWriter::Step RedisSinkWriter::ConnectForWork() {
  if (!queue_.WaitForWork(!retry_.empty())) return Step::kStop;
  return Recover() ? Step::kContinue : Step::kGiveUp;
}

// Keeps up to kMaxBatchesInFlight batches sent ahead of their replies, so
// Redis works on one batch while we format the next and read replies.
RedisSinkWriter::Step RedisSinkWriter::FillPipeline() {
  while (in_flight_.size() < RedisSink::kMaxBatchesInFlight) {
    Batch batch;
    std::vector<FeatureWrite> features;
    switch (queue_.TakeBatch(static_cast<size_t>(options_.batch_size), in_flight_.empty(),
                             handshake_.guard_up_to(), &features, &batch.guarded)) {
      case RedisSinkQueue::Take::kStop:
        return Step::kStop;
      case RedisSinkQueue::Take::kNothingNow:
        return Step::kContinue;
      case RedisSinkQueue::Take::kBatch:
        break;
    }
    batch.features = features.size();
    Split(std::move(features), &batch);
    batch.first_sent = std::chrono::steady_clock::now();
    in_flight_.push_back(std::move(batch));
    if (!Send(in_flight_.back()) && !Recover()) return Step::kGiveUp;
  }
  return Step::kContinue;
}

// Redis said "not now": wait, then resend what it refused, guarded.
RedisSinkWriter::Step RedisSinkWriter::ResendRefused() {
  // Stopping (not cancelled): give up after about a minute of refusals.
  if (queue_.flags().stopping && ++retry_rounds_ > 30) return Step::kGiveUp;
  retry_backoff_ms_ = retry_backoff_ms_ == 0 ? 50 : std::min<int64_t>(retry_backoff_ms_ * 2, 2000);
  if (!queue_.Pause(retry_backoff_ms_)) return Step::kGiveUp;
  if (reconnect_before_retry_) {
    reconnect_before_retry_ = false;
    if (!Recover()) return Step::kGiveUp;
  }
  Batch batch;
  batch.features = retry_.size();
  Split(retry_, &batch);  // kept in `retry_` until the replies are read
  batch.guarded = true;
  batch.retry = true;
  batch.first_sent = std::chrono::steady_clock::now();
  in_flight_.push_back(std::move(batch));
  if (!Send(in_flight_.back()) && !Recover()) return Step::kGiveUp;
  return Step::kContinue;
}

RedisSinkWriter::Step RedisSinkWriter::ReadOldestBatch() {
  Batch& batch = in_flight_.front();
  while (!batch.parts.empty()) {
    Part& part = batch.parts.front();
    BatchReplyReader::Outcome outcome =
        replies_.Read(*connections_[part.shard], &part.features, batch.guarded, part.replica_acks);
    reconnect_before_retry_ = reconnect_before_retry_ || outcome.reconnect_before_retry;
    // The unread parts (this one included) are resent on the new connections.
    if (outcome.kind == BatchReplyReader::Outcome::Kind::kConnectionLost) {
      return Recover() ? Step::kContinue : Step::kGiveUp;
    }
    for (FeatureWrite& f : outcome.again) batch.again.push_back(std::move(f));
    batch.parts.erase(batch.parts.begin());
  }
  SettleBatch(batch);
  in_flight_.pop_front();
  return Step::kContinue;
}

// A batch's replies are read: what Redis refused for now joins `retry_`, and
// the features before it are acknowledged once nothing waits to be resent.
void RedisSinkWriter::SettleBatch(Batch& batch) {
  const double latency_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - batch.first_sent).count();
  if (!batch.retry) settled_ += batch.features;
  if (batch.retry) retry_.clear();
  for (FeatureWrite& f : batch.again) retry_.push_back(std::move(f));
  if (retry_.empty()) {
    retry_backoff_ms_ = 0;
    retry_rounds_ = 0;
  }
  probe_.BatchLatency(latency_ms);
  uint64_t acknowledged = 0;
  if (retry_.empty()) std::swap(acknowledged, settled_);
  queue_.Acknowledge(acknowledged);
}

absl::Status RedisSinkWriter::ConnectAll() {
  connections_.clear();
  if (absl::Status s = router_.Refresh(options_, tls_.get()); !s.ok()) return s;
  std::vector<std::unique_ptr<redis::Connection>> connections;
  for (const ShardRouter::Shard& shard : router_.shards()) {
    absl::StatusOr<std::unique_ptr<redis::Connection>> c =
        redis::Connect(options_, shard.node.host, shard.node.port, tls_.get());
    if (!c.ok()) return c.status();
    if (absl::Status s = handshake_.Run(**c, shard.writers_key); !s.ok()) return s;
    connections.push_back(std::move(*c));
  }
  connections_ = std::move(connections);
  // Our mark starts at the marks read: a replay's batches are older than
  // what an earlier attempt of this writer index marked, and lowering that
  // field would let the attempt after us write plain over newer data.
  high_water_ = std::max(high_water_, handshake_.highest_mark_read());
  return absl::OkStatus();
}

void RedisSinkWriter::Split(std::vector<FeatureWrite> features, Batch* batch) const {
  batch->parts.clear();
  const size_t shards = router_.shards().size();
  if (shards <= 1) {
    batch->parts.push_back({0, std::move(features)});
    return;
  }
  std::vector<Part> parts(shards);
  for (FeatureWrite& f : features) parts[router_.ShardOf(f.key)].features.push_back(std::move(f));
  for (size_t i = 0; i < shards; ++i) {
    if (parts[i].features.empty()) continue;
    parts[i].shard = static_cast<int>(i);
    batch->parts.push_back(std::move(parts[i]));
  }
}

bool RedisSinkWriter::Send(Batch& batch) {
  int64_t order = high_water_;
  for (const Part& part : batch.parts) {
    for (const FeatureWrite& f : part.features) order = std::max(order, f.order);
  }
  high_water_ = order;
  const std::string mark_value = absl::StrCat(order);
  for (Part& part : batch.parts) {
    const ShardRouter::Shard& shard = router_.shards()[part.shard];
    const HighWaterMark mark{shard.writers_key, mark_field_, mark_value};
    resp_.clear();
    if (batch.guarded) {
      EncodeGuardedBatch(part.features, handshake_.guarded_script_sha(), mark, &resp_);
      probe_.Guarded(static_cast<int64_t>(part.features.size()));
    } else {
      EncodePlainBatch(part.features, mark, &resp_);
    }
    part.replica_acks = ReplicaAcksFor(shard);
    // Half the I/O timeout: WAIT answers before our read gives up on it.
    if (part.replica_acks > 0) EncodeWaitForReplicas(part.replica_acks, std::max<int64_t>(options_.timeout_ms / 2, 100), &resp_);
    if (!connections_[part.shard]->Send(resp_)) return false;
  }
  return true;
}

int RedisSinkWriter::ReplicaAcksFor(const ShardRouter::Shard& shard) const {
  if (options_.replica_acks >= 0) return options_.replica_acks;
  return router_.cluster() ? std::min(shard.replicas, 1) : 0;
}

bool RedisSinkWriter::Recover() {
  if (!connections_.empty()) DropConnection();
  int64_t backoff_ms = 100;
  for (int attempt = 0;; ++attempt) {
    absl::Status c = ConnectAll();
    if (c.ok()) {
      if (ResendInFlight()) {
        if (attempt > 0) spdlog::info("redis sink: reconnected to {}", router_.Describe());
        return true;
      }
      connections_.clear();
    } else if (absl::IsFailedPrecondition(c)) {
      spdlog::error("redis sink: fenced out: {}; this attempt writes nothing more", c.message());
      queue_.FencedOut(handshake_.fenced_by());
      return false;
    } else {
      probe_.ConnectionError();
      probe_.LastError(std::string(c.message()), Clock::Real().WallMs());
      spdlog::warn("redis sink: {} (retrying in {} ms)", c.message(), backoff_ms);
    }
    // Give up only when stopping and Redis stays away for long, or at once
    // when discarding.
    const RedisSinkQueue::Flags flags = queue_.flags();
    if ((flags.stopping && attempt > 20) || flags.discarding) return false;
    if (!queue_.Pause(backoff_ms)) return false;
    backoff_ms = std::min<int64_t>(backoff_ms * 2, 5000);
  }
}

void RedisSinkWriter::DropConnection() {
  probe_.ConnectionError();
  std::string problem;
  for (const auto& c : connections_) {
    if (c->failed()) problem = c->Problem();
  }
  if (problem.empty()) {
    // A reconnection asked for by an error reply (READONLY, MOVED, WAIT,
    // NOSCRIPT): that reply stays the last error.
    spdlog::warn("redis sink: reconnecting; resending {} unacknowledged batches", in_flight_.size());
  } else {
    spdlog::warn("redis sink: connection lost ({}); resending {} unacknowledged batches", problem, in_flight_.size());
    probe_.LastError(absl::StrCat("connection lost: ", problem), Clock::Real().WallMs());
  }
  connections_.clear();
}

bool RedisSinkWriter::ResendInFlight() {
  for (Batch& batch : in_flight_) {
    // The slot map may have changed: split the unread parts again.
    std::vector<FeatureWrite> unread;
    for (Part& part : batch.parts) {
      for (FeatureWrite& f : part.features) unread.push_back(std::move(f));
    }
    Split(std::move(unread), &batch);
    // Some of it may have landed, and newer writes after it: only the
    // guard may put it there again.
    batch.guarded = true;
    if (!Send(batch)) return false;
  }
  return true;
}

void RedisSinkWriter::GiveUp() {
  size_t lost = retry_.size();
  for (const Batch& batch : in_flight_) lost += batch.retry ? 0 : batch.features;
  if (queue_.flags().discarding) {
    spdlog::info("redis sink: {} features of a cancelled or superseded attempt not acknowledged (its successor "
                 "replays them)",
                 lost);
  } else {
    spdlog::error("redis sink: stopping with {} features not written: Redis unreachable or refusing writes", lost);
  }
}

}  // namespace slipstream
