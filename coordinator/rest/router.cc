#include "coordinator/rest/router.h"

#include "absl/strings/str_cat.h"
#include "coordinator/rest/responses.h"

namespace slipstream::rest {

bool PatternMatches(std::span<const std::string_view> pattern, const std::vector<std::string>& parts) {
  if (pattern.size() != parts.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (!pattern[i].starts_with(':') && pattern[i] != parts[i]) return false;
  }
  return true;
}

HttpResponse MethodNotAllowed(const RestRequest& request, std::string_view allowed) {
  return ErrorResponse(405, absl::StrCat("Request method ", request.method(), " is not allowed for ", request.path(),
                                         " (allowed: ", std::string(allowed), ")"));
}

}  // namespace slipstream::rest
