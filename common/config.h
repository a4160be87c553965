// Configuration: Flink-style `application.properties` plus `-Dkey=value`
// dynamic properties, validated against one registry of known keys.
//
// Every binary loads a Config once at start, then builds the typed settings it
// needs (JobSettings below). Any invalid value fails at start with a message
// that names the key. Keys under `kafka.` that the registry does not know are
// passed through verbatim to librdkafka (e.g. `kafka.security.protocol`).
// Thread-safety: immutable after Load; safe to share.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipstream {

enum class ConfigType { kString, kInt, kDuration, kBool, kEnum };

// One documented configuration key. `--help` prints the whole registry.
struct ConfigKeyInfo {
  std::string name;
  ConfigType type;
  std::string default_value;  // in the same textual form a user would write
  std::string description;
  std::vector<std::string> allowed_values;  // kEnum only
  int64_t min_value = INT64_MIN;            // kInt / kDuration (ms)
  int64_t max_value = INT64_MAX;
};

// All keys Slipstream knows, in documentation order.
const std::vector<ConfigKeyInfo>& KnownConfigKeys();

// Help text listing every key with type, default and description.
std::string ConfigHelpText();

// Parses a Flink duration: "30000" (ms), "30 s", "30s", "10 min", "1 h",
// "500 ms", "2 d"; units as Flink's TimeUtils (ms, s, min, h, d and their long
// forms). Returns milliseconds.
absl::StatusOr<int64_t> ParseDurationMs(std::string_view text);

// Milliseconds as a duration a user would write: the largest unit (d, h, min,
// s) that divides it, else ms ("1 h", "90 s", "1500 ms").
std::string FormatDurationMs(int64_t ms);

class Config {
 public:
  // Reads a .properties file (path may be empty: defaults only), then applies
  // overrides given as "key=value" (the part after -D). Validates every known
  // key's value against its type; unknown non-kafka keys are an error naming
  // the key (a typo must not be silently ignored).
  static absl::StatusOr<Config> Load(const std::string& path,
                                     const std::vector<std::string>& overrides);
  // Same validation, from explicit pairs (tests, embedded use).
  static absl::StatusOr<Config> FromMap(std::map<std::string, std::string> values);

  // Typed getters fall back to the registry default. They return an error
  // naming the key if the key is unknown or its value is invalid.
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  absl::StatusOr<int64_t> GetDurationMs(std::string_view key) const;
  absl::StatusOr<bool> GetBool(std::string_view key) const;

  // librdkafka properties: every `kafka.<x>` key set by the user that is not a
  // Slipstream key (topic, dlq.topic, starting-offsets, group.id is passed),
  // with the `kafka.` prefix removed. Includes bootstrap.servers and group.id.
  std::map<std::string, std::string> KafkaClientProperties() const;

  // Values explicitly set (file + overrides), for logging the effective config.
  const std::map<std::string, std::string>& explicit_values() const { return values_; }

 private:
  std::map<std::string, std::string> values_;
};

// Turns `file:///a/b` or `/a/b` into a local path; other schemes are an error
// naming the key (only local/shared file systems are supported).
absl::StatusOr<std::string> LocalPathFromUri(std::string_view key, std::string_view uri);

// kafka.starting-timestamp / kafka.stopping-timestamp: epoch milliseconds or
// an ISO-8601 time; empty means unset (nullopt). Errors name `key`.
absl::StatusOr<std::optional<int64_t>> ParseTimestampSetting(std::string_view key, std::string_view text);

}  // namespace slipstream
