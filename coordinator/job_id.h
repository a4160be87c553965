// Job identity: a 32-hex-character id like Flink's JobID, kept across
// coordinator restarts as the directory `<state.checkpoints.dir>/<job-id>/`
// (the same directory that will hold the job's checkpoints), so no external
// service is needed to remember it.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace slipstream {

// Returns the job id found in `checkpoints_dir` (the most recently modified
// 32-hex directory when there are several), or creates a new random one.
absl::StatusOr<std::string> LoadOrCreateJobId(const std::string& checkpoints_dir);

bool IsJobId(std::string_view text);

}  // namespace slipstream
