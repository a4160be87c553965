// slipstream-worker: the TaskManager process. Reads its configuration,
// cleans up abandoned local state, serves its data endpoint (shuffle +
// TaskControl) and metrics, and runs the TaskExecutor (worker/task_executor.h:
// registration, heartbeats, deploying and cancelling the feature task)
// until SIGTERM/SIGINT.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "common/access_control.h"
#include "common/command_line.h"
#include "common/config.h"
#include "common/grpc_security.h"
#include "common/http_endpoint.h"
#include "common/logging.h"
#include "spdlog/spdlog.h"
#include "worker/coordinator_client.h"
#include "worker/exchange/data_plane.h"
#include "worker/feature_task_factory.h"
#include "worker/metrics/worker_metrics.h"
#include "worker/sink/redis_tls.h"
#include "worker/state/state_dir_lock.h"
#include "worker/task_executor.h"

namespace slipstream {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void OnSignal(int) { g_stop.store(true); }

int Fail(absl::string_view message) {
  std::cerr << "slipstream-worker: " << message << "\n";
  return 1;
}

// The worker's configuration, read and checked.
struct WorkerSettings {
  std::string log_level;
  std::string coordinator_address;  // jobmanager.rpc.address:jobmanager.rpc.port
  std::string advertised_host;      // taskmanager.host (default 127.0.0.1)
  int data_port = 0;
  int metrics_port = 0;  // 0: no metrics endpoint
  int64_t heartbeat_interval_ms = 0;
  int64_t heartbeat_timeout_ms = 0;
  std::string starting_offsets;     // kafka.starting-offsets, parsed into `tasks` later
  FeatureTaskFactoryOptions tasks;  // all but starting_offsets and peer_security
};

absl::StatusOr<WorkerSettings> LoadWorkerSettings(const Config& config) {
  SettingsReader settings(config);
  WorkerSettings s;
  s.log_level = settings.String("log.level");
  s.coordinator_address =
      absl::StrCat(settings.String("jobmanager.rpc.address"), ":", settings.Int("jobmanager.rpc.port"));
  s.tasks.dlq_topic = settings.String("kafka.dlq.topic");
  s.starting_offsets = settings.String("kafka.starting-offsets");
  const std::string starting_timestamp = settings.String("kafka.starting-timestamp");
  s.tasks.state_dir = settings.String("state.dir");
  s.tasks.idle_timeout_ms = settings.DurationMs("source.idle-timeout");
  s.tasks.max_event_time_skew_ms = settings.DurationMs("source.max-event-time-skew");
  s.heartbeat_interval_ms = settings.DurationMs("heartbeat.interval");
  s.heartbeat_timeout_ms = settings.DurationMs("heartbeat.timeout");
  s.advertised_host = settings.String("taskmanager.host");
  s.data_port = static_cast<int>(settings.Int("taskmanager.data.port"));
  s.tasks.exactly_once = settings.String("execution.checkpointing.mode") == "EXACTLY_ONCE";
  RedisSinkOptions& redis = s.tasks.redis;
  redis.host = settings.String("redis.host");
  redis.port = static_cast<int>(settings.Int("redis.port"));
  redis.user = settings.String("redis.user");
  redis.password = settings.String("redis.password");
  redis.db = static_cast<int>(settings.Int("redis.db"));
  redis.batch_size = static_cast<int>(settings.Int("redis.batch-size"));
  redis.timeout_ms = settings.DurationMs("redis.timeout");
  redis.tls.enabled = settings.Bool("redis.ssl");
  redis.tls.ca_file = settings.String("redis.ssl.ca");
  redis.tls.cert_file = settings.String("redis.ssl.cert");
  redis.tls.key_file = settings.String("redis.ssl.key");
  redis.tls.server_name = settings.String("redis.ssl.server-name");
  redis.cluster_nodes = settings.String("redis.cluster.nodes");
  redis.replica_acks = static_cast<int>(settings.Int("redis.replica-acks"));
  const std::string sink_type = settings.String("sink.type");
  const std::string sink_path = settings.String("sink.path");
  s.metrics_port = static_cast<int>(settings.Int("metrics.port"));
  if (!settings.status().ok()) return settings.status();
  if (!redis.cluster_nodes.empty() && redis.db != 0) {
    return absl::InvalidArgumentError(absl::StrCat("redis.db=", redis.db,
                                                   " with redis.cluster.nodes: a Redis Cluster has database 0 only"));
  }
  // Files that cannot be read fail the worker now, not its first task.
  if (redis.tls.enabled) {
    if (absl::StatusOr<std::shared_ptr<const redis::TlsContext>> tls = redis::TlsContext::Create(redis.tls);
        !tls.ok()) {
      return tls.status();
    }
  }
  if (!redis.tls.enabled && (!redis.tls.ca_file.empty() || !redis.tls.cert_file.empty())) {
    return absl::InvalidArgumentError("redis.ssl.ca / redis.ssl.cert are set but redis.ssl=false: set redis.ssl=true "
                                      "to use TLS, or remove them");
  }
  if (sink_type == "file") {
    if (sink_path.empty()) {
      return absl::InvalidArgumentError(
          "sink.type=file needs sink.path: the directory (file:// URI or path) the features are written under");
    }
    absl::StatusOr<std::string> local = LocalPathFromUri("sink.path", sink_path);
    if (!local.ok()) return local.status();
    s.tasks.sink_type = FeatureTaskFactoryOptions::SinkType::kFile;
    s.tasks.file.directory = *local;
  }
  absl::StatusOr<std::optional<int64_t>> starting_at =
      ParseTimestampSetting("kafka.starting-timestamp", starting_timestamp);
  if (!starting_at.ok()) return starting_at.status();
  s.tasks.starting_timestamp_ms = *starting_at;
  if (s.advertised_host.empty()) s.advertised_host = "127.0.0.1";
  s.tasks.kafka_properties = config.KafkaClientProperties();
  return s;
}

// Prometheus metrics (GET /metrics on metrics.port).
absl::StatusOr<std::unique_ptr<HttpEndpoint>> StartMetricsEndpoint(int port, const AccessControl& access,
                                                                   const TaskExecutor& executor) {
  return HttpEndpoint::Start("0.0.0.0", port, [&executor, &access](const HttpRequest& request) {
    HttpResponse response;
    // Metrics are reads: with security.read-token they need it, as the coordinator's.
    if (absl::Status s = access.Check(Access::kRead, request.authorization); !s.ok()) {
      response.status = 401;
      response.body = absl::StrCat(s.message(), "\n");
      response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"slipstream\"");
      return response;
    }
    if (request.method != "GET" || request.path != "/metrics") {
      response.status = 404;
      response.body = "not found: GET /metrics serves this worker's metrics\n";
      return response;
    }
    response.body = RenderWorkerMetrics(executor.MetricsInput());
    return response;
  });
}

int RunWorker(int argc, char** argv) {
  LoadedCommandLine command_line = LoadCommandLine(
      argc, argv, "slipstream-worker",
      "slipstream-worker: a Slipstream TaskManager. Registers with the coordinator "
      "(jobmanager.rpc.address:jobmanager.rpc.port), reads its Kafka partitions, computes the "
      "window features of its key groups in RocksDB and writes them to Redis.");
  if (!command_line.config) return command_line.exit_code;
  const Config& config = *command_line.config;
  absl::StatusOr<WorkerSettings> settings = LoadWorkerSettings(config);
  if (!settings.ok()) return Fail(settings.status().message());
  absl::StatusOr<AccessControl> access = AccessControl::FromConfig(config);
  if (!access.ok()) return Fail(access.status().message());
  absl::StatusOr<TlsSettings> tls = LoadTlsSettings(config);
  if (!tls.ok()) return Fail(tls.status().message());
  // Every call this worker makes (to the coordinator, to peers) carries the
  // internal token; its own servers require it (security.internal-token).
  const GrpcSecurity security(*tls, access->tokens().internal);
  absl::StatusOr<StartingOffsets> starting_offsets = ParseStartingOffsets(settings->starting_offsets);
  if (!starting_offsets.ok()) return Fail(starting_offsets.status().message());
  settings->tasks.starting_offsets = *starting_offsets;
  if (absl::Status s = SetUpLogging("worker", settings->log_level); !s.ok()) return Fail(s.message());

  // Local state that no live worker holds (a worker killed with SIGKILL
  // leaves its RocksDB, hard-linked into checkpoint files) goes first.
  const std::string& state_dir = settings->tasks.state_dir;
  if (absl::StatusOr<int> removed = RemoveAbandonedStateDirs(state_dir); !removed.ok()) {
    spdlog::warn("state.dir: cannot clean up {}: {}", state_dir, removed.status().message());
  } else if (*removed > 0) {
    spdlog::info("state.dir: removed {} state director{} no live worker holds (left by killed workers)", *removed,
                 *removed == 1 ? "y" : "ies");
  }

  // The data endpoint first: its port goes into the registration.
  absl::StatusOr<std::unique_ptr<DataPlaneServer>> data_plane =
      DataPlaneServer::Start(settings->data_port, security, *access);
  if (!data_plane.ok()) return Fail(data_plane.status().message());
  std::unique_ptr<CoordinatorClient> coordinator = MakeGrpcCoordinatorClient(
      security, settings->coordinator_address, std::max<int64_t>(settings->heartbeat_interval_ms, 1000));
  settings->tasks.peer_security = security;
  FeatureTaskFactory tasks(settings->tasks, *coordinator, data_plane->get());
  TaskExecutorOptions executor_options;
  executor_options.registration.set_host(settings->advertised_host);
  executor_options.registration.set_data_port((*data_plane)->port());
  executor_options.registration.set_pid(getpid());
  executor_options.registration.set_version("0.3.0");
  executor_options.heartbeat_interval_ms = settings->heartbeat_interval_ms;
  executor_options.heartbeat_timeout_ms = settings->heartbeat_timeout_ms;
  TaskExecutor executor(std::move(executor_options), *coordinator, tasks, g_stop);

  std::unique_ptr<HttpEndpoint> metrics_endpoint;
  if (settings->metrics_port != 0) {
    absl::StatusOr<std::unique_ptr<HttpEndpoint>> endpoint =
        StartMetricsEndpoint(settings->metrics_port, *access, executor);
    if (!endpoint.ok()) return Fail(absl::StrCat("metrics.port: ", endpoint.status().message()));
    metrics_endpoint = std::move(*endpoint);
    spdlog::info("metrics on http://0.0.0.0:{}/metrics", metrics_endpoint->port());
  }
  (*data_plane)->SetCancelListener(
      [&executor](const v1::CancelTaskRequest& request) { executor.OnCancelTask(request); });
  const absl::Status status = executor.Run();
  const int exit_code = status.ok() ? 0 : Fail(status.message());
  if (status.ok()) spdlog::info("stopped");
  // The endpoints refer to the executor: they stop before it goes.
  metrics_endpoint.reset();
  data_plane->reset();
  return exit_code;
}

}  // namespace
}  // namespace slipstream

int main(int argc, char** argv) {
  std::signal(SIGTERM, slipstream::OnSignal);
  std::signal(SIGINT, slipstream::OnSignal);
  return slipstream::RunWorker(argc, argv);
}
