#include "worker/sink/redis_connection.h"

#include <hiredis/hiredis.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace slipstream::redis {

void ContextDeleter::operator()(redisContext* c) const { redisFree(c); }
void ReplyDeleter::operator()(redisReply* r) const { freeReplyObject(r); }

absl::StatusOr<ReplyPtr> Command(redisContext* ctx, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) argv.push_back(a.data()), lens.push_back(a.size());
  ReplyPtr reply(
      static_cast<redisReply*>(redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data())));
  if (!reply) return absl::UnavailableError(absl::StrCat("redis: ", ctx->errstr));
  if (reply->type == REDIS_REPLY_ERROR) return absl::InvalidArgumentError(std::string(reply->str, reply->len));
  return reply;
}

std::string ReplyText(const redisReply& r) { return std::string(r.str == nullptr ? "" : r.str, r.len); }

absl::StatusOr<ContextPtr> Connect(const RedisSinkOptions& o) {
  timeval tv{o.timeout_ms / 1000, static_cast<suseconds_t>((o.timeout_ms % 1000) * 1000)};
  ContextPtr ctx(redisConnectWithTimeout(o.host.c_str(), o.port, tv));
  if (!ctx) return absl::UnavailableError("redis: out of memory creating a connection");
  if (ctx->err) {
    return absl::UnavailableError(
        absl::StrCat("redis.host/redis.port: cannot connect to ", o.host, ":", o.port, ": ", ctx->errstr));
  }
  redisSetTimeout(ctx.get(), tv);
  if (!o.password.empty()) {
    if (absl::StatusOr<ReplyPtr> r = Command(ctx.get(), {"AUTH", o.password}); !r.ok()) {
      if (absl::IsUnavailable(r.status())) return r.status();
      return absl::PermissionDeniedError(absl::StrCat("redis.password: AUTH failed: ", r.status().message()));
    }
  } else if (absl::StatusOr<ReplyPtr> r = Command(ctx.get(), {"PING"}); !r.ok()) {
    // A server with requirepass answers every command with NOAUTH: say so
    // at start, naming the key, instead of as rejected writes later.
    if (absl::StartsWith(r.status().message(), "NOAUTH")) {
      return absl::PermissionDeniedError(
          absl::StrCat("redis.password: the Redis server requires a password (", r.status().message(), ")"));
    }
    if (absl::IsUnavailable(r.status())) return r.status();
  }
  if (o.db != 0) {
    if (absl::StatusOr<ReplyPtr> r = Command(ctx.get(), {"SELECT", absl::StrCat(o.db)}); !r.ok()) {
      if (absl::IsUnavailable(r.status())) return r.status();
      return absl::InvalidArgumentError(absl::StrCat("redis.db: SELECT ", o.db, " failed: ", r.status().message()));
    }
  }
  return ctx;
}

bool SendPipelined(redisContext* ctx, const std::string& resp) {
  if (redisAppendFormattedCommand(ctx, resp.data(), resp.size()) != REDIS_OK) return false;
  int done = 0;
  while (!done) {
    if (redisBufferWrite(ctx, &done) != REDIS_OK) return false;
  }
  return true;
}

ReplyPtr NextReply(redisContext* ctx) {
  void* raw = nullptr;
  if (redisGetReply(ctx, &raw) != REDIS_OK) return nullptr;
  return ReplyPtr(static_cast<redisReply*>(raw));
}

std::string ConnectionProblem(const redisContext& ctx) {
  return ctx.err != 0 ? std::string(ctx.errstr) : "reconnecting";
}

}  // namespace slipstream::redis
