// GrpcSecurity: how this process's gRPC servers and channels are secured,
// built once from configuration and handed to every place that opens a
// server or a channel, so TLS and tokens are set up in one file.
//
//  - TLS (security.ssl.*): servers use the certificate and key; channels
//    verify the server against the CA and, with client-auth (mTLS), present
//    the certificate too, which servers then require. The PEM files are read
//    once, at start: a missing or unreadable file fails there, naming its key.
//  - A bearer token (the internal token between coordinator and workers, the
//    operator's token in the CLI) is added as `authorization` metadata to
//    every call on a channel by a client interceptor, so call sites never
//    handle it.
//  - A server's credentials may carry a CallGate: it sees every call's
//    method and `authorization` metadata before any handler runs and may
//    refuse the call with a status the client receives as is
//    (grpc_authorization.h builds the gate from a method -> Access table).
// Copyable value; safe to share between threads.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/access_control.h"

namespace grpc {
class Channel;
class ChannelArguments;
class ServerContext;
class ServerCredentials;
}  // namespace grpc

namespace slipstream {

class Config;

// Decides whether a call may start, from its full method name
// ("/slipstream.v1.Coordinator/GetJob") and its `authorization` metadata
// ("" when absent). A refusal's code and message are what the client gets.
// Runs on a gRPC transport thread for every call: quick, never blocking.
using CallGate = std::function<absl::Status(std::string_view method, std::string_view authorization)>;

struct TlsSettings {
  bool enabled = false;
  bool client_auth = false;  // mTLS
  std::string cert_pem;      // certificate chain
  std::string key_pem;
  std::string ca_pem;  // trusted roots
};

// The contents of a PEM file; errors name `what` (a key or a flag).
absl::StatusOr<std::string> ReadPemFile(const std::string& what, const std::string& path);

// Reads security.ssl.* (and the PEM files it names). Disabled: empty PEMs.
absl::StatusOr<TlsSettings> LoadTlsSettings(const Config& config);

class GrpcSecurity {
 public:
  GrpcSecurity() = default;  // plaintext, no token
  GrpcSecurity(TlsSettings tls, std::string token) : tls_(std::move(tls)), token_(std::move(token)) {}

  // Credentials for a server's listening port. With a `gate`, every call
  // on the port passes it before its handler runs, with or without TLS;
  // without one every call reaches its handler.
  std::shared_ptr<grpc::ServerCredentials> ServerCredentials(CallGate gate = {}) const;
  // A channel to host:port with this process's credentials and token.
  // `server_name` overrides the name checked against the server's
  // certificate (empty: the host of `target`).
  std::shared_ptr<grpc::Channel> Channel(const std::string& target, grpc::ChannelArguments args,
                                         const std::string& server_name = "") const;
  std::shared_ptr<grpc::Channel> Channel(const std::string& target) const;

  bool tls() const { return tls_.enabled; }
  const TlsSettings& tls_settings() const { return tls_; }
  // Same credentials, another token ("" for none).
  GrpcSecurity WithToken(std::string token) const { return GrpcSecurity(tls_, std::move(token)); }

 private:
  TlsSettings tls_;
  std::string token_;
};

}  // namespace slipstream
