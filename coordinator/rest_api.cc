#include "coordinator/rest_api.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <optional>
#include <span>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/prometheus.h"
#include "coordinator/web_ui.h"

namespace slipstream {

namespace {

using nlohmann::json;

constexpr std::string_view kJson = "application/json; charset=UTF-8";

HttpResponse JsonResponse(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.content_type = std::string(kJson);
  r.body = body.dump();
  return r;
}

// Flink's error body.
HttpResponse Error(int status, const std::string& message) {
  return JsonResponse(status, json{{"errors", json::array({message})}});
}


int HttpStatusFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return 400;
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ALREADY_EXISTS:
      return 409;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 503;
    default:
      return 500;
  }
}

// Flink's AsynchronousOperationResult for a savepoint or stop.
json SavepointOperationJson(const v1::SavepointOperation& op) {
  if (op.status() == "IN_PROGRESS") return json{{"status", {{"id", "IN_PROGRESS"}}}, {"operation", nullptr}};
  json operation;
  if (op.status() == "COMPLETED") {
    operation = json{{"location", op.location()}};
  } else {
    operation = json{{"failure-cause",
                      {{"class", "org.apache.flink.runtime.checkpoint.CheckpointException"},
                       {"stack-trace", op.failure_cause()},
                       {"serialized-throwable", nullptr}}}};
  }
  return json{{"status", {{"id", "COMPLETED"}}}, {"operation", operation}};
}

// Parses a request body as a JSON object ("" is {}); nullopt when it is not one.
std::optional<json> ParseBody(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
  return parsed;
}

// Flink's JobStatus names for ours (the same words where they exist).
std::string FlinkState(const std::string& state) {
  if (state == "CANCELLED") return "CANCELED";
  return state;
}

bool Terminal(const std::string& state) {
  return state == "FAILED" || state == "CANCELED" || state == "CANCELLED" || state == "FINISHED";
}

json CheckpointJson(const v1::CheckpointStats& s) {
  const bool savepoint = s.path().find("/savepoint-") != std::string::npos;
  json j = {
      {"className", "completed"},
      {"id", s.id()},
      {"status", s.status()},
      {"is_savepoint", savepoint},
      {"checkpoint_type", savepoint ? "SAVEPOINT" : "CHECKPOINT"},
      {"trigger_timestamp", s.trigger_time_ms()},
      {"latest_ack_timestamp", s.end_to_end_ms() > 0 ? s.trigger_time_ms() + s.end_to_end_ms() : -1},
      {"state_size", s.state_bytes()},
      {"checkpointed_size", s.state_bytes()},
      {"end_to_end_duration", s.end_to_end_ms()},
      {"alignment_buffered", 0},
      {"processed_data", 0},
      {"persisted_data", 0},
      {"num_subtasks", s.expected()},
      {"num_acknowledged_subtasks", s.acknowledged()},
      {"external_path", s.path()},
      {"discarded", false},
      // Not in Flink's record, but what its UI shows per subtask.
      {"alignment_duration", s.alignment_ms()},
      {"sync_duration", s.sync_ms()},
      {"async_duration", s.async_ms()},
  };
  if (s.status() == "FAILED") {
    j["className"] = "failed";
    j["failure_message"] = s.failure_reason();
    j["failure_timestamp"] = s.trigger_time_ms() + s.end_to_end_ms();
  } else if (s.status() == "IN_PROGRESS") {
    j["className"] = "in_progress";
  }
  return j;
}

json MinMaxAvg(const std::vector<int64_t>& values) {
  if (values.empty()) return json{{"min", 0}, {"max", 0}, {"avg", 0}};
  int64_t min = values[0], max = values[0], sum = 0;
  for (int64_t v : values) {
    min = std::min(min, v);
    max = std::max(max, v);
    sum += v;
  }
  return json{{"min", min}, {"max", max}, {"avg", sum / static_cast<int64_t>(values.size())}};
}

// A worker's Redis write latency for /taskmanagers, in ms, named like the
// statistics of Flink's histogram metrics (count, mean, p50, p95, p99), plus
// the cumulative buckets so a client can compute quantiles over any interval
// from two readings (the web UI does).
json RedisLatencyJson(const v1::LatencyHistogramSnapshot& h) {
  const std::span<const double> bounds(h.bounds_ms().data(), h.bounds_ms().size());
  const std::span<const int64_t> counts(h.bucket_counts().data(), h.bucket_counts().size());
  json buckets = json::array();
  int64_t cumulative = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (i < counts.size()) cumulative += counts[i];
    buckets.push_back(json{{"le", bounds[i]}, {"count", cumulative}});
  }
  auto quantile = [&](double q) {
    return h.count() > 0 ? json(EstimateQuantileMs(bounds, counts, h.count(), q)) : json(nullptr);
  };
  return json{{"count", h.count()},
              {"sum", h.sum_ms()},
              {"mean", h.count() > 0 ? json(h.sum_ms() / static_cast<double>(h.count())) : json(nullptr)},
              {"p50", quantile(0.5)},
              {"p95", quantile(0.95)},
              {"p99", quantile(0.99)},
              {"buckets", buckets}};
}

json JobOverviewJson(const v1::JobStatus& job, const std::string& name) {
  const std::string state = FlinkState(job.state());
  const int64_t now = Clock::Real().WallMs();
  const int running_workers = [&] {
    int n = 0;
    for (const auto& w : job.workers()) n += !w.standby() && w.counters().attempt() == job.attempt() && job.attempt() > 0;
    return n;
  }();
  return json{{"jid", job.job_id()},
              {"name", name},
              {"state", state},
              {"start-time", job.start_time_ms()},
              {"end-time", -1},
              {"duration", job.start_time_ms() > 0 ? now - job.start_time_ms() : 0},
              {"last-modification", now},
              {"tasks",
               {{"total", job.min_workers()},
                {"running", running_workers},
                {"created", 0},
                {"scheduled", 0},
                {"deploying", 0},
                {"finished", 0},
                {"canceling", 0},
                {"canceled", 0},
                {"failed", 0},
                {"reconciling", 0},
                {"initializing", 0}}}};
}

}  // namespace

RestApi::RestApi(std::shared_ptr<v1::Coordinator::StubInterface> coordinator, RestApiOptions options)
    : coordinator_(std::move(coordinator)), options_(std::move(options)) {}

HttpResponse RestApi::Handle(const HttpRequest& request) const {
  std::string path = request.path;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());

  // Authentication before routing: a caller without the token learns
  // nothing, not even which paths exist. The page of the web UI is static.
  const bool ui_page = request.method == "GET" && (parts.empty() || (parts.size() == 1 && parts[0] == "index.html"));
  const Access access = request.method == "GET" ? Access::kRead : Access::kAdmin;
  if (!ui_page) {
    if (absl::Status s = options_.access.Check(access, request.authorization); !s.ok()) {
      HttpResponse denied = Error(401, std::string(s.message()));
      denied.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"slipstream\"");
      return denied;
    }
  }
  // The gRPC API checks the same tokens: pass the caller's on.
  const bool forward_token = options_.access.Required(access) && !ui_page;
  auto authorize = [&](grpc::ClientContext& ctx) {
    if (forward_token) ctx.AddMetadata("authorization", request.authorization);
  };

  auto get_job = [&](v1::JobStatus* job) -> std::optional<HttpResponse> {
    grpc::ClientContext ctx;
    authorize(ctx);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(options_.grpc_timeout_ms));
    grpc::Status status = coordinator_->GetJob(&ctx, v1::GetJobRequest(), job);
    if (!status.ok()) return Error(503, "The coordinator did not answer: " + status.error_message());
    return std::nullopt;
  };
  auto only = [&](std::string_view method) -> std::optional<HttpResponse> {
    if (request.method == method) return std::nullopt;
    return Error(405, absl::StrCat("Request method ", request.method, " is not allowed for ", path,
                                   " (allowed: ", std::string(method), ")"));
  };

  if (parts.empty() || (parts.size() == 1 && parts[0] == "index.html")) {
    if (auto e = only("GET")) return *e;
    return HttpResponse{200, "text/html; charset=utf-8", std::string(WebUiHtml())};
  }

  if (parts.size() == 1 && parts[0] == "metrics") {
    if (auto e = only("GET")) return *e;
    v1::JobStatus job;
    if (auto e = get_job(&job)) return *e;
    PrometheusWriter w;
    const MetricLabels labels = {{"job_id", job.job_id()}};
    for (const char* s : {"CREATED", "RUNNING", "RESTARTING", "FAILED", "CANCELED", "FINISHED"}) {
      w.Gauge("slipstream_job_state", "1 for the job's current state.", FlinkState(job.state()) == s ? 1 : 0,
              {{"job_id", job.job_id()}, {"state", s}});
    }
    w.Gauge("slipstream_job_attempt", "The job's current attempt (0: not deployed yet).",
            static_cast<double>(job.attempt()), labels);
    w.Counter("slipstream_job_failures_total", "Attempts that failed.", static_cast<double>(job.failures()), labels);
    w.Counter("slipstream_job_restarts_total", "Attempts deployed after a failure.",
              static_cast<double>(job.restarts()), labels);
    w.Gauge("slipstream_job_uptime_seconds", "Time since the job started.",
            job.start_time_ms() > 0 ? static_cast<double>(Clock::Real().WallMs() - job.start_time_ms()) / 1000.0 : 0, labels);
    int standby = 0;
    for (const auto& wk : job.workers()) standby += wk.standby();
    w.Gauge("slipstream_workers_registered", "Registered workers (running the job or standby).",
            static_cast<double>(job.workers_size()), labels);
    w.Gauge("slipstream_workers_standby", "Registered workers waiting as standbys.", static_cast<double>(standby),
            labels);
    const v1::CheckpointOverview& cp = job.checkpoints();
    w.Counter("slipstream_checkpoints_completed_total", "Completed checkpoints.", static_cast<double>(cp.completed()),
              labels);
    w.Counter("slipstream_checkpoints_failed_total", "Failed checkpoints.", static_cast<double>(cp.failed()), labels);
    w.Gauge("slipstream_checkpoints_in_progress", "Checkpoints in progress.", static_cast<double>(cp.in_progress()),
            labels);
    w.Counter("slipstream_checkpoints_restored_total", "Attempts that restored a checkpoint (Flink's Restored).",
              static_cast<double>(cp.restored()), labels);
    if (cp.has_latest_completed() && cp.latest_completed().id() > 0) {
      const v1::CheckpointStats& l = cp.latest_completed();
      w.Gauge("slipstream_last_checkpoint_id", "Id of the latest completed checkpoint.", static_cast<double>(l.id()),
              labels);
      w.Gauge("slipstream_last_checkpoint_duration_seconds", "End-to-end duration of the latest completed checkpoint.",
              static_cast<double>(l.end_to_end_ms()) / 1000.0, labels);
      w.Gauge("slipstream_last_checkpoint_size_bytes", "State size of the latest completed checkpoint.",
              static_cast<double>(l.state_bytes()), labels);
      w.Gauge("slipstream_last_checkpoint_alignment_seconds", "Longest alignment in the latest completed checkpoint.",
              static_cast<double>(l.alignment_ms()) / 1000.0, labels);
      w.Gauge("slipstream_last_checkpoint_sync_seconds", "Longest synchronous part in the latest completed checkpoint.",
              static_cast<double>(l.sync_ms()) / 1000.0, labels);
    }
    // Each worker's Redis write latency as of its last heartbeat, so one
    // scrape of the coordinator covers the sink of every worker.
    for (const v1::WorkerStatus& wk : job.workers()) {
      const v1::LatencyHistogramSnapshot& h = wk.counters().redis_write_latency();
      if (h.bounds_ms_size() == 0) continue;  // idle or not reporting yet
      w.Histogram("slipstream_worker_redis_write_latency_seconds",
                  "Redis write latency per pipelined batch of each worker's task, as of its last heartbeat.",
                  std::span<const double>(h.bounds_ms().data(), h.bounds_ms().size()),
                  std::span<const int64_t>(h.bucket_counts().data(), h.bucket_counts().size()), h.count(),
                  h.sum_ms(), {{"job_id", job.job_id()}, {"worker_id", wk.worker_id()}});
    }
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", w.text()};
  }

  if (parts.size() == 1 && parts[0] == "config") {
    if (auto e = only("GET")) return *e;
    return JsonResponse(200, json{{"refresh-interval", 3000},
                                  {"timezone-name", "UTC"},
                                  {"timezone-offset", 0},
                                  {"flink-version", "slipstream"},
                                  {"flink-revision", "slipstream"},
                                  {"features", {{"web-submit", false}, {"web-cancel", true}}}});
  }

  if (parts.size() == 1 && parts[0] == "overview") {
    if (auto e = only("GET")) return *e;
    v1::JobStatus job;
    if (auto e = get_job(&job)) return *e;
    int standby = 0;
    for (const auto& w : job.workers()) standby += w.standby();
    const std::string state = FlinkState(job.state());
    return JsonResponse(200, json{{"taskmanagers", job.workers_size()},
                                  {"slots-total", job.workers_size()},
                                  {"slots-available", standby},
                                  {"jobs-running", Terminal(state) ? 0 : 1},
                                  {"jobs-finished", state == "FINISHED" ? 1 : 0},
                                  {"jobs-cancelled", state == "CANCELED" ? 1 : 0},
                                  {"jobs-failed", state == "FAILED" ? 1 : 0},
                                  {"flink-version", "slipstream"},
                                  {"flink-commit", "slipstream"}});
  }

  if (parts.size() == 1 && parts[0] == "taskmanagers") {
    if (auto e = only("GET")) return *e;
    v1::JobStatus job;
    if (auto e = get_job(&job)) return *e;
    json list = json::array();
    for (const v1::WorkerStatus& w : job.workers()) {
      json ranges = json::array();
      for (const v1::KeyGroupRange& r : w.assignment().key_groups()) {
        ranges.push_back(json{{"first", r.first()}, {"last", r.last()}});
      }
      json kafka = json::array();
      for (const v1::PartitionProgress& p : w.counters().partitions()) {
        kafka.push_back(json{{"partition", p.partition()},
                             {"offset", p.next_offset()},
                             {"end", p.high_watermark()},
                             {"lag", p.high_watermark() >= 0 && p.next_offset() >= 0
                                         ? json(std::max<int64_t>(0, p.high_watermark() - p.next_offset()))
                                         : json(nullptr)},
                             {"watermark", p.watermark_ms()},
                             {"idle", p.idle()}});
      }
      list.push_back(json{{"id", w.worker_id()},
                          {"path", absl::StrCat(w.host(), ":", w.data_port())},
                          {"dataPort", w.data_port()},
                          {"timeSinceLastHeartbeat", w.heartbeat_age_ms()},
                          {"slotsNumber", 1},
                          {"freeSlots", w.standby() || w.assignment().attempt() == 0 ? 1 : 0},
                          {"standby", w.standby()},
                          {"partitions", json(std::vector<int>(w.assignment().partitions().begin(),
                                                                w.assignment().partitions().end()))},
                          {"keyGroups", ranges},
                          {"attempt", w.counters().attempt()},
                          {"recordsIn", w.counters().records_in()},
                          {"recordsInvalid", w.counters().records_invalid()},
                          {"recordsLate", w.counters().records_late()},
                          {"featuresEmitted", w.counters().features_emitted()},
                          {"featuresWritten", w.counters().redis_features_written()},
                          {"redisErrors", w.counters().redis_errors()},
                          {"redisLastError", w.counters().redis_last_error()},
                          {"redisLastErrorTime", w.counters().redis_last_error_ms()},
                          {"redisFeaturesRejected", w.counters().redis_features_rejected()},
                          {"redisFeaturesKeptNewer", w.counters().redis_features_kept_newer()},
                          {"redisWriteLatency", RedisLatencyJson(w.counters().redis_write_latency())},
                          {"watermark", w.counters().watermark_ms()},
                          {"kafka", kafka},
                          {"hardware", {{"memoryResident", w.counters().rss_bytes()}}}});
    }
    return JsonResponse(200, json{{"taskmanagers", list}});
  }

  if (parts[0] != "jobs") return Error(404, "Not found: " + path);

  v1::JobStatus job;
  if (parts.size() == 1) {
    if (auto e = only("GET")) return *e;
    if (auto e = get_job(&job)) return *e;
    return JsonResponse(200, json{{"jobs", json::array({json{{"id", job.job_id()}, {"status", FlinkState(job.state())}}})}});
  }
  if (parts.size() == 2 && parts[1] == "overview") {
    if (auto e = only("GET")) return *e;
    if (auto e = get_job(&job)) return *e;
    return JsonResponse(200, json{{"jobs", json::array({JobOverviewJson(job, options_.job_name)})}});
  }
  if (auto e = get_job(&job)) return *e;
  if (parts[1] != job.job_id()) {
    return Error(404, absl::StrCat("org.apache.flink.runtime.rest.NotFoundException: Job ", parts[1], " not found"));
  }

  auto call = [&](auto method, const auto& request, auto* response) -> std::optional<HttpResponse> {
    grpc::ClientContext ctx;
    authorize(ctx);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(options_.grpc_timeout_ms));
    grpc::Status status = ((*coordinator_).*method)(&ctx, request, response);
    if (status.ok()) return std::nullopt;
    return Error(HttpStatusFor(status.error_code()), status.error_message());
  };
  auto bad_body = [&](const std::string& expected) {
    return Error(400, "Request did not match expected format " + expected + ".");
  };
  const std::string& id = parts[1];

  // PATCH /jobs/<id>?mode=cancel (Flink's cancel; mode=stop is not supported).
  if (parts.size() == 2 && request.method == "PATCH") {
    std::string mode;
    for (absl::string_view kv : absl::StrSplit(request.query, '&')) {
      if (absl::ConsumePrefix(&kv, "mode=")) mode = std::string(kv);
    }
    if (mode.empty()) mode = "cancel";  // Flink's default
    if (mode != "cancel") return Error(400, "Only mode=cancel is supported (stop: POST /jobs/<id>/stop).");
    v1::CancelJobRequest cancel;
    cancel.set_job_id(id);
    v1::CancelJobResponse cancelled;
    if (auto e = call(&v1::Coordinator::StubInterface::CancelJob, cancel, &cancelled)) return *e;
    return JsonResponse(202, json::object());
  }

  // POST /jobs/<id>/savepoints {"target-directory": ..., "cancel-job": bool}
  if (parts.size() == 3 && parts[2] == "savepoints") {
    if (auto e = only("POST")) return *e;
    std::optional<json> body = ParseBody(request.body);
    if (!body) return bad_body("SavepointTriggerRequestBody");
    const json target = body->value("target-directory", json(nullptr));
    const json cancel_job = body->value("cancel-job", json(false));
    if (!(target.is_null() || target.is_string()) || !cancel_job.is_boolean()) {
      return bad_body("SavepointTriggerRequestBody");
    }
    v1::SavepointOperation op;
    if (cancel_job.get<bool>()) {
      // Flink's deprecated cancel-with-savepoint: the savepoint, then the job ends.
      v1::StopWithSavepointRequest stop;
      stop.set_job_id(id);
      if (target.is_string()) stop.set_target_dir(target.get<std::string>());
      if (auto e = call(&v1::Coordinator::StubInterface::StopWithSavepoint, stop, &op)) return *e;
    } else {
      v1::TriggerSavepointRequest trigger;
      trigger.set_job_id(id);
      if (target.is_string()) trigger.set_target_dir(target.get<std::string>());
      if (auto e = call(&v1::Coordinator::StubInterface::TriggerSavepoint, trigger, &op)) return *e;
    }
    return JsonResponse(202, json{{"request-id", op.request_id()}});
  }

  // GET /jobs/<id>/savepoints/<request-id> (also the status of a stop)
  if (parts.size() == 4 && parts[2] == "savepoints") {
    if (auto e = only("GET")) return *e;
    v1::GetSavepointRequest get;
    get.set_job_id(id);
    get.set_request_id(parts[3]);
    v1::SavepointOperation op;
    if (auto e = call(&v1::Coordinator::StubInterface::GetSavepoint, get, &op)) return *e;
    return JsonResponse(200, SavepointOperationJson(op));
  }

  // POST /jobs/<id>/stop {"targetDirectory": ..., "drain": false}
  if (parts.size() == 3 && parts[2] == "stop") {
    if (auto e = only("POST")) return *e;
    std::optional<json> body = ParseBody(request.body);
    if (!body) return bad_body("StopWithSavepointRequestBody");
    const json target = body->value("targetDirectory", json(nullptr));
    const json drain = body->value("drain", json(false));
    if (!(target.is_null() || target.is_string()) || !drain.is_boolean()) {
      return bad_body("StopWithSavepointRequestBody");
    }
    if (drain.get<bool>()) {
      return Error(400, "drain=true is not supported: a stop never advances the watermark to the end of time "
                        "(the job's input does not end)");
    }
    v1::StopWithSavepointRequest stop;
    stop.set_job_id(id);
    if (target.is_string()) stop.set_target_dir(target.get<std::string>());
    v1::SavepointOperation op;
    if (auto e = call(&v1::Coordinator::StubInterface::StopWithSavepoint, stop, &op)) return *e;
    return JsonResponse(202, json{{"request-id", op.request_id()}});
  }

  if (parts.size() == 2) {
    if (auto e = only("GET")) return *e;
    json j = JobOverviewJson(job, options_.job_name);
    j["isStoppable"] = true;
    j["now"] = Clock::Real().WallMs();
    j["maxParallelism"] = job.max_parallelism();
    j["timestamps"] = json{{job.state() == "CREATED" ? "CREATED" : "RUNNING", job.start_time_ms()}};
    j["vertices"] = json::array({json{{"id", "window-operator"},
                                      {"name", "Source: Kafka -> event-time windows (1 h/10 min, session 10 min) -> "
                                               "Sink: Redis"},
                                      {"parallelism", job.min_workers()},
                                      {"status", FlinkState(job.state())}}});
    // What Flink has no field for.
    j["attempt"] = job.attempt();
    j["failures"] = job.failures();
    j["restarts"] = job.restarts();
    j["failure-cause"] = job.failure_cause();
    j["restored-from"] = job.restored_from();
    j["topic"] = job.topic();
    j["partitions"] = job.num_partitions();
    return JsonResponse(200, j);
  }

  if (parts.size() == 3 && parts[2] == "checkpoints") {
    if (auto e = only("GET")) return *e;
    const v1::CheckpointOverview& cp = job.checkpoints();
    json history = json::array();
    std::vector<int64_t> durations, sizes, alignments;
    for (const v1::CheckpointStats& s : cp.history()) {
      history.push_back(CheckpointJson(s));
      if (s.status() == "COMPLETED") {
        durations.push_back(s.end_to_end_ms());
        sizes.push_back(s.state_bytes());
        alignments.push_back(s.alignment_ms());
      }
    }
    json latest = {{"completed", nullptr}, {"savepoint", nullptr}, {"failed", nullptr}, {"restored", nullptr}};
    if (cp.has_latest_completed() && cp.latest_completed().id() > 0) {
      latest["completed"] = CheckpointJson(cp.latest_completed());
    }
    for (const v1::CheckpointStats& s : cp.history()) {
      if (s.status() == "FAILED" && latest["failed"].is_null()) latest["failed"] = CheckpointJson(s);
      if (s.status() == "COMPLETED" && s.path().find("/savepoint-") != std::string::npos &&
          latest["savepoint"].is_null()) {
        latest["savepoint"] = CheckpointJson(s);
      }
    }
    if (cp.has_latest_restored() && !cp.latest_restored().path().empty()) {
      const v1::CheckpointStats& r = cp.latest_restored();
      latest["restored"] = json{{"id", r.id()},
                                {"restore_timestamp", r.trigger_time_ms()},
                                {"is_savepoint", r.path().find("/savepoint-") != std::string::npos},
                                {"external_path", r.path()}};
    }
    return JsonResponse(
        200, json{{"counts",
                   {{"restored", cp.restored()},
                    {"total", cp.completed() + cp.failed() + cp.in_progress()},
                    {"in_progress", cp.in_progress()},
                    {"completed", cp.completed()},
                    {"failed", cp.failed()}}},
                  {"summary",
                   {{"state_size", MinMaxAvg(sizes)},
                    {"checkpointed_size", MinMaxAvg(sizes)},
                    {"end_to_end_duration", MinMaxAvg(durations)},
                    {"alignment_buffered", MinMaxAvg({})},
                    {"processed_data", MinMaxAvg({})},
                    {"persisted_data", MinMaxAvg({})},
                    {"alignment_duration", MinMaxAvg(alignments)}}},
                  {"latest", latest},
                  {"history", history}});
  }

  if (parts.size() == 4 && parts[2] == "checkpoints" && parts[3] == "config") {
    if (auto e = only("GET")) return *e;
    const CheckpointSettings& c = options_.checkpoints;
    const bool delete_on_cancel = options_.checkpoint_retention == "DELETE_ON_CANCELLATION";
    return JsonResponse(200, json{{"mode", c.exactly_once ? "exactly_once" : "at_least_once"},
                                  {"interval", c.interval_ms},
                                  {"timeout", c.timeout_ms},
                                  {"min_pause", c.min_pause_ms},
                                  {"max_concurrent", 1},
                                  {"externalization",
                                   {{"enabled", options_.checkpoint_retention != "NO_EXTERNALIZED_CHECKPOINTS"},
                                    {"delete_on_cancellation", delete_on_cancel}}},
                                  {"state_backend", "EmbeddedRocksDBStateBackend"},
                                  {"checkpoint_storage", "FileSystemCheckpointStorage"},
                                  {"unaligned_checkpoints", false},
                                  {"tolerable_failed_checkpoints", c.tolerable_failed},
                                  {"aligned_checkpoint_timeout", 0},
                                  {"checkpoints_after_tasks_finish", false},
                                  {"state_changelog_enabled", false},
                                  {"num_retained", c.num_retained}});
  }

  return Error(404, "Not found: " + path);
}

}  // namespace slipstream
