#include "coordinator/job/deployment_plan.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"

namespace slipstream {
namespace {

// The checkpoint's offsets by partition (a partition nothing was read from
// yet, -1, is left out: it starts from kafka.starting-offsets). With each
// goes the partition's watermark and idleness at the barrier.
std::map<int32_t, v1::PartitionOffset> RestoredOffsets(const CompletedCheckpoint* restore) {
  std::map<int32_t, v1::PartitionOffset> offsets;
  if (restore == nullptr) return offsets;
  for (const v1::WorkerSnapshot& s : restore->metadata.workers()) {
    for (const v1::PartitionOffset& o : s.offsets()) {
      if (o.next_offset() < 0) continue;
      auto [pos, inserted] = offsets.emplace(o.partition(), o);
      if (!inserted && o.next_offset() > pos->second.next_offset()) pos->second = o;
    }
  }
  return offsets;
}

}  // namespace

DeploymentPlan PlanDeployment(const DeploymentInput& input) {
  DeploymentPlan plan;
  const int n = static_cast<int>(input.workers.size());
  plan.ranges = ComputeAssignment(input.num_partitions, input.max_parallelism, n);
  plan.peers.resize(n);
  for (int i = 0; i < n; ++i) {
    v1::PeerEndpoint& peer = plan.peers[i];
    peer.set_index(i);
    peer.set_worker_id(input.workers[i].id);
    peer.set_host(input.workers[i].host);
    peer.set_data_port(input.workers[i].data_port);
    peer.mutable_key_groups()->set_first(plan.ranges[i].key_groups.first);
    peer.mutable_key_groups()->set_last(plan.ranges[i].key_groups.last);
  }
  const std::map<int32_t, v1::PartitionOffset> offsets = RestoredOffsets(input.restore);
  plan.restored_offsets = static_cast<int>(offsets.size());
  plan.assignments.resize(n);
  for (int i = 0; i < n; ++i) {
    v1::Assignment& a = plan.assignments[i];
    a.set_job_id(input.job_id);
    a.set_attempt(input.attempt);
    a.set_topic(input.topic);
    a.set_max_parallelism(input.max_parallelism);
    if (input.features != nullptr) a.set_feature_definition(input.features->text);
    for (int p : plan.ranges[i].partitions) a.add_partitions(p);
    *a.add_key_groups() = plan.peers[i].key_groups();
    a.set_worker_index(i);
    for (const v1::PeerEndpoint& peer : plan.peers) *a.add_workers() = peer;
    if (input.restore != nullptr) {
      v1::RestoreInfo* r = a.mutable_restore();
      r->set_checkpoint_path(input.restore->path);
      r->set_checkpoint_id(input.restore->metadata.checkpoint_id());
      // A checkpoint from before definitions existed holds the default's
      // state: the worker converts from that one.
      const std::string& recorded = input.restore->metadata.feature_definition();
      const std::string saved = recorded.empty() ? std::string(DefaultFeaturesYaml()) : recorded;
      const std::string& saved_fingerprint = recorded.empty() ? DefaultFeatureDefinition().fingerprint
                                                              : input.restore->metadata.feature_fingerprint();
      if (input.features != nullptr && saved_fingerprint != input.features->fingerprint) {
        r->set_feature_definition(saved);
      }
      *r->mutable_snapshots() = input.restore->metadata.workers();
      for (int p : plan.ranges[i].partitions) {
        if (auto o = offsets.find(p); o != offsets.end()) *r->add_offsets() = o->second;
      }
    }
    for (int p : plan.ranges[i].partitions) {
      if (input.discovered_partitions.count(p) && !offsets.count(p)) a.add_earliest_partitions(p);
    }
    if (input.starting_timestamp_ms) a.set_starting_timestamp_ms(*input.starting_timestamp_ms);
    if (input.bounded) {
      a.set_bounded(true);
      for (int p : plan.ranges[i].partitions) {
        int64_t stop = 0;
        if (input.stopping_offsets != nullptr) {
          if (auto it = input.stopping_offsets->find(p); it != input.stopping_offsets->end()) stop = it->second;
        }
        (*a.mutable_stopping_offsets())[p] = stop;
      }
    }
  }
  return plan;
}

absl::Status CheckRestorable(const CompletedCheckpoint& c, int max_parallelism, const std::string& topic,
                             const FeatureDefinition& features, std::vector<std::string>* added) {
  const v1::CheckpointMetadata& m = c.metadata;
  const std::string what = absl::StrCat("cannot restore checkpoint ", m.checkpoint_id(), " from ", c.path);
  if (m.max_parallelism() != max_parallelism) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": it was taken with pipeline.max-parallelism=", m.max_parallelism(),
        " but the job runs with pipeline.max-parallelism=", max_parallelism,
        " (state is stored by key group: keep pipeline.max-parallelism unchanged, or start without the "
        "checkpoint)"));
  }
  if (m.topic() != topic) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": it read kafka.topic \"", m.topic(),
                                                      "\" but the job reads kafka.topic \"", topic,
                                                      "\" (its offsets belong to the other topic)"));
  }
  std::vector<std::pair<int, int>> ranges;
  for (const v1::WorkerSnapshot& s : m.workers()) ranges.emplace_back(s.key_groups().first(), s.key_groups().last());
  std::sort(ranges.begin(), ranges.end());
  int next = 0;  // first key group not covered so far
  for (const auto& [first, last] : ranges) {
    if (first > next) break;
    next = std::max(next, last + 1);
  }
  if (next < max_parallelism) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": its worker snapshots do not cover key group ", next,
                                                      " of 0-", max_parallelism - 1));
  }
  added->clear();
  // A checkpoint from before feature definitions holds the default's state.
  if (m.feature_definition().empty()) return CheckRestoreCompatible(DefaultFeatureDefinition(), features, added);
  if (m.feature_fingerprint() == features.fingerprint) return absl::OkStatus();
  absl::StatusOr<FeatureDefinition> saved =
      ParseFeatureDefinition(m.feature_definition(), absl::StrCat("checkpoint ", m.checkpoint_id()));
  if (!saved.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": its feature definition is unreadable: ", saved.status().message()));
  }
  if (absl::Status compatible = CheckRestoreCompatible(*saved, features, added); !compatible.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, " under pipeline.features=", features.origin, ": ", compatible.message(),
        " (a checkpoint can only be restored by the definition it was taken with, or one that adds groups or "
        "features; start without the checkpoint to recompute)"));
  }
  return absl::OkStatus();
}

}  // namespace slipstream
