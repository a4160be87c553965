// JobState: the job's lifecycle as the coordinator drives it (Flink's
// JobStatus, plus the two phases Flink's adaptive scheduler has as states of
// its own). The transitions allowed between them are in JobTransitions();
// docs/architecture.md draws them, and a test checks the drawing against it.
//
//  CREATED     waiting for cluster.min-workers workers (and stabilization)
//  RUNNING     an attempt runs on the registered workers (bounded: until
//              every worker finished its input, then FINISHED)
//  RESCALING   the attempt runs, and a checkpoint is being taken to redeploy
//              it: workers joined (reactive mode) or the topic grew
//  STOPPING    the attempt runs until its stop-with-savepoint completes
//  RESTARTING  the attempt ended; the next is deployed after the restart
//              delay, once every worker stopped its task
//  FINISHED, CANCELED, FAILED   terminal: registered workers stay idle
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/slipstream.pb.h"

namespace slipstream {

enum class JobState {
  kCreated,
  kRunning,
  kRescaling,
  kStopping,
  kRestarting,
  kFinished,
  kCanceled,
  kFailed,
};

// The name in JobStatus.state, the CLI and logs: Flink's JobStatus names.
// RESCALING and STOPPING are RUNNING there (the attempt runs, as Flink
// reports it while it rescales or stops with a savepoint).
const char* FlinkJobStatus(JobState state);
// The state's own name, for the lifecycle's log and the state diagram.
const char* JobStateName(JobState state);
v1::JobState ToProto(JobState state);
// Nothing for JOB_STATE_UNSPECIFIED (a coordinator that did not set it).
std::optional<JobState> FromProto(v1::JobState state);

bool IsTerminal(JobState state);
// An attempt runs: RUNNING, RESCALING or STOPPING.
bool AttemptRuns(JobState state);

struct JobTransition {
  JobState from;
  JobState to;
  std::string_view when;  // the event, as the state diagram labels it
};
// Every transition the lifecycle may make, and nothing else.
const std::vector<JobTransition>& JobTransitions();
bool IsAllowedTransition(JobState from, JobState to);
// JobTransitions() as a Mermaid state diagram: docs/architecture.md holds
// this text, and a unit test keeps the two equal.
std::string JobStateDiagram();

}  // namespace slipstream
