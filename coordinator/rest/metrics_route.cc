// GET /metrics: the coordinator's Prometheus metrics — the job's state,
// attempts and workers, its checkpoints, and each worker's Redis write
// latency as of its last heartbeat.
#include <span>

#include "common/clock.h"
#include "common/prometheus.h"
#include "coordinator/rest/flink_json.h"
#include "coordinator/rest/routes.h"

namespace slipstream::rest {

namespace {

void WriteJobMetrics(const v1::JobStatus& job, const MetricLabels& labels, PrometheusWriter& w) {
  for (const char* s : {"CREATED", "RUNNING", "RESTARTING", "FAILED", "CANCELED", "FINISHED"}) {
    w.Gauge("slipstream_job_state", "1 for the job's current state.", FlinkState(job) == s ? 1 : 0,
            {{"job_id", job.job_id()}, {"state", s}});
  }
  w.Gauge("slipstream_job_attempt", "The job's current attempt (0: not deployed yet).",
          static_cast<double>(job.attempt()), labels);
  w.Counter("slipstream_job_failures_total", "Attempts that failed.", static_cast<double>(job.failures()), labels);
  w.Counter("slipstream_job_restarts_total", "Attempts deployed after a failure.",
            static_cast<double>(job.restarts()), labels);
  w.Gauge("slipstream_job_uptime_seconds", "Time since the job started.",
          job.start_time_ms() > 0 ? static_cast<double>(Clock::Real().WallMs() - job.start_time_ms()) / 1000.0 : 0,
          labels);
  int standby = 0;
  for (const auto& wk : job.workers()) standby += wk.standby();
  w.Gauge("slipstream_workers_registered", "Registered workers (running the job or standby).",
          static_cast<double>(job.workers_size()), labels);
  w.Gauge("slipstream_workers_standby", "Registered workers waiting as standbys.", static_cast<double>(standby),
          labels);
}

void WriteCheckpointMetrics(const v1::CheckpointOverview& cp, const MetricLabels& labels, PrometheusWriter& w) {
  w.Counter("slipstream_checkpoints_completed_total", "Completed checkpoints.", static_cast<double>(cp.completed()),
            labels);
  w.Counter("slipstream_checkpoints_failed_total", "Failed checkpoints.", static_cast<double>(cp.failed()), labels);
  w.Gauge("slipstream_checkpoints_in_progress", "Checkpoints in progress.", static_cast<double>(cp.in_progress()),
          labels);
  w.Counter("slipstream_checkpoints_restored_total", "Attempts that restored a checkpoint (Flink's Restored).",
            static_cast<double>(cp.restored()), labels);
  if (!cp.has_latest_completed() || cp.latest_completed().id() <= 0) return;
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

// Each worker's Redis write latency as of its last heartbeat, so one scrape
// of the coordinator covers the sink of every worker.
void WriteWorkerLatencies(const v1::JobStatus& job, PrometheusWriter& w) {
  for (const v1::WorkerStatus& wk : job.workers()) {
    const v1::LatencyHistogramSnapshot& h = wk.counters().redis_write_latency();
    if (h.bounds_ms_size() == 0) continue;  // idle or not reporting yet
    w.Histogram("slipstream_worker_redis_write_latency_seconds",
                "Redis write latency per pipelined batch of each worker's task, as of its last heartbeat.",
                std::span<const double>(h.bounds_ms().data(), h.bounds_ms().size()),
                std::span<const int64_t>(h.bucket_counts().data(), h.bucket_counts().size()), h.count(),
                h.sum_ms(), {{"job_id", job.job_id()}, {"worker_id", wk.worker_id()}});
  }
}

}  // namespace

HttpResponse PrometheusMetrics(const RestRequest& request) {
  v1::JobStatus job;
  if (auto e = request.GetJob(&job)) return *e;
  PrometheusWriter w;
  const MetricLabels labels = {{"job_id", job.job_id()}};
  WriteJobMetrics(job, labels, w);
  WriteCheckpointMetrics(job.checkpoints(), labels, w);
  WriteWorkerLatencies(job, w);
  return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", w.text()};
}

}  // namespace slipstream::rest
