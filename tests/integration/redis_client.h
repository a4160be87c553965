// A tiny synchronous hiredis client for checking what the pipeline wrote.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct redisContext;
struct redisReply;

namespace slipstream::it {

// hiredis's redisCommandArgv on `args` (binary-safe); null when the
// connection failed (its errstr says why). The caller frees the reply.
redisReply* CommandArgv(redisContext* ctx, const std::vector<std::string>& args);

class RedisClient {
 public:
  // Connects and SELECTs `db`.
  static absl::StatusOr<std::unique_ptr<RedisClient>> Connect(const std::string& host, int port, int db);
  ~RedisClient();

  absl::Status FlushDb();
  // Any command (e.g. CONFIG SET); its reply as text (integers in decimal).
  absl::StatusOr<std::string> Command(const std::vector<std::string>& args);
  // DBSIZE without the sink's own bookkeeping keys (slipstream:writers, or a
  // cluster shard's slipstream:writers:{tag}, see
  // worker/sink/redis_write_guard.h): the number of feature keys.
  absl::StatusOr<int64_t> FeatureKeyCount();
  // Every key matching `pattern` (SCAN, so it is safe on a shared server).
  absl::StatusOr<std::vector<std::string>> Keys(const std::string& pattern);
  // Every key but the sink's bookkeeping keys.
  absl::StatusOr<std::vector<std::string>> FeatureKeys();
  absl::StatusOr<std::map<std::string, std::string>> HGetAll(const std::string& key);
  // TTL in seconds (-1 no expiry, -2 no key).
  absl::StatusOr<int64_t> Ttl(const std::string& key);
  // HGETALL and TTL of many keys in one pipelined round trip each.
  // ECHO `text` (a marker for RedisMonitor).
  absl::Status Echo(const std::string& text);
  absl::Status HGetAllMany(const std::vector<std::string>& keys,
                           std::vector<std::map<std::string, std::string>>* hashes, std::vector<int64_t>* ttls);

 private:
  explicit RedisClient(redisContext* ctx) : ctx_(ctx) {}
  redisContext* ctx_;
};

// Records every command Redis executes on one database (MONITOR), so a test
// can check each feature write, not only the final state. Finish() sends a
// unique ECHO through a normal client and returns what was seen before it:
// MONITOR output is in execution order, so every command acknowledged before
// the ECHO is included.
class RedisMonitor {
 public:
  struct Command {
    std::vector<std::string> args;  // args[0] is the command name as sent
    std::string origin;             // "<unix time> [<db> <client>]": when and from which connection
  };
  static absl::StatusOr<std::unique_ptr<RedisMonitor>> Start(const std::string& host, int port, int db);
  ~RedisMonitor();
  absl::StatusOr<std::vector<Command>> Finish(RedisClient& client, int timeout_ms);
  // For a server that has gone (killed, so no ECHO can mark the end): waits
  // up to `timeout_ms` for the MONITOR connection to close and returns what
  // it recorded before. FailedPrecondition when it is still open. A command
  // the server ran in its last moment may be missing: Redis writes MONITOR
  // lines and replies from one loop, so a client may get its reply while
  // the MONITOR line is still in the killed server's buffer.
  absl::StatusOr<std::vector<Command>> FinishAfterServerDied(int timeout_ms);

 private:
  struct State;
  explicit RedisMonitor(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Parses one MONITOR line: `<time> [<db> <client>] "arg" "arg" ...` (args in
// Redis' sdscatrepr quoting). False when the line is not in that form.
bool ParseMonitorLine(const std::string& line, int* db, std::vector<std::string>* args);

// The parts of a MONITOR origin "<unix time> [<db> <client>]": the time in
// microseconds since the epoch (-1 when malformed), and the client: an
// address "ip:port", "lua" for a command a script ran, "unix:<path>".
int64_t MonitorTimeUs(const std::string& origin);
std::string MonitorClient(const std::string& origin);

}  // namespace slipstream::it
