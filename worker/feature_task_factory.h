// FeatureTaskFactory: deploys the real task of an assignment. It opens a
// fresh local state directory for the attempt, fills it from the checkpoint
// the assignment names (the key groups this worker owns, its partitions'
// offsets and watermarks), waits for the dead-letter topic, connects the
// Kafka source, the dead-letter producer and the feature sink (Redis or
// files, sink.type), and makes the
// FeatureTask. It owns the StateReleaser that frees finished tasks' state in
// the background. Deploy() runs on the TaskExecutor's thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/grpc_security.h"
#include "worker/coordinator_client.h"
#include "worker/sink/file_sink.h"
#include "worker/sink/redis_sink.h"
#include "worker/source/kafka_source.h"
#include "worker/task_factory.h"

namespace slipstream {

class DataPlaneServer;

struct FeatureTaskFactoryOptions {
  std::string state_dir;  // state.dir
  std::string dlq_topic;  // kafka.dlq.topic
  std::map<std::string, std::string> kafka_properties;
  StartingOffsets starting_offsets = StartingOffsets::kCommitted;
  std::optional<int64_t> starting_timestamp_ms;  // kafka.starting-timestamp

  // sink.type: where features go; the options of that sink, all but the
  // attempt's own fields.
  enum class SinkType { kRedis, kFile };
  SinkType sink_type = SinkType::kRedis;
  RedisSinkOptions redis;
  FileSinkOptions file;
  int64_t idle_timeout_ms = 30000;
  int64_t max_event_time_skew_ms = 0;
  bool exactly_once = true;  // execution.checkpointing.mode
  GrpcSecurity peer_security;
};

class FeatureTaskFactory final : public TaskFactory {
 public:
  // `coordinator` (checkpoint acknowledgements) and `data_plane` (the peers'
  // streams and TaskControl) must outlive every task deployed.
  FeatureTaskFactory(FeatureTaskFactoryOptions options, CoordinatorClient& coordinator, DataPlaneServer* data_plane);
  ~FeatureTaskFactory() override;  // frees every released state

  [[nodiscard]] absl::StatusOr<std::unique_ptr<DeployedTask>> Deploy(
      const v1::Assignment& assignment, const std::string& worker_id, const std::atomic<bool>& stop,
      const std::function<void()>& on_state_restored) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
