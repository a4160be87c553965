#include "coordinator/job/job_state.h"

#include <algorithm>

namespace slipstream {

const char* FlinkJobStatus(JobState state) {
  switch (state) {
    case JobState::kCreated: return "CREATED";
    case JobState::kRunning:
    case JobState::kRescaling:
    case JobState::kStopping: return "RUNNING";
    case JobState::kRestarting: return "RESTARTING";
    case JobState::kFinished: return "FINISHED";
    case JobState::kCanceled: return "CANCELED";
    case JobState::kFailed: return "FAILED";
  }
  return "UNKNOWN";
}

const char* JobStateName(JobState state) {
  switch (state) {
    case JobState::kCreated: return "CREATED";
    case JobState::kRunning: return "RUNNING";
    case JobState::kRescaling: return "RESCALING";
    case JobState::kStopping: return "STOPPING";
    case JobState::kRestarting: return "RESTARTING";
    case JobState::kFinished: return "FINISHED";
    case JobState::kCanceled: return "CANCELED";
    case JobState::kFailed: return "FAILED";
  }
  return "UNKNOWN";
}

v1::JobState ToProto(JobState state) {
  switch (state) {
    case JobState::kCreated: return v1::JOB_STATE_CREATED;
    case JobState::kRunning: return v1::JOB_STATE_RUNNING;
    case JobState::kRescaling: return v1::JOB_STATE_RESCALING;
    case JobState::kStopping: return v1::JOB_STATE_STOPPING;
    case JobState::kRestarting: return v1::JOB_STATE_RESTARTING;
    case JobState::kFinished: return v1::JOB_STATE_FINISHED;
    case JobState::kCanceled: return v1::JOB_STATE_CANCELED;
    case JobState::kFailed: return v1::JOB_STATE_FAILED;
  }
  return v1::JOB_STATE_UNSPECIFIED;
}

std::optional<JobState> FromProto(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_CREATED: return JobState::kCreated;
    case v1::JOB_STATE_RUNNING: return JobState::kRunning;
    case v1::JOB_STATE_RESCALING: return JobState::kRescaling;
    case v1::JOB_STATE_STOPPING: return JobState::kStopping;
    case v1::JOB_STATE_RESTARTING: return JobState::kRestarting;
    case v1::JOB_STATE_FINISHED: return JobState::kFinished;
    case v1::JOB_STATE_CANCELED: return JobState::kCanceled;
    case v1::JOB_STATE_FAILED: return JobState::kFailed;
    default: return std::nullopt;
  }
}

bool IsTerminal(JobState state) {
  return state == JobState::kFinished || state == JobState::kCanceled || state == JobState::kFailed;
}

bool AttemptRuns(JobState state) {
  return state == JobState::kRunning || state == JobState::kRescaling || state == JobState::kStopping;
}

const std::vector<JobTransition>& JobTransitions() {
  using S = JobState;
  static const std::vector<JobTransition> transitions = {
      {S::kCreated, S::kRunning, "workers ready, deployed"},
      {S::kCreated, S::kCanceled, "cancel"},
      {S::kCreated, S::kFailed, "restore source unusable, or topic shrank"},
      {S::kRunning, S::kRescaling, "workers joined, or topic grew"},
      {S::kRunning, S::kStopping, "stop-with-savepoint"},
      {S::kRunning, S::kFinished, "every worker finished its bounded input"},
      {S::kRunning, S::kRestarting, "attempt ended"},
      {S::kRunning, S::kCanceled, "cancel"},
      {S::kRunning, S::kFailed, "restarts exhausted, or topic shrank"},
      {S::kRescaling, S::kRunning, "joined workers gone"},
      {S::kRescaling, S::kStopping, "stop-with-savepoint"},
      {S::kRescaling, S::kRestarting, "checkpoint completed, or attempt ended"},
      {S::kRescaling, S::kCanceled, "cancel"},
      {S::kRescaling, S::kFailed, "restarts exhausted, or topic shrank"},
      {S::kStopping, S::kRunning, "savepoint failed"},
      {S::kStopping, S::kFinished, "savepoint completed"},
      {S::kStopping, S::kRestarting, "attempt ended"},
      {S::kStopping, S::kCanceled, "cancel"},
      {S::kStopping, S::kFailed, "restarts exhausted, or topic shrank"},
      {S::kRestarting, S::kRunning, "delay over and workers idle, deployed"},
      {S::kRestarting, S::kCanceled, "cancel"},
      {S::kRestarting, S::kFailed, "restore source unusable, or topic shrank"},
  };
  return transitions;
}

bool IsAllowedTransition(JobState from, JobState to) {
  const std::vector<JobTransition>& all = JobTransitions();
  return std::any_of(all.begin(), all.end(), [&](const JobTransition& t) { return t.from == from && t.to == to; });
}

std::string JobStateDiagram() {
  std::string out = "stateDiagram-v2\n    [*] --> CREATED\n";
  for (const JobTransition& t : JobTransitions()) {
    out.append("    ").append(JobStateName(t.from)).append(" --> ").append(JobStateName(t.to));
    out.append(": ").append(t.when).append("\n");
  }
  for (JobState end : {JobState::kFinished, JobState::kCanceled, JobState::kFailed}) {
    out.append("    ").append(JobStateName(end)).append(" --> [*]\n");
  }
  return out;
}

}  // namespace slipstream
