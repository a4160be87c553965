// FINISHED, CANCELED, FAILED: terminal. Registered workers stay idle (their
// heartbeats are answered without an assignment, with the reason); requests
// that would change the job are refused before they become events.
#include "coordinator/job/states/states.h"

#include "common/absl_compat.h"
#include "spdlog/spdlog.h"

namespace slipstream::job_states {

JobState OnTerminal(JobContext& job, const JobEvent& event, JobState state) {
  if (event.kind == JobEventKind::kStopCompleted) {
    spdlog::warn("stop-with-savepoint {} of attempt {} completed, but the job is {} in attempt {}: not finished",
                 event.detail, event.attempt, JobStateName(state), job.attempt);
  }
  return state;
}

}  // namespace slipstream::job_states
