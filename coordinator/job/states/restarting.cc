// RESTARTING: the attempt ended. The next is deployed once the restart
// strategy's delay has passed, at least cluster.min-workers workers are
// registered and every one of them reported (after the end) that it runs no
// task, so two attempts never share a worker.
#include "coordinator/job/states/states.h"

namespace slipstream::job_states {

JobState OnRestarting(JobContext& job, const JobEvent& event) {
  switch (event.kind) {
    case JobEventKind::kTick:
    case JobEventKind::kWorkersChanged: return job.TryDeploy(JobState::kRestarting, event.now_ms);
    case JobEventKind::kTopicChanged: return job.FailJob(event.cause);
    case JobEventKind::kCancel: return job.Cancel(event.now_ms);
    case JobEventKind::kStopCompleted:
    case JobEventKind::kAttemptEnded:
    case JobEventKind::kStopRequested: break;  // the attempt is over already
  }
  return JobState::kRestarting;
}

}  // namespace slipstream::job_states
