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

RedisSinkWriter::RedisSinkWriter(const RedisSinkOptions& options, RedisSinkQueue& queue, RedisSinkProbe& probe)
    : options_(options),
      queue_(queue),
      probe_(probe),
      handshake_(options),
      replies_(probe, options.on_rejected),
      mark_field_(HighWaterField(options.job_id, options.writer_index)) {}

absl::Status RedisSinkWriter::ConnectAtStart() {
  absl::StatusOr<redis::ContextPtr> c = Connect();
  if (c.ok()) {
    connection_ = std::move(*c);
  } else if (absl::IsUnavailable(c.status())) {
    // Redis may come up after us: the writer keeps retrying and holds the
    // pipeline back meanwhile, exactly as after a connection loss.
    spdlog::warn("redis sink: {}; retrying in the background", c.status().message());
  } else {
    // AUTH or SELECT refused (a configuration error), or fenced out.
    return c.status();
  }
  return absl::OkStatus();
}

void RedisSinkWriter::Run() {
  for (;;) {
    Step step = Step::kContinue;
    if (!connection_ && in_flight_.empty()) {
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
    switch (queue_.TakeBatch(static_cast<size_t>(options_.batch_size), in_flight_.empty(),
                             handshake_.guard_up_to(), &batch.features, &batch.guarded)) {
      case RedisSinkQueue::Take::kStop:
        return Step::kStop;
      case RedisSinkQueue::Take::kNothingNow:
        return Step::kContinue;
      case RedisSinkQueue::Take::kBatch:
        break;
    }
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
  batch.features = retry_;  // kept in `retry_` until the replies are read
  batch.guarded = true;
  batch.retry = true;
  batch.first_sent = std::chrono::steady_clock::now();
  in_flight_.push_back(std::move(batch));
  if (!Send(in_flight_.back()) && !Recover()) return Step::kGiveUp;
  return Step::kContinue;
}

RedisSinkWriter::Step RedisSinkWriter::ReadOldestBatch() {
  Batch& batch = in_flight_.front();
  // Counted before reading: the reader may move the features into `again`.
  const size_t features = batch.features.size();
  BatchReplyReader::Outcome outcome = replies_.Read(connection_.get(), &batch.features, batch.guarded);
  reconnect_before_retry_ = reconnect_before_retry_ || outcome.reconnect_before_retry;
  switch (outcome.kind) {
    case BatchReplyReader::Outcome::Kind::kConnectionLost:
      return Recover() ? Step::kContinue : Step::kGiveUp;
    case BatchReplyReader::Outcome::Kind::kScriptMissing:
      // Redis lost its script cache (a restart, SCRIPT FLUSH): reconnect,
      // which loads the scripts again and resends.
      return Recover() ? Step::kContinue : Step::kGiveUp;
    case BatchReplyReader::Outcome::Kind::kRead:
      break;
  }
  SettleBatch(batch, features, std::move(outcome.again));
  in_flight_.pop_front();
  return Step::kContinue;
}

// A batch's replies are read: what Redis refused for now joins `retry_`, and
// the features before it are acknowledged once nothing waits to be resent.
void RedisSinkWriter::SettleBatch(const Batch& batch, size_t features, std::vector<FeatureWrite> again) {
  const double latency_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - batch.first_sent).count();
  if (!batch.retry) settled_ += features;
  if (batch.retry) retry_.clear();
  for (FeatureWrite& f : again) retry_.push_back(std::move(f));
  if (retry_.empty()) {
    retry_backoff_ms_ = 0;
    retry_rounds_ = 0;
  }
  probe_.BatchLatency(latency_ms);
  uint64_t acknowledged = 0;
  if (retry_.empty()) std::swap(acknowledged, settled_);
  queue_.Acknowledge(acknowledged);
}

absl::StatusOr<redis::ContextPtr> RedisSinkWriter::Connect() {
  absl::StatusOr<redis::ContextPtr> ctx = redis::Connect(options_);
  if (!ctx.ok()) return ctx;
  if (absl::Status s = handshake_.Run(ctx->get()); !s.ok()) return s;
  // Our mark starts at the marks read: a replay's batches are older than
  // what an earlier attempt of this writer index marked, and lowering that
  // field would let the attempt after us write plain over newer data.
  high_water_ = std::max(high_water_, handshake_.highest_mark_read());
  return ctx;
}

bool RedisSinkWriter::Send(Batch& batch) {
  int64_t order = high_water_;
  for (const FeatureWrite& f : batch.features) order = std::max(order, f.order);
  high_water_ = order;
  const HighWaterMark mark{mark_field_, absl::StrCat(order)};
  resp_.clear();
  if (batch.guarded) {
    EncodeGuardedBatch(batch.features, handshake_.guarded_script_sha(), mark, &resp_);
    probe_.Guarded(static_cast<int64_t>(batch.features.size()));
  } else {
    EncodePlainBatch(batch.features, mark, &resp_);
  }
  return redis::SendPipelined(connection_.get(), resp_);
}

bool RedisSinkWriter::Recover() {
  if (connection_) DropConnection();
  int64_t backoff_ms = 100;
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<redis::ContextPtr> c = Connect();
    if (c.ok()) {
      connection_ = std::move(*c);
      if (ResendInFlight()) {
        if (attempt > 0) spdlog::info("redis sink: reconnected to {}:{}", options_.host, options_.port);
        return true;
      }
      connection_.reset();
    } else if (absl::IsFailedPrecondition(c.status())) {
      spdlog::error("redis sink: fenced out: {}; this attempt writes nothing more", c.status().message());
      queue_.FencedOut(handshake_.fenced_by());
      return false;
    } else {
      probe_.ConnectionError();
      probe_.LastError(std::string(c.status().message()), Clock::Real().WallMs());
      spdlog::warn("redis sink: {} (retrying in {} ms)", c.status().message(), backoff_ms);
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
  const std::string problem = redis::ConnectionProblem(*connection_);
  spdlog::warn("redis sink: connection lost ({}); resending {} unacknowledged batches", problem, in_flight_.size());
  probe_.LastError(absl::StrCat("connection lost: ", problem), Clock::Real().WallMs());
  connection_.reset();
}

bool RedisSinkWriter::ResendInFlight() {
  for (Batch& batch : in_flight_) {
    // Some of it may have landed, and newer writes after it: only the
    // guard may put it there again.
    batch.guarded = true;
    if (!Send(batch)) return false;
  }
  return true;
}

void RedisSinkWriter::GiveUp() {
  size_t lost = retry_.size();
  for (const Batch& batch : in_flight_) lost += batch.retry ? 0 : batch.features.size();
  if (queue_.flags().discarding) {
    spdlog::info("redis sink: {} features of a cancelled or superseded attempt not acknowledged (its successor "
                 "replays them)",
                 lost);
  } else {
    spdlog::error("redis sink: stopping with {} features not written: Redis unreachable or refusing writes", lost);
  }
}

}  // namespace slipstream
