// The REST API's savepoint routes: trigger a savepoint (optionally Flink's
// deprecated cancel-with-savepoint), stop with a savepoint, and the status of
// either (Flink's asynchronous operations: a request id, then its result).
#include <optional>
#include <string>

#include "coordinator/rest/flink_json.h"
#include "coordinator/rest/routes.h"

namespace slipstream::rest {

namespace {

HttpResponse BadBody(const std::string& expected) {
  return ErrorResponse(400, "Request did not match expected format " + expected + ".");
}

// A body's optional target directory: null or a string.
bool IsTarget(const json& target) { return target.is_null() || target.is_string(); }

}  // namespace

// POST /jobs/<id>/savepoints {"target-directory": ..., "cancel-job": bool}
HttpResponse TriggerSavepoint(const RestRequest& request, const v1::JobStatus& job) {
  std::optional<json> body = ParseBody(request.http().body);
  if (!body) return BadBody("SavepointTriggerRequestBody");
  const json target = body->value("target-directory", json(nullptr));
  const json cancel_job = body->value("cancel-job", json(false));
  if (!IsTarget(target) || !cancel_job.is_boolean()) return BadBody("SavepointTriggerRequestBody");
  v1::SavepointOperation op;
  if (cancel_job.get<bool>()) {
    // Flink's deprecated cancel-with-savepoint: the savepoint, then the job ends.
    v1::StopWithSavepointRequest stop;
    stop.set_job_id(job.job_id());
    if (target.is_string()) stop.set_target_dir(target.get<std::string>());
    if (auto e = request.Call(&v1::Coordinator::StubInterface::StopWithSavepoint, stop, &op)) return *e;
  } else {
    v1::TriggerSavepointRequest trigger;
    trigger.set_job_id(job.job_id());
    if (target.is_string()) trigger.set_target_dir(target.get<std::string>());
    if (auto e = request.Call(&v1::Coordinator::StubInterface::TriggerSavepoint, trigger, &op)) return *e;
  }
  return JsonResponse(202, json{{"request-id", op.request_id()}});
}

// GET /jobs/<id>/savepoints/<request-id> (also the status of a stop)
HttpResponse SavepointStatus(const RestRequest& request, const v1::JobStatus& job) {
  v1::GetSavepointRequest get;
  get.set_job_id(job.job_id());
  get.set_request_id(request.parts()[3]);
  v1::SavepointOperation op;
  if (auto e = request.Call(&v1::Coordinator::StubInterface::GetSavepoint, get, &op)) return *e;
  return JsonResponse(200, SavepointOperationJson(op));
}

// POST /jobs/<id>/stop {"targetDirectory": ..., "drain": false}
HttpResponse StopWithSavepoint(const RestRequest& request, const v1::JobStatus& job) {
  std::optional<json> body = ParseBody(request.http().body);
  if (!body) return BadBody("StopWithSavepointRequestBody");
  const json target = body->value("targetDirectory", json(nullptr));
  const json drain = body->value("drain", json(false));
  if (!IsTarget(target) || !drain.is_boolean()) return BadBody("StopWithSavepointRequestBody");
  if (drain.get<bool>()) {
    return ErrorResponse(400, "drain=true is not supported: a stop never advances the watermark to the end of time "
                              "(the job's input does not end)");
  }
  v1::StopWithSavepointRequest stop;
  stop.set_job_id(job.job_id());
  if (target.is_string()) stop.set_target_dir(target.get<std::string>());
  v1::SavepointOperation op;
  if (auto e = request.Call(&v1::Coordinator::StubInterface::StopWithSavepoint, stop, &op)) return *e;
  return JsonResponse(202, json{{"request-id", op.request_id()}});
}

}  // namespace slipstream::rest
