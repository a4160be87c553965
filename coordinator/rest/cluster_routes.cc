// The REST API's routes about the coordinator as a whole: the web UI page,
// Flink's dashboard config, cluster overview, task managers and job list.
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/rest/flink_json.h"
#include "coordinator/rest/routes.h"
#include "coordinator/web_ui.h"

namespace slipstream::rest {

namespace {

json KeyGroupsJson(const v1::WorkerStatus& w) {
  json ranges = json::array();
  for (const v1::KeyGroupRange& r : w.assignment().key_groups()) {
    ranges.push_back(json{{"first", r.first()}, {"last", r.last()}});
  }
  return ranges;
}

json KafkaProgressJson(const v1::WorkerStatus& w) {
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
  return kafka;
}

// A worker as a record of Flink's /taskmanagers, with what this product adds
// (its assignment, input progress and sink counters).
json TaskManagerJson(const v1::WorkerStatus& w) {
  const v1::WorkerCounters& c = w.counters();
  return json{{"id", w.worker_id()},
              {"path", absl::StrCat(w.host(), ":", w.data_port())},
              {"dataPort", w.data_port()},
              {"timeSinceLastHeartbeat", w.heartbeat_age_ms()},
              {"slotsNumber", 1},
              {"freeSlots", w.standby() || w.assignment().attempt() == 0 ? 1 : 0},
              {"standby", w.standby()},
              {"partitions",
               json(std::vector<int>(w.assignment().partitions().begin(), w.assignment().partitions().end()))},
              {"keyGroups", KeyGroupsJson(w)},
              {"attempt", c.attempt()},
              {"recordsIn", c.records_in()},
              {"recordsInvalid", c.records_invalid()},
              {"recordsLate", c.records_late()},
              {"featuresEmitted", c.features_emitted()},
              {"featuresWritten", c.redis_features_written()},
              {"redisErrors", c.redis_errors()},
              {"redisLastError", c.redis_last_error()},
              {"redisLastErrorTime", c.redis_last_error_ms()},
              {"redisFeaturesRejected", c.redis_features_rejected()},
              {"redisFeaturesKeptNewer", c.redis_features_kept_newer()},
              {"redisWriteLatency", RedisLatencyJson(c.redis_write_latency())},
              {"watermark", c.watermark_ms()},
              {"kafka", KafkaProgressJson(w)},
              {"hardware", {{"memoryResident", c.rss_bytes()}}}};
}

}  // namespace

HttpResponse WebUiPage(const RestRequest&) {
  return HttpResponse{200, "text/html; charset=utf-8", std::string(WebUiHtml())};
}

HttpResponse DashboardConfig(const RestRequest&) {
  return JsonResponse(200, json{{"refresh-interval", 3000},
                                {"timezone-name", "UTC"},
                                {"timezone-offset", 0},
                                {"flink-version", "slipstream"},
                                {"flink-revision", "slipstream"},
                                {"features", {{"web-submit", false}, {"web-cancel", true}}}});
}

HttpResponse ClusterOverview(const RestRequest& request) {
  v1::JobStatus job;
  if (auto e = request.GetJob(&job)) return *e;
  int standby = 0;
  for (const auto& w : job.workers()) standby += w.standby();
  const std::string state = FlinkState(job);
  return JsonResponse(200, json{{"taskmanagers", job.workers_size()},
                                {"slots-total", job.workers_size()},
                                {"slots-available", standby},
                                {"jobs-running", Terminal(job) ? 0 : 1},
                                {"jobs-finished", state == "FINISHED" ? 1 : 0},
                                {"jobs-cancelled", state == "CANCELED" ? 1 : 0},
                                {"jobs-failed", state == "FAILED" ? 1 : 0},
                                {"flink-version", "slipstream"},
                                {"flink-commit", "slipstream"}});
}

HttpResponse TaskManagers(const RestRequest& request) {
  v1::JobStatus job;
  if (auto e = request.GetJob(&job)) return *e;
  json list = json::array();
  for (const v1::WorkerStatus& w : job.workers()) list.push_back(TaskManagerJson(w));
  return JsonResponse(200, json{{"taskmanagers", list}});
}

HttpResponse JobList(const RestRequest& request) {
  v1::JobStatus job;
  if (auto e = request.GetJob(&job)) return *e;
  return JsonResponse(200,
                      json{{"jobs", json::array({json{{"id", job.job_id()}, {"status", FlinkState(job)}}})}});
}

HttpResponse JobsOverview(const RestRequest& request) {
  v1::JobStatus job;
  if (auto e = request.GetJob(&job)) return *e;
  return JsonResponse(200, json{{"jobs", json::array({JobOverviewJson(job, request.options().job_name)})}});
}

}  // namespace slipstream::rest
