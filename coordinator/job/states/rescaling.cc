// RESCALING: the attempt runs while a checkpoint is taken to redeploy it over
// more workers (reactive mode) or more partitions (partition discovery).
// Once a checkpoint of the attempt newer than the request completed, the
// attempt ends without counting as a failure (RESTARTING) and the next one
// restores it. Back to RUNNING when the joined workers went away first.
#include "coordinator/job/states/states.h"

namespace slipstream::job_states {

JobState OnRescaling(JobContext& job, const JobEvent& event) {
  if (event.kind != JobEventKind::kTick) return OnAttemptRunning(job, event, JobState::kRescaling);
  return OnRedeployTick(job, event.now_ms);
}

}  // namespace slipstream::job_states
