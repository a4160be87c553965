// The file sink's layout on disk and its commit, shared by the worker (which
// writes in-progress part files) and the coordinator (which commits one
// attempt's parts when a bounded run finishes). No worker dependencies.
//
// Layout under sink.path (docs/file-sink.md):
//   <sink.path>/<job-id>/.inprogress/attempt-<A>/part-<index>.jsonl
//       written by worker <index> of attempt A while it runs;
//   <sink.path>/<job-id>/.inprogress/attempt-<A>/part-<index>.restored
//       present when that worker restored a checkpoint: its part holds only
//       what came after the checkpoint, so the attempt cannot be committed;
//   <sink.path>/<job-id>/part-<index>-of-<n>.jsonl
//       the committed output of the finished run.
// Readers of the final names never see a half-written file: parts are
// renamed into place only once complete, and rename(2) is atomic.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace slipstream {

// `sink_dir` is a local path (sink.path already resolved from a file:// URI).
[[nodiscard]] std::string FileSinkJobDir(const std::string& sink_dir, const std::string& job_id);
[[nodiscard]] std::string FileSinkAttemptDir(const std::string& sink_dir, const std::string& job_id, int64_t attempt);
[[nodiscard]] std::string FileSinkInProgressPart(const std::string& sink_dir, const std::string& job_id,
                                                 int64_t attempt, int worker_index);
// Marks that worker `worker_index` of `attempt` restored a checkpoint.
[[nodiscard]] std::string FileSinkRestoredMarker(const std::string& sink_dir, const std::string& job_id,
                                                 int64_t attempt, int worker_index);
[[nodiscard]] std::string FileSinkFinalPart(const std::string& sink_dir, const std::string& job_id, int worker_index,
                                            int num_workers);

// Commits the output of `attempt` (which ran `num_workers` workers) when a
// bounded run finished: checks that every part file of the attempt exists
// (and that no worker restored a checkpoint), removes the final part files
// of an earlier commit, renames each part to its final name, fsyncs the job
// directory and deletes .inprogress/ (the failed attempts' files).
// `sink_dir` is sink.path as configured: a file:// URI or a path.
// Not atomic as a whole: a crash in the middle leaves some parts renamed;
// committing again then fails naming the missing part (run the job again).
[[nodiscard]] absl::Status CommitFileSinkAttempt(const std::string& sink_dir, const std::string& job_id,
                                                 int64_t attempt, int num_workers);

}  // namespace slipstream
