// slipstream-coordinator: the JobManager process. Finds or creates the job id
// in state.checkpoints.dir, learns the input topic's partitions, and serves
// the Coordinator gRPC API on jobmanager.rpc.port until SIGTERM/SIGINT.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "common/config.h"
#include "common/command_line.h"
#include "common/logging.h"
#include "coordinator/coordinator_server.h"
#include "coordinator/job_id.h"
#include "common/kafka_admin.h"
#include "spdlog/spdlog.h"

namespace slipstream {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void OnSignal(int) { g_stop.store(true); }

int Fail(absl::string_view message) {
  std::cerr << "slipstream-coordinator: " << message << "\n";
  return 1;
}

int RunCoordinator(int argc, char** argv) {
  LoadedCommandLine command_line = LoadCommandLine(
      argc, argv, "slipstream-coordinator",
      "slipstream-coordinator: the Slipstream JobManager. Owns the job (id, assignment of Kafka partitions "
      "and key groups to workers) and serves gRPC on jobmanager.rpc.port.");
  if (!command_line.config) return command_line.exit_code;
  const Config& config = *command_line.config;
  SettingsReader settings(config);
  const std::string log_level = settings.String("log.level");
  const std::string rpc_address = settings.String("jobmanager.rpc.address");
  const int64_t rpc_port = settings.Int("jobmanager.rpc.port");
  const std::string topic = settings.String("kafka.topic");
  const std::string dlq_topic = settings.String("kafka.dlq.topic");
  const int64_t max_parallelism = settings.Int("pipeline.max-parallelism");
  const int64_t heartbeat_timeout_ms = settings.DurationMs("heartbeat.timeout");
  const int64_t min_workers = settings.Int("cluster.min-workers");
  const int64_t stabilization_ms = settings.DurationMs("cluster.stabilization-timeout");
  const std::string checkpoints_uri = settings.String("state.checkpoints.dir");
  CheckpointSettings checkpoints;
  checkpoints.interval_ms = settings.DurationMs("execution.checkpointing.interval");
  checkpoints.timeout_ms = settings.DurationMs("execution.checkpointing.timeout");
  checkpoints.min_pause_ms = settings.DurationMs("execution.checkpointing.min-pause");
  checkpoints.tolerable_failed = settings.Int("execution.checkpointing.tolerable-failed-checkpoints");
  checkpoints.num_retained =
      static_cast<int>(std::min<int64_t>(settings.Int("state.checkpoints.num-retained"), INT32_MAX));
  checkpoints.exactly_once = settings.String("execution.checkpointing.mode") == "EXACTLY_ONCE";
  if (!settings.status().ok()) return Fail(settings.status().message());
  absl::StatusOr<std::string> checkpoints_dir = LocalPathFromUri("state.checkpoints.dir", checkpoints_uri);
  if (!checkpoints_dir.ok()) return Fail(checkpoints_dir.status().message());
  if (absl::Status s = SetUpLogging("coordinator", log_level); !s.ok()) return Fail(s.message());

  absl::StatusOr<std::string> job_id = LoadOrCreateJobId(*checkpoints_dir);
  if (!job_id.ok()) return Fail(job_id.status().message());

  CoordinatorOptions options;
  // Flink's JobManager binds on all interfaces; the address key is what
  // workers use to reach it.
  options.listen_address = absl::StrCat("0.0.0.0:", rpc_port);
  options.job_id = *job_id;
  options.topic = topic;
  options.max_parallelism = static_cast<int>(max_parallelism);
  options.heartbeat_timeout_ms = heartbeat_timeout_ms;
  options.min_workers = static_cast<int>(std::min<int64_t>(min_workers, max_parallelism));
  options.stabilization_ms = stabilization_ms;
  // The job directory LoadOrCreateJobId found or created holds its checkpoints.
  options.job_dir = (std::filesystem::path(*checkpoints_dir) / *job_id).string();
  options.checkpoints = checkpoints;
  const auto kafka_properties = config.KafkaClientProperties();
  // Once the input topic exists, make sure the dead-letter topic does too
  // (same partition count, broker's default replication), so workers never
  // block on a missing topic.
  options.partition_count = [kafka_properties, topic, dlq_topic]() -> absl::StatusOr<int> {
    absl::StatusOr<int> partitions = FetchPartitionCount(kafka_properties, topic, 5000);
    if (!partitions.ok()) return partitions;
    if (absl::Status s = EnsureTopic(kafka_properties, dlq_topic, *partitions, -1, 10000); !s.ok()) return s;
    return partitions;
  };
  absl::StatusOr<std::unique_ptr<CoordinatorServer>> server = CoordinatorServer::Start(std::move(options));
  if (!server.ok()) return Fail(server.status().message());
  spdlog::info("job {} on topic {}: serving gRPC on {}:{} (max parallelism {}); waiting for {} worker(s)", *job_id,
               topic, rpc_address, (*server)->port(), max_parallelism, min_workers);
  spdlog::info("checkpoints every {} ms ({}, timeout {} ms, min pause {} ms, {} tolerable failures, {} retained) in {}",
               checkpoints.interval_ms, checkpoints.exactly_once ? "EXACTLY_ONCE" : "AT_LEAST_ONCE",
               checkpoints.timeout_ms, checkpoints.min_pause_ms, checkpoints.tolerable_failed,
               checkpoints.num_retained, (std::filesystem::path(*checkpoints_dir) / *job_id).string());
  while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("shutting down");
  (*server)->Shutdown();
  return 0;
}

}  // namespace
}  // namespace slipstream

int main(int argc, char** argv) {
  std::signal(SIGTERM, slipstream::OnSignal);
  std::signal(SIGINT, slipstream::OnSignal);
  return slipstream::RunCoordinator(argc, argv);
}
