// FeatureDefinition: what a job computes, declared in a YAML file
// (`pipeline.features`, default conf/features.yaml; format in
// docs/features.md) instead of compiled into the engine.
//
//  - `input`: the JSON fields of a Kafka record and their types, which field
//    is the key and which the event time, and the validation that sends a
//    record to the dead-letter topic (required fields, allowed values,
//    ranges).
//  - `groups`: feature groups. Each has one window (tumbling, sliding or
//    session), a Redis key template, a TTL and its features: aggregates over
//    the window's events (optionally filtered) and the window's own fields.
//
// The coordinator loads the file, validates it (every error names the path in
// the file, its line and column) and ships its text with each deployment;
// every worker of an attempt parses the same text. This header is the parsed,
// validated form; worker/window/feature_program.h compiles it for the engine.
// Thread-safety: immutable after parsing; safe to share.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipstream {

enum class FieldType : uint8_t { kString, kLong, kDouble, kBoolean };
std::string_view FieldTypeName(FieldType type);  // "string", "long", ...

enum class TimeFormat : uint8_t { kIso8601, kEpochMillis, kEpochSeconds };
std::string_view TimeFormatName(TimeFormat format);  // "iso8601", "epoch_millis", "epoch_seconds"

struct InputField {
  std::string name;
  FieldType type = FieldType::kString;
  bool required = true;
  // Strings: the allowed values (empty: any non-empty string... see
  // `allow_empty`). Numbers: the inclusive range, when given.
  std::vector<std::string> allowed;
  std::optional<double> min;
  std::optional<double> max;
  bool allow_empty = false;  // strings: "" is valid
};

struct InputSchema {
  std::vector<InputField> fields;  // in file order; events carry values in this order
  int key_field = -1;              // index into `fields`: the key (user_id)
  int time_field = -1;             // index into `fields`: the event time
  TimeFormat time_format = TimeFormat::kIso8601;

  // Index of the field with this name, or -1.
  int FieldIndex(std::string_view name) const;
  const InputField& key() const { return fields[static_cast<size_t>(key_field)]; }
};

enum class WindowType : uint8_t { kTumbling, kSliding, kSession };
std::string_view WindowTypeName(WindowType type);

struct WindowSpec {
  WindowType type = WindowType::kTumbling;
  int64_t size_ms = 0;   // tumbling, sliding
  int64_t slide_ms = 0;  // sliding (tumbling: == size_ms)
  int64_t gap_ms = 0;    // session
};

enum class Aggregate : uint8_t { kCount, kSum, kAvg, kMin, kMax, kFirst, kLast, kCountDistinct };
std::string_view AggregateName(Aggregate aggregate);

// The window's own fields, written under their own names.
enum class WindowField : uint8_t {
  kKey,  // the key field's value, written under the key field's name (user_id)
  kWindowStart,
  kWindowEnd,
  kSessionStart,
  kSessionEnd,
  kDurationSeconds,
  kEventCount,
};
std::string_view WindowFieldName(WindowField field);  // "window_start", ...; kKey: "key"

// A filter on input fields: comparisons (==, !=, <, <=, >, >=, in (...),
// not in (...)) combined with and, or, not and parentheses. `text` is the
// file's text; `canonical` a normalised form (fingerprints compare it).
struct FilterSpec {
  std::string text;
  std::string canonical;
};

struct FeatureSpec {
  std::string name;  // the Redis hash field
  bool is_window_field = false;
  WindowField window_field = WindowField::kKey;  // when is_window_field
  Aggregate aggregate = Aggregate::kCount;       // otherwise
  int field = -1;  // input field aggregated (-1 for count)
  std::optional<FilterSpec> filter;
  // count_distinct: exact up to this many distinct values in a window, then
  // a HyperLogLog estimate (precision 12: about 1.6 % standard error).
  int64_t distinct_exact_limit = 1000;

  // Identity of what the feature accumulates (aggregate, field and filter;
  // not its name): two features with the same identity share state, and a
  // restore maps state by it.
  std::string StateIdentity(const InputSchema& input) const;
};

// A piece of a Redis key template: literal text, or a placeholder.
struct KeyPart {
  bool is_placeholder = false;
  std::string literal;                           // !is_placeholder
  WindowField field = WindowField::kKey;         // placeholder: kKey or a window field
};

struct FeatureGroup {
  std::string name;
  WindowSpec window;
  std::string key_template;  // e.g. "user_features:{user_id}"
  std::vector<KeyPart> key_parts;
  int64_t ttl_seconds = 0;
  std::vector<FeatureSpec> features;  // in file order: the order of the HSET's fields
};

struct FeatureDefinition {
  InputSchema input;
  std::vector<FeatureGroup> groups;
  std::string text;         // the YAML text it was parsed from
  std::string origin;       // file name, for messages
  std::string fingerprint;  // hex digest of the canonical form (not of the text)

  // Canonical one-line description of a group (window, key, ttl) and of each
  // feature: what fingerprints and compatibility checks compare.
  std::string CanonicalGroup(const FeatureGroup& group) const;
  std::string CanonicalFeature(const FeatureSpec& feature) const;
  // Human summary (GetJob, REST, the log): "user_features: sliding 1 h / 10 min, 7 fields; ...".
  std::string Summary() const;
};

// Parses and validates a definition. Errors read
//   "<origin>:<line>:<column>: <path>: <what is wrong>"
// e.g. "features.yaml:31:17: groups[0].features[2].filter: unknown field
// 'evnt_type'; did you mean 'event_type'?".
[[nodiscard]] absl::StatusOr<FeatureDefinition> ParseFeatureDefinition(std::string_view yaml_text,
                                                                       std::string_view origin);
[[nodiscard]] absl::StatusOr<FeatureDefinition> LoadFeatureDefinitionFile(const std::string& path);

// Whether state written under `saved` can be restored under `current`:
// OK when nothing changed, or the change only adds groups or features (they
// start empty; `*added` lists them for the log). Otherwise
// FailedPrecondition naming the group and feature that changed.
[[nodiscard]] absl::Status CheckRestoreCompatible(const FeatureDefinition& saved, const FeatureDefinition& current,
                                                  std::vector<std::string>* added);

// The shipped conf/features.yaml, compiled in (CMake embeds the file at build
// time, so there is one copy): the original project's two groups. Used when
// `pipeline.features` names no file that exists at its default path, and by
// tests and tools.
std::string_view DefaultFeaturesYaml();
const FeatureDefinition& DefaultFeatureDefinition();

// The nearest of `candidates` to `word` (edit distance at most 2, or 1/3 of
// its length), for "did you mean" hints; empty when none is close.
std::string NearestName(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace slipstream
