// JobLifecycle: the job's state machine. Events go to the handler of the
// current state (coordinator/job/states/), which returns the next state; a
// tick that changed the state is handed to the new state too, so one tick
// can end an attempt and deploy the next (RESCALING -> RESTARTING ->
// RUNNING) as the coordinator always did. Every transition is checked
// against JobTransitions() (job_state.h) and logged.
//
// Not thread-safe: the coordinator service calls it under its lock.
#pragma once

#include "coordinator/job/job_context.h"
#include "coordinator/job/job_state.h"

namespace slipstream {

class JobLifecycle {
 public:
  explicit JobLifecycle(const CoordinatorOptions& options) : job_(options) {}

  JobState state() const { return state_; }
  JobContext& job() { return job_; }
  const JobContext& job() const { return job_; }

  void Dispatch(const JobEvent& event);

 private:
  JobState Handle(const JobEvent& event);

  JobContext job_;
  JobState state_ = JobState::kCreated;
};

}  // namespace slipstream
