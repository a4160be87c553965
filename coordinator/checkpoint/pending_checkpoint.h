// PendingCheckpoint: one checkpoint or savepoint in progress (Flink's
// PendingCheckpoint): which workers must acknowledge it, what each
// acknowledged, and why it failed if it did. From it come the completed
// checkpoint's `_metadata` and the statistics GetJob and the REST API show.
//
// Pure bookkeeping: no RPCs, no file system, no threads, no clock (times are
// passed in). The CheckpointCoordinator owns the one pending checkpoint and
// calls it under its lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/slipstream.pb.h"

namespace slipstream {

// Flink's checkpoint_type names: CHECKPOINT, SAVEPOINT, SYNC_SAVEPOINT (stop-with-savepoint).
const char* CheckpointTypeName(bool savepoint, bool stop);

// The statistics of a completed checkpoint (status COMPLETED), as GetJob shows them.
v1::CheckpointStats CheckpointStatsFromMetadata(const v1::CheckpointMetadata& metadata, const std::string& path);

// What a checkpoint is when it is triggered.
struct PendingCheckpointSpec {
  int64_t id = 0;
  int64_t attempt = 0;
  int64_t trigger_time_ms = 0;  // wall clock
  int64_t deadline_us = 0;      // steady clock: expires at or after this
  std::vector<v1::PeerEndpoint> workers;
  int num_partitions = 0;
  std::string dir;  // chk-<n> or the savepoint directory
  bool savepoint = false;
  bool stop = false;       // stop-with-savepoint
  std::string request_id;  // the savepoint's operation
};

class PendingCheckpoint {
 public:
  explicit PendingCheckpoint(PendingCheckpointSpec spec);

  int64_t id() const { return spec_.id; }
  int64_t attempt() const { return spec_.attempt; }
  int64_t trigger_time_ms() const { return spec_.trigger_time_ms; }
  int64_t deadline_us() const { return spec_.deadline_us; }
  const std::vector<v1::PeerEndpoint>& workers() const { return spec_.workers; }
  const std::string& dir() const { return spec_.dir; }
  bool savepoint() const { return spec_.savepoint; }
  bool stop() const { return spec_.stop; }
  const std::string& request_id() const { return spec_.request_id; }
  size_t acknowledged() const { return acks_.size(); }
  bool acknowledged_by_all() const { return acks_.size() == spec_.workers.size(); }
  // Non-empty: the checkpoint failed and is to be aborted.
  const std::string& failure() const { return failure_; }
  bool failed() const { return !failure_.empty(); }
  // Whether a failure counts towards execution.checkpointing.tolerable-failed-checkpoints.
  bool counts_towards_tolerable() const { return counts_towards_tolerable_; }

  // Whether an acknowledgement or decline for (`checkpoint_id`, `attempt`)
  // is for this checkpoint while it still runs.
  bool Accepts(int64_t checkpoint_id, int64_t attempt) const;

  // A worker's part. Call only when Accepts(). InvalidArgument: a worker not
  // in the attempt, or a snapshot for another worker or key-group range. A
  // repeated acknowledgement is OK and changes nothing. A snapshot without
  // key groups gets the worker's.
  [[nodiscard]] absl::Status Acknowledge(const v1::AcknowledgeCheckpointRequest& request);
  // A worker cannot take its part: the checkpoint fails. Call only when
  // Accepts(). InvalidArgument as above; FailedPrecondition when that
  // worker acknowledged already.
  [[nodiscard]] absl::Status Decline(const v1::DeclineCheckpointRequest& request);

  // Fails the checkpoint with `cause` unless it failed already or every
  // worker acknowledged it (then it is complete and still written). Returns
  // whether it failed now.
  bool FailUnlessAcknowledged(std::string cause, bool counts_towards_tolerable);
  // Fails it whatever its acknowledgements (writing it went wrong).
  void Fail(std::string cause) { failure_ = std::move(cause); }
  // Fails it as Flink's CHECKPOINT_EXPIRED, naming the missing workers.
  void Expire(int64_t timeout_ms);

  // The `_metadata` of the completed checkpoint, workers in index order.
  // Call only when acknowledged_by_all(). FailedPrecondition when a
  // savepoint would not be self-contained (a state path outside its
  // directory).
  [[nodiscard]] absl::StatusOr<v1::CheckpointMetadata> ToMetadata(const std::string& job_id, const std::string& topic,
                                                                   int max_parallelism,
                                                                   int64_t completion_time_ms) const;

  // IN_PROGRESS statistics at `now_ms` (also once failed, until aborted).
  v1::CheckpointStats Stats(int64_t now_ms) const;
  // FAILED statistics with the failure, when it is aborted at `now_ms`.
  v1::CheckpointStats FailedStats(int64_t now_ms) const;

  // "worker-1, worker-3": the workers that have not acknowledged.
  std::string MissingWorkers() const;

 private:
  const v1::PeerEndpoint* FindWorker(const std::string& worker_id) const;

  PendingCheckpointSpec spec_;
  std::map<std::string, v1::WorkerSnapshot> acks_;  // by worker id
  std::string failure_;
  bool counts_towards_tolerable_ = true;
};

// The statistics GetJob and the REST API show of the checkpoints that
// ended: counts, the latest completed checkpoint, and the newest
// kHistorySize checkpoints and savepoints, newest first.
class CheckpointStatistics {
 public:
  static constexpr size_t kHistorySize = 20;

  // A completed checkpoint (also the latest completed), or savepoint (not
  // that: savepoints are not used for recovery).
  void AddCompleted(v1::CheckpointStats stats, bool savepoint);
  void AddFailed(v1::CheckpointStats stats);
  // The latest completed checkpoint found on start (or none any more).
  void SetLatestCompleted(std::optional<v1::CheckpointStats> stats) { latest_completed_ = std::move(stats); }

  // Counts, latest and history; `in_progress` (nullptr: none) first in the history.
  void Fill(const v1::CheckpointStats* in_progress, v1::CheckpointOverview* overview) const;

 private:
  void Push(v1::CheckpointStats stats);

  int64_t completed_ = 0;
  int64_t failed_ = 0;
  std::deque<v1::CheckpointStats> history_;  // newest first
  std::optional<v1::CheckpointStats> latest_completed_;
};

}  // namespace slipstream
