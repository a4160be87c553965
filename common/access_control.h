// AccessControl: who may do what, decided from a bearer token
// (security.admin-token, security.read-token, security.internal-token).
//
// Three kinds of access, each open while its token is unset:
//  - kRead: the job's status (REST GETs, ListJobs, GetCheckpoints, ...).
//    Needs the read token or the admin token once security.read-token is set.
//  - kAdmin: anything that changes the job (savepoint, stop, cancel,
//    dispose). Needs the admin token once security.admin-token is set.
//  - kInternal: the calls workers and the coordinator make to each other
//    (RegisterWorker, Heartbeat, AcknowledgeCheckpoint, TaskControl, the
//    data plane). Needs the internal token once security.internal-token is
//    set. Kept apart from the admin token so a worker's configuration never
//    holds the key that cancels the job, and an operator's token never lets
//    anyone impersonate a worker.
// A token travels as "Bearer <token>": the HTTP Authorization header on
// REST, the `authorization` metadata entry on gRPC. Tokens are compared in
// time independent of where they differ. Immutable; safe to share.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipstream {

class Config;

enum class Access { kRead, kAdmin, kInternal };

struct AccessTokens {
  std::string admin;     // security.admin-token
  std::string read;      // security.read-token
  std::string internal;  // security.internal-token
};

class AccessControl {
 public:
  AccessControl() = default;  // everything open
  explicit AccessControl(AccessTokens tokens) : tokens_(std::move(tokens)) {}

  // Reads the security.*-token keys. A read token without an admin token is
  // an error: reads would be closed while anyone could cancel the job.
  static absl::StatusOr<AccessControl> FromConfig(const Config& config);

  // OK, or Unauthenticated with a message that says which token is missing
  // or wrong (never the token itself). `authorization` is the raw header
  // value ("" when absent).
  [[nodiscard]] absl::Status Check(Access access, std::string_view authorization) const;

  // True when `access` needs a token at all.
  bool Required(Access access) const;

  const AccessTokens& tokens() const { return tokens_; }

 private:
  AccessTokens tokens_;
};

// "Bearer <token>" for a header or metadata value.
std::string BearerHeader(std::string_view token);

// Equality whose running time depends only on the length of `expected`, not
// on where `given` differs from it (no early exit).
bool ConstantTimeEquals(std::string_view given, std::string_view expected);

}  // namespace slipstream
