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
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "common/access_control.h"
#include "common/config.h"
#include "common/event.h"
#include "common/features/feature_definition.h"
#include "common/file_sink_commit.h"
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
// A finished bounded job's coordinator goes on answering this long.
constexpr int64_t kBoundedLingerMs = 1000;
extern "C" void OnSignal(int) { g_stop.store(true); }

int Fail(absl::string_view message) {
  std::cerr << "slipstream-coordinator: " << message << "\n";
  return 1;
}

// `--from-savepoint PATH` (or `--from-savepoint=PATH`) is shorthand for
// -Dexecution.savepoint.path=PATH (like `flink run -s`), and `--bounded` for
// -Dexecution.runtime-mode=BATCH: rewritten before the common command-line
// handling sees them. Arguments after "--" stay as they are.
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
    if (arg == "--bounded") {
      args.emplace_back("-Dexecution.runtime-mode=BATCH");
    } else if (arg == kFlag) {
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

// `--validate-features FILE`: parses and validates a feature definition file
// and exits (0: valid, 1: the first error on stderr), reading no other
// configuration and connecting nowhere, so CI and editors can run it on a
// machine without Kafka. nullopt when the flag is absent.
std::optional<int> ValidateFeaturesCommand(int argc, char** argv) {
  constexpr std::string_view kFlag = "--validate-features";
  bool wanted = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg == kFlag || arg.starts_with("--validate-features=")) wanted = true;
  }
  if (!wanted) return std::nullopt;
  CLI::App app{"slipstream-coordinator --validate-features FILE: checks a feature definition file (format in "
               "docs/features.md) and exits; takes no other options.",
               "slipstream-coordinator"};
  std::string path;
  app.add_option(std::string(kFlag), path, "The feature definition file (YAML)")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  absl::StatusOr<FeatureDefinition> definition = LoadFeatureDefinitionFile(path);
  if (!definition.ok()) {
    // The message already names the file, line and column.
    std::cerr << definition.status().message() << "\n";
    return 1;
  }
  std::cout << path << ": OK — " << definition->Summary() << "\n";
  return 0;
}

// The configuration, read and checked, before the job is known.
struct CoordinatorSettings {
  std::string log_level;
  std::string rpc_address;  // jobmanager.rpc.address: what workers dial
  int64_t min_workers = 0;  // cluster.min-workers as configured
  std::string checkpoints_dir;  // state.checkpoints.dir as a local path
  std::string retention;        // execution.checkpointing.externalized-checkpoint-retention
  bool bounded = false;         // execution.runtime-mode=BATCH
  std::string file_sink_dir;    // sink.path as a local path, with sink.type=file
  int64_t rest_port = 0;
  bool rest_tls = false;
  HttpTls rest_tls_files;
  TlsSettings tls;
  AccessControl access;
  CoordinatorOptions options;  // all but the job's id and directory
};

// pipeline.features: the file when it exists. Left at its default and absent
// (a binary started outside the source tree or image), the built-in copy of
// the shipped conf/features.yaml; set explicitly, it must be readable.
absl::StatusOr<std::shared_ptr<const FeatureDefinition>> LoadFeatures(const Config& config, const std::string& path) {
  const bool explicit_path = config.explicit_values().count("pipeline.features") > 0;
  std::error_code ignored;
  if (!explicit_path && !std::filesystem::exists(path, ignored)) {
    spdlog::info("pipeline.features: {} does not exist here; computing the built-in default definition ({})", path,
                 DefaultFeatureDefinition().Summary());
    return std::make_shared<const FeatureDefinition>(DefaultFeatureDefinition());
  }
  absl::StatusOr<FeatureDefinition> definition = LoadFeatureDefinitionFile(path);
  if (!definition.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("pipeline.features: ", definition.status().message()));
  }
  spdlog::info("pipeline.features: {} (fingerprint {}): {}", path, definition->fingerprint.substr(0, 12),
               definition->Summary());
  return std::make_shared<const FeatureDefinition>(*std::move(definition));
}

// Reads the settings the configuration validated already; fails on what
// only makes sense together (REST over TLS without a certificate, ...).
absl::StatusOr<CoordinatorSettings> LoadCoordinatorSettings(const Config& config) {
  SettingsReader settings(config);
  CoordinatorSettings s;
  CoordinatorOptions& options = s.options;
  s.log_level = settings.String("log.level");
  s.rpc_address = settings.String("jobmanager.rpc.address");
  const int64_t rpc_port = settings.Int("jobmanager.rpc.port");
  options.topic = settings.String("kafka.topic");
  const std::string dlq_topic = settings.String("kafka.dlq.topic");
  const int64_t max_parallelism = settings.Int("pipeline.max-parallelism");
  options.heartbeat_timeout_ms = settings.DurationMs("heartbeat.timeout");
  s.min_workers = settings.Int("cluster.min-workers");
  options.stabilization_ms = settings.DurationMs("cluster.stabilization-timeout");
  options.rescale_on_join = settings.String("scheduler-mode") == "reactive";
  const std::string checkpoints_uri = settings.String("state.checkpoints.dir");
  // Checked per savepoint (a request may name another directory); a bad
  // default only fails savepoints that use it.
  options.savepoints_dir = settings.String("state.savepoints.dir");
  s.retention = settings.String("execution.checkpointing.externalized-checkpoint-retention");
  CheckpointSettings& checkpoints = options.checkpoints;
  checkpoints.interval_ms = settings.DurationMs("execution.checkpointing.interval");
  checkpoints.timeout_ms = settings.DurationMs("execution.checkpointing.timeout");
  checkpoints.min_pause_ms = settings.DurationMs("execution.checkpointing.min-pause");
  checkpoints.tolerable_failed = settings.Int("execution.checkpointing.tolerable-failed-checkpoints");
  checkpoints.num_retained =
      static_cast<int>(std::min<int64_t>(settings.Int("state.checkpoints.num-retained"), INT32_MAX));
  checkpoints.exactly_once = settings.String("execution.checkpointing.mode") == "EXACTLY_ONCE";
  RestartStrategySettings& restart = options.restart;
  const std::string restart_type = settings.String("restart-strategy.type");
  restart.fixed_delay_attempts = settings.Int("restart-strategy.fixed-delay.attempts");
  restart.fixed_delay_ms = settings.DurationMs("restart-strategy.fixed-delay.delay");
  restart.initial_backoff_ms = settings.DurationMs("restart-strategy.exponential-delay.initial-backoff");
  restart.max_backoff_ms = settings.DurationMs("restart-strategy.exponential-delay.max-backoff");
  const std::string multiplier = settings.String("restart-strategy.exponential-delay.backoff-multiplier");
  restart.reset_backoff_threshold_ms =
      settings.DurationMs("restart-strategy.exponential-delay.reset-backoff-threshold");
  options.cancellation_timeout_ms = settings.DurationMs("task.cancellation.timeout");
  const std::string savepoint_uri = settings.String("execution.savepoint.path");
  s.rest_port = settings.Int("rest.port");
  s.rest_tls = settings.Bool("security.ssl.rest.enabled");
  s.rest_tls_files = HttpTls{settings.String("security.ssl.cert"), settings.String("security.ssl.key")};
  const std::string features_path = settings.String("pipeline.features");
  s.bounded = settings.String("execution.runtime-mode") == "BATCH";
  const std::string starting_timestamp = settings.String("kafka.starting-timestamp");
  const std::string stopping_timestamp = settings.String("kafka.stopping-timestamp");
  const std::string sink_type = settings.String("sink.type");
  const std::string sink_path = settings.String("sink.path");
  if (!settings.status().ok()) return settings.status();
  if (sink_type == "file") {
    // The coordinator renames a finished bounded run's part files into place,
    // so it needs the directory too (shared with the workers, like
    // state.checkpoints.dir).
    if (sink_path.empty()) {
      return absl::InvalidArgumentError(
          "sink.path: sink.type=file needs the directory (file:// URI or path) the features are written under");
    }
    absl::StatusOr<std::string> local = LocalPathFromUri("sink.path", sink_path);
    if (!local.ok()) return local.status();
    s.file_sink_dir = *local;
  }
  absl::StatusOr<std::optional<int64_t>> starting_at =
      ParseTimestampSetting("kafka.starting-timestamp", starting_timestamp);
  if (!starting_at.ok()) return starting_at.status();
  absl::StatusOr<std::optional<int64_t>> stopping_at =
      ParseTimestampSetting("kafka.stopping-timestamp", stopping_timestamp);
  if (!stopping_at.ok()) return stopping_at.status();
  if (*stopping_at && !s.bounded) {
    return absl::InvalidArgumentError(
        "kafka.stopping-timestamp: only a bounded job stops; set execution.runtime-mode=BATCH (or --bounded), or "
        "leave kafka.stopping-timestamp empty");
  }
  if (*starting_at && *stopping_at && **starting_at > **stopping_at) {
    return absl::InvalidArgumentError(absl::StrCat("kafka.stopping-timestamp: ", FormatIso8601Millis(**stopping_at),
                                                   " is before kafka.starting-timestamp ",
                                                   FormatIso8601Millis(**starting_at)));
  }
  if (s.bounded && !savepoint_uri.empty()) {
    return absl::InvalidArgumentError(
        "execution.savepoint.path: a bounded job (execution.runtime-mode=BATCH) starts from empty state at "
        "kafka.starting-timestamp / kafka.starting-offsets; it restores no savepoint");
  }
  options.bounded = s.bounded;
  options.starting_timestamp_ms = *starting_at;
  absl::StatusOr<std::shared_ptr<const FeatureDefinition>> features = LoadFeatures(config, features_path);
  if (!features.ok()) return features.status();
  options.features = *std::move(features);
  absl::StatusOr<AccessControl> access = AccessControl::FromConfig(config);
  if (!access.ok()) return access.status();
  s.access = *access;
  absl::StatusOr<TlsSettings> tls = LoadTlsSettings(config);
  if (!tls.ok()) return tls.status();
  s.tls = *tls;
  if (s.rest_tls && (s.rest_tls_files.cert_path.empty() || s.rest_tls_files.key_path.empty())) {
    return absl::InvalidArgumentError("security.ssl.rest.enabled: needs security.ssl.cert and security.ssl.key");
  }
  absl::StatusOr<RestartStrategySettings::Type> type = ParseRestartStrategyType(restart_type);
  if (!type.ok()) return type.status();
  restart.type = *type;
  // Validated by the configuration already (a decimal of at least 1.0).
  if (!absl::SimpleAtod(multiplier, &restart.backoff_multiplier)) {
    return absl::InvalidArgumentError(absl::StrCat("restart-strategy.exponential-delay.backoff-multiplier: \"",
                                                   multiplier, "\" is not a decimal number"));
  }
  if (!savepoint_uri.empty()) {
    absl::StatusOr<std::string> path = LocalPathFromUri("execution.savepoint.path", savepoint_uri);
    if (!path.ok()) return path.status();
    options.savepoint_path = *path;
  }
  absl::StatusOr<std::string> checkpoints_dir = LocalPathFromUri("state.checkpoints.dir", checkpoints_uri);
  if (!checkpoints_dir.ok()) return checkpoints_dir.status();
  s.checkpoints_dir = *checkpoints_dir;

  // Flink's JobManager binds on all interfaces; the address key is what
  // workers use to reach it.
  options.listen_address = absl::StrCat("0.0.0.0:", rpc_port);
  options.max_parallelism = static_cast<int>(max_parallelism);
  options.min_workers = static_cast<int>(std::min<int64_t>(s.min_workers, max_parallelism));
  options.probe_workers = true;
  options.partition_discovery_interval_ms = settings.DurationMs("kafka.partition-discovery.interval");
  options.delete_checkpoints_on_cancel = s.retention == "DELETE_ON_CANCELLATION";
  if (s.bounded) {
    // Flink's BATCH mode: a fixed input, no rescaling, no partitions added
    // while it runs.
    options.rescale_on_join = false;
    options.partition_discovery_interval_ms = 0;
  }
  options.access = s.access;
  options.security = GrpcSecurity(s.tls, /*token=*/"");
  const auto kafka_properties = config.KafkaClientProperties();
  // Once the input topic exists, make sure the dead-letter topic does too
  // (same partition count, broker's default replication), so workers never
  // block on a missing topic.
  options.partition_count = [kafka_properties, topic = options.topic, dlq_topic]() -> absl::StatusOr<int> {
    absl::StatusOr<int> partitions = FetchPartitionCount(kafka_properties, topic, 5000);
    if (!partitions.ok()) return partitions;
    if (absl::Status s = EnsureTopic(kafka_properties, dlq_topic, *partitions, -1, 10000); !s.ok()) return s;
    return partitions;
  };
  const std::optional<int64_t> stop_at = *stopping_at;
  options.stopping_offsets = [kafka_properties, topic = options.topic, stop_at](int num_partitions) {
    return FetchStoppingOffsets(kafka_properties, topic, num_partitions, stop_at, 10000);
  };
  return s;
}

// Flink's REST API (and /metrics) on rest.port, as a client of the gRPC
// service on `grpc_port` (0: any free port).
absl::StatusOr<std::unique_ptr<HttpEndpoint>> StartRestEndpoint(const CoordinatorSettings& settings, int grpc_port) {
  RestApiOptions rest_options;
  rest_options.job_name = absl::StrCat("slipstream features from ", settings.options.topic);
  rest_options.checkpoints = settings.options.checkpoints;
  rest_options.checkpoint_retention = settings.retention;
  rest_options.access = settings.access;
  // Over TLS the coordinator's certificate names jobmanager.rpc.address (what
  // workers dial), not necessarily 127.0.0.1: check it under that name. The
  // REST layer passes each caller's token on per call, so this channel
  // carries none of its own.
  std::shared_ptr<v1::Coordinator::StubInterface> self = v1::Coordinator::NewStub(GrpcSecurity(settings.tls, "").Channel(
      absl::StrCat("127.0.0.1:", grpc_port), grpc::ChannelArguments(), settings.rpc_address));
  auto rest_api = std::make_shared<RestApi>(self, rest_options);
  return HttpEndpoint::Start(
      "0.0.0.0", static_cast<int>(settings.rest_port),
      [rest_api](const HttpRequest& request) { return rest_api->Handle(request); },
      settings.rest_tls ? &settings.rest_tls_files : nullptr);
}

// Says who may do what, and warns when workers' calls are open to anyone.
void LogAccess(const CoordinatorSettings& settings, int grpc_port) {
  const AccessControl& access = settings.access;
  spdlog::info("access: changes {}, reads {}, workers {}; gRPC {}",
               access.Required(Access::kAdmin) ? "need security.admin-token" : "open",
               access.Required(Access::kRead) ? "need security.read-token" : "open",
               access.Required(Access::kInternal) ? "need security.internal-token" : "unauthenticated",
               !settings.tls.enabled ? "plaintext" : settings.tls.client_auth ? "over mutual TLS" : "over TLS");
  if (access.Required(Access::kAdmin) && !access.Required(Access::kInternal) && !settings.tls.client_auth) {
    spdlog::warn("security.admin-token is set but workers' calls are unauthenticated: anyone who reaches port {} "
                 "can pose as a worker (and fail the job); set security.internal-token or security.ssl.client-auth",
                 grpc_port);
  }
}

int RunCoordinator(int argc, char** argv) {
  if (std::optional<int> exit_code = ValidateFeaturesCommand(argc, argv)) return *exit_code;
  absl::StatusOr<std::vector<std::string>> rewritten = RewriteFromSavepoint(argc, argv);
  if (!rewritten.ok()) return Fail(rewritten.status().message());
  std::vector<char*> args;
  for (std::string& a : *rewritten) args.push_back(a.data());
  args.push_back(nullptr);
  LoadedCommandLine command_line = LoadCommandLine(
      static_cast<int>(rewritten->size()), args.data(), "slipstream-coordinator",
      "slipstream-coordinator: the Slipstream JobManager. Owns the job (id, assignment of Kafka partitions "
      "and key groups to workers, recovery from checkpoints) and serves gRPC on jobmanager.rpc.port.\n"
      "--bounded runs the job over a bounded input (same as -Dexecution.runtime-mode=BATCH): it reads each "
      "partition up to its end offset when the job starts (or kafka.stopping-timestamp), fires every window, "
      "ends FINISHED and exits 0.\n"
      "--from-savepoint PATH restores the job from a savepoint or retained checkpoint at start (same as "
      "-Dexecution.savepoint.path=PATH).\n"
      "--validate-features FILE checks a feature definition file (docs/features.md) and exits, without reading "
      "any other configuration.");
  if (!command_line.config) return command_line.exit_code;
  absl::StatusOr<CoordinatorSettings> settings = LoadCoordinatorSettings(*command_line.config);
  if (!settings.ok()) return Fail(settings.status().message());
  if (absl::Status s = SetUpLogging("coordinator", settings->log_level); !s.ok()) return Fail(s.message());

  const std::string& checkpoints_dir = settings->checkpoints_dir;
  std::vector<std::string> ended_jobs;
  absl::StatusOr<std::string> job_id =
      settings->bounded ? CreateBoundedJobId(checkpoints_dir) : LoadOrCreateJobId(checkpoints_dir, &ended_jobs);
  if (!job_id.ok()) return Fail(job_id.status().message());
  for (const std::string& ended : ended_jobs) {
    spdlog::info("job {} in {} ended (its {} says how); it is not resumed{}", ended, checkpoints_dir, kJobEndedFile,
                 settings->options.savepoint_path.empty()
                     ? " (restore its checkpoints or savepoints with --from-savepoint)"
                     : "");
  }

  CoordinatorOptions options = settings->options;
  options.job_id = *job_id;
  // The job directory LoadOrCreateJobId found or created holds its checkpoints.
  options.job_dir = (std::filesystem::path(checkpoints_dir) / *job_id).string();
  if (settings->bounded && !settings->file_sink_dir.empty()) {
    // When every worker finished, its parts are renamed into place before
    // the job reads FINISHED (a failed rename fails the attempt instead).
    options.on_bounded_finished = [dir = settings->file_sink_dir, job = *job_id](int64_t attempt, int num_workers) {
      return CommitFileSinkAttempt(dir, job, attempt, num_workers);
    };
  }
  absl::StatusOr<std::unique_ptr<CoordinatorServer>> server = CoordinatorServer::Start(std::move(options));
  if (!server.ok()) return Fail(server.status().message());
  const CheckpointSettings& checkpoints = settings->options.checkpoints;
  spdlog::info("job {} on topic {}: serving gRPC on {}:{} (max parallelism {}); waiting for {} worker(s)", *job_id,
               settings->options.topic, settings->rpc_address, (*server)->port(), settings->options.max_parallelism,
               settings->min_workers);
  if (!settings->bounded) {
    spdlog::info(
        "checkpoints every {} ms ({}, timeout {} ms, min pause {} ms, {} tolerable failures, {} retained) in {}",
        checkpoints.interval_ms, checkpoints.exactly_once ? "EXACTLY_ONCE" : "AT_LEAST_ONCE", checkpoints.timeout_ms,
        checkpoints.min_pause_ms, checkpoints.tolerable_failed, checkpoints.num_retained,
        (std::filesystem::path(checkpoints_dir) / *job_id).string());
  }
  absl::StatusOr<std::unique_ptr<HttpEndpoint>> rest = StartRestEndpoint(*settings, (*server)->port());
  if (!rest.ok()) {
    (*server)->Shutdown();
    return Fail(absl::StrCat("rest.port: ", rest.status().message()));
  }
  spdlog::info("REST API (Flink-compatible) and /metrics on {}://{}:{}", settings->rest_tls ? "https" : "http",
               settings->rpc_address, (*rest)->port());
  LogAccess(*settings, (*server)->port());
  int exit_code = 0;
  if (settings->bounded) {
    spdlog::info("bounded job (execution.runtime-mode=BATCH): no checkpoints; the coordinator exits once the job "
                 "ends (0 when FINISHED)");
  }
  while (!g_stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!settings->bounded) continue;
    const JobState state = (*server)->state();
    if (!IsTerminal(state)) continue;
    // Answer GetJob (and REST) a little longer, so clients polling the job
    // see how it ended.
    exit_code = state == JobState::kFinished ? 0 : 2;
    spdlog::info("bounded job {} is {}; exiting with {} after {} ms", *job_id, FlinkJobStatus(state), exit_code,
                 kBoundedLingerMs);
    for (int64_t waited = 0; waited < kBoundedLingerMs && !g_stop.load(); waited += 100) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    break;
  }
  spdlog::info("shutting down");
  rest->reset();
  (*server)->Shutdown();
  return exit_code;
}

}  // namespace
}  // namespace slipstream

int main(int argc, char** argv) {
  std::signal(SIGTERM, slipstream::OnSignal);
  std::signal(SIGINT, slipstream::OnSignal);
  return slipstream::RunCoordinator(argc, argv);
}
