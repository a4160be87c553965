// The worker's Prometheus metrics (GET /metrics on `metrics.port`): what its
// running task counts, per partition and per channel, plus the process.
// Counters restart from 0 with each attempt (a new task), which Prometheus'
// rate() treats as a counter reset.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "worker/pipeline/feature_task.h"

namespace slipstream {

struct WorkerMetricsInput {
  std::string worker_id;
  int64_t attempt = 0;                 // the attempt its task runs (0: idle)
  int64_t restores = 0;                // tasks started from a checkpoint or savepoint, in this process
  int64_t now_ms = 0;                  // wall clock, for the watermark lag
  std::optional<TaskCounters> task;    // absent while idle
  int64_t rss_bytes = 0;
};

std::string RenderWorkerMetrics(const WorkerMetricsInput& input);

}  // namespace slipstream
