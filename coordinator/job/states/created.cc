// CREATED: waiting for cluster.min-workers workers, none of them joining for
// cluster.stabilization-timeout; then attempt 1 is deployed (RUNNING), or the
// job fails when the checkpoint or savepoint it must restore is unusable.
#include "coordinator/job/states/states.h"

namespace slipstream::job_states {

JobState OnCreated(JobContext& job, const JobEvent& event) {
  switch (event.kind) {
    case JobEventKind::kTick:
    case JobEventKind::kWorkersChanged: return job.TryDeploy(JobState::kCreated, event.now_ms);
    case JobEventKind::kTopicChanged: return job.FailJob(event.cause);
    case JobEventKind::kCancel: return job.Cancel(event.now_ms);
    case JobEventKind::kStopCompleted:
    case JobEventKind::kAttemptEnded:
    case JobEventKind::kStopRequested: break;  // no attempt runs
  }
  return JobState::kCreated;
}

}  // namespace slipstream::job_states
