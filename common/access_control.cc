#include "common/access_control.h"

#include <cstddef>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/config.h"

namespace slipstream {
namespace {

// RFC 6750: the scheme is case-insensitive; the token follows one or more spaces.
bool ParseBearer(std::string_view header, std::string_view* token) {
  constexpr std::string_view kScheme = "bearer";
  if (header.size() <= kScheme.size()) return false;
  if (!absl::EqualsIgnoreCase(absl::string_view(header.data(), kScheme.size()),
                              absl::string_view(kScheme.data(), kScheme.size()))) {
    return false;
  }
  std::string_view rest = header.substr(kScheme.size());
  if (rest.empty() || rest.front() != ' ') return false;
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
  if (rest.empty()) return false;
  *token = rest;
  return true;
}

}  // namespace

bool ConstantTimeEquals(std::string_view given, std::string_view expected) {
  // Walks all of `expected` whatever `given` holds; a length mismatch is
  // folded into the result instead of returning early. `volatile` keeps the
  // compiler from turning the loop back into an early-exit memcmp.
  volatile uint8_t diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const uint8_t g = i < given.size() ? static_cast<uint8_t>(given[i]) : 0;
    diff = diff | static_cast<uint8_t>(g ^ static_cast<uint8_t>(expected[i]));
  }
  return diff == 0;
}

std::string BearerHeader(std::string_view token) {
  return absl::StrCat("Bearer ", absl::string_view(token.data(), token.size()));
}

absl::StatusOr<AccessControl> AccessControl::FromConfig(const Config& config) {
  AccessTokens tokens;
  for (auto [key, field] : {std::pair{"security.admin-token", &tokens.admin},
                            std::pair{"security.read-token", &tokens.read},
                            std::pair{"security.internal-token", &tokens.internal}}) {
    absl::StatusOr<std::string> value = config.GetString(key);
    if (!value.ok()) return value.status();
    *field = *std::move(value);
  }
  if (!tokens.read.empty() && tokens.admin.empty()) {
    return absl::InvalidArgumentError(
        "security.read-token is set but security.admin-token is not: reads would need a token while anyone "
        "could change the job; set security.admin-token too");
  }
  return AccessControl(std::move(tokens));
}

bool AccessControl::Required(Access access) const {
  switch (access) {
    case Access::kRead: return !tokens_.read.empty();
    case Access::kAdmin: return !tokens_.admin.empty();
    case Access::kInternal: return !tokens_.internal.empty();
  }
  return true;
}

absl::Status AccessControl::Check(Access access, std::string_view authorization) const {
  if (!Required(access)) return absl::OkStatus();
  std::string_view token;
  const bool has_token = ParseBearer(authorization, &token);
  // Compare with every token that grants the access, always all of them, so
  // the time taken does not say which one nearly matched.
  bool granted = false;
  switch (access) {
    case Access::kRead:
      granted = ConstantTimeEquals(token, tokens_.read) | ConstantTimeEquals(token, tokens_.admin);
      break;
    case Access::kAdmin:
      granted = ConstantTimeEquals(token, tokens_.admin);
      break;
    case Access::kInternal:
      granted = ConstantTimeEquals(token, tokens_.internal);
      break;
  }
  if (has_token && granted) return absl::OkStatus();
  const absl::string_view needed = access == Access::kRead    ? "security.read-token or security.admin-token"
                                   : access == Access::kAdmin ? "security.admin-token"
                                                              : "security.internal-token";
  if (!has_token) {
    return absl::UnauthenticatedError(
        absl::StrCat(authorization.empty() ? "no token given" : "the authorization is not \"Bearer <token>\"",
                     ": this operation needs ", needed));
  }
  return absl::UnauthenticatedError(absl::StrCat("wrong token: this operation needs ", needed));
}

}  // namespace slipstream
