// What keeps the Redis sink's writes exact under faults, as Redis sees it:
//
//  - Monotonic writes. A key never goes back to an older version: a write is
//    applied only if none of its guard fields (user_features: window_end;
//    session_features: session_end and event_count) is smaller than the
//    stored one. The check runs inside Redis, atomically with the HSET and
//    its EXPIRE (kGuardedWriteScript). It is needed only where an older
//    version can meet a newer one: resends (after a lost connection or an
//    error reply) and replays of what an earlier attempt may already have
//    written. The sink knows the latter from the high-water marks: before
//    every batch each writer records the largest order value (window_end or
//    session_end) it is about to write, in the same pipeline, so Redis never
//    holds a version newer than the largest mark (a writer's mark starts at
//    the largest it read: a replay never lowers one). A starting attempt reads
//    the marks once; features up to that point go through the script, later
//    ones as plain pipelined HSET + EXPIRE (a newer version cannot exist).
//  - Fencing. Each connection is named after its job, attempt and writer;
//    a starting attempt raises the job's fence to its attempt and kills the
//    connections of older attempts, before it writes anything. An older
//    attempt that reconnects finds the fence higher than itself and stops:
//    no write of a superseded attempt lands after the new one started.
//
// Both live in one small hash per Redis database, kWritersKey (fields
// "fence:<job>" and "high-water:<job>:<writer>"), kept for a day after the
// last write. On a Redis Cluster each master has its own
// (ShardWritersKey): a mark must reach the shard of the writes it covers
// before them, in the same connection, and a failover carries both to the
// replica in that order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace slipstream {

inline constexpr std::string_view kWritersKey = "slipstream:writers";
inline constexpr int kWritersKeyTtlSeconds = 86400;
// "slipstream:writers:{<tag>}", the tag hashing to `slot`: a Redis Cluster
// master's writers key, in its lowest slot.
std::string ShardWritersKey(uint16_t slot);

// EVALSHA <sha> 1 <key> <ttl> <g> g x (field, value) <f> f x field-or-value:
// the feature is written (HSET + EXPIRE) unless a stored guard field is
// newer. Returns 1 written, 0 kept (a newer version is stored), or the
// error Redis gave for that key (e.g. WRONGTYPE) as an error reply.
extern const char* const kGuardedWriteScript;

// EVALSHA <sha> 1 <writers key> <job> <attempt> <ttl>: raises the job's
// fence to `attempt` unless it is already higher. Returns the fence.
extern const char* const kFenceScript;

std::string FenceField(std::string_view job_id);
std::string HighWaterField(std::string_view job_id, int writer_index);
inline constexpr std::string_view kHighWaterPrefix = "high-water:";
// The client name of a writer's connection, and the attempt a name belongs
// to when it is a writer of `job_id` (-1 otherwise).
std::string WriterClientName(std::string_view job_id, int64_t attempt, int writer_index);
int64_t AttemptOfWriterClient(std::string_view client_name, std::string_view job_id);

// How the sink treats an error reply.
enum class RedisErrorKind {
  kTransient,          // retried with backoff (OOM, MISCONF, LOADING, BUSY, TRYAGAIN, a cluster's ASK, ...)
  kTransientReconnect, // retried on a new connection (READONLY, NOAUTH, MASTERDOWN; a cluster's MOVED)
  kScriptMissing,      // NOSCRIPT: load the script again, then retry
  kPermanent,          // the feature goes to the dead-letter topic (WRONGTYPE, ...)
};
RedisErrorKind ClassifyRedisError(std::string_view error_text);

}  // namespace slipstream
