// WriterHandshake: what the Redis sink does on every new connection before
// it writes anything (redis_write_guard.h says why): names the connection
// after its job, attempt and writer, loads the scripts, raises the job's
// fence to its attempt and closes the connections of older attempts, and,
// on the first connection to each writers key (one per Redis, or per
// cluster shard), reads the high-water marks that decide which features
// must go through the guarded script. Writer thread only.
#pragma once

#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "worker/sink/redis_connection.h"
#include "worker/sink/redis_sink.h"

namespace slipstream {

class WriterHandshake {
 public:
  explicit WriterHandshake(const RedisSinkOptions& options);

  // On a connection to the Redis (or cluster master) whose fence and marks
  // live in `writers_key`. OK: the connection may write.
  // FailedPrecondition: this attempt is fenced out (by fenced_by()).
  // Unavailable: try the connection again later.
  [[nodiscard]] absl::Status Run(redis::Connection& conn, std::string_view writers_key);

  const std::string& client_name() const { return client_name_; }
  const std::string& guarded_script_sha() const { return guarded_sha_; }
  // The attempt whose fence the handshake found above ours.
  int64_t fenced_by() const { return fenced_by_; }
  // Features whose order is at most this may meet a newer version written
  // by an earlier attempt: they go through the guarded script. max() until
  // marks are read (and when a writers key cannot be read).
  int64_t guard_up_to() const { return guard_up_to_; }
  // The largest high-water mark read (min() when none, or unread): where
  // this writer's own mark starts.
  int64_t highest_mark_read() const { return highest_mark_read_; }

 private:
  [[nodiscard]] absl::Status NameConnection(redis::Connection& conn, const std::string& writers_key);
  [[nodiscard]] absl::Status LoadScripts(redis::Connection& conn, const std::string& writers_key);
  [[nodiscard]] absl::Status RaiseFence(redis::Connection& conn, const std::string& writers_key);
  [[nodiscard]] absl::Status CloseOlderAttempts(redis::Connection& conn, const std::string& writers_key);
  [[nodiscard]] absl::Status ReadHighWaterMarks(redis::Connection& conn, const std::string& writers_key);

  const std::string job_id_;
  const int64_t attempt_;
  const std::string client_name_;
  std::string guarded_sha_;
  std::string fence_sha_;
  int64_t fenced_by_ = 0;
  std::set<std::string, std::less<>> marks_read_;  // writers keys
  bool marks_unreadable_ = false;
  int64_t guard_up_to_ = std::numeric_limits<int64_t>::max();
  int64_t highest_mark_read_ = std::numeric_limits<int64_t>::min();
};

}  // namespace slipstream
