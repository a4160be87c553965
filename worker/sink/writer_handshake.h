// WriterHandshake: what the Redis sink does on every new connection before
// it writes anything (redis_write_guard.h says why): names the connection
// after its job, attempt and writer, loads the scripts, raises the job's
// fence to its attempt and closes the connections of older attempts, and,
// on the first connection only, reads the high-water marks that decide
// which features must go through the guarded script. Writer thread only.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "worker/sink/redis_sink.h"

struct redisContext;

namespace slipstream {

class WriterHandshake {
 public:
  explicit WriterHandshake(const RedisSinkOptions& options);

  // OK: the connection may write. FailedPrecondition: this attempt is fenced
  // out (by fenced_by()). Unavailable: try the connection again later.
  [[nodiscard]] absl::Status Run(redisContext* ctx);

  const std::string& client_name() const { return client_name_; }
  const std::string& guarded_script_sha() const { return guarded_sha_; }
  // The attempt whose fence the handshake found above ours.
  int64_t fenced_by() const { return fenced_by_; }
  // Features whose order is at most this may meet a newer version written
  // by an earlier attempt: they go through the guarded script. max() until
  // the marks are read (and when they cannot be read).
  int64_t guard_up_to() const { return guard_up_to_; }
  // The largest high-water mark read (min() when none, or unread): where
  // this writer's own mark starts.
  int64_t highest_mark_read() const { return highest_mark_read_; }

 private:
  [[nodiscard]] absl::Status NameConnection(redisContext* ctx);
  [[nodiscard]] absl::Status LoadScripts(redisContext* ctx);
  [[nodiscard]] absl::Status RaiseFence(redisContext* ctx);
  [[nodiscard]] absl::Status CloseOlderAttempts(redisContext* ctx);
  [[nodiscard]] absl::Status ReadHighWaterMarks(redisContext* ctx);

  const std::string job_id_;
  const int64_t attempt_;
  const std::string client_name_;
  std::string guarded_sha_;
  std::string fence_sha_;
  int64_t fenced_by_ = 0;
  bool marks_read_ = false;
  int64_t guard_up_to_ = std::numeric_limits<int64_t>::max();
  int64_t highest_mark_read_ = std::numeric_limits<int64_t>::min();
};

}  // namespace slipstream
