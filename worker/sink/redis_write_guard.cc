#include "worker/sink/redis_write_guard.h"

#include <array>
#include <charconv>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "worker/sink/redis_cluster_slots.h"

namespace slipstream {

// `#!lua` (no flags: it may write) makes Redis 7 check OOM, MISCONF and
// READONLY before the script runs. One key per call, so that it runs on a
// Redis Cluster too (a script's keys must share a slot there).
const char* const kGuardedWriteScript = R"lua(#!lua
local key = KEYS[1]
local guards = tonumber(ARGV[2])
local a = 3
if guards > 0 then
  local names = {}
  for g = 1, guards do names[g] = ARGV[a + 2 * (g - 1)] end
  local stored = redis.pcall('HMGET', key, unpack(names))
  if stored.err then return stored end
  for g = 1, guards do
    local old = tonumber(stored[g])
    if old ~= nil and old > tonumber(ARGV[a + 2 * (g - 1) + 1]) then return 0 end
  end
  a = a + 2 * guards
end
local fields = tonumber(ARGV[a])
local r = redis.pcall('HSET', key, unpack(ARGV, a + 1, a + fields))
if type(r) == 'table' and r.err then return r end
redis.call('EXPIRE', key, ARGV[1])
return 1
)lua";

const char* const kFenceScript = R"lua(#!lua
local field = 'fence:' .. ARGV[1]
local fence = tonumber(redis.call('HGET', KEYS[1], field) or '0') or 0
local attempt = tonumber(ARGV[2])
if fence > attempt then return fence end
redis.call('HSET', KEYS[1], field, ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return attempt
)lua";

std::string ShardWritersKey(uint16_t slot) {
  return absl::StrCat(ToAbsl(kWritersKey), ":{", ToAbsl(redis::TagForSlot(slot)), "}");
}

std::string FenceField(std::string_view job_id) { return absl::StrCat("fence:", ToAbsl(job_id)); }

std::string HighWaterField(std::string_view job_id, int writer_index) {
  return absl::StrCat(ToAbsl(kHighWaterPrefix), ToAbsl(job_id), ":", writer_index);
}

std::string WriterClientName(std::string_view job_id, int64_t attempt, int writer_index) {
  return absl::StrCat("slipstream:", ToAbsl(job_id), ":", attempt, ":", writer_index);
}

int64_t AttemptOfWriterClient(std::string_view client_name, std::string_view job_id) {
  const std::string prefix = absl::StrCat("slipstream:", ToAbsl(job_id), ":");
  if (!absl::StartsWith(ToAbsl(client_name), prefix)) return -1;
  std::string_view rest = client_name.substr(prefix.size());
  int64_t attempt = -1;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), attempt);
  if (ec != std::errc() || end == rest.data() || end == rest.data() + rest.size() || *end != ':') return -1;
  return attempt;
}

RedisErrorKind ClassifyRedisError(std::string_view error_text) {
  // The first word of an error reply is its code.
  const std::string_view code = error_text.substr(0, error_text.find(' '));
  static constexpr std::array<std::string_view, 7> kTransient = {"OOM",      "MISCONF",     "LOADING",   "BUSY",
                                                                  "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS"};
  for (std::string_view t : kTransient) {
    if (code == t) return RedisErrorKind::kTransient;
  }
  // A Redis Cluster's ASK: the slot is migrating and the key has left;
  // retried (on the same node) until the slot has moved, when the node
  // answers MOVED.
  if (code == "ASK") return RedisErrorKind::kTransient;
  // MOVED: a slot moved (a failover, a reshard): the reconnection reads the
  // slot map again.
  if (code == "READONLY" || code == "NOAUTH" || code == "MASTERDOWN" || code == "MOVED") {
    return RedisErrorKind::kTransientReconnect;
  }
  if (code == "NOSCRIPT") return RedisErrorKind::kScriptMissing;
  return RedisErrorKind::kPermanent;
}

}  // namespace slipstream
