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

BatchReplyReader::Outcome BatchReplyReader::Read(redisContext* ctx, std::vector<FeatureWrite>* features,
                                                 bool guarded) {
  Outcome outcome;
  if (!guarded) {
    outcome.kind = ReadPlainReplies(ctx, *features, &outcome);
    return outcome;
  }
  redis::ReplyPtr reply = redis::NextReply(ctx);
  if (!reply) {
    outcome.kind = Outcome::Kind::kConnectionLost;
    return outcome;
  }
  ReadScriptReply(*reply, features, &outcome);
  return outcome;
}

void BatchReplyReader::ReadScriptReply(const redisReply& r, std::vector<FeatureWrite>* features, Outcome* outcome) {
  if (r.type == REDIS_REPLY_ERROR) {
    // The whole script was refused (OOM, READONLY, NOSCRIPT, ...).
    const std::string text = redis::ReplyText(r);
    probe_.ErrorReply();
    const RedisErrorKind kind = ClassifyRedisError(text);
    if (kind == RedisErrorKind::kScriptMissing) {
      NoteError(text, "loading the script again");
      outcome->kind = Outcome::Kind::kScriptMissing;
    } else if (kind == RedisErrorKind::kPermanent) {
      // Not about one key (a script error): every feature is affected.
      NoteError(text, "to the dead-letter topic");
      for (const FeatureWrite& f : *features) Reject(f, text);
    } else {
      NoteError(text, "retrying");
      if (kind == RedisErrorKind::kTransientReconnect) outcome->reconnect_before_retry = true;
      outcome->again = std::move(*features);
    }
  } else if (r.type != REDIS_REPLY_ARRAY || r.elements != features->size()) {
    NoteError(absl::StrCat("unexpected reply to the write script (type ", r.type, ")"), "retrying");
    outcome->again = std::move(*features);
  } else {
    for (size_t i = 0; i < features->size(); ++i) SettleScriptReply((*features)[i], *r.element[i], outcome);
  }
}

BatchReplyReader::Outcome::Kind BatchReplyReader::ReadPlainReplies(redisContext* ctx,
                                                                   const std::vector<FeatureWrite>& features,
                                                                   Outcome* outcome) {
  redis::ReplyPtr mark = redis::NextReply(ctx);
  redis::ReplyPtr mark_ttl = redis::NextReply(ctx);
  if (!mark || !mark_ttl) return Outcome::Kind::kConnectionLost;
  // Without its mark a plain write could be newer than the marks say:
  // resend the batch through the guard (harmless for what did land).
  const bool unmarked = mark->type == REDIS_REPLY_ERROR;
  if (unmarked) {
    probe_.ErrorReply();
    NoteError(redis::ReplyText(*mark), "retrying");
    if (ClassifyRedisError(redis::ReplyText(*mark)) == RedisErrorKind::kTransientReconnect) {
      outcome->reconnect_before_retry = true;
    }
  }
  for (const FeatureWrite& f : features) {
    redis::ReplyPtr hset = redis::NextReply(ctx);
    redis::ReplyPtr expire = hset ? redis::NextReply(ctx) : nullptr;
    if (!hset || !expire) return Outcome::Kind::kConnectionLost;
    if (unmarked) {
      if (hset->type == REDIS_REPLY_ERROR) probe_.ErrorReply();
      outcome->again.push_back(f);
      continue;
    }
    SettlePlain(f, hset.get(), expire.get(), outcome);
  }
  return Outcome::Kind::kRead;
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

// One feature of a guarded batch: the script's reply for it.
void BatchReplyReader::SettleScriptReply(const FeatureWrite& f, const redisReply& r, Outcome* outcome) {
  if (r.type == REDIS_REPLY_INTEGER) {
    if (r.integer == 0) probe_.KeptNewer();
    return;
  }
  const std::string text = redis::ReplyText(r);
  probe_.ErrorReply();
  if (ClassifyRedisError(text) == RedisErrorKind::kPermanent) {
    NoteError(text, "to the dead-letter topic");
    Reject(f, text);
    return;
  }
  NoteError(text, "retrying");
  outcome->again.push_back(f);
}

void BatchReplyReader::Reject(const FeatureWrite& f, const std::string& error) {
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
