#include "coordinator/rest/rest_request.h"

#include "absl/strings/str_split.h"

namespace slipstream::rest {

RestRequest::RestRequest(const HttpRequest& http, v1::Coordinator::StubInterface& coordinator,
                         const RestApiOptions& options)
    : http_(http), coordinator_(coordinator), options_(options), path_(http.path) {
  while (path_.size() > 1 && path_.back() == '/') path_.pop_back();
  parts_ = absl::StrSplit(path_, '/', absl::SkipEmpty());
}

bool RestRequest::IsWebUiPage() const {
  return http_.method == "GET" && (parts_.empty() || (parts_.size() == 1 && parts_[0] == "index.html"));
}

void RestRequest::Prepare(grpc::ClientContext& ctx) const {
  if (forward_token_) ctx.AddMetadata("authorization", http_.authorization);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(options_.grpc_timeout_ms));
}

std::optional<HttpResponse> RestRequest::GetJob(v1::JobStatus* job) const {
  grpc::ClientContext ctx;
  Prepare(ctx);
  grpc::Status status = coordinator_.GetJob(&ctx, v1::GetJobRequest(), job);
  if (!status.ok()) return ErrorResponse(503, "The coordinator did not answer: " + status.error_message());
  return std::nullopt;
}

}  // namespace slipstream::rest
