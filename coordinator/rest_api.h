// RestApi: Flink's REST API on `rest.port` (default 8081), for what this
// product has, so that curl commands and tools written against Flink's
// JobManager work: GET /overview, /jobs, /jobs/overview, /jobs/<id>,
// /jobs/<id>/checkpoints, /jobs/<id>/checkpoints/config, /taskmanagers, and
// the coordinator's Prometheus metrics at GET /metrics. Field names and shapes
// are Flink's where the concept is the same; errors are Flink's
// {"errors": [...]} with the matching status code.
//
// It is a translation layer over the coordinator's gRPC API (a client of the
// coordinator's own gRPC port), so REST and the CLI can never disagree.
//
// Access: with security.admin-token set, every request that is not a GET
// (savepoint, stop, cancel) needs `Authorization: Bearer <admin token>`; with
// security.read-token set, GETs need the read or the admin token, except the
// web UI page itself (GET /), which holds no data. Otherwise 401 with
// Flink's errors body and `WWW-Authenticate: Bearer`, and nothing is done.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/access_control.h"
#include "common/http_endpoint.h"
#include "coordinator/checkpoint/checkpoint_settings.h"
#include "proto/slipstream.grpc.pb.h"

namespace slipstream {

struct RestApiOptions {
  std::string job_name;             // shown as the job's name (Flink: the job graph's name)
  CheckpointSettings checkpoints;   // for /jobs/<id>/checkpoints/config
  std::string checkpoint_retention; // execution.checkpointing.externalized-checkpoint-retention
  int64_t grpc_timeout_ms = 5000;
  // security.admin-token / read-token: checked here, and the caller's
  // Authorization is passed on to the gRPC API, which checks it again.
  AccessControl access;
};

class RestApi {
 public:
  RestApi(std::shared_ptr<v1::Coordinator::StubInterface> coordinator, RestApiOptions options);
  HttpResponse Handle(const HttpRequest& request) const;

 private:
  std::shared_ptr<v1::Coordinator::StubInterface> coordinator_;
  RestApiOptions options_;
};

}  // namespace slipstream
