#include "common/config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipstream {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// Writes `text` to a fresh file under the test temp dir and returns its path.
std::string WriteTempFile(const std::string& name, const std::string& text) {
  const std::filesystem::path path =
      std::filesystem::path(::testing::TempDir()) / ("config_test_" + name + ".properties");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return path.string();
}

std::string StatusMessage(const absl::Status& status) { return std::string(status.message()); }

absl::StatusOr<Config> FromPairs(std::map<std::string, std::string> values) {
  return Config::FromMap(std::move(values));
}

// --------------------------------------------------------------------------
// ParseDurationMs

TEST(Duration, PlainNumberIsMilliseconds) {
  EXPECT_EQ(*ParseDurationMs("30000"), 30000);
  EXPECT_EQ(*ParseDurationMs("0"), 0);
}

TEST(Duration, AcceptsNumberWithUnitWithOrWithoutSpace) {
  EXPECT_EQ(*ParseDurationMs("30 s"), 30'000);
  EXPECT_EQ(*ParseDurationMs("30s"), 30'000);
  EXPECT_EQ(*ParseDurationMs("10 min"), 600'000);
  EXPECT_EQ(*ParseDurationMs("1 h"), 3'600'000);
  EXPECT_EQ(*ParseDurationMs("2 d"), 172'800'000);
  EXPECT_EQ(*ParseDurationMs("500 ms"), 500);
  EXPECT_EQ(*ParseDurationMs("  7   s  "), 7'000);
}

TEST(Duration, AcceptsEveryFlinkUnitLabel) {
  const std::map<std::string, int64_t> unit_ms = {
      {"ms", 1},         {"milli", 1},       {"millis", 1},       {"millisecond", 1},
      {"milliseconds", 1}, {"s", 1000},     {"sec", 1000},       {"secs", 1000},
      {"second", 1000},  {"seconds", 1000},  {"min", 60000},      {"m", 60000},
      {"minute", 60000}, {"minutes", 60000}, {"h", 3600000},      {"hour", 3600000},
      {"hours", 3600000}, {"d", 86400000},  {"day", 86400000},   {"days", 86400000}};
  for (const auto& [unit, ms] : unit_ms) {
    absl::StatusOr<int64_t> parsed = ParseDurationMs("3 " + unit);
    ASSERT_TRUE(parsed.ok()) << unit << ": " << parsed.status();
    EXPECT_EQ(*parsed, 3 * ms) << unit;
  }
}

TEST(Duration, UnitsAreCaseInsensitiveLikeFlink) {
  EXPECT_EQ(*ParseDurationMs("30 S"), 30'000);
  EXPECT_EQ(*ParseDurationMs("2 Min"), 120'000);
}

TEST(Duration, RejectsEmptyValue) {
  for (const char* text : {"", "   "}) {
    absl::StatusOr<int64_t> parsed = ParseDurationMs(text);
    ASSERT_FALSE(parsed.ok()) << '"' << text << '"';
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(StatusMessage(parsed.status()), HasSubstr("empty"));
  }
}

TEST(Duration, RejectsUnknownUnitNamingIt) {
  absl::StatusOr<int64_t> parsed = ParseDurationMs("10 parsecs");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(StatusMessage(parsed.status()),
              AllOf(HasSubstr("\"parsecs\""), HasSubstr("ms, s, min, h or d")));
}

TEST(Duration, RejectsNegativeNumbers) {
  absl::StatusOr<int64_t> parsed = ParseDurationMs("-5 s");
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(StatusMessage(parsed.status()), HasSubstr("non-negative"));
}

TEST(Duration, RejectsNumberTooLargeFor64Bits) {
  absl::StatusOr<int64_t> parsed = ParseDurationMs("99999999999999999999");
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(StatusMessage(parsed.status()), HasSubstr("64 bits"));
}

TEST(Duration, RejectsOverflowWhenConvertingToMilliseconds) {
  EXPECT_EQ(*ParseDurationMs("9223372036854775807"), INT64_MAX);
  EXPECT_FALSE(ParseDurationMs("9223372036854775807 s").ok());
  EXPECT_FALSE(ParseDurationMs("106751991167301 d").ok());
}

TEST(Duration, RejectsFractionsAndMissingNumber) {
  absl::StatusOr<int64_t> fraction = ParseDurationMs("1.5 s");
  ASSERT_FALSE(fraction.ok());
  EXPECT_THAT(StatusMessage(fraction.status()), HasSubstr("whole number"));
  EXPECT_FALSE(ParseDurationMs("s").ok());
  EXPECT_FALSE(ParseDurationMs("ten s").ok());
  EXPECT_FALSE(ParseDurationMs("5 s 3 ms").ok());
}

// --------------------------------------------------------------------------
// Registry

TEST(ConfigRegistry, HasExactlyTheDocumentedKeys) {
  std::set<std::string> names;
  for (const ConfigKeyInfo& info : KnownConfigKeys()) {
    EXPECT_TRUE(names.insert(info.name).second) << "duplicate key " << info.name;
  }
  const std::set<std::string> expected = {
      "kafka.bootstrap.servers",
      "kafka.topic",
      "kafka.group.id",
      "kafka.dlq.topic",
      "kafka.starting-offsets",
      "kafka.starting-timestamp",
      "kafka.stopping-timestamp",
      "kafka.partition-discovery.interval",
      "redis.host",
      "redis.port",
      "redis.user",
      "redis.password",
      "redis.db",
      "redis.batch-size",
      "redis.timeout",
      "redis.ssl",
      "redis.ssl.ca",
      "redis.ssl.cert",
      "redis.ssl.key",
      "redis.ssl.server-name",
      "redis.replica-acks",
      "redis.cluster.nodes",
      "sink.type",
      "sink.path",
      "jobmanager.rpc.address",
      "jobmanager.rpc.port",
      "taskmanager.host",
      "taskmanager.data.port",
      "pipeline.max-parallelism",
      "pipeline.features",
      "source.idle-timeout",
      "source.max-event-time-skew",
      "state.backend.type",
      "state.dir",
      "execution.runtime-mode",
      "execution.checkpointing.interval",
      "execution.checkpointing.mode",
      "execution.checkpointing.timeout",
      "execution.checkpointing.min-pause",
      "execution.checkpointing.tolerable-failed-checkpoints",
      "execution.checkpointing.externalized-checkpoint-retention",
      "state.checkpoints.dir",
      "state.checkpoints.num-retained",
      "state.savepoints.dir",
      "execution.savepoint.path",
      "cluster.min-workers",
      "cluster.stabilization-timeout",
      "scheduler-mode",
      "heartbeat.interval",
      "heartbeat.timeout",
      "restart-strategy.type",
      "restart-strategy.fixed-delay.attempts",
      "restart-strategy.fixed-delay.delay",
      "restart-strategy.exponential-delay.initial-backoff",
      "restart-strategy.exponential-delay.max-backoff",
      "restart-strategy.exponential-delay.backoff-multiplier",
      "restart-strategy.exponential-delay.reset-backoff-threshold",
      "task.cancellation.timeout",
      "rest.port",
      "metrics.port",
      "security.admin-token",
      "security.read-token",
      "security.internal-token",
      "security.ssl.enabled",
      "security.ssl.cert",
      "security.ssl.key",
      "security.ssl.ca",
      "security.ssl.client-auth",
      "security.ssl.rest.enabled",
      "log.level",
  };
  EXPECT_EQ(names, expected);
}

TEST(ConfigRegistry, EveryDefaultIsValidForItsOwnKey) {
  for (const ConfigKeyInfo& info : KnownConfigKeys()) {
    EXPECT_FALSE(info.description.empty()) << info.name;
    absl::StatusOr<Config> config = FromPairs({{info.name, info.default_value}});
    EXPECT_TRUE(config.ok()) << info.name << ": " << config.status();
    if (info.type == ConfigType::kEnum) {
      EXPECT_THAT(info.allowed_values, ::testing::Contains(info.default_value)) << info.name;
    } else {
      EXPECT_TRUE(info.allowed_values.empty()) << info.name;
    }
  }
}

TEST(ConfigRegistry, DefaultsMatchTheSpecification) {
  absl::StatusOr<Config> config = FromPairs({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->GetString("kafka.bootstrap.servers"), "localhost:9092");
  EXPECT_EQ(*config->GetString("kafka.topic"), "ecommerce-events");
  EXPECT_EQ(*config->GetString("kafka.group.id"), "slipstream-feature-pipeline");
  EXPECT_EQ(*config->GetString("kafka.dlq.topic"), "ecommerce-events-dlq");
  EXPECT_EQ(*config->GetString("kafka.starting-offsets"), "committed");
  EXPECT_EQ(*config->GetString("redis.host"), "localhost");
  EXPECT_EQ(*config->GetInt("redis.port"), 6379);
  EXPECT_EQ(*config->GetString("redis.password"), "");
  EXPECT_EQ(*config->GetInt("redis.db"), 0);
  EXPECT_EQ(*config->GetInt("redis.batch-size"), 1000);
  EXPECT_EQ(*config->GetDurationMs("redis.timeout"), 5'000);
  EXPECT_EQ(*config->GetString("jobmanager.rpc.address"), "localhost");
  EXPECT_EQ(*config->GetInt("jobmanager.rpc.port"), 6123);
  EXPECT_EQ(*config->GetString("taskmanager.host"), "");
  EXPECT_EQ(*config->GetInt("taskmanager.data.port"), 0);
  EXPECT_EQ(*config->GetInt("pipeline.max-parallelism"), 128);
  EXPECT_EQ(*config->GetDurationMs("source.idle-timeout"), 30'000);
  EXPECT_EQ(*config->GetString("state.backend.type"), "rocksdb");
  EXPECT_EQ(*config->GetString("state.dir"), "/tmp/slipstream/state");
  EXPECT_EQ(*config->GetDurationMs("execution.checkpointing.interval"), 30'000);
  EXPECT_EQ(*config->GetString("execution.checkpointing.mode"), "EXACTLY_ONCE");
  EXPECT_EQ(*config->GetDurationMs("execution.checkpointing.timeout"), 600'000);
  EXPECT_EQ(*config->GetDurationMs("execution.checkpointing.min-pause"), 0);
  EXPECT_EQ(*config->GetInt("execution.checkpointing.tolerable-failed-checkpoints"), 0);
  EXPECT_EQ(*config->GetString("execution.checkpointing.externalized-checkpoint-retention"),
            "RETAIN_ON_CANCELLATION");
  EXPECT_EQ(*config->GetString("state.checkpoints.dir"), "file:///tmp/slipstream/checkpoints");
  EXPECT_EQ(*config->GetInt("state.checkpoints.num-retained"), 1);
  EXPECT_EQ(*config->GetString("state.savepoints.dir"), "file:///tmp/slipstream/savepoints");
  EXPECT_EQ(*config->GetString("execution.savepoint.path"), "");
  EXPECT_EQ(*config->GetInt("cluster.min-workers"), 1);
  EXPECT_EQ(*config->GetDurationMs("heartbeat.interval"), 2'000);
  EXPECT_EQ(*config->GetDurationMs("heartbeat.timeout"), 10'000);
  EXPECT_EQ(*config->GetString("restart-strategy.type"), "fixed-delay");
  EXPECT_EQ(*config->GetInt("restart-strategy.fixed-delay.attempts"), INT32_MAX);
  EXPECT_EQ(*config->GetDurationMs("restart-strategy.fixed-delay.delay"), 1'000);
  EXPECT_EQ(*config->GetDurationMs("restart-strategy.exponential-delay.initial-backoff"), 1'000);
  EXPECT_EQ(*config->GetDurationMs("restart-strategy.exponential-delay.max-backoff"), 60'000);
  EXPECT_EQ(*config->GetString("restart-strategy.exponential-delay.backoff-multiplier"), "2.0");
  EXPECT_EQ(*config->GetDurationMs("restart-strategy.exponential-delay.reset-backoff-threshold"), 3'600'000);
  EXPECT_EQ(*config->GetDurationMs("task.cancellation.timeout"), 180'000);
  EXPECT_EQ(*config->GetInt("rest.port"), 8081);
  EXPECT_EQ(*config->GetInt("metrics.port"), 0);
  EXPECT_EQ(*config->GetString("log.level"), "info");
  EXPECT_TRUE(config->explicit_values().empty());
}

TEST(ConfigHelp, ListsEveryKeyWithTypeDefaultAndAllowedValues) {
  const std::string help = ConfigHelpText();
  for (const ConfigKeyInfo& info : KnownConfigKeys()) {
    EXPECT_THAT(help, HasSubstr("  " + info.name + "\n")) << info.name;
  }
  EXPECT_THAT(help, HasSubstr("int, default 6379; between 1 and 65535"));
  EXPECT_THAT(help, HasSubstr("enum, default EXACTLY_ONCE; one of: EXACTLY_ONCE, AT_LEAST_ONCE"));
  EXPECT_THAT(help, HasSubstr("duration, default 30 s; at least 10 ms"));
  EXPECT_THAT(help, HasSubstr("Redis feature sink (redis.*)"));
  EXPECT_THAT(help, HasSubstr("kafka.security.protocol"));
}

// --------------------------------------------------------------------------
// Loading files and overrides

TEST(Config, LoadWithEmptyPathUsesDefaults) {
  absl::StatusOr<Config> config = Config::Load("", {});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->GetInt("redis.port"), 6379);
  EXPECT_TRUE(config->explicit_values().empty());
}

TEST(Config, ParsesPropertiesFileWithCommentsSeparatorsAndContinuations) {
  const std::string path = WriteTempFile("syntax",
                                         "# a comment\n"
                                         "! another comment\n"
                                         "\n"
                                         "   \t\n"
                                         "redis.host = redis.internal   \n"
                                         "redis.port: 6380\n"
                                         "kafka.topic  events\n"
                                         "  kafka.bootstrap.servers=broker1:9092,\\\n"
                                         "      broker2:9092,\\\n"
                                         "      broker3:9092\n"
                                         "# comment ending in a backslash does not continue \\\n"
                                         "kafka.group.id=group\\=1\n"
                                         "redis.password=\n"
                                         "state.dir=/data/state\r\n"
                                         "redis.timeout 2 s\n");
  absl::StatusOr<Config> config = Config::Load(path, {});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->GetString("redis.host"), "redis.internal");
  EXPECT_EQ(*config->GetInt("redis.port"), 6380);
  EXPECT_EQ(*config->GetString("kafka.topic"), "events");
  EXPECT_EQ(*config->GetString("kafka.bootstrap.servers"),
            "broker1:9092,broker2:9092,broker3:9092");
  EXPECT_EQ(*config->GetString("kafka.group.id"), "group=1");
  EXPECT_EQ(*config->GetString("redis.password"), "");
  EXPECT_EQ(*config->GetString("state.dir"), "/data/state");
  EXPECT_EQ(*config->GetDurationMs("redis.timeout"), 2'000);
  EXPECT_EQ(config->explicit_values().size(), 8u);
}

TEST(Config, LaterLineForTheSameKeyWins) {
  const std::string path = WriteTempFile("duplicate", "redis.port=1\nredis.port=2\n");
  absl::StatusOr<Config> config = Config::Load(path, {});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->GetInt("redis.port"), 2);
}

TEST(Config, OverridesWinOverFile) {
  const std::string path =
      WriteTempFile("overrides", "redis.host=from-file\nredis.port=6380\n");
  absl::StatusOr<Config> config =
      Config::Load(path, {"redis.host=from-override", "redis.db = 3", "redis.password=a=b"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->GetString("redis.host"), "from-override");
  EXPECT_EQ(*config->GetInt("redis.port"), 6380);  // file value kept
  EXPECT_EQ(*config->GetInt("redis.db"), 3);
  EXPECT_EQ(*config->GetString("redis.password"), "a=b");  // split at the first '='
}

TEST(Config, OverrideCanFixAnInvalidFileValue) {
  const std::string path = WriteTempFile("fixed_by_override", "redis.port=abc\n");
  absl::StatusOr<Config> config = Config::Load(path, {"redis.port=6390"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->GetInt("redis.port"), 6390);
}

TEST(Config, RejectsOverrideWithoutEquals) {
  absl::StatusOr<Config> config = Config::Load("", {"redis.port"});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(StatusMessage(config.status()),
              AllOf(HasSubstr("\"redis.port\""), HasSubstr("-Dkey=value")));
}

TEST(Config, RejectsOverrideWithEmptyKey) {
  absl::StatusOr<Config> config = Config::Load("", {"=5"});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Config, MissingFileIsNotFoundNamingThePath) {
  const std::string path = ::testing::TempDir() + "/does-not-exist/app.properties";
  absl::StatusOr<Config> config = Config::Load(path, {});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(StatusMessage(config.status()), HasSubstr(path));
}

TEST(Config, DirectoryInsteadOfFileIsAnError) {
  absl::StatusOr<Config> config = Config::Load(::testing::TempDir(), {});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Config, LineWithoutKeyIsAnErrorNamingFileAndLine) {
  const std::string path = WriteTempFile("no_key", "redis.port=1\n=value\n");
  absl::StatusOr<Config> config = Config::Load(path, {});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(StatusMessage(config.status()), HasSubstr(path + ":2"));
}

TEST(Config, DecodesJavaEscapes) {
  const std::string path = WriteTempFile(
      "escapes", "redis.password=caf\\u00e9\\ \\tx\nkafka.client\\:id=a\\\\b\n");
  absl::StatusOr<Config> config = Config::Load(path, {});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->GetString("redis.password"), "caf\xC3\xA9 \tx");
  EXPECT_EQ(*config->GetString("kafka.client:id"), "a\\b");
}

TEST(Config, MalformedUnicodeEscapeNamesTheLine) {
  const std::string path = WriteTempFile("bad_escape", "\nredis.password=\\u00zz\n");
  absl::StatusOr<Config> config = Config::Load(path, {});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(StatusMessage(config.status()), HasSubstr(path + ":2"));
}

// --------------------------------------------------------------------------
// Validation: every error names the key

TEST(Config, RejectsUnknownNonKafkaKeyNamingIt) {
  absl::StatusOr<Config> config = FromPairs({{"redis.prot", "6379"}});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(StatusMessage(config.status()),
              AllOf(HasSubstr("unknown configuration key \"redis.prot\" (see --help)"),
                    HasSubstr("did you mean \"redis.port\"?")));
}

TEST(Config, UnknownKeyFarFromAnyKnownKeyGetsNoSuggestion) {
  absl::StatusOr<Config> config = FromPairs({{"completely.different", "x"}});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(StatusMessage(config.status()), Not(HasSubstr("did you mean")));
}

TEST(Config, UnknownKeyErrorNamesFileAndLine) {
  const std::string path = WriteTempFile("unknown", "# header\nredis.prot=6379\n");
  absl::StatusOr<Config> config = Config::Load(path, {});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(StatusMessage(config.status()),
              AllOf(HasSubstr("\"redis.prot\""), HasSubstr(path + ":2")));
}

TEST(Config, InvalidOverrideErrorSaysItCameFromDashD) {
  absl::StatusOr<Config> config = Config::Load("", {"redis.port=abc"});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(StatusMessage(config.status()),
              AllOf(HasSubstr("redis.port: \"abc\" is not an integer"),
                    HasSubstr("-Dredis.port")));
}

TEST(Config, RejectsNonIntegerNamingKey) {
  for (const char* bad : {"abc", "", "12abc", "0x10", "1e3", "6379.0"}) {
    absl::StatusOr<Config> config = FromPairs({{"redis.port", bad}});
    ASSERT_FALSE(config.ok()) << bad;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(StatusMessage(config.status()),
                HasSubstr("redis.port: \"" + std::string(bad) + "\" is not an integer"));
  }
}

TEST(Config, RejectsIntegerOutOfRangeNamingKeyAndRange) {
  absl::StatusOr<Config> too_big = FromPairs({{"redis.port", "70000"}});
  ASSERT_FALSE(too_big.ok());
  EXPECT_THAT(StatusMessage(too_big.status()),
              HasSubstr("redis.port: \"70000\" must be between 1 and 65535"));

  absl::StatusOr<Config> too_small = FromPairs({{"state.checkpoints.num-retained", "0"}});
  ASSERT_FALSE(too_small.ok());
  EXPECT_THAT(StatusMessage(too_small.status()),
              HasSubstr("state.checkpoints.num-retained: \"0\" must be at least 1"));

  EXPECT_FALSE(FromPairs({{"redis.db", "16"}}).ok());
  EXPECT_FALSE(FromPairs({{"redis.batch-size", "0"}}).ok());
  EXPECT_FALSE(FromPairs({{"pipeline.max-parallelism", "32769"}}).ok());
  EXPECT_FALSE(FromPairs({{"restart-strategy.fixed-delay.attempts", "2147483648"}}).ok());
  EXPECT_FALSE(FromPairs({{"execution.checkpointing.tolerable-failed-checkpoints", "-1"}}).ok());
  EXPECT_FALSE(FromPairs({{"redis.port", "99999999999999999999"}}).ok());
  EXPECT_TRUE(FromPairs({{"redis.port", "65535"}, {"redis.db", "15"}}).ok());
}

TEST(Config, RejectsInvalidDurationNamingKey) {
  absl::StatusOr<Config> config = FromPairs({{"heartbeat.interval", "10 parsecs"}});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(StatusMessage(config.status()),
              HasSubstr("heartbeat.interval: \"10 parsecs\" is not a duration"));
}

TEST(Config, RejectsDurationBelowMinimumNamingKey) {
  absl::StatusOr<Config> config = FromPairs({{"execution.checkpointing.interval", "5 ms"}});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(StatusMessage(config.status()),
              HasSubstr("execution.checkpointing.interval: \"5 ms\" must be at least 10 ms"));
  EXPECT_TRUE(FromPairs({{"execution.checkpointing.interval", "10"}}).ok());
}

TEST(Config, RejectsUnknownEnumValueListingAllowedValues) {
  absl::StatusOr<Config> config = FromPairs({{"execution.checkpointing.mode", "FOO"}});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(StatusMessage(config.status()),
              HasSubstr("execution.checkpointing.mode: \"FOO\" must be one of EXACTLY_ONCE, "
                        "AT_LEAST_ONCE"));
}

TEST(Config, AcceptsUpperCaseFlinkEnumsCaseInsensitivelyAndNormalizes) {
  absl::StatusOr<Config> config =
      FromPairs({{"execution.checkpointing.mode", "at_least_once"},
                 {"execution.checkpointing.externalized-checkpoint-retention",
                  "Delete_On_Cancellation"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->GetString("execution.checkpointing.mode"), "AT_LEAST_ONCE");
  EXPECT_EQ(config->explicit_values().at("execution.checkpointing.mode"), "AT_LEAST_ONCE");
  EXPECT_EQ(*config->GetString("execution.checkpointing.externalized-checkpoint-retention"),
            "DELETE_ON_CANCELLATION");
}

TEST(Config, LowerCaseEnumsMatchExactly) {
  EXPECT_TRUE(FromPairs({{"kafka.starting-offsets", "earliest"}}).ok());
  EXPECT_TRUE(FromPairs({{"log.level", "debug"}}).ok());
  absl::StatusOr<Config> config = FromPairs({{"log.level", "INFO"}});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(StatusMessage(config.status()),
              HasSubstr("log.level: \"INFO\" must be one of trace, debug, info, warn, error"));
  EXPECT_FALSE(FromPairs({{"state.backend.type", "hashmap"}}).ok());
  EXPECT_FALSE(FromPairs({{"restart-strategy.type", "failure-rate"}}).ok());
}

TEST(Config, BackoffMultiplierIsADecimalOfAtLeastOne) {
  constexpr char kKey[] = "restart-strategy.exponential-delay.backoff-multiplier";
  absl::StatusOr<Config> config = FromPairs({{kKey, "1.5"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->GetString(kKey), "1.5");
  EXPECT_TRUE(FromPairs({{kKey, "1"}}).ok());
  for (const char* bad : {"0.5", "two", "", "nan", "inf", "-2"}) {
    absl::StatusOr<Config> rejected = FromPairs({{kKey, bad}});
    ASSERT_FALSE(rejected.ok()) << bad;
    EXPECT_THAT(StatusMessage(rejected.status()), HasSubstr(kKey)) << bad;
  }
}

TEST(Config, ReportsAllInvalidKeysAtOnce) {
  absl::StatusOr<Config> config =
      FromPairs({{"redis.port", "abc"}, {"redis.prot", "1"}, {"log.level", "loud"}});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(StatusMessage(config.status()),
              AllOf(HasSubstr("redis.port"), HasSubstr("redis.prot"), HasSubstr("log.level")));
}

TEST(Config, TrimsWhitespaceAroundValuesFromMap) {
  absl::StatusOr<Config> config = FromPairs({{"redis.port", " 6380 "}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->GetInt("redis.port"), 6380);
}

// --------------------------------------------------------------------------
// Getters

TEST(Config, GettersReturnExplicitValueOrDefault) {
  absl::StatusOr<Config> config =
      FromPairs({{"redis.port", "6390"}, {"heartbeat.timeout", "1 min"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->GetInt("redis.port"), 6390);
  EXPECT_EQ(*config->GetInt("redis.db"), 0);
  EXPECT_EQ(*config->GetDurationMs("heartbeat.timeout"), 60'000);
  EXPECT_EQ(*config->GetDurationMs("heartbeat.interval"), 2'000);
  EXPECT_EQ(*config->GetString("redis.port"), "6390");  // any key reads as text
  EXPECT_THAT(config->explicit_values(),
              UnorderedElementsAre(Pair("redis.port", "6390"), Pair("heartbeat.timeout", "1 min")));
}

TEST(Config, TypedGetterOnKeyOfOtherTypeIsAnErrorNamingKey) {
  absl::StatusOr<Config> config = FromPairs({});
  ASSERT_TRUE(config.ok());
  absl::StatusOr<int64_t> as_int = config->GetInt("redis.timeout");
  ASSERT_FALSE(as_int.ok());
  EXPECT_EQ(as_int.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(StatusMessage(as_int.status()),
              AllOf(HasSubstr("\"redis.timeout\""), HasSubstr("duration")));
  EXPECT_FALSE(config->GetDurationMs("redis.port").ok());
  EXPECT_FALSE(config->GetBool("redis.port").ok());
  EXPECT_FALSE(config->GetInt("redis.host").ok());
}

TEST(Config, GetterOnUnknownKeyIsAnErrorNamingKey) {
  absl::StatusOr<Config> config = FromPairs({});
  ASSERT_TRUE(config.ok());
  for (const absl::Status& status :
       {config->GetString("redis.prot").status(), config->GetInt("redis.prot").status(),
        config->GetDurationMs("redis.prot").status(), config->GetBool("redis.prot").status()}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(StatusMessage(status), HasSubstr("\"redis.prot\""));
  }
  EXPECT_FALSE(config->GetString("kafka.security.protocol").ok());  // pass-through, not set
}

// --------------------------------------------------------------------------
// Kafka pass-through

TEST(Config, AllowsUnknownKafkaKeysAsLibrdkafkaPassThrough) {
  absl::StatusOr<Config> config = FromPairs({{"kafka.security.protocol", "SASL_SSL"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->GetString("kafka.security.protocol"), "SASL_SSL");
}

TEST(Config, RejectsBareKafkaPrefix) {
  absl::StatusOr<Config> config = FromPairs({{"kafka.", "x"}});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(StatusMessage(config.status()), HasSubstr("\"kafka.\""));
}

TEST(Config, KafkaClientPropertiesStripPrefixAndSkipSlipstreamKeys) {
  absl::StatusOr<Config> config = FromPairs({{"kafka.security.protocol", "SASL_SSL"},
                                             {"kafka.sasl.mechanisms", "PLAIN"},
                                             {"kafka.bootstrap.servers", "b1:9092,b2:9092"},
                                             {"kafka.topic", "t"},
                                             {"kafka.dlq.topic", "d"},
                                             {"kafka.starting-offsets", "latest"},
                                             {"kafka.partition-discovery.interval", "10 s"},
                                             {"redis.host", "r"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->KafkaClientProperties(),
              UnorderedElementsAre(Pair("security.protocol", "SASL_SSL"),
                                   Pair("sasl.mechanisms", "PLAIN"),
                                   Pair("bootstrap.servers", "b1:9092,b2:9092"),
                                   Pair("group.id", "slipstream-feature-pipeline")));
}

TEST(Config, KafkaClientPropertiesAlwaysHaveBootstrapServersAndGroupId) {
  absl::StatusOr<Config> config = FromPairs({});
  ASSERT_TRUE(config.ok());
  EXPECT_THAT(config->KafkaClientProperties(),
              UnorderedElementsAre(Pair("bootstrap.servers", "localhost:9092"),
                                   Pair("group.id", "slipstream-feature-pipeline")));
  absl::StatusOr<Config> with_group = FromPairs({{"kafka.group.id", "mine"}});
  ASSERT_TRUE(with_group.ok());
  EXPECT_EQ(with_group->KafkaClientProperties().at("group.id"), "mine");
}

// --------------------------------------------------------------------------
// LocalPathFromUri

TEST(ConfigLocalPath, FileUriBecomesLocalPath) {
  EXPECT_EQ(*LocalPathFromUri("state.checkpoints.dir", "file:///a/b"), "/a/b");
  EXPECT_EQ(*LocalPathFromUri("state.checkpoints.dir", "file://localhost/a/b"), "/a/b");
  EXPECT_EQ(*LocalPathFromUri("state.checkpoints.dir", "file:/a/b"), "/a/b");
  EXPECT_EQ(*LocalPathFromUri("state.checkpoints.dir", "FILE:///a/b"), "/a/b");
}

TEST(ConfigLocalPath, PlainPathsPassThrough) {
  EXPECT_EQ(*LocalPathFromUri("state.checkpoints.dir", "/a/b"), "/a/b");
  EXPECT_EQ(*LocalPathFromUri("state.checkpoints.dir", "relative/dir"), "relative/dir");
  EXPECT_EQ(*LocalPathFromUri("state.checkpoints.dir", "./x:y"), "./x:y");
}

TEST(ConfigLocalPath, RejectsRemoteSchemesNamingKey) {
  for (const char* uri : {"s3://bucket/checkpoints", "hdfs:///checkpoints", "gs://b/c"}) {
    absl::StatusOr<std::string> path = LocalPathFromUri("state.checkpoints.dir", uri);
    ASSERT_FALSE(path.ok()) << uri;
    EXPECT_EQ(path.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(StatusMessage(path.status()),
                AllOf(HasSubstr("state.checkpoints.dir"), HasSubstr(uri),
                      HasSubstr("only local or shared file systems")));
  }
}

TEST(ConfigLocalPath, RejectsFileUriWithRemoteHostOrNoPath) {
  EXPECT_FALSE(LocalPathFromUri("state.savepoints.dir", "file://nfs-server/a").ok());
  EXPECT_FALSE(LocalPathFromUri("state.savepoints.dir", "file://").ok());
  EXPECT_FALSE(LocalPathFromUri("state.savepoints.dir", "file:relative").ok());
  absl::StatusOr<std::string> empty = LocalPathFromUri("state.savepoints.dir", "");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(StatusMessage(empty.status()), HasSubstr("state.savepoints.dir"));
}

// --------------------------------------------------------------------------
// The shipped conf/application.properties

// The test may run from the build tree (ctest) or anywhere else: try the
// SLIPSTREAM_SOURCE_DIR env var, then this source file's location, then walk
// up from the working directory.
std::filesystem::path FindShippedConfig() {
  const std::filesystem::path relative = std::filesystem::path("conf") / "application.properties";
  std::vector<std::filesystem::path> roots;
  if (const char* env = std::getenv("SLIPSTREAM_SOURCE_DIR"); env != nullptr && *env != '\0') {
    roots.emplace_back(env);
  }
  roots.push_back(std::filesystem::path(__FILE__).parent_path().parent_path().parent_path());
  std::error_code error;
  for (std::filesystem::path dir = std::filesystem::current_path(error); !dir.empty();
       dir = dir.parent_path()) {
    roots.push_back(dir);
    if (dir == dir.parent_path()) break;
  }
  for (const std::filesystem::path& root : roots) {
    if (std::filesystem::is_regular_file(root / relative, error)) return root / relative;
  }
  return {};
}

TEST(ConfigShippedFile, LoadsAndSetsOnlyKnownKeys) {
  const std::filesystem::path path = FindShippedConfig();
  ASSERT_FALSE(path.empty()) << "conf/application.properties not found; set SLIPSTREAM_SOURCE_DIR";
  absl::StatusOr<Config> config = Config::Load(path.string(), {});
  ASSERT_TRUE(config.ok()) << config.status();
  std::set<std::string> known;
  for (const ConfigKeyInfo& info : KnownConfigKeys()) known.insert(info.name);
  for (const auto& [key, value] : config->explicit_values()) {
    EXPECT_TRUE(known.contains(key)) << "shipped config sets unregistered key " << key;
    // The shipped file documents defaults; it does not change them.
    EXPECT_EQ(value, *FromPairs({})->GetString(key)) << key;
  }
  EXPECT_EQ(*config->GetString("kafka.bootstrap.servers"), "localhost:9092");
  EXPECT_EQ(*config->GetString("redis.host"), "localhost");
}

TEST(ConfigShippedFile, MentionsEveryRegistryKeyWithItsDefault) {
  const std::filesystem::path path = FindShippedConfig();
  ASSERT_FALSE(path.empty());
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string contents = "\n" + text.str();
  for (const ConfigKeyInfo& info : KnownConfigKeys()) {
    const std::string line = info.name + "=" + info.default_value + "\n";
    EXPECT_TRUE(contents.find("\n" + line) != std::string::npos ||
                contents.find("\n# " + line) != std::string::npos)
        << "missing \"" << line.substr(0, line.size() - 1) << "\" (set or commented out)";
  }
  EXPECT_THAT(contents, HasSubstr("# kafka.security.protocol=SASL_SSL"));
  EXPECT_THAT(contents, HasSubstr("-Dkey=value"));
}

}  // namespace
}  // namespace slipstream

// --------------------------------------------------------------------------
// Bounded runs: execution.runtime-mode and the start/stop timestamps

namespace slipstream {
namespace {

TEST(ConfigBoundedRuns, RuntimeModeIsStreamingByDefaultAndBatchOnRequest) {
  EXPECT_EQ(*FromPairs({})->GetString("execution.runtime-mode"), "STREAMING");
  EXPECT_EQ(*FromPairs({{"execution.runtime-mode", "BATCH"}})->GetString("execution.runtime-mode"), "BATCH");
  absl::StatusOr<Config> bad = FromPairs({{"execution.runtime-mode", "BOUNDED"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(StatusMessage(bad.status()), HasSubstr("execution.runtime-mode"));
}

TEST(ConfigBoundedRuns, TimestampsAreEpochMillisOrIso8601) {
  EXPECT_FALSE(ParseTimestampSetting("kafka.starting-timestamp", "")->has_value());
  EXPECT_EQ(ParseTimestampSetting("kafka.starting-timestamp", "1700000000000")->value_or(-1), 1700000000000);
  EXPECT_EQ(ParseTimestampSetting("kafka.stopping-timestamp", "2023-11-14T22:13:20Z")->value_or(-1), 1700000000000);
  EXPECT_EQ(ParseTimestampSetting("kafka.stopping-timestamp", "2023-11-14T23:13:20.5+01:00")->value_or(-1),
            1700000000500);
  absl::StatusOr<std::optional<int64_t>> bad = ParseTimestampSetting("kafka.stopping-timestamp", "yesterday");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(StatusMessage(bad.status()), HasSubstr("kafka.stopping-timestamp"));
}

TEST(ConfigBoundedRuns, ABadTimestampFailsAtLoadNamingTheKey) {
  absl::StatusOr<Config> bad = FromPairs({{"kafka.starting-timestamp", "2024-13-01T00:00:00Z"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(StatusMessage(bad.status()), HasSubstr("kafka.starting-timestamp"));
}

TEST(ConfigBoundedRuns, TimestampsAreNotPassedToLibrdkafka) {
  absl::StatusOr<Config> config =
      FromPairs({{"kafka.starting-timestamp", "1000"}, {"kafka.stopping-timestamp", "2000"}});
  ASSERT_TRUE(config.ok()) << config.status();
  const auto properties = config->KafkaClientProperties();
  EXPECT_FALSE(properties.contains("starting-timestamp"));
  EXPECT_FALSE(properties.contains("stopping-timestamp"));
}

}  // namespace
}  // namespace slipstream
