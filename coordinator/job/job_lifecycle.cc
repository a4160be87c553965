#include "coordinator/job/job_lifecycle.h"

#include "coordinator/job/states/states.h"
#include "common/absl_compat.h"
#include "spdlog/spdlog.h"

namespace slipstream {
namespace {

// A tick passes through at most RUNNING -> RESCALING -> RESTARTING ->
// RUNNING; more would be a loop.
constexpr int kMaxTickTransitions = 4;

}  // namespace

JobState JobLifecycle::Handle(const JobEvent& event) {
  switch (state_) {
    case JobState::kCreated: return job_states::OnCreated(job_, event);
    case JobState::kRunning: return job_states::OnRunning(job_, event);
    case JobState::kRescaling: return job_states::OnRescaling(job_, event);
    case JobState::kStopping: return job_states::OnStopping(job_, event);
    case JobState::kRestarting: return job_states::OnRestarting(job_, event);
    case JobState::kFinished:
    case JobState::kCanceled:
    case JobState::kFailed: return job_states::OnTerminal(job_, event, state_);
  }
  return state_;
}

void JobLifecycle::Dispatch(const JobEvent& event) {
  for (int i = 0; i < kMaxTickTransitions; ++i) {
    const JobState next = Handle(event);
    if (next == state_) return;
    if (!IsAllowedTransition(state_, next)) {
      spdlog::error("job {}: transition {} -> {} is not in the job's state diagram", job_.options.job_id,
                    JobStateName(state_), JobStateName(next));
    } else {
      spdlog::debug("job {}: {} -> {}", job_.options.job_id, JobStateName(state_), JobStateName(next));
    }
    state_ = next;
    if (event.kind != JobEventKind::kTick) return;
  }
}

}  // namespace slipstream
