// The REST API's routes about the job (/jobs/<id>...): its details, Flink's
// cancel, and its checkpoints and checkpoint configuration.
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/clock.h"
#include "coordinator/rest/flink_json.h"
#include "coordinator/rest/routes.h"

namespace slipstream::rest {

namespace {

// Flink's "latest" record: the latest completed checkpoint, savepoint and
// failure in the history, and the checkpoint the attempt restored.
json LatestCheckpointsJson(const v1::CheckpointOverview& cp) {
  json latest = {{"completed", nullptr}, {"savepoint", nullptr}, {"failed", nullptr}, {"restored", nullptr}};
  if (cp.has_latest_completed() && cp.latest_completed().id() > 0) {
    latest["completed"] = CheckpointJson(cp.latest_completed());
  }
  for (const v1::CheckpointStats& s : cp.history()) {
    if (s.status() == "FAILED" && latest["failed"].is_null()) latest["failed"] = CheckpointJson(s);
    if (s.status() == "COMPLETED" && IsSavepoint(s) && latest["savepoint"].is_null()) {
      latest["savepoint"] = CheckpointJson(s);
    }
  }
  if (cp.has_latest_restored() && !cp.latest_restored().path().empty()) {
    const v1::CheckpointStats& r = cp.latest_restored();
    latest["restored"] = json{{"id", r.id()},
                              {"restore_timestamp", r.trigger_time_ms()},
                              {"is_savepoint", IsSavepoint(r)},
                              {"external_path", r.path()}};
  }
  return latest;
}

// Flink's "summary" record, over the completed checkpoints in the history.
json CheckpointSummaryJson(const v1::CheckpointOverview& cp) {
  std::vector<int64_t> durations, sizes, alignments;
  for (const v1::CheckpointStats& s : cp.history()) {
    if (s.status() != "COMPLETED") continue;
    durations.push_back(s.end_to_end_ms());
    sizes.push_back(s.state_bytes());
    alignments.push_back(s.alignment_ms());
  }
  return json{{"state_size", MinMaxAvg(sizes)},
              {"checkpointed_size", MinMaxAvg(sizes)},
              {"end_to_end_duration", MinMaxAvg(durations)},
              {"alignment_buffered", MinMaxAvg({})},
              {"processed_data", MinMaxAvg({})},
              {"persisted_data", MinMaxAvg({})},
              {"alignment_duration", MinMaxAvg(alignments)}};
}

}  // namespace

HttpResponse JobDetails(const RestRequest& request, const v1::JobStatus& job) {
  json j = JobOverviewJson(job, request.options().job_name);
  j["isStoppable"] = true;
  j["now"] = Clock::Real().WallMs();
  j["maxParallelism"] = job.max_parallelism();
  j["timestamps"] = json{{job.state() == "CREATED" ? "CREATED" : "RUNNING", job.start_time_ms()}};
  std::string windows;
  json groups = json::array();
  for (const v1::FeatureGroupInfo& g : job.features().groups()) {
    if (!windows.empty()) windows += ", ";
    windows += g.name() + ": " + g.window();
    json features = json::array();
    for (const v1::FeatureInfo& f : g.features()) features.push_back({{"name", f.name()}, {"definition", f.definition()}});
    groups.push_back({{"name", g.name()},
                      {"window", g.window()},
                      {"key", g.key_template()},
                      {"ttl-seconds", g.ttl_seconds()},
                      {"features", std::move(features)}});
  }
  j["vertices"] = json::array({json{{"id", "window-operator"},
                                    {"name", "Source: Kafka -> event-time windows (" + windows + ") -> Sink: Redis"},
                                    {"parallelism", job.min_workers()},
                                    {"status", FlinkState(job)}}});
  // What Flink has no field for.
  j["attempt"] = job.attempt();
  j["failures"] = job.failures();
  j["restarts"] = job.restarts();
  j["failure-cause"] = job.failure_cause();
  j["restored-from"] = job.restored_from();
  j["topic"] = job.topic();
  j["partitions"] = job.num_partitions();
  j["features"] = json{{"origin", job.features().origin()},
                       {"fingerprint", job.features().fingerprint()},
                       {"groups", std::move(groups)}};
  return JsonResponse(200, j);
}

// PATCH /jobs/<id>?mode=cancel (Flink's cancel; mode=stop is not supported).
HttpResponse CancelJob(const RestRequest& request, const v1::JobStatus& job) {
  std::string mode;
  for (absl::string_view kv : absl::StrSplit(request.http().query, '&')) {
    if (absl::ConsumePrefix(&kv, "mode=")) mode = std::string(kv);
  }
  if (mode.empty()) mode = "cancel";  // Flink's default
  if (mode != "cancel") return ErrorResponse(400, "Only mode=cancel is supported (stop: POST /jobs/<id>/stop).");
  v1::CancelJobRequest cancel;
  cancel.set_job_id(job.job_id());
  v1::CancelJobResponse cancelled;
  if (auto e = request.Call(&v1::Coordinator::StubInterface::CancelJob, cancel, &cancelled)) return *e;
  return JsonResponse(202, json::object());
}

HttpResponse Checkpoints(const RestRequest&, const v1::JobStatus& job) {
  const v1::CheckpointOverview& cp = job.checkpoints();
  json history = json::array();
  for (const v1::CheckpointStats& s : cp.history()) history.push_back(CheckpointJson(s));
  return JsonResponse(200, json{{"counts",
                                 {{"restored", cp.restored()},
                                  {"total", cp.completed() + cp.failed() + cp.in_progress()},
                                  {"in_progress", cp.in_progress()},
                                  {"completed", cp.completed()},
                                  {"failed", cp.failed()}}},
                                {"summary", CheckpointSummaryJson(cp)},
                                {"latest", LatestCheckpointsJson(cp)},
                                {"history", history}});
}

HttpResponse CheckpointConfig(const RestRequest& request, const v1::JobStatus&) {
  const RestApiOptions& options = request.options();
  const CheckpointSettings& c = options.checkpoints;
  const bool delete_on_cancel = options.checkpoint_retention == "DELETE_ON_CANCELLATION";
  return JsonResponse(200, json{{"mode", c.exactly_once ? "exactly_once" : "at_least_once"},
                                {"interval", c.interval_ms},
                                {"timeout", c.timeout_ms},
                                {"min_pause", c.min_pause_ms},
                                {"max_concurrent", 1},
                                {"externalization",
                                 {{"enabled", options.checkpoint_retention != "NO_EXTERNALIZED_CHECKPOINTS"},
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

}  // namespace slipstream::rest
