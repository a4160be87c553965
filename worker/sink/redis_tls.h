// TLS for the Redis sink's connections (redis.ssl): one OpenSSL client
// context per sink, built from redis.ssl.ca / .cert / .key, that every
// connection of the sink (a single Redis, or each node of a cluster) starts
// its session from. The peer's certificate is always verified, against
// redis.ssl.ca or, when that is empty, the system's trust store (managed
// Redis services use public CAs), and its name against redis.ssl.server-name
// or the host connected to.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct ssl_ctx_st;

namespace slipstream::redis {

struct TlsOptions {
  bool enabled = false;
  std::string ca_file;      // empty: the system's trust store
  std::string cert_file;    // with key_file: mutual TLS
  std::string key_file;
  std::string server_name;  // empty: the host connected to
};

class TlsContext {
 public:
  // InvalidArgument naming the key when a file cannot be read or the key
  // does not match the certificate.
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<const TlsContext>> Create(const TlsOptions& options);

  // Create() only (the key is private): takes ownership of `ctx`.
  class PassKey {
    friend class TlsContext;
    PassKey() = default;
  };
  TlsContext(PassKey, ssl_ctx_st* ctx, TlsOptions options) : ctx_(ctx), options_(std::move(options)) {}
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  ssl_ctx_st* native() const { return ctx_; }
  const TlsOptions& options() const { return options_; }

 private:
  ssl_ctx_st* ctx_;
  TlsOptions options_;
};

// OpenSSL's queued errors as one line (and the queue cleared).
std::string OpenSslErrors();

}  // namespace slipstream::redis
