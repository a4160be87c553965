#include "coordinator/rest_api.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/rest/responses.h"
#include "coordinator/rest/rest_request.h"
#include "coordinator/rest/router.h"
#include "coordinator/rest/routes.h"

namespace slipstream {

namespace {

using rest::RestRequest;
using rest::Route;
using ClusterHandler = HttpResponse (*)(const RestRequest&);
using JobHandler = HttpResponse (*)(const RestRequest&, const v1::JobStatus&);

// Flink's REST API layout, for what this product has. A path matched here
// with another method is answered 405 naming the first route's method.
const std::vector<Route<ClusterHandler>>& ClusterRoutes() {
  static const std::vector<Route<ClusterHandler>> routes = {
      {"GET", {}, rest::WebUiPage},
      {"GET", {"index.html"}, rest::WebUiPage},
      {"GET", {"metrics"}, rest::PrometheusMetrics},
      {"GET", {"config"}, rest::DashboardConfig},
      {"GET", {"overview"}, rest::ClusterOverview},
      {"GET", {"taskmanagers"}, rest::TaskManagers},
      {"GET", {"jobs"}, rest::JobList},
      {"GET", {"jobs", "overview"}, rest::JobsOverview},
  };
  return routes;
}

// Under /jobs/<id>, once <id> is known to be the job's.
const std::vector<Route<JobHandler>>& JobRoutes() {
  static const std::vector<Route<JobHandler>> routes = {
      {"GET", {"jobs", ":id"}, rest::JobDetails},
      {"PATCH", {"jobs", ":id"}, rest::CancelJob},
      {"POST", {"jobs", ":id", "savepoints"}, rest::TriggerSavepoint},
      {"GET", {"jobs", ":id", "savepoints", ":request-id"}, rest::SavepointStatus},
      {"POST", {"jobs", ":id", "stop"}, rest::StopWithSavepoint},
      {"GET", {"jobs", ":id", "checkpoints"}, rest::Checkpoints},
      {"GET", {"jobs", ":id", "checkpoints", "config"}, rest::CheckpointConfig},
  };
  return routes;
}

HttpResponse NotFound(const RestRequest& request) { return rest::ErrorResponse(404, "Not found: " + request.path()); }

// Every /jobs/<id>/... path needs the job first: an id that is not the job's
// is Flink's NotFoundException, whatever the method and the rest of the path.
HttpResponse HandleJobPath(const RestRequest& request) {
  v1::JobStatus job;
  if (auto e = request.GetJob(&job)) return *e;
  const std::string& id = request.parts()[1];
  if (id != job.job_id()) {
    return rest::ErrorResponse(404,
                               absl::StrCat("org.apache.flink.runtime.rest.NotFoundException: Job ", id, " not found"));
  }
  if (auto r = rest::Dispatch<JobHandler>(JobRoutes(), request, job)) return *r;
  return NotFound(request);
}

}  // namespace

RestApi::RestApi(std::shared_ptr<v1::Coordinator::StubInterface> coordinator, RestApiOptions options)
    : coordinator_(std::move(coordinator)), options_(std::move(options)) {}

HttpResponse RestApi::Handle(const HttpRequest& http) const {
  RestRequest request(http, *coordinator_, options_);
  // Authentication before routing: a caller without the token learns
  // nothing, not even which paths exist. The page of the web UI is static.
  const Access access = http.method == "GET" ? Access::kRead : Access::kAdmin;
  if (!request.IsWebUiPage()) {
    if (absl::Status s = options_.access.Check(access, http.authorization); !s.ok()) {
      HttpResponse denied = rest::ErrorResponse(401, std::string(s.message()));
      denied.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"slipstream\"");
      return denied;
    }
  }
  // The gRPC API checks the same tokens: pass the caller's on.
  request.ForwardToken(options_.access.Required(access) && !request.IsWebUiPage());

  if (auto r = rest::Dispatch<ClusterHandler>(ClusterRoutes(), request)) return *r;
  // Every path the cluster routes do not match is non-empty ("/" is one).
  if (request.parts()[0] != "jobs") return NotFound(request);
  return HandleJobPath(request);
}

}  // namespace slipstream
