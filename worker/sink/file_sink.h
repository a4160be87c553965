// FileSink (sink.type=file): writes features as JSON lines
// (feature_json_line.h) for training data, one part file per worker and
// attempt: <sink.path>/<job-id>/.inprogress/attempt-<A>/part-<index>.jsonl
// (common/file_sink_commit.h has the layout and the commit that renames a
// finished bounded run's parts into place).
//
// A writer thread of its own, like RedisSink's, takes the queued features
// in batches, appends each batch with one write and fsyncs it; a feature is
// acknowledged (WaitUntilAcked, Flush) only once fsync returned, so a
// checkpoint never completes before its features are on disk.
//  - Backpressure: Write() blocks while `max_queued` features wait.
//  - A failed write or fsync (disk full, I/O error) cuts the file back to
//    the last synced length and is retried with backoff (100 ms .. 5 s),
//    holding the pipeline back as an unreachable Redis does. Counted as
//    error_replies, with the error in last_error.
//  - Every attempt writes files of its own, so nothing fences it out:
//    Superseded() is always empty. A cancelled attempt's file stays under
//    .inprogress/ (the commit deletes it).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/sink/feature_sink.h"

namespace slipstream {

struct FileSinkOptions {
  std::string directory;  // sink.path as a local path
  std::string job_id = "job";
  int64_t attempt = 1;
  int writer_index = 0;  // the worker's index in the attempt
  // Non-empty when the task restored this checkpoint: the part then holds
  // only what comes after it, which the commit must know (it refuses).
  std::string restored_checkpoint;
  size_t max_queued = 100000;
  size_t batch_size = 4096;  // features per write + fsync (at most)
};

class FileSink final : public FeatureSink {
 public:
  // Creates the attempt's directory and an empty part file (an existing one
  // of the same attempt and index is truncated) and starts the writer.
  // Fails when they cannot be created, naming the path.
  static absl::StatusOr<std::unique_ptr<FileSink>> Start(const FileSinkOptions& options);
  ~FileSink() override;  // drains what is queued (bounded by retries), then closes the file

  void Write(std::vector<FeatureWrite>* features) override;
  void Flush() override;
  void DropQueued() override;
  size_t Discard() override;
  uint64_t Enqueued() const override;
  bool WaitUntilAcked(uint64_t mark, int64_t timeout_ms) override;
  std::optional<int64_t> Superseded() const override { return std::nullopt; }
  FeatureSinkStats stats() const override;

  // The part file this sink writes.
  const std::string& path() const;

 private:
  struct Impl;
  explicit FileSink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
