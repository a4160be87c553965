// Job identity: a 32-hex-character id like Flink's JobID, kept across
// coordinator restarts as the directory `<state.checkpoints.dir>/<job-id>/`
// (the same directory that will hold the job's checkpoints), so no external
// service is needed to remember it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipstream {

// A job directory holding this file belongs to a job that ended for good
// (CANCELED, or FINISHED by stop-with-savepoint): a restarted coordinator
// does not resume it but starts a new job, as Flink does for a terminal job
// (its retained checkpoints and savepoints are restored only when named by
// execution.savepoint.path / --from-savepoint).
inline constexpr char kJobEndedFile[] = "_job_ended";

// Returns the job id found in `checkpoints_dir` (the most recently modified
// 32-hex directory without a kJobEndedFile when there are several), or
// creates a new random one. `ended_jobs` (optional) receives the ids of the
// ended jobs that were passed over.
absl::StatusOr<std::string> LoadOrCreateJobId(const std::string& checkpoints_dir,
                                              std::vector<std::string>* ended_jobs = nullptr);

// A bounded job (execution.runtime-mode=BATCH) always gets a new job id, so
// its attempts never share a Redis fence with a streaming job; its directory
// holds this marker, and LoadOrCreateJobId never resumes such a job.
inline constexpr char kBoundedJobFile[] = "_bounded";
absl::StatusOr<std::string> CreateBoundedJobId(const std::string& checkpoints_dir);

// Writes `<job_dir>/_job_ended` with the terminal state and why.
absl::Status RecordJobEnded(const std::string& job_dir, std::string_view state, std::string_view reason);

bool IsJobId(std::string_view text);

// The latest attempt deployed for the job, in `<job_dir>/_attempt`, so a
// restarted coordinator goes on counting instead of starting at 1 again:
// attempt numbers fence superseded attempts out of Redis
// (worker/sink/redis_write_guard.h), and an attempt 1 after a restart would
// find the fence of the attempts before it.
inline constexpr char kAttemptFile[] = "_attempt";
absl::Status RecordAttempt(const std::string& job_dir, int64_t attempt);
// 0 when nothing was recorded (or it cannot be read).
int64_t LastRecordedAttempt(const std::string& job_dir);

}  // namespace slipstream
