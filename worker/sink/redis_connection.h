// The Redis sink's connection, private to worker/sink: a TCP socket of our
// own, optionally wrapped in TLS (redis_tls.h), with hiredis used only to
// parse replies (its reader works on any byte stream; Debian's hiredis 0.14
// has no TLS of its own). Blocking, with redis.timeout on connect and on
// every read and write: a timeout counts as a lost connection. Only the
// writer thread (and Start, before that thread exists) touches one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/sink/redis_sink.h"
#include "worker/sink/redis_tls.h"

// hiredis's types; its header stays in the .cc files that read replies.
struct redisReader;
struct redisReply;
struct ssl_st;

namespace slipstream::redis {

struct ReplyDeleter {
  void operator()(redisReply* r) const;
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// A reply's string ("" when it has none).
std::string ReplyText(const redisReply& r);

class Connection {
 public:
  // Connects (and runs the TLS handshake when `tls` is set). Unavailable:
  // retry later; InvalidArgument naming the key: the server's certificate is
  // not trusted or not for the expected name (redis.ssl.ca / .server-name).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& host, int port,
                                                                        int64_t timeout_ms,
                                                                        const TlsContext* tls);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Writes a buffer of pipelined RESP commands; false when the connection failed.
  [[nodiscard]] bool Send(std::string_view resp);
  // The next reply of the pipeline; null when the connection failed.
  ReplyPtr NextReply();
  // One command, waiting for its reply (the handshake). Unavailable: the
  // connection failed; InvalidArgument: Redis's error reply.
  [[nodiscard]] absl::StatusOr<ReplyPtr> Command(const std::vector<std::string>& args);

  // What went wrong ("reconnecting" when nothing failed, e.g. after a
  // NOSCRIPT or READONLY), and where to.
  std::string Problem() const;
  bool failed() const { return !error_.empty(); }
  const std::string& address() const { return address_; }

 // Open() only (the key is private): takes ownership of a connected socket.
  class PassKey {
    friend class Connection;
    PassKey() = default;
  };
  Connection(PassKey, int fd, std::string address);

 private:
  // Reads what the socket has (waiting up to the timeout) into the reader.
  bool Fill();
  bool Fail(std::string what);

  int fd_ = -1;
  ssl_st* ssl_ = nullptr;
  std::string address_;  // host:port, for messages
  std::unique_ptr<redisReader, void (*)(redisReader*)> reader_;
  std::string error_;
};

// Appends one command in RESP (an array of bulk strings).
void AppendCommand(const std::vector<std::string>& args, std::string* resp);

// A connection to host:port ready for the sink's commands: authenticated
// (AUTH [redis.user] redis.password, or checked that Redis needs none) and,
// for a single Redis, on redis.db. Unavailable: retry later;
// PermissionDenied / InvalidArgument: a configuration error, naming its key.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Connection>> Connect(const RedisSinkOptions& options,
                                                                  const std::string& host, int port,
                                                                  const TlsContext* tls);

}  // namespace slipstream::redis
