#include "coordinator/checkpoint/pending_checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace slipstream {

namespace {

// A state path a worker reported is inside the checkpoint directory: a
// relative path without "..", so the directory can be moved as a whole.
// (Lexical only: std::filesystem::path is used as a string here.)
bool IsContainedRelativePath(const std::string& path) {
  const std::filesystem::path p(path);
  if (path.empty() || p.is_absolute()) return false;
  for (const std::filesystem::path& part : p.lexically_normal()) {
    if (part == "..") return false;
  }
  return true;
}

// Sums the sizes and takes the maxima of the durations over `snapshots`.
template <typename Snapshots, typename Get>
void AddWorkerTotals(const Snapshots& snapshots, Get snapshot_of, v1::CheckpointStats* stats) {
  int64_t bytes = 0;
  for (const auto& entry : snapshots) {
    const v1::WorkerSnapshot& s = snapshot_of(entry);
    bytes += s.state_bytes();
    stats->set_alignment_ms(std::max(stats->alignment_ms(), s.alignment_ms()));
    stats->set_sync_ms(std::max(stats->sync_ms(), s.sync_ms()));
    stats->set_async_ms(std::max(stats->async_ms(), s.async_ms()));
  }
  stats->set_state_bytes(bytes);
}

}  // namespace

const char* CheckpointTypeName(bool savepoint, bool stop) {
  return !savepoint ? "CHECKPOINT" : stop ? "SYNC_SAVEPOINT" : "SAVEPOINT";
}

v1::CheckpointStats CheckpointStatsFromMetadata(const v1::CheckpointMetadata& metadata, const std::string& path) {
  v1::CheckpointStats stats;
  stats.set_id(metadata.checkpoint_id());
  stats.set_status("COMPLETED");
  stats.set_is_savepoint(metadata.savepoint());
  stats.set_checkpoint_type(CheckpointTypeName(metadata.savepoint(), false));
  stats.set_trigger_time_ms(metadata.trigger_time_ms());
  stats.set_end_to_end_ms(metadata.completion_time_ms() - metadata.trigger_time_ms());
  AddWorkerTotals(metadata.workers(), [](const v1::WorkerSnapshot& w) -> const v1::WorkerSnapshot& { return w; },
                  &stats);
  stats.set_acknowledged(metadata.workers_size());
  stats.set_expected(metadata.workers_size());
  stats.set_path(path);
  return stats;
}

PendingCheckpoint::PendingCheckpoint(PendingCheckpointSpec spec)
    // Flink does not count savepoint failures towards the tolerable
    // checkpoint failures.
    : spec_(std::move(spec)), counts_towards_tolerable_(!spec_.savepoint) {}

bool PendingCheckpoint::Accepts(int64_t checkpoint_id, int64_t attempt) const {
  return spec_.id == checkpoint_id && spec_.attempt == attempt && failure_.empty();
}

const v1::PeerEndpoint* PendingCheckpoint::FindWorker(const std::string& worker_id) const {
  for (const v1::PeerEndpoint& w : spec_.workers) {
    if (w.worker_id() == worker_id) return &w;
  }
  return nullptr;
}

absl::Status PendingCheckpoint::Acknowledge(const v1::AcknowledgeCheckpointRequest& request) {
  const v1::PeerEndpoint* worker = FindWorker(request.worker_id());
  if (worker == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("worker \"", request.worker_id(), "\" is not part of attempt ",
                                                   request.attempt(), " of job ", request.job_id()));
  }
  v1::WorkerSnapshot snapshot = request.snapshot();
  if (snapshot.worker_id().empty()) snapshot.set_worker_id(request.worker_id());
  if (snapshot.worker_id() != request.worker_id()) {
    return absl::InvalidArgumentError(absl::StrCat("worker ", request.worker_id(), " acknowledged checkpoint ",
                                                   request.checkpoint_id(), " with the snapshot of worker ",
                                                   snapshot.worker_id()));
  }
  if (!snapshot.has_key_groups()) {
    *snapshot.mutable_key_groups() = worker->key_groups();
  } else if (snapshot.key_groups().first() != worker->key_groups().first() ||
             snapshot.key_groups().last() != worker->key_groups().last()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "worker ", request.worker_id(), " acknowledged checkpoint ", request.checkpoint_id(), " for key groups ",
        snapshot.key_groups().first(), "-", snapshot.key_groups().last(), " but owns ", worker->key_groups().first(),
        "-", worker->key_groups().last(), " in attempt ", request.attempt()));
  }
  acks_.emplace(request.worker_id(), std::move(snapshot));  // a retry changes nothing
  return absl::OkStatus();
}

absl::Status PendingCheckpoint::Decline(const v1::DeclineCheckpointRequest& request) {
  if (FindWorker(request.worker_id()) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("worker \"", request.worker_id(), "\" is not part of attempt ",
                                                   request.attempt(), " of job ", request.job_id()));
  }
  if (acks_.contains(request.worker_id())) {
    return absl::FailedPreconditionError(absl::StrCat("worker ", request.worker_id(),
                                                      " already acknowledged checkpoint ", request.checkpoint_id()));
  }
  failure_ = absl::StrCat("worker ", request.worker_id(), " declined checkpoint ", request.checkpoint_id(), ": ",
                          request.reason());
  return absl::OkStatus();
}

bool PendingCheckpoint::FailUnlessAcknowledged(std::string cause, bool counts_towards_tolerable) {
  if (!failure_.empty() || acknowledged_by_all()) return false;
  failure_ = std::move(cause);
  counts_towards_tolerable_ = counts_towards_tolerable;
  return true;
}

void PendingCheckpoint::Expire(int64_t timeout_ms) {
  // Flink's CheckpointFailureReason.CHECKPOINT_EXPIRED.
  failure_ = absl::StrCat("Checkpoint expired before completing: not acknowledged within "
                          "execution.checkpointing.timeout (",
                          timeout_ms, " ms) by ", MissingWorkers());
}

absl::StatusOr<v1::CheckpointMetadata> PendingCheckpoint::ToMetadata(const std::string& job_id,
                                                                     const std::string& topic, int max_parallelism,
                                                                     int64_t completion_time_ms) const {
  v1::CheckpointMetadata metadata;
  metadata.set_job_id(job_id);
  metadata.set_checkpoint_id(spec_.id);
  metadata.set_trigger_time_ms(spec_.trigger_time_ms);
  metadata.set_completion_time_ms(completion_time_ms);
  metadata.set_topic(topic);
  metadata.set_max_parallelism(max_parallelism);
  metadata.set_num_partitions(spec_.num_partitions);
  metadata.set_attempt(spec_.attempt);
  metadata.set_savepoint(spec_.savepoint);
  for (const v1::PeerEndpoint& w : spec_.workers) {
    auto ack = acks_.find(w.worker_id());
    if (ack == acks_.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("checkpoint ", spec_.id, ": worker ", w.worker_id(), " has not acknowledged"));
    }
    *metadata.add_workers() = ack->second;
  }
  if (spec_.savepoint) {
    // A savepoint must be self-contained: every state path inside it.
    for (const v1::WorkerSnapshot& w : metadata.workers()) {
      if (!IsContainedRelativePath(w.state_path())) {
        return absl::FailedPreconditionError(absl::StrCat("worker ", w.worker_id(), " reported state path \"",
                                                          w.state_path(),
                                                          "\", which is not inside the savepoint directory"));
      }
    }
  }
  return metadata;
}

v1::CheckpointStats PendingCheckpoint::Stats(int64_t now_ms) const {
  v1::CheckpointStats stats;
  stats.set_id(spec_.id);
  stats.set_status("IN_PROGRESS");
  stats.set_is_savepoint(spec_.savepoint);
  stats.set_checkpoint_type(CheckpointTypeName(spec_.savepoint, spec_.stop));
  stats.set_trigger_time_ms(spec_.trigger_time_ms);
  stats.set_end_to_end_ms(now_ms - spec_.trigger_time_ms);
  AddWorkerTotals(acks_, [](const auto& entry) -> const v1::WorkerSnapshot& { return entry.second; }, &stats);
  stats.set_acknowledged(static_cast<int32_t>(acks_.size()));
  stats.set_expected(static_cast<int32_t>(spec_.workers.size()));
  stats.set_path(spec_.dir);
  return stats;
}

v1::CheckpointStats PendingCheckpoint::FailedStats(int64_t now_ms) const {
  v1::CheckpointStats stats = Stats(now_ms);
  stats.set_status("FAILED");
  stats.set_failure_reason(failure_);
  return stats;
}

std::string PendingCheckpoint::MissingWorkers() const {
  std::vector<std::string> missing;
  for (const v1::PeerEndpoint& w : spec_.workers) {
    if (!acks_.contains(w.worker_id())) missing.push_back(w.worker_id());
  }
  return absl::StrJoin(missing, ", ");
}

void CheckpointStatistics::AddCompleted(v1::CheckpointStats stats, bool savepoint) {
  if (!savepoint) latest_completed_ = stats;
  Push(std::move(stats));
  ++completed_;
}

void CheckpointStatistics::AddFailed(v1::CheckpointStats stats) {
  Push(std::move(stats));
  ++failed_;
}

void CheckpointStatistics::Push(v1::CheckpointStats stats) {
  history_.push_front(std::move(stats));
  while (history_.size() > kHistorySize) history_.pop_back();
}

void CheckpointStatistics::Fill(const v1::CheckpointStats* in_progress, v1::CheckpointOverview* overview) const {
  overview->set_completed(completed_);
  overview->set_failed(failed_);
  overview->set_in_progress(in_progress != nullptr ? 1 : 0);
  if (latest_completed_) *overview->mutable_latest_completed() = *latest_completed_;
  if (in_progress != nullptr) *overview->add_history() = *in_progress;
  for (const v1::CheckpointStats& stats : history_) {
    if (overview->history_size() >= static_cast<int>(kHistorySize)) break;
    *overview->add_history() = stats;
  }
}

}  // namespace slipstream
