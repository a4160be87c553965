// One handler per job state: each takes an event in its state and returns
// the next state (the same one when nothing changes). JobLifecycle picks the
// handler; JobContext holds the data and the actions they share.
#pragma once

#include "coordinator/job/job_context.h"
#include "coordinator/job/job_state.h"

namespace slipstream::job_states {

JobState OnCreated(JobContext& job, const JobEvent& event);
JobState OnRunning(JobContext& job, const JobEvent& event);
JobState OnRescaling(JobContext& job, const JobEvent& event);
JobState OnStopping(JobContext& job, const JobEvent& event);
JobState OnRestarting(JobContext& job, const JobEvent& event);
// FINISHED, CANCELED and FAILED: nothing changes them.
JobState OnTerminal(JobContext& job, const JobEvent& event, JobState state);

// What every state in which an attempt runs does with events that end the
// attempt or the job (shared by RUNNING, RESCALING and STOPPING). Returns
// `state` when the event is not one of those.
JobState OnAttemptRunning(JobContext& job, const JobEvent& event, JobState state);
// A tick while RUNNING or RESCALING: RESCALING while a redeploy waits for its
// checkpoint, RESTARTING once it completed, RUNNING when none is wanted.
JobState OnRedeployTick(JobContext& job, int64_t now_ms);

}  // namespace slipstream::job_states
