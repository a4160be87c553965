// The REST API's route table: a route is a method and a path pattern of
// segments (":name" matches any one segment). A path that some route matches
// with another method is answered 405, naming the first such route's method.
// Private to coordinator/rest.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_endpoint.h"
#include "coordinator/rest/rest_request.h"

namespace slipstream::rest {

template <typename Handler>
struct Route {
  std::string_view method;
  std::vector<std::string_view> pattern;
  Handler handler;
};

bool PatternMatches(std::span<const std::string_view> pattern, const std::vector<std::string>& parts);
HttpResponse MethodNotAllowed(const RestRequest& request, std::string_view allowed);

// The response of the route for `request` (handler(request, args...)), 405
// when only other methods are routed for its path, nullopt when no route
// matches the path.
template <typename Handler, typename... Args>
std::optional<HttpResponse> Dispatch(std::span<const Route<Handler>> routes, const RestRequest& request,
                                     const Args&... args) {
  const Route<Handler>* other_method = nullptr;
  for (const Route<Handler>& route : routes) {
    if (!PatternMatches(route.pattern, request.parts())) continue;
    if (route.method == request.method()) return route.handler(request, args...);
    if (other_method == nullptr) other_method = &route;
  }
  if (other_method != nullptr) return MethodNotAllowed(request, other_method->method);
  return std::nullopt;
}

}  // namespace slipstream::rest
