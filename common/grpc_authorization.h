// RPC authorization for a gRPC server: one table (MethodAccess) says which
// kind of access (AccessControl: read, admin, internal) each RPC needs, and
// the listening port checks every call against it before any handler runs,
// so no handler checks a token itself.
//
// How: the port's credentials carry a CallGate (grpc_security.h), gRPC's
// server-side metadata processor. It sees the call's ":path" (the full
// method name) and its `authorization` metadata; a refusal ends the call
// with UNAUTHENTICATED and AccessControl's message, exactly as the client
// saw it when each handler checked. (A server interceptor cannot do this in
// gRPC C++: only client interceptors may end a call, so the handler would
// still run.)
//
// Fails closed: an RPC missing from the table is refused (UNIMPLEMENTED, as
// for an RPC the server does not have) whatever the tokens, so a new RPC
// without an entry is noticed at its first call instead of being open.
// Immutable once built; safe to share between threads.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "common/access_control.h"
#include "common/grpc_security.h"

namespace grpc {
class ServerBuilder;
}  // namespace grpc

namespace slipstream {

// "/<service>/<method>", the name gRPC gives a call, e.g.
// FullMethodName(v1::Coordinator::service_full_name(), "GetJob") is
// "/slipstream.v1.Coordinator/GetJob".
std::string FullMethodName(std::string_view service, std::string_view method);

// Which access each RPC needs, keyed by full method name.
class MethodAccess {
 public:
  MethodAccess() = default;

  // `methods` of `service` (its full name), each needing `access`. An RPC
  // given twice keeps its first entry (and Add returns false for it).
  bool Add(std::string_view service, std::initializer_list<std::string_view> methods, Access access);
  bool Add(std::string full_method, Access access);

  // nullopt: the RPC has no entry (and is refused).
  std::optional<Access> Find(std::string_view full_method) const;
  size_t size() const { return access_.size(); }

 private:
  absl::flat_hash_map<std::string, Access> access_;
};

// Whether a call of `full_method` with `authorization` ("" when absent) may
// start: OK; Unauthenticated as AccessControl::Check says; Unimplemented for
// an RPC missing from `methods`.
[[nodiscard]] absl::Status AuthorizeCall(const MethodAccess& methods, const AccessControl& access,
                                         std::string_view full_method, std::string_view authorization);

// Adds a listening port to `builder`, like ServerBuilder::AddListeningPort:
// TLS as `security` says, and every call on the port authorized by
// AuthorizeCall(methods, access, ...) before its handler runs (refusals are
// logged as warnings).
void AddAuthorizedListeningPort(grpc::ServerBuilder& builder, const std::string& address,
                                const GrpcSecurity& security, AccessControl access, MethodAccess methods,
                                int* selected_port);

}  // namespace slipstream
