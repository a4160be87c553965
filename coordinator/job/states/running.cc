// RUNNING: an attempt runs on the registered workers. It ends when one of its
// workers is lost, fails or leaves, or checkpoints fail too often
// (RESTARTING, or FAILED when the restart strategy gives up). Workers joining
// in reactive mode, or partitions added to the topic, lead to RESCALING; a
// stop-with-savepoint to STOPPING. A bounded job (BATCH) is FINISHED once
// every worker of the attempt reported its input finished.
#include "coordinator/job/states/states.h"

#include "common/absl_compat.h"
#include "spdlog/spdlog.h"

namespace slipstream::job_states {

JobState OnAttemptRunning(JobContext& job, const JobEvent& event, JobState state) {
  switch (event.kind) {
    case JobEventKind::kAttemptEnded:
      if (event.attempt != 0 && event.attempt != job.attempt) return state;  // an attempt already over
      return job.EndAttempt(event.cause, event.failure, event.now_ms);
    case JobEventKind::kTopicChanged:
      job.EndAttempt(event.cause, /*failed=*/false, event.now_ms);
      return job.FailJob(event.cause);
    case JobEventKind::kCancel: return job.Cancel(event.now_ms);
    case JobEventKind::kStopRequested:
      job.stop_request_id = event.detail;
      job.rescale = {};
      job.grow = {};
      return JobState::kStopping;
    case JobEventKind::kStopCompleted:
      if (state == JobState::kStopping && event.attempt == job.attempt) return job.Finish(event.detail, event.now_ms);
      spdlog::warn("stop-with-savepoint {} of attempt {} completed, but the job is {} in attempt {}: not finished",
                   event.detail, event.attempt, JobStateName(state), job.attempt);
      return state;
    case JobEventKind::kTick:
    case JobEventKind::kWorkersChanged: break;
  }
  return state;
}

JobState OnRedeployTick(JobContext& job, int64_t now_ms) {
  const RedeployDecision redeploy = job.EvaluateRedeploy(now_ms);
  switch (redeploy.kind) {
    case RedeployDecision::Kind::kNone: return JobState::kRunning;
    case RedeployDecision::Kind::kPending: return JobState::kRescaling;
    case RedeployDecision::Kind::kNow: return job.EndAttempt(redeploy.cause, /*failed=*/false, now_ms);
  }
  return JobState::kRunning;
}

JobState OnRunning(JobContext& job, const JobEvent& event) {
  // Bounded (BATCH): the job ends when every worker of the attempt read its
  // input to the stopping offsets, fired every window and drained its sink
  // (Flink: all tasks FINISHED -> job FINISHED).
  if (job.options.bounded &&
      (event.kind == JobEventKind::kTick || event.kind == JobEventKind::kWorkersChanged) &&
      job.workers.AttemptFinished(job.attempt)) {
    return job.FinishBounded(event.now_ms);
  }
  if (event.kind != JobEventKind::kTick) return OnAttemptRunning(job, event, JobState::kRunning);
  return OnRedeployTick(job, event.now_ms);
}

}  // namespace slipstream::job_states
