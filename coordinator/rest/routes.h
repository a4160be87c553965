// One handler per route of the REST API (the table is in
// coordinator/rest_api.cc). Cluster routes answer for the coordinator as a
// whole; job routes run once the path's job id is known to be the job's.
// Private to coordinator/rest.
#pragma once

#include "common/http_endpoint.h"
#include "coordinator/rest/rest_request.h"
#include "proto/slipstream.pb.h"

namespace slipstream::rest {

// cluster_routes.cc
HttpResponse WebUiPage(const RestRequest& request);        // GET / and /index.html
HttpResponse DashboardConfig(const RestRequest& request);  // GET /config
HttpResponse ClusterOverview(const RestRequest& request);  // GET /overview
HttpResponse TaskManagers(const RestRequest& request);     // GET /taskmanagers
HttpResponse JobList(const RestRequest& request);          // GET /jobs
HttpResponse JobsOverview(const RestRequest& request);     // GET /jobs/overview
// metrics_route.cc
HttpResponse PrometheusMetrics(const RestRequest& request);  // GET /metrics

// job_routes.cc
HttpResponse JobDetails(const RestRequest& request, const v1::JobStatus& job);        // GET /jobs/<id>
HttpResponse CancelJob(const RestRequest& request, const v1::JobStatus& job);         // PATCH /jobs/<id>
HttpResponse Checkpoints(const RestRequest& request, const v1::JobStatus& job);       // GET .../checkpoints
HttpResponse CheckpointConfig(const RestRequest& request, const v1::JobStatus& job);  // GET .../checkpoints/config
// savepoint_routes.cc
HttpResponse TriggerSavepoint(const RestRequest& request, const v1::JobStatus& job);  // POST .../savepoints
HttpResponse SavepointStatus(const RestRequest& request, const v1::JobStatus& job);   // GET .../savepoints/<rid>
HttpResponse StopWithSavepoint(const RestRequest& request, const v1::JobStatus& job); // POST .../stop

}  // namespace slipstream::rest
