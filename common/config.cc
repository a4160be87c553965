#include "common/config.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/edit_distance.h"
#include "common/event.h"

namespace slipstream {
namespace {

constexpr absl::string_view kKafkaPrefix = "kafka.";
constexpr absl::string_view kBackoffMultiplierKey = "restart-strategy.exponential-delay.backoff-multiplier";
constexpr absl::string_view kStartingTimestampKey = "kafka.starting-timestamp";
constexpr absl::string_view kStoppingTimestampKey = "kafka.stopping-timestamp";

// Debian's abseil has its own absl::string_view; the public API uses std's.
absl::string_view ToAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// ---------------------------------------------------------------------------
// Registry construction helpers.

ConfigKeyInfo MakeKey(std::string name, ConfigType type, std::string default_value,
                      std::string description) {
  ConfigKeyInfo info;
  info.name = std::move(name);
  info.type = type;
  info.default_value = std::move(default_value);
  info.description = std::move(description);
  return info;
}

ConfigKeyInfo StringKey(std::string name, std::string default_value, std::string description) {
  return MakeKey(std::move(name), ConfigType::kString, std::move(default_value),
                 std::move(description));
}

ConfigKeyInfo IntKey(std::string name, int64_t default_value, int64_t min_value,
                     int64_t max_value, std::string description) {
  ConfigKeyInfo info = MakeKey(std::move(name), ConfigType::kInt, absl::StrCat(default_value),
                               std::move(description));
  info.min_value = min_value;
  info.max_value = max_value;
  return info;
}

// Durations can never be negative (the parser rejects a sign), so min is >= 0.
ConfigKeyInfo DurationKey(std::string name, std::string default_value, std::string description,
                          int64_t min_ms = 0) {
  ConfigKeyInfo info = MakeKey(std::move(name), ConfigType::kDuration, std::move(default_value),
                               std::move(description));
  info.min_value = min_ms;
  return info;
}

ConfigKeyInfo BoolKey(std::string name, bool default_value, std::string description) {
  return MakeKey(std::move(name), ConfigType::kBool, default_value ? "true" : "false", std::move(description));
}

ConfigKeyInfo EnumKey(std::string name, std::string default_value,
                      std::vector<std::string> allowed, std::string description) {
  ConfigKeyInfo info = MakeKey(std::move(name), ConfigType::kEnum, std::move(default_value),
                               std::move(description));
  info.allowed_values = std::move(allowed);
  return info;
}

std::vector<ConfigKeyInfo> BuildRegistry() {
  constexpr int64_t kMaxPort = 65535;
  return {
      // Kafka source and dead-letter queue.
      StringKey("kafka.bootstrap.servers", "localhost:9092",
                "Kafka brokers to bootstrap from, as a comma-separated host:port list "
                "(librdkafka bootstrap.servers)."),
      StringKey("kafka.topic", "ecommerce-events",
                "Topic the Kafka source reads e-commerce events from."),
      StringKey("kafka.group.id", "slipstream-feature-pipeline",
                "Kafka consumer group id of the source. kafka.starting-offsets=committed "
                "resumes from this group's committed offsets."),
      StringKey("kafka.dlq.topic", "ecommerce-events-dlq",
                "Dead-letter topic: records that cannot be parsed or validated are written "
                "here, with the reason, instead of failing the job."),
      DurationKey("kafka.partition-discovery.interval", "30 s",
                  "How often the coordinator reads the input topic's partition count again. When "
                  "it grew, the job takes a checkpoint and is redeployed with the new partitions, "
                  "read from their earliest offset (Flink's KafkaSource does the same); a topic "
                  "that shrank or vanished fails the job. 0 disables discovery."),
      EnumKey("kafka.starting-offsets", "committed", {"committed", "earliest", "latest"},
              "Where the source starts reading when the job is not restored from a "
              "checkpoint or savepoint (restored offsets always win): committed = the "
              "group's committed offsets, falling back to earliest for partitions without "
              "one; earliest = the oldest retained record; latest = only new records."),
      StringKey(std::string(kStartingTimestampKey), "",
                "Start at a point in time instead: each partition starts at the first offset "
                "whose record timestamp is >= this (epoch milliseconds, or ISO-8601 such as "
                "2024-05-01T00:00:00Z; Kafka's offsetsForTimes), or at its end when no record "
                "is that late. Wins over kafka.starting-offsets; restored offsets still win. "
                "Empty: unset."),
      StringKey(std::string(kStoppingTimestampKey), "",
                "execution.runtime-mode=BATCH only: each partition is read up to (excluding) "
                "the first offset whose record timestamp is >= this (epoch milliseconds or "
                "ISO-8601), or to its end offset when no record is that late. Empty: the end "
                "offsets seen when the job starts."),

      // Redis feature sink.
      StringKey("redis.host", "localhost", "Host of the Redis server the feature sink writes to."),
      IntKey("redis.port", 6379, 1, kMaxPort, "Port of the Redis server."),
      StringKey("redis.user", "",
                "ACL user: AUTH <redis.user> <redis.password> after connecting (Redis 6+, managed "
                "services). Empty: the default user (AUTH <redis.password>)."),
      StringKey("redis.password", "",
                "Password sent with AUTH after connecting; empty means no AUTH."),
      IntKey("redis.db", 0, 0, 15, "Redis logical database number (SELECT) to write to."),
      IntKey("redis.batch-size", 1000, 1, 100000,
             "Maximum number of Redis commands pipelined per network round trip."),
      DurationKey("redis.timeout", "5 s", "Connect and I/O timeout for Redis operations."),
      BoolKey("redis.ssl", false,
              "TLS to Redis (and to every node of a cluster). The server's certificate is verified "
              "against redis.ssl.ca and its name against redis.ssl.server-name."),
      StringKey("redis.ssl.ca", "",
                "PEM file of the CA certificates that sign the Redis server's certificate; empty: "
                "the system's trust store (managed services with public CAs)."),
      StringKey("redis.ssl.cert", "",
                "PEM client certificate for mutual TLS (with redis.ssl.key); empty: none."),
      StringKey("redis.ssl.key", "", "PEM private key of redis.ssl.cert."),
      StringKey("redis.ssl.server-name", "",
                "Name sent as SNI and expected in the server's certificate; empty: redis.host (or "
                "each cluster node's address)."),
      IntKey("redis.replica-acks", -1, -1, 16,
             "Replicas that must hold a batch (WAIT) before it counts as written, so that a "
             "failover loses nothing acknowledged. -1: one on a Redis Cluster (for each master that "
             "has a replica), none for a single Redis; 0: never wait."),
      StringKey("redis.cluster.nodes", "",
                "Seed nodes of a Redis Cluster, host:port,host:port,...: the sink reads the slot "
                "map from them and writes each key to the master of its slot (redis.host, "
                "redis.port and redis.db are then unused). Empty: the single Redis at "
                "redis.host:redis.port."),

      // Where features go.
      EnumKey("sink.type", "redis", {"redis", "file"},
              "Where workers write the features: redis = the Redis feature store (redis.*); file = "
              "JSON lines under sink.path, for training data (docs/file-sink.md), meant for bounded "
              "runs: a finished run's parts are renamed into place, a streaming run's stay under "
              "<sink.path>/<job-id>/.inprogress/."),
      StringKey("sink.path", "",
                "Directory of the file sink (sink.type=file, where it is required): a file:// URI or "
                "a plain path on a file system every worker and the coordinator share. Output goes "
                "to <sink.path>/<job-id>/."),

      // Coordinator (Flink's JobManager).
      StringKey("jobmanager.rpc.address", "localhost",
                "Host of the coordinator (the JobManager); workers and the CLI connect here."),
      IntKey("jobmanager.rpc.port", 6123, 1, kMaxPort, "RPC (gRPC) port of the coordinator."),

      // Workers (Flink's TaskManagers).
      StringKey("taskmanager.host", "",
                "Address a worker advertises to the coordinator and to other workers for "
                "data exchange. Empty = auto, which means 127.0.0.1 (single host); set it "
                "to a routable address when workers run on several machines."),
      IntKey("taskmanager.data.port", 0, 0, kMaxPort,
             "Port a worker listens on for data exchange with other workers; 0 picks a "
             "free port."),

      // Pipeline.
      IntKey("pipeline.max-parallelism", 128, 1, 32768,
             "Number of key groups: the upper bound for the parallelism of keyed operators "
             "and the unit in which keyed state is redistributed when rescaling. Keep it "
             "unchanged between a checkpoint or savepoint and the job restored from it."),
      StringKey("pipeline.features", "conf/features.yaml",
                "The feature definition file; see docs/features.md."),

      // Source.
      DurationKey("source.idle-timeout", "30 s",
                  "A Kafka partition that receives no records for this long is marked idle "
                  "so the watermark can advance without it; 0 disables idleness detection."),
      DurationKey("source.max-event-time-skew", "0 ms",
                  "0 (default) keeps Flink's semantics: a record far in the future moves its "
                  "partition's watermark there and fires every open window early. When set, a "
                  "record whose event_time is more than this ahead of the worker's wall clock "
                  "goes to the dead-letter topic (reason future_event_time) instead."),

      // State backend.
      EnumKey("state.backend.type", "rocksdb", {"rocksdb"},
              "State backend for keyed window state; only rocksdb (embedded RocksDB on each "
              "worker) is supported."),
      StringKey("state.dir", "/tmp/slipstream/state",
                "Local working directory of the RocksDB instances on each worker (like "
                "Flink's state.backend.rocksdb.localdir). Not durable: checkpoints are "
                "copied to state.checkpoints.dir."),

      // Checkpointing and savepoints.
      EnumKey("execution.runtime-mode", "STREAMING", {"STREAMING", "BATCH"},
              "STREAMING: the job runs until it is stopped. BATCH (Flink's bounded "
              "execution; slipstream-coordinator --bounded): the coordinator fixes each "
              "partition's stopping offset when the job starts (kafka.stopping-timestamp, or "
              "the end offsets then), the workers read up to them, fire every window at the "
              "end of input and drain the sink; the job ends FINISHED and the coordinator "
              "exits 0. No checkpoints, no rescaling; a failed attempt restarts from the "
              "start."),
      DurationKey("execution.checkpointing.interval", "30 s",
                  "Interval between periodic checkpoints.", /*min_ms=*/10),
      EnumKey("execution.checkpointing.mode", "EXACTLY_ONCE", {"EXACTLY_ONCE", "AT_LEAST_ONCE"},
              "Checkpointing guarantee: EXACTLY_ONCE aligns checkpoint barriers so state "
              "reflects every record exactly once; AT_LEAST_ONCE skips alignment for lower "
              "latency, so records may be counted again after a recovery."),
      DurationKey("execution.checkpointing.timeout", "10 min",
                  "A checkpoint that has not completed within this time is aborted."),
      DurationKey("execution.checkpointing.min-pause", "0 ms",
                  "Minimum pause between the end of one checkpoint and the start of the "
                  "next."),
      IntKey("execution.checkpointing.tolerable-failed-checkpoints", 0, 0, INT64_MAX,
             "Number of consecutive checkpoint failures tolerated before the job fails "
             "over; 0 fails over on the first failure."),
      EnumKey("execution.checkpointing.externalized-checkpoint-retention",
              "RETAIN_ON_CANCELLATION", {"RETAIN_ON_CANCELLATION", "DELETE_ON_CANCELLATION"},
              "What happens to retained checkpoints when the job is cancelled (slipstream "
              "cancel): RETAIN_ON_CANCELLATION keeps them so the job can be resumed from one "
              "(execution.savepoint.path); DELETE_ON_CANCELLATION deletes them. Savepoints are "
              "never deleted. Flink's default is NO_EXTERNALIZED_CHECKPOINTS; here checkpoints "
              "are always on disk (recovery and a restarted coordinator need them), so the "
              "default keeps them."),
      StringKey("state.checkpoints.dir", "file:///tmp/slipstream/checkpoints",
                "Directory for completed checkpoints: a file:// URI or plain path on a local "
                "or shared file system that the coordinator and every worker can reach."),
      IntKey("state.checkpoints.num-retained", 1, 1, INT64_MAX,
             "Number of completed checkpoints to keep."),
      StringKey("state.savepoints.dir", "file:///tmp/slipstream/savepoints",
                "Default target directory for savepoints (absolute file:// URI or path on the "
                "coordinator's file system, shared with the workers): each savepoint is a "
                "self-contained directory savepoint-<first 6 characters of the job id>-<12 hex> "
                "inside it, kept until disposed (slipstream savepoint --dispose). Empty: every "
                "savepoint must name its directory."),
      StringKey("execution.savepoint.path", "",
                "Savepoint or retained checkpoint to restore the job from when it starts: a "
                "chk-<n> or savepoint directory holding a _metadata file (file:// URI or plain "
                "path); used unless the job has a newer completed checkpoint in "
                "state.checkpoints.dir. The coordinator's --from-savepoint PATH sets it. "
                "Empty = none."),

      // Cluster membership and failure detection.
      IntKey("cluster.min-workers", 1, 1, INT64_MAX,
             "Number of workers that must be registered before the coordinator deploys "
             "the job (over every worker registered by then)."),
      DurationKey("cluster.stabilization-timeout", "1 s",
                  "Once cluster.min-workers are registered, the coordinator deploys when no "
                  "further worker has registered for this long, so workers starting together "
                  "join one deployment (like Flink's resource-stabilization-timeout)."),
      EnumKey("scheduler-mode", "reactive", {"reactive", "default"},
              "reactive (Flink's reactive mode): a worker joining a running job makes the "
              "coordinator take a checkpoint and redeploy the job over every worker, each "
              "restoring the key-group ranges it now owns; workers joining within "
              "cluster.stabilization-timeout cause one rescale. Needs state.checkpoints.dir. "
              "default: a worker joining a running job waits as a standby until a restart."),
      DurationKey("heartbeat.interval", "2 s",
                  "Interval at which workers send heartbeats to the coordinator."),
      DurationKey("heartbeat.timeout", "10 s",
                  "A worker that has sent no heartbeat for this long is considered lost and "
                  "the job fails over; a worker that has not reached the coordinator for this "
                  "long cancels its task by itself."),

      // Restart strategy.
      EnumKey("restart-strategy.type", "fixed-delay", {"fixed-delay", "exponential-delay", "none"},
              "How the job recovers from a failure: fixed-delay restarts from the latest "
              "checkpoint after a fixed delay, up to a number of attempts; "
              "exponential-delay restarts with a growing delay; none fails the job."),
      IntKey("restart-strategy.fixed-delay.attempts", INT32_MAX, 0, INT32_MAX,
             "Number of restart attempts of the fixed-delay strategy before the job fails "
             "(the default is effectively unlimited, as in Flink with checkpointing)."),
      DurationKey("restart-strategy.fixed-delay.delay", "1 s",
                  "Delay between two restart attempts of the fixed-delay strategy."),
      DurationKey("restart-strategy.exponential-delay.initial-backoff", "1 s",
                  "Delay before the first restart of the exponential-delay strategy (and the "
                  "first one after a reset)."),
      DurationKey("restart-strategy.exponential-delay.max-backoff", "1 min",
                  "Upper bound of the exponential-delay strategy's restart delay."),
      StringKey(std::string(kBackoffMultiplierKey), "2.0",
                "Factor by which the exponential-delay strategy's restart delay grows with "
                "each failure: a decimal number, at least 1.0."),
      DurationKey("restart-strategy.exponential-delay.reset-backoff-threshold", "1 h",
                  "A failure this long after the previous one restarts the exponential-delay "
                  "strategy's delay at its initial backoff."),
      DurationKey("task.cancellation.timeout", "3 min",
                  "A worker told to cancel the task of a failed attempt that still reports it "
                  "running after this long is dropped by the coordinator (it must register "
                  "again); the next attempt does not wait for it. 0 disables the timeout."),

      // Endpoints and logging.
      IntKey("rest.port", 8081, 0, kMaxPort, "Port of the coordinator's REST endpoint."),
      IntKey("metrics.port", 0, 0, kMaxPort,
             "Port of the HTTP metrics endpoint; 0 disables it."),

      // Access control and transport security.
      StringKey("security.admin-token", "",
                "Bearer token required for anything that changes the job (savepoint, stop, "
                "cancel, dispose) over REST (Authorization: Bearer <token>) and gRPC (metadata "
                "authorization: Bearer <token>); also grants reads. Empty: no token needed."),
      StringKey("security.read-token", "",
                "Bearer token required to read the job's status over REST (except the web UI "
                "page itself) and gRPC; the admin token is accepted too. Empty: reads are open. "
                "Needs security.admin-token."),
      StringKey("security.internal-token", "",
                "Shared secret of the coordinator and the workers, sent on every call they make "
                "to each other (registration, heartbeats, checkpoint acknowledgements, "
                "checkpoint triggers, the data plane) and required by the receiver. Set the same "
                "value on every process. Empty: internal calls need no token (then protect the "
                "network, or use security.ssl.client-auth)."),
      BoolKey("security.ssl.enabled", false,
              "TLS on every gRPC connection: the coordinator's server, the workers' data and "
              "TaskControl servers, the workers' channels to the coordinator and to each other, "
              "and the CLI. Needs security.ssl.cert, security.ssl.key and security.ssl.ca."),
      StringKey("security.ssl.cert", "",
                "PEM file with this process's certificate chain (its hostnames or IPs in "
                "subjectAltName: jobmanager.rpc.address for the coordinator, taskmanager.host "
                "for workers)."),
      StringKey("security.ssl.key", "", "PEM file with the private key of security.ssl.cert."),
      StringKey("security.ssl.ca", "",
                "PEM file with the CA certificate(s) trusted for peers' certificates (servers' "
                "and, with client-auth, clients')."),
      BoolKey("security.ssl.client-auth", false,
              "Mutual TLS: gRPC servers require a client certificate signed by security.ssl.ca, "
              "and every process presents security.ssl.cert as one."),
      BoolKey("security.ssl.rest.enabled", false,
              "HTTPS on rest.port (REST API, web UI, /metrics) with security.ssl.cert and "
              "security.ssl.key."),

      EnumKey("log.level", "info", {"trace", "debug", "info", "warn", "error"},
              "Minimum level of log messages that are written."),
  };
}

const ConfigKeyInfo* FindKey(absl::string_view name) {
  for (const ConfigKeyInfo& info : KnownConfigKeys()) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

absl::string_view TypeName(ConfigType type) {
  switch (type) {
    case ConfigType::kString: return "string";
    case ConfigType::kInt: return "int";
    case ConfigType::kDuration: return "duration";
    case ConfigType::kBool: return "bool";
    case ConfigType::kEnum: return "enum";
  }
  return "unknown";
}

// Slipstream's own kafka.* keys are consumed by the job, not librdkafka.
bool IsSlipstreamOnlyKafkaKey(absl::string_view key) {
  return key == "kafka.topic" || key == "kafka.dlq.topic" || key == "kafka.starting-offsets" ||
         key == "kafka.partition-discovery.interval" || key == kStartingTimestampKey ||
         key == kStoppingTimestampKey;
}

// ---------------------------------------------------------------------------
// Error helpers.

// A typo such as "redis.prot" should point at the key the user meant.
std::string UnknownKeyMessage(absl::string_view key) {
  std::string message = absl::StrCat("unknown configuration key \"", key, "\" (see --help)");
  const ConfigKeyInfo* best = nullptr;
  size_t best_distance = 4;  // suggest only close matches
  for (const ConfigKeyInfo& info : KnownConfigKeys()) {
    const size_t distance = EditDistance(std::string_view(key.data(), key.size()), info.name);
    if (distance < best_distance) {
      best_distance = distance;
      best = &info;
    }
  }
  if (best != nullptr) absl::StrAppend(&message, ", did you mean \"", best->name, "\"?");
  return message;
}

std::string FormatBound(const ConfigKeyInfo& info, int64_t value) {
  return info.type == ConfigType::kDuration ? FormatDurationMs(value) : absl::StrCat(value);
}

// "1..65535", "at least 1", or "" when unbounded. Durations have an implicit
// floor of 0 that is not worth printing.
std::string RangeText(const ConfigKeyInfo& info) {
  const int64_t implicit_min = info.type == ConfigType::kDuration ? 0 : INT64_MIN;
  const bool has_min = info.min_value > implicit_min;
  const bool has_max = info.max_value < INT64_MAX;
  if (has_min && has_max) {
    return absl::StrCat("between ", FormatBound(info, info.min_value), " and ",
                        FormatBound(info, info.max_value));
  }
  if (has_min) return absl::StrCat("at least ", FormatBound(info, info.min_value));
  if (has_max) return absl::StrCat("at most ", FormatBound(info, info.max_value));
  return "";
}

absl::Status CheckRange(const ConfigKeyInfo& info, absl::string_view raw, int64_t value) {
  if (value >= info.min_value && value <= info.max_value) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(info.name, ": \"", raw, "\" must be ", RangeText(info)));
}

// ---------------------------------------------------------------------------
// Typed value parsing. Every error names the key.

// Decimal only: "0x10", "1e3" or "5 " style surprises are rejected.
absl::StatusOr<int64_t> ParseIntValue(const ConfigKeyInfo& info, absl::string_view raw) {
  absl::string_view digits = raw;
  if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) digits.remove_prefix(1);
  int64_t value = 0;
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(raw, &value)) {
    return absl::InvalidArgumentError(absl::StrCat(info.name, ": \"", raw, "\" is not an integer"));
  }
  if (absl::Status range = CheckRange(info, raw, value); !range.ok()) return range;
  return value;
}

absl::StatusOr<int64_t> ParseDurationValue(const ConfigKeyInfo& info, absl::string_view raw) {
  absl::StatusOr<int64_t> ms = ParseDurationMs(std::string_view(raw.data(), raw.size()));
  if (!ms.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(info.name, ": ", ms.status().message()));
  }
  if (absl::Status range = CheckRange(info, raw, *ms); !range.ok()) return range;
  return *ms;
}

absl::StatusOr<bool> ParseBoolValue(const ConfigKeyInfo& info, absl::string_view raw) {
  // Flink accepts booleans case-insensitively.
  if (absl::EqualsIgnoreCase(raw, "true")) return true;
  if (absl::EqualsIgnoreCase(raw, "false")) return false;
  return absl::InvalidArgumentError(
      absl::StrCat(info.name, ": \"", raw, "\" must be true or false"));
}

bool IsUpperCaseEnum(const ConfigKeyInfo& info) {
  return std::all_of(info.allowed_values.begin(), info.allowed_values.end(),
                     [](const std::string& v) { return absl::AsciiStrToUpper(v) == v; });
}

// Returns the canonical spelling. Flink's UPPER_CASE enums are matched
// case-insensitively (Flink does the same); lower-case ones exactly.
absl::StatusOr<std::string> ParseEnumValue(const ConfigKeyInfo& info, absl::string_view raw) {
  const bool ignore_case = IsUpperCaseEnum(info);
  for (const std::string& allowed : info.allowed_values) {
    if (allowed == raw || (ignore_case && absl::EqualsIgnoreCase(allowed, raw))) return allowed;
  }
  return absl::InvalidArgumentError(absl::StrCat(info.name, ": \"", raw, "\" must be one of ",
                                                 absl::StrJoin(info.allowed_values, ", ")));
}

// Validates `raw` as the key's type and returns the normalized value to store.
absl::StatusOr<std::string> NormalizeValue(const ConfigKeyInfo& info, absl::string_view raw) {
  switch (info.type) {
    case ConfigType::kString:
      if (info.name == kStartingTimestampKey || info.name == kStoppingTimestampKey) {
        absl::StatusOr<std::optional<int64_t>> at =
            ParseTimestampSetting(info.name, std::string_view(raw.data(), raw.size()));
        if (!at.ok()) return at.status();
      }
      if (info.name == kBackoffMultiplierKey) {
        // A decimal number stored as a string (the registry has no float type).
        double value = 0;
        if (!absl::SimpleAtod(raw, &value) || !(value >= 1.0) || value > 1e6) {
          return absl::InvalidArgumentError(
              absl::StrCat(info.name, ": \"", raw, "\" must be a decimal number of at least 1.0, e.g. 2.0"));
        }
      }
      return std::string(raw);
    case ConfigType::kInt: {
      absl::StatusOr<int64_t> value = ParseIntValue(info, raw);
      if (!value.ok()) return value.status();
      return std::string(raw);
    }
    case ConfigType::kDuration: {
      absl::StatusOr<int64_t> value = ParseDurationValue(info, raw);
      if (!value.ok()) return value.status();
      return std::string(raw);
    }
    case ConfigType::kBool: {
      absl::StatusOr<bool> value = ParseBoolValue(info, raw);
      if (!value.ok()) return value.status();
      return std::string(*value ? "true" : "false");
    }
    case ConfigType::kEnum:
      return ParseEnumValue(info, raw);
  }
  return absl::InternalError(absl::StrCat(info.name, ": unhandled configuration type"));
}

using Origins = std::map<std::string, std::string>;

// Validates all values (normalizing them in place) and reports every problem
// at once, so a user fixes a broken file in one go. `origins` says where each
// key was set ("at path:line" or "by -Dkey") to point the user at the right place.
absl::Status ValidateAndNormalize(std::map<std::string, std::string>& values,
                                  const Origins& origins) {
  std::vector<std::string> errors;
  for (auto& [key, value] : values) {
    std::string error;
    const ConfigKeyInfo* info = FindKey(key);
    if (info == nullptr) {
      if (!absl::StartsWith(key, kKafkaPrefix)) {
        error = UnknownKeyMessage(key);
      } else if (key.size() == kKafkaPrefix.size()) {
        error = "configuration key \"kafka.\" needs a librdkafka property name after the prefix";
      }
    } else {
      absl::StatusOr<std::string> normalized =
          NormalizeValue(*info, absl::StripAsciiWhitespace(value));
      if (normalized.ok()) {
        value = *std::move(normalized);
      } else {
        error = std::string(normalized.status().message());
      }
    }
    if (error.empty()) continue;
    if (auto origin = origins.find(key); origin != origins.end()) {
      absl::StrAppend(&error, " (set ", origin->second, ")");
    }
    errors.push_back(std::move(error));
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
}

// The registry entry of `key` plus its effective raw value, if `key` has type `type`.
absl::StatusOr<std::pair<const ConfigKeyInfo*, std::string>> TypedLookup(
    const std::map<std::string, std::string>& values, absl::string_view key, ConfigType type) {
  const ConfigKeyInfo* info = FindKey(key);
  if (info == nullptr) return absl::InvalidArgumentError(UnknownKeyMessage(key));
  if (info->type != type) {
    return absl::InvalidArgumentError(absl::StrCat("configuration key \"", key, "\" has type ",
                                                   TypeName(info->type), ", not ",
                                                   TypeName(type)));
  }
  const auto it = values.find(info->name);
  return std::make_pair(info, it != values.end() ? it->second : info->default_value);
}

// ---------------------------------------------------------------------------
// .properties parsing (java.util.Properties subset).

bool IsPropertiesSpace(char c) { return c == ' ' || c == '\t' || c == '\f'; }

absl::string_view StripLeadingPropertiesSpace(absl::string_view s) {
  while (!s.empty() && IsPropertiesSpace(s.front())) s.remove_prefix(1);
  return s;
}

// Number of consecutive backslashes that end `s`.
size_t TrailingBackslashes(absl::string_view s) {
  size_t n = 0;
  while (n < s.size() && s[s.size() - 1 - n] == '\\') ++n;
  return n;
}

void AppendUtf8(uint32_t code_point, std::string& out) {
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

// Decodes the escape starting at s[i] == '\\' into `out` and advances `i`
// past it. Like Java: \t \n \r \f, \uXXXX, and any other escaped character
// stands for itself (so "\=", "\:", "\ ", "\#" and "\\" are literal).
absl::Status AppendEscape(absl::string_view s, size_t& i, std::string& out) {
  ++i;  // the backslash
  if (i >= s.size()) return absl::OkStatus();  // a lone trailing backslash is dropped
  const char c = s[i++];
  switch (c) {
    case 't': out.push_back('\t'); break;
    case 'n': out.push_back('\n'); break;
    case 'r': out.push_back('\r'); break;
    case 'f': out.push_back('\f'); break;
    case 'u': {
      uint32_t code_point = 0;
      if (i + 4 > s.size() || !absl::SimpleHexAtoi(s.substr(i, 4), &code_point) ||
          !std::all_of(s.begin() + i, s.begin() + i + 4, absl::ascii_isxdigit)) {
        return absl::InvalidArgumentError("malformed \\uXXXX escape");
      }
      if (code_point >= 0xD800 && code_point <= 0xDFFF) {
        return absl::InvalidArgumentError(
            "\\u surrogate pairs are not supported; write the character as UTF-8");
      }
      AppendUtf8(code_point, out);
      i += 4;
      break;
    }
    default: out.push_back(c); break;
  }
  return absl::OkStatus();
}

absl::Status Unescape(absl::string_view s, std::string& out) {
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '\\') {
      if (absl::Status status = AppendEscape(s, i, out); !status.ok()) return status;
    } else {
      out.push_back(s[i++]);
    }
  }
  return absl::OkStatus();
}

// Splits one logical line into key and value: the key ends at the first
// unescaped '=', ':' or whitespace; whitespace around the separator and at
// the end of the value is dropped.
absl::Status ParseLogicalLine(absl::string_view line, std::string& key, std::string& value) {
  size_t i = 0;
  while (i < line.size()) {
    const char c = line[i];
    if (c == '\\') {
      if (absl::Status status = AppendEscape(line, i, key); !status.ok()) return status;
      continue;
    }
    if (c == '=' || c == ':' || IsPropertiesSpace(c)) break;
    key.push_back(c);
    ++i;
  }
  if (key.empty()) return absl::InvalidArgumentError("missing key before the separator");
  while (i < line.size() && IsPropertiesSpace(line[i])) ++i;
  if (i < line.size() && (line[i] == '=' || line[i] == ':')) ++i;
  while (i < line.size() && IsPropertiesSpace(line[i])) ++i;
  absl::string_view raw_value = line.substr(i);
  // Trim trailing whitespace unless it is escaped ("\ ").
  while (!raw_value.empty() && IsPropertiesSpace(raw_value.back()) &&
         TrailingBackslashes(raw_value.substr(0, raw_value.size() - 1)) % 2 == 0) {
    raw_value.remove_suffix(1);
  }
  return Unescape(raw_value, value);
}

absl::Status ParseProperties(absl::string_view text, const std::string& path,
                             std::map<std::string, std::string>& values, Origins& origins) {
  absl::ConsumePrefix(&text, "\xEF\xBB\xBF");  // UTF-8 byte order mark
  const std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  size_t next = 0;
  auto natural_line = [&]() {
    absl::string_view line = lines[next++];
    absl::ConsumeSuffix(&line, "\r");  // CRLF files
    return StripLeadingPropertiesSpace(line);
  };
  while (next < lines.size()) {
    const size_t line_number = next + 1;
    absl::string_view part = natural_line();
    // Comments are only recognized at the start of a logical line, and a
    // comment never continues onto the next line (as in Java).
    if (part.empty() || part.front() == '#' || part.front() == '!') continue;
    std::string logical;
    while (TrailingBackslashes(part) % 2 == 1) {
      absl::StrAppend(&logical, part.substr(0, part.size() - 1));
      if (next >= lines.size()) {
        part = {};
        break;
      }
      part = natural_line();  // continuation: leading whitespace dropped
    }
    absl::StrAppend(&logical, part);

    std::string key;
    std::string value;
    const std::string location = absl::StrCat(path, ":", line_number);
    if (absl::Status status = ParseLogicalLine(logical, key, value); !status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(location, ": ", status.message()));
    }
    values[key] = std::move(value);  // a later line wins, as in Java
    origins[key] = absl::StrCat("at ", location);
  }
  return absl::OkStatus();
}

absl::Status ReadPropertiesFile(const std::string& path, std::map<std::string, std::string>& values,
                                Origins& origins) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) {
    return absl::NotFoundError(absl::StrCat("configuration file \"", path, "\" not found"));
  }
  if (std::filesystem::is_directory(status)) {
    return absl::InvalidArgumentError(
        absl::StrCat("configuration file \"", path, "\" is a directory"));
  }
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read configuration file \"", path, "\""));
  }
  return ParseProperties(text, path, values, origins);
}

// ---------------------------------------------------------------------------
// Help text.

absl::string_view GroupTitle(absl::string_view prefix) {
  static constexpr std::pair<absl::string_view, absl::string_view> kTitles[] = {
      {"kafka", "Kafka source and dead-letter queue"},
      {"redis", "Redis feature sink"},
      {"jobmanager", "Coordinator / JobManager"},
      {"taskmanager", "Workers / TaskManagers"},
      {"pipeline", "Pipeline"},
      {"source", "Source"},
      {"state", "State backend and checkpoint storage"},
      {"execution", "Checkpointing and savepoints"},
      {"cluster", "Cluster"},
      {"heartbeat", "Heartbeats"},
      {"restart-strategy", "Restart strategy"},
      {"task", "Tasks"},
      {"rest", "REST endpoint"},
      {"metrics", "Metrics"},
      {"security", "Access control and transport security"},
      {"log", "Logging"},
  };
  for (const auto& [candidate, title] : kTitles) {
    if (candidate == prefix) return title;
  }
  return prefix;
}

absl::string_view KeyPrefix(absl::string_view name) { return name.substr(0, name.find('.')); }

void AppendWrapped(std::string& out, absl::string_view text, size_t indent, size_t width) {
  size_t column = 0;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (column == 0) {
      out.append(indent, ' ');
      column = indent;
    } else if (column + 1 + word.size() > width) {
      out.append("\n").append(indent, ' ');
      column = indent;
    } else {
      out.push_back(' ');
      ++column;
    }
    absl::StrAppend(&out, word);
    column += word.size();
  }
  out.push_back('\n');
}

}  // namespace

std::string FormatDurationMs(int64_t ms) {
  struct Unit {
    int64_t factor;
    absl::string_view label;
  };
  static constexpr Unit kUnits[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "min"}, {1'000, "s"}};
  if (ms != 0) {
    for (const Unit& unit : kUnits) {
      if (ms % unit.factor == 0) return absl::StrCat(ms / unit.factor, " ", unit.label);
    }
  }
  return absl::StrCat(ms, " ms");
}

// ---------------------------------------------------------------------------
// Public API.

const std::vector<ConfigKeyInfo>& KnownConfigKeys() {
  static const std::vector<ConfigKeyInfo>* const registry =
      new std::vector<ConfigKeyInfo>(BuildRegistry());
  return *registry;
}

std::string ConfigHelpText() {
  std::string out =
      "Configuration keys. Set them in the properties file or override any of them on the\n"
      "command line with -Dkey=value (overrides win). Durations take a unit: 500 ms, 30 s,\n"
      "10 min, 1 h, 2 d (a plain number means milliseconds).\n";
  // Groups in order of first appearance; keys in registry order within a group.
  std::vector<absl::string_view> prefixes;
  for (const ConfigKeyInfo& info : KnownConfigKeys()) {
    const absl::string_view prefix = KeyPrefix(info.name);
    if (std::find(prefixes.begin(), prefixes.end(), prefix) == prefixes.end()) {
      prefixes.push_back(prefix);
    }
  }
  for (absl::string_view prefix : prefixes) {
    absl::StrAppend(&out, "\n", GroupTitle(prefix), " (", prefix, ".*)\n");
    for (const ConfigKeyInfo& info : KnownConfigKeys()) {
      if (KeyPrefix(info.name) != prefix) continue;
      const std::string shown_default =
          info.default_value.empty() ? "(empty)" : info.default_value;
      absl::StrAppend(&out, "  ", info.name, "\n      ", TypeName(info.type), ", default ",
                      shown_default);
      if (info.type == ConfigType::kEnum) {
        absl::StrAppend(&out, "; one of: ", absl::StrJoin(info.allowed_values, ", "));
      } else if (const std::string range = RangeText(info); !range.empty()) {
        absl::StrAppend(&out, "; ", range);
      }
      out.push_back('\n');
      AppendWrapped(out, info.description, 6, 80);
    }
  }
  absl::StrAppend(&out,
                  "\nAny other kafka.<property> key is passed to librdkafka as <property>, e.g.\n"
                  "-Dkafka.security.protocol=SASL_SSL.\n");
  return out;
}

absl::StatusOr<int64_t> ParseDurationMs(std::string_view text_in) {
  const absl::string_view text = ToAbsl(text_in);
  auto fail = [text](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a duration: ", why));
  };
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  if (trimmed.empty()) return fail("the value is empty (write e.g. \"30 s\" or \"500 ms\")");

  size_t digits = 0;
  while (digits < trimmed.size() && absl::ascii_isdigit(trimmed[digits])) ++digits;
  if (digits == 0) {
    return fail("it must start with a non-negative whole number, e.g. \"30 s\"");
  }
  int64_t amount = 0;
  if (!absl::SimpleAtoi(trimmed.substr(0, digits), &amount)) {
    return fail("the number does not fit in 64 bits");
  }

  const absl::string_view unit_text = absl::StripLeadingAsciiWhitespace(trimmed.substr(digits));
  if (absl::StartsWith(unit_text, ".") || absl::StartsWith(unit_text, ",")) {
    return fail("only whole numbers are allowed; use a smaller unit, e.g. \"1500 ms\"");
  }
  // Flink's TimeUtils labels; like Flink, units are case-insensitive.
  struct Unit {
    absl::string_view label;
    int64_t ms;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},         {"ms", 1},           {"milli", 1},         {"millis", 1},
      {"millisecond", 1}, {"milliseconds", 1}, {"s", 1'000},       {"sec", 1'000},
      {"secs", 1'000}, {"second", 1'000},   {"seconds", 1'000},   {"min", 60'000},
      {"m", 60'000},   {"minute", 60'000},  {"minutes", 60'000},  {"h", 3'600'000},
      {"hour", 3'600'000}, {"hours", 3'600'000}, {"d", 86'400'000}, {"day", 86'400'000},
      {"days", 86'400'000},
  };
  const std::string unit = absl::AsciiStrToLower(unit_text);
  for (const Unit& candidate : kUnits) {
    if (candidate.label != unit) continue;
    if (amount > INT64_MAX / candidate.ms) {
      return fail("it is too large to be represented in milliseconds");
    }
    return amount * candidate.ms;
  }
  return fail(absl::StrCat("unknown time unit \"", unit_text,
                           "\" (use ms, s, min, h or d, e.g. \"30 s\")"));
}

absl::StatusOr<Config> Config::Load(const std::string& path,
                                    const std::vector<std::string>& overrides) {
  std::map<std::string, std::string> values;
  Origins origins;
  if (!path.empty()) {
    if (absl::Status status = ReadPropertiesFile(path, values, origins); !status.ok()) {
      return status;
    }
  }
  for (const std::string& override_text : overrides) {
    const size_t equals = override_text.find('=');
    if (equals == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "override \"", override_text, "\" has no '='; write -Dkey=value"));
    }
    const std::string key(absl::StripAsciiWhitespace(override_text.substr(0, equals)));
    if (key.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("override \"", override_text, "\" has an empty key; write -Dkey=value"));
    }
    values[key] = std::string(absl::StripAsciiWhitespace(override_text.substr(equals + 1)));
    origins[key] = absl::StrCat("by -D", key);
  }
  if (absl::Status status = ValidateAndNormalize(values, origins); !status.ok()) return status;
  Config config;
  config.values_ = std::move(values);
  return config;
}

absl::StatusOr<Config> Config::FromMap(std::map<std::string, std::string> values) {
  if (absl::Status status = ValidateAndNormalize(values, {}); !status.ok()) return status;
  Config config;
  config.values_ = std::move(values);
  return config;
}

absl::StatusOr<std::string> Config::GetString(std::string_view key_in) const {
  const absl::string_view key = ToAbsl(key_in);
  const auto it = values_.find(std::string(key));
  const ConfigKeyInfo* info = FindKey(key);
  if (info == nullptr) {
    // librdkafka pass-through keys can be read back when set.
    if (it != values_.end()) return it->second;
    return absl::InvalidArgumentError(UnknownKeyMessage(key));
  }
  if (it != values_.end()) return it->second;
  return info->default_value;
}

absl::StatusOr<int64_t> Config::GetInt(std::string_view key_in) const {
  const absl::string_view key = ToAbsl(key_in);
  auto lookup = TypedLookup(values_, key, ConfigType::kInt);
  if (!lookup.ok()) return lookup.status();
  return ParseIntValue(*lookup->first, lookup->second);
}

absl::StatusOr<int64_t> Config::GetDurationMs(std::string_view key_in) const {
  const absl::string_view key = ToAbsl(key_in);
  auto lookup = TypedLookup(values_, key, ConfigType::kDuration);
  if (!lookup.ok()) return lookup.status();
  return ParseDurationValue(*lookup->first, lookup->second);
}

absl::StatusOr<bool> Config::GetBool(std::string_view key_in) const {
  const absl::string_view key = ToAbsl(key_in);
  auto lookup = TypedLookup(values_, key, ConfigType::kBool);
  if (!lookup.ok()) return lookup.status();
  return ParseBoolValue(*lookup->first, lookup->second);
}

std::map<std::string, std::string> Config::KafkaClientProperties() const {
  std::map<std::string, std::string> properties;
  for (const auto& [key, value] : values_) {
    if (!absl::StartsWith(key, kKafkaPrefix) || IsSlipstreamOnlyKafkaKey(key)) continue;
    properties[key.substr(kKafkaPrefix.size())] = value;
  }
  // Registry defaults apply when the user did not set them.
  for (absl::string_view key : {"kafka.bootstrap.servers", "kafka.group.id"}) {
    const std::string property(key.substr(kKafkaPrefix.size()));
    if (!properties.contains(property)) properties[property] = FindKey(key)->default_value;
  }
  return properties;
}

absl::StatusOr<std::string> LocalPathFromUri(std::string_view key_in, std::string_view uri) {
  const absl::string_view key = ToAbsl(key_in);
  const absl::string_view text = absl::StripAsciiWhitespace(ToAbsl(uri));
  auto fail = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": \"", text, "\" ", why));
  };
  if (text.empty()) return fail("is empty; expected a file:// URI or a path");

  // RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) followed by ':'.
  const size_t colon = text.find(':');
  const absl::string_view scheme = colon == absl::string_view::npos ? "" : text.substr(0, colon);
  const bool has_scheme =
      !scheme.empty() && absl::ascii_isalpha(scheme[0]) &&
      std::all_of(scheme.begin(), scheme.end(), [](char c) {
        return absl::ascii_isalnum(c) || c == '+' || c == '-' || c == '.';
      });
  if (!has_scheme) return std::string(text);  // absolute or relative path
  if (!absl::EqualsIgnoreCase(scheme, "file")) {
    return fail(absl::StrCat("uses the unsupported scheme \"", scheme,
                             "://\"; only local or shared file systems (file:// URIs or "
                             "plain paths) are supported"));
  }
  absl::string_view rest = text.substr(colon + 1);
  if (absl::ConsumePrefix(&rest, "//")) {
    // file://<authority>/path: only an empty authority or localhost is local.
    const size_t slash = rest.find('/');
    const absl::string_view authority = rest.substr(0, slash);
    if (!authority.empty() && !absl::EqualsIgnoreCase(authority, "localhost")) {
      return fail(absl::StrCat("names host \"", authority,
                               "\"; write file:///absolute/path (three slashes)"));
    }
    rest = slash == absl::string_view::npos ? absl::string_view() : rest.substr(slash);
  }
  if (rest.empty() || rest.front() != '/') {
    return fail("must hold an absolute path, e.g. file:///tmp/slipstream");
  }
  return std::string(rest);
}

}  // namespace slipstream

namespace slipstream {

absl::StatusOr<std::optional<int64_t>> ParseTimestampSetting(std::string_view key, std::string_view text) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(ToAbsl(text));
  if (trimmed.empty()) return std::optional<int64_t>();
  int64_t epoch_ms = 0;
  if (absl::SimpleAtoi(trimmed, &epoch_ms)) {
    if (epoch_ms < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(ToAbsl(key), ": \"", trimmed, "\" is before 1970 (epoch milliseconds must be >= 0)"));
    }
    return std::optional<int64_t>(epoch_ms);
  }
  absl::StatusOr<int64_t> iso = ParseIso8601Millis(std::string_view(trimmed.data(), trimmed.size()));
  if (!iso.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        ToAbsl(key), ": \"", trimmed,
        "\" is neither epoch milliseconds nor an ISO-8601 time such as 2024-05-01T00:00:00Z (", iso.status().message(),
        ")"));
  }
  return std::optional<int64_t>(*iso);
}

}  // namespace slipstream
