// HTTP responses of the REST API in Flink's shapes: JSON bodies, Flink's
// {"errors": [...]} error body, and the HTTP status for a gRPC status.
// Private to coordinator/rest.
#pragma once

#include <grpcpp/support/status_code_enum.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/http_endpoint.h"

namespace slipstream::rest {

using nlohmann::json;

HttpResponse JsonResponse(int status, const json& body);
// Flink's error body.
HttpResponse ErrorResponse(int status, const std::string& message);
int HttpStatusFor(grpc::StatusCode code);
// A request body as a JSON object ("" is {}); nullopt when it is not one.
std::optional<json> ParseBody(const std::string& body);

}  // namespace slipstream::rest
