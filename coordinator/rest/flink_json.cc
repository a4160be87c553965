#include "coordinator/rest/flink_json.h"

#include <algorithm>
#include <optional>
#include <span>

#include "common/clock.h"
#include "common/prometheus.h"
#include "coordinator/job/job_state.h"

namespace slipstream::rest {

std::string FlinkState(const v1::JobStatus& job) {
  const std::optional<JobState> state = FromProto(job.job_state());
  if (!state) return job.state();  // a coordinator that does not send job_state
  return FlinkJobStatus(*state);
}

bool Terminal(const v1::JobStatus& job) {
  const std::optional<JobState> state = FromProto(job.job_state());
  if (!state) return job.state() == "FAILED" || job.state() == "CANCELED" || job.state() == "FINISHED";
  return IsTerminal(*state);
}

json JobOverviewJson(const v1::JobStatus& job, const std::string& name) {
  const std::string state = FlinkState(job);
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

bool IsSavepoint(const v1::CheckpointStats& s) { return s.path().find("/savepoint-") != std::string::npos; }

json CheckpointJson(const v1::CheckpointStats& s) {
  const bool savepoint = IsSavepoint(s);
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

// In ms, named like the statistics of Flink's histogram metrics (count,
// mean, p50, p95, p99), plus the cumulative buckets so a client can compute
// quantiles over any interval from two readings (the web UI does).
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

}  // namespace slipstream::rest
