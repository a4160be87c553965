// slipstream-coordinator: the JobManager process. Finds or creates the job id
// in state.checkpoints.dir, learns the input topic's partitions, and serves
// the Coordinator gRPC API on jobmanager.rpc.port until SIGTERM/SIGINT.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <grpcpp/grpcpp.h>
#include <iostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "common/access_control.h"
#include "common/config.h"
#include "common/grpc_security.h"
#include "common/command_line.h"
#include "common/http_endpoint.h"
#include "common/kafka_admin.h"
#include "common/logging.h"
#include "coordinator/coordinator_server.h"
#include "coordinator/job_id.h"
#include "coordinator/rest_api.h"
#include "spdlog/spdlog.h"

namespace slipstream {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void OnSignal(int) { g_stop.store(true); }

int Fail(absl::string_view message) {
  std::cerr << "slipstream-coordinator: " << message << "\n";
  return 1;
}

// `--from-savepoint PATH` (or `--from-savepoint=PATH`) is shorthand for
// -Dexecution.savepoint.path=PATH (like `flink run -s`): rewritten before the
// common command-line handling sees it. Arguments after "--" stay as they are.
absl::StatusOr<std::vector<std::string>> RewriteFromSavepoint(int argc, char** argv) {
  constexpr std::string_view kFlag = "--from-savepoint";
  std::vector<std::string> args;
  bool literal = false;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (literal || i == 0) {
      args.emplace_back(arg);
      continue;
    }
    if (arg == "--") literal = true;
    if (arg == kFlag) {
      if (i + 1 >= argc || std::string_view(argv[i + 1]).empty()) {
        return absl::InvalidArgumentError("--from-savepoint needs a path (a chk-<n> or savepoint directory)");
      }
      args.push_back(absl::StrCat("-Dexecution.savepoint.path=", argv[++i]));
    } else if (arg.starts_with("--from-savepoint=")) {
      const std::string_view path = arg.substr(kFlag.size() + 1);
      if (path.empty()) {
        return absl::InvalidArgumentError("--from-savepoint needs a path (a chk-<n> or savepoint directory)");
      }
      args.push_back(absl::StrCat("-Dexecution.savepoint.path=", ToAbsl(path)));
    } else {
      args.emplace_back(arg);
    }
  }
  return args;
}

int RunCoordinator(int argc, char** argv) {
  absl::StatusOr<std::vector<std::string>> rewritten = RewriteFromSavepoint(argc, argv);
  if (!rewritten.ok()) return Fail(rewritten.status().message());
  std::vector<char*> args;
  for (std::string& a : *rewritten) args.push_back(a.data());
  args.push_back(nullptr);
  LoadedCommandLine command_line = LoadCommandLine(
      static_cast<int>(rewritten->size()), args.data(), "slipstream-coordinator",
      "slipstream-coordinator: the Slipstream JobManager. Owns the job (id, assignment of Kafka partitions "
      "and key groups to workers, recovery from checkpoints) and serves gRPC on jobmanager.rpc.port.\n"
      "--from-savepoint PATH restores the job from a savepoint or retained checkpoint at start (same as "
      "-Dexecution.savepoint.path=PATH).");
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
  const bool reactive = settings.String("scheduler-mode") == "reactive";
  const std::string checkpoints_uri = settings.String("state.checkpoints.dir");
  const std::string savepoints_dir = settings.String("state.savepoints.dir");
  const std::string retention = settings.String("execution.checkpointing.externalized-checkpoint-retention");
  CheckpointSettings checkpoints;
  checkpoints.interval_ms = settings.DurationMs("execution.checkpointing.interval");
  checkpoints.timeout_ms = settings.DurationMs("execution.checkpointing.timeout");
  checkpoints.min_pause_ms = settings.DurationMs("execution.checkpointing.min-pause");
  checkpoints.tolerable_failed = settings.Int("execution.checkpointing.tolerable-failed-checkpoints");
  checkpoints.num_retained =
      static_cast<int>(std::min<int64_t>(settings.Int("state.checkpoints.num-retained"), INT32_MAX));
  checkpoints.exactly_once = settings.String("execution.checkpointing.mode") == "EXACTLY_ONCE";
  RestartStrategySettings restart;
  const std::string restart_type = settings.String("restart-strategy.type");
  restart.fixed_delay_attempts = settings.Int("restart-strategy.fixed-delay.attempts");
  restart.fixed_delay_ms = settings.DurationMs("restart-strategy.fixed-delay.delay");
  restart.initial_backoff_ms = settings.DurationMs("restart-strategy.exponential-delay.initial-backoff");
  restart.max_backoff_ms = settings.DurationMs("restart-strategy.exponential-delay.max-backoff");
  const std::string multiplier = settings.String("restart-strategy.exponential-delay.backoff-multiplier");
  restart.reset_backoff_threshold_ms =
      settings.DurationMs("restart-strategy.exponential-delay.reset-backoff-threshold");
  const int64_t cancellation_timeout_ms = settings.DurationMs("task.cancellation.timeout");
  const std::string savepoint_uri = settings.String("execution.savepoint.path");
  const int64_t rest_port = settings.Int("rest.port");
  const bool rest_tls = settings.Bool("security.ssl.rest.enabled");
  const std::string ssl_cert = settings.String("security.ssl.cert");
  const std::string ssl_key = settings.String("security.ssl.key");
  if (!settings.status().ok()) return Fail(settings.status().message());
  absl::StatusOr<AccessControl> access = AccessControl::FromConfig(config);
  if (!access.ok()) return Fail(access.status().message());
  absl::StatusOr<TlsSettings> tls = LoadTlsSettings(config);
  if (!tls.ok()) return Fail(tls.status().message());
  if (rest_tls && (ssl_cert.empty() || ssl_key.empty())) {
    return Fail("security.ssl.rest.enabled: needs security.ssl.cert and security.ssl.key");
  }
  absl::StatusOr<RestartStrategySettings::Type> type = ParseRestartStrategyType(restart_type);
  if (!type.ok()) return Fail(type.status().message());
  restart.type = *type;
  // Validated by the configuration already (a decimal of at least 1.0).
  if (!absl::SimpleAtod(multiplier, &restart.backoff_multiplier)) {
    return Fail(absl::StrCat("restart-strategy.exponential-delay.backoff-multiplier: \"", multiplier,
                             "\" is not a decimal number"));
  }
  std::string savepoint_path;
  if (!savepoint_uri.empty()) {
    absl::StatusOr<std::string> path = LocalPathFromUri("execution.savepoint.path", savepoint_uri);
    if (!path.ok()) return Fail(path.status().message());
    savepoint_path = *path;
  }
  absl::StatusOr<std::string> checkpoints_dir = LocalPathFromUri("state.checkpoints.dir", checkpoints_uri);
  if (!checkpoints_dir.ok()) return Fail(checkpoints_dir.status().message());
  if (absl::Status s = SetUpLogging("coordinator", log_level); !s.ok()) return Fail(s.message());

  std::vector<std::string> ended_jobs;
  absl::StatusOr<std::string> job_id = LoadOrCreateJobId(*checkpoints_dir, &ended_jobs);
  if (!job_id.ok()) return Fail(job_id.status().message());
  for (const std::string& ended : ended_jobs) {
    spdlog::info("job {} in {} ended (its {} says how); it is not resumed{}", ended, *checkpoints_dir, kJobEndedFile,
                 savepoint_path.empty() ? " (restore its checkpoints or savepoints with --from-savepoint)" : "");
  }

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
  options.restart = restart;
  options.cancellation_timeout_ms = cancellation_timeout_ms;
  options.savepoint_path = savepoint_path;
  options.probe_workers = true;
  options.partition_discovery_interval_ms = settings.DurationMs("kafka.partition-discovery.interval");
  options.rescale_on_join = reactive;
  // Checked per savepoint (a request may name another directory); a bad
  // default only fails savepoints that use it.
  options.savepoints_dir = savepoints_dir;
  options.delete_checkpoints_on_cancel = retention == "DELETE_ON_CANCELLATION";
  options.access = *access;
  options.security = GrpcSecurity(*tls, /*token=*/"");
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
  // Flink's REST API (and /metrics) on rest.port, as a client of the gRPC
  // service just started (0: any free port).
  RestApiOptions rest_options;
  rest_options.job_name = absl::StrCat("slipstream features from ", topic);
  rest_options.checkpoints = checkpoints;
  rest_options.checkpoint_retention = retention;
  rest_options.access = *access;
  // Over TLS the coordinator's certificate names jobmanager.rpc.address (what
  // workers dial), not necessarily 127.0.0.1: check it under that name. The
  // REST layer passes each caller's token on per call, so this channel
  // carries none of its own.
  std::shared_ptr<v1::Coordinator::StubInterface> self = v1::Coordinator::NewStub(GrpcSecurity(*tls, "").Channel(
      absl::StrCat("127.0.0.1:", (*server)->port()), grpc::ChannelArguments(), rpc_address));
  auto rest_api = std::make_shared<RestApi>(self, rest_options);
  const HttpTls rest_tls_files{ssl_cert, ssl_key};
  absl::StatusOr<std::unique_ptr<HttpEndpoint>> rest = HttpEndpoint::Start(
      "0.0.0.0", static_cast<int>(rest_port), [rest_api](const HttpRequest& request) { return rest_api->Handle(request); },
      rest_tls ? &rest_tls_files : nullptr);
  if (!rest.ok()) {
    (*server)->Shutdown();
    return Fail(absl::StrCat("rest.port: ", rest.status().message()));
  }
  spdlog::info("REST API (Flink-compatible) and /metrics on {}://{}:{}", rest_tls ? "https" : "http", rpc_address,
               (*rest)->port());
  spdlog::info("access: changes {}, reads {}, workers {}; gRPC {}",
               access->Required(Access::kAdmin) ? "need security.admin-token" : "open",
               access->Required(Access::kRead) ? "need security.read-token" : "open",
               access->Required(Access::kInternal) ? "need security.internal-token" : "unauthenticated",
               !tls->enabled ? "plaintext" : tls->client_auth ? "over mutual TLS" : "over TLS");
  if (access->Required(Access::kAdmin) && !access->Required(Access::kInternal) && !tls->client_auth) {
    spdlog::warn("security.admin-token is set but workers' calls are unauthenticated: anyone who reaches port {} "
                 "can pose as a worker (and fail the job); set security.internal-token or security.ssl.client-auth",
                 (*server)->port());
  }
  while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("shutting down");
  rest->reset();
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
