// STOPPING: the attempt runs until its stop-with-savepoint completes
// (FINISHED: sources stopped at its barrier). When the savepoint fails the
// job runs on (RUNNING), as in Flink; joins and new partitions wait until
// then.
#include "coordinator/job/states/states.h"

#include "common/absl_compat.h"
#include "spdlog/spdlog.h"

namespace slipstream::job_states {

JobState OnStopping(JobContext& job, const JobEvent& event) {
  if (event.kind != JobEventKind::kTick) return OnAttemptRunning(job, event, JobState::kStopping);
  if (job.checkpoints == nullptr) return JobState::kRunning;
  const absl::StatusOr<v1::SavepointOperation> stop = job.checkpoints->GetSavepoint(job.stop_request_id);
  if (stop.ok() && stop->status() != "FAILED") return JobState::kStopping;
  spdlog::warn("job {}: stop-with-savepoint {} failed ({}); the job runs on", job.options.job_id,
               job.stop_request_id, stop.ok() ? stop->failure_cause() : std::string(stop.status().message()));
  job.stop_request_id.clear();
  return JobState::kRunning;
}

}  // namespace slipstream::job_states
