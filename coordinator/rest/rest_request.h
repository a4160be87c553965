// RestRequest: one REST request on its way through the route table — the
// path split into segments, and the coordinator's gRPC API called on the
// caller's behalf (with the caller's token when the API needs one, so gRPC
// checks it again). Private to coordinator/rest; lives for one request.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_endpoint.h"
#include "coordinator/rest/responses.h"
#include "coordinator/rest_api.h"
#include "proto/slipstream.grpc.pb.h"

namespace slipstream::rest {

class RestRequest {
 public:
  RestRequest(const HttpRequest& http, v1::Coordinator::StubInterface& coordinator, const RestApiOptions& options);

  const HttpRequest& http() const { return http_; }
  const std::string& method() const { return http_.method; }
  // The path without trailing '/', and its segments.
  const std::string& path() const { return path_; }
  const std::vector<std::string>& parts() const { return parts_; }
  const RestApiOptions& options() const { return options_; }

  // The page of the web UI (GET / or /index.html): static, so open to all.
  bool IsWebUiPage() const;
  // Pass the caller's token on to the gRPC API (it checks the same tokens).
  void ForwardToken(bool forward) { forward_token_ = forward; }

  // The job, or the 503 to answer when the coordinator did not.
  std::optional<HttpResponse> GetJob(v1::JobStatus* job) const;

  // One call of the coordinator's gRPC API; on failure, the response that
  // says so (the gRPC status mapped to Flink's HTTP status).
  template <typename Request, typename Response>
  std::optional<HttpResponse> Call(grpc::Status (v1::Coordinator::StubInterface::*method)(
                                       grpc::ClientContext*, const Request&, Response*),
                                   const Request& request, Response* response) const {
    grpc::ClientContext ctx;
    Prepare(ctx);
    grpc::Status status = (coordinator_.*method)(&ctx, request, response);
    if (status.ok()) return std::nullopt;
    return ErrorResponse(HttpStatusFor(status.error_code()), status.error_message());
  }

 private:
  void Prepare(grpc::ClientContext& ctx) const;

  const HttpRequest& http_;
  v1::Coordinator::StubInterface& coordinator_;
  const RestApiOptions& options_;
  std::string path_;
  std::vector<std::string> parts_;
  bool forward_token_ = false;
};

}  // namespace slipstream::rest
