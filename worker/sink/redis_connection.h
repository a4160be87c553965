// The Redis sink's connection, private to worker/sink: hiredis handles as
// RAII types, the blocking commands of the handshake, and the pipelined
// send/receive of the writer thread. Only the writer thread (and Start,
// before that thread exists) touches a connection.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/sink/redis_sink.h"

// hiredis's types; its header stays in the .cc files that read replies.
struct redisContext;
struct redisReply;

namespace slipstream::redis {

struct ContextDeleter {
  void operator()(redisContext* c) const;
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;
struct ReplyDeleter {
  void operator()(redisReply* r) const;
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// One blocking command on a fresh connection (the handshake).
// Unavailable: the connection failed; InvalidArgument: Redis's error reply.
[[nodiscard]] absl::StatusOr<ReplyPtr> Command(redisContext* ctx, const std::vector<std::string>& args);

// A reply's string ("" when it has none).
std::string ReplyText(const redisReply& r);

// Connects to redis.host:redis.port, authenticates (or checks that Redis
// needs no password) and selects redis.db. Unavailable: retry later;
// PermissionDenied / InvalidArgument: a configuration error, naming its key.
[[nodiscard]] absl::StatusOr<ContextPtr> Connect(const RedisSinkOptions& options);

// Writes a buffer of pipelined RESP commands; false when the connection failed.
[[nodiscard]] bool SendPipelined(redisContext* ctx, const std::string& resp);

// The next reply of the pipeline; null when the connection failed.
ReplyPtr NextReply(redisContext* ctx);

// What went wrong with a connection, for the log ("reconnecting" when it
// did not fail itself, e.g. after a NOSCRIPT or READONLY).
std::string ConnectionProblem(const redisContext& ctx);

}  // namespace slipstream::redis
