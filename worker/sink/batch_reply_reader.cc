#include "worker/sink/batch_reply_reader.h"

#include <hiredis/hiredis.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "spdlog/spdlog.h"
#include "worker/sink/redis_connection.h"
#include "worker/sink/redis_write_guard.h"

namespace slipstream {

BatchReplyReader::BatchReplyReader(RedisSinkProbe& probe, OnRejected on_rejected)
    : probe_(probe), on_rejected_(std::move(on_rejected)) {}

namespace {

BatchReplyReader::Outcome ConnectionLost() {
  BatchReplyReader::Outcome outcome;
  outcome.kind = BatchReplyReader::Outcome::Kind::kConnectionLost;
  return outcome;
}

}  // namespace

BatchReplyReader::Outcome BatchReplyReader::Read(redis::Connection& conn, std::vector<FeatureWrite>* features,
                                                 bool guarded, int replica_acks) {
  Outcome outcome;
  redis::ReplyPtr mark = conn.NextReply();
  redis::ReplyPtr mark_ttl = mark ? conn.NextReply() : nullptr;
  if (!mark || !mark_ttl) return ConnectionLost();
  // Without its mark a plain write could be newer than the marks say:
  // resend the batch through the guard (harmless for what did land).
  const bool unmarked = mark->type == REDIS_REPLY_ERROR;
  if (unmarked) NoteRefusedMark(*mark, &outcome);
  // The features Redis took (written, or kept a newer version): they count
  // only once the replicas have them too.
  std::vector<const FeatureWrite*> landed;
  for (const FeatureWrite& f : *features) {
    redis::ReplyPtr first = conn.NextReply();
    redis::ReplyPtr second = first && !guarded ? conn.NextReply() : nullptr;
    if (!first || (!guarded && !second)) return ConnectionLost();
    const size_t again_before = outcome.again.size();
    const int64_t rejected_before = rejected_;
    if (unmarked) {
      if (first->type == REDIS_REPLY_ERROR) probe_.ErrorReply();
      outcome.again.push_back(f);
    } else if (guarded) {
      SettleScriptReply(f, *first, &outcome);
    } else {
      SettlePlain(f, first.get(), second.get(), &outcome);
    }
    if (outcome.again.size() == again_before && rejected_ == rejected_before) landed.push_back(&f);
  }
  if (replica_acks > 0) {
    redis::ReplyPtr wait = conn.NextReply();
    if (!wait) return ConnectionLost();
    SettleWait(*wait, replica_acks, conn.address(), landed, &outcome);
  }
  return outcome;
}

void BatchReplyReader::NoteRefusedMark(const redisReply& mark, Outcome* outcome) {
  const std::string text = redis::ReplyText(mark);
  probe_.ErrorReply();
  NoteError(text, "retrying");
  if (ClassifyRedisError(text) == RedisErrorKind::kTransientReconnect) outcome->reconnect_before_retry = true;
}

void BatchReplyReader::SettleWait(const redisReply& wait, int replica_acks, const std::string& address,
                                  const std::vector<const FeatureWrite*>& landed, Outcome* outcome) {
  if (wait.type == REDIS_REPLY_INTEGER && wait.integer >= replica_acks) return;
  // Acknowledged by the master alone: a failover now could lose them. Sent
  // again (guarded) on a new connection, which reads the slot map and the
  // replicas again.
  probe_.ErrorReply();
  NoteError(wait.type == REDIS_REPLY_INTEGER
                ? absl::StrCat("WAIT: ", wait.integer, " of ", replica_acks, " replicas have the writes of ", address)
                : absl::StrCat("WAIT on ", address, ": ", redis::ReplyText(wait)),
            "retrying");
  for (const FeatureWrite* f : landed) outcome->again.push_back(*f);
  outcome->reconnect_before_retry = true;
}

// One feature of a plain batch: its HSET and EXPIRE replies.
void BatchReplyReader::SettlePlain(const FeatureWrite& f, const redisReply* hset, const redisReply* expire,
                                   Outcome* outcome) {
  for (const redisReply* r : {hset, expire}) {
    if (r->type != REDIS_REPLY_ERROR) continue;
    probe_.ErrorReply();
    const std::string text = redis::ReplyText(*r);
    const RedisErrorKind kind = ClassifyRedisError(text);
    if (kind == RedisErrorKind::kPermanent && r == hset) {
      NoteError(text, "to the dead-letter topic");
      Reject(f, text);
      return;
    }
    // Transient, or a refused EXPIRE: both go again, together.
    NoteError(text, "retrying");
    if (kind == RedisErrorKind::kTransientReconnect) outcome->reconnect_before_retry = true;
    outcome->again.push_back(f);
    return;
  }
}

// One feature of a guarded batch: its script call's reply.
void BatchReplyReader::SettleScriptReply(const FeatureWrite& f, const redisReply& r, Outcome* outcome) {
  if (r.type == REDIS_REPLY_INTEGER) {
    if (r.integer == 0) probe_.KeptNewer();
    return;
  }
  const std::string text =
      r.type == REDIS_REPLY_ERROR ? redis::ReplyText(r) : absl::StrCat("unexpected reply to the write script (type ", r.type, ")");
  probe_.ErrorReply();
  const RedisErrorKind kind = ClassifyRedisError(text);
  if (kind == RedisErrorKind::kScriptMissing) {
    // Redis lost its script cache (a restart, SCRIPT FLUSH): the
    // reconnection loads it again; the feature goes again meanwhile.
    NoteError(text, "loading the script again");
    outcome->reconnect_before_retry = true;
    outcome->again.push_back(f);
    return;
  }
  if (kind == RedisErrorKind::kPermanent && r.type == REDIS_REPLY_ERROR) {
    NoteError(text, "to the dead-letter topic");
    Reject(f, text);
    return;
  }
  NoteError(text, "retrying");
  if (kind == RedisErrorKind::kTransientReconnect) outcome->reconnect_before_retry = true;
  outcome->again.push_back(f);
}

void BatchReplyReader::Reject(const FeatureWrite& f, const std::string& error) {
  ++rejected_;
  probe_.Rejected();
  if (on_rejected_) on_rejected_(f, error);
}

void BatchReplyReader::NoteError(const std::string& text, const char* action) {
  const int64_t now = Clock::Real().WallMs();
  probe_.LastError(text, now);
  ++errors_since_log_;
  if (now >= next_error_log_ms_) {
    spdlog::warn("redis sink: {} error repl{} since the last report; the latest: {} ({})", errors_since_log_,
                 errors_since_log_ == 1 ? "y" : "ies", text, action);
    errors_since_log_ = 0;
    next_error_log_ms_ = now + 10000;
  }
}

}  // namespace slipstream
