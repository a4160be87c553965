// Internal to common/features/: what the files that parse a feature definition
// share. Not part of the public API (that is feature_definition.h).
//
//  - name tables and formatting helpers (durations, numbers, windows, quoted
//    lists, "did you mean" hints), used by parsing, the canonical form and
//    the restore check;
//  - DefinitionParser, one instance per ParseFeatureDefinition call. Its
//    members are defined in several files:
//      definition_reader.cc   errors with file marks, typed scalars, key checks
//      input_schema.cc        `input` (fields, key, event time)
//      feature_groups.cc      `groups` (window, key template, ttl, features)
//      feature_definition.cc  Parse() itself and the public entry points
//      canonical_form.cc      fingerprint, canonical form, restore check, summary
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/features/feature_definition.h"
#include "yaml-cpp/yaml.h"

namespace slipstream::features_internal {

// Every window field by name, in documentation order (kKey is spelled as the
// key field's own name and so is not in this table).
inline constexpr std::array<std::pair<std::string_view, WindowField>, 6> kWindowFieldNames = {{
    {"window_start", WindowField::kWindowStart},
    {"window_end", WindowField::kWindowEnd},
    {"session_start", WindowField::kSessionStart},
    {"session_end", WindowField::kSessionEnd},
    {"duration_seconds", WindowField::kDurationSeconds},
    {"event_count", WindowField::kEventCount},
}};

inline constexpr std::array<std::pair<std::string_view, Aggregate>, 8> kAggregateNames = {{
    {"count", Aggregate::kCount},
    {"sum", Aggregate::kSum},
    {"avg", Aggregate::kAvg},
    {"min", Aggregate::kMin},
    {"max", Aggregate::kMax},
    {"first", Aggregate::kFirst},
    {"last", Aggregate::kLast},
    {"count_distinct", Aggregate::kCountDistinct},
}};

inline constexpr int64_t kMaxExactLimit = 1'000'000;


bool IsSessionOnly(WindowField field);
// "1 h", "10 min", "90 s", "1500 ms": the largest unit that divides exactly.
std::string FormatDuration(int64_t ms);
std::string FormatNumber(double value);
// "tumbling 1 h", "sliding 1 h / 10 min", "session gap 30 min".
std::string WindowText(const WindowSpec& window);
std::string Quoted(std::string_view s);
std::string JoinList(const std::vector<std::string>& items, std::string_view separator);
// " (one of a, b, c)" or "; did you mean 'x'?" for an unknown name.
std::string Hint(std::string_view word, const std::vector<std::string>& candidates);
// "a map", "a list", "'text'" or "nothing", for "expected X, got Y".
std::string KindOf(const YAML::Node& node);

// Hex SHA-256 of the definition's canonical form (canonical_form.cc).
std::string Fingerprint(const FeatureDefinition& def);

class DefinitionParser {
 public:
  DefinitionParser(std::string_view text, std::string_view origin) : text_(text), origin_(origin) {}

  absl::StatusOr<FeatureDefinition> Parse();

 private:
  // ---- errors and generic node access (definition_reader.cc) ----

  absl::Status Error(const YAML::Mark& mark, const std::string& path, const std::string& what) const;
  absl::Status Error(int line, int column, const std::string& path, const std::string& what) const;
  // Column (1-based) of the first character of a scalar's value: after the
  // opening quote of a quoted scalar.
  int ValueColumn(const YAML::Node& scalar) const;

  static std::string Join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }
  static std::string Index(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

  // Unknown and repeated keys of a map (yaml-cpp keeps the first of two equal
  // keys silently; a repeated key is almost always a mistake).
  absl::Status CheckKeys(const YAML::Node& map, const std::string& path, const std::vector<std::string>& allowed);
  absl::Status Required(const YAML::Node& map, const std::string& path, std::string_view key, YAML::Node* out);
  static bool Optional(const YAML::Node& map, std::string_view key, YAML::Node* out);
  absl::Status Expect(const YAML::Node& node, YAML::NodeType::value type, const std::string& path,
                      std::string_view what);
  absl::StatusOr<std::string> Text(const YAML::Node& node, const std::string& path, std::string_view what = "text");
  absl::StatusOr<std::string> Name(const YAML::Node& node, const std::string& path);
  absl::StatusOr<bool> Bool(const YAML::Node& node, const std::string& path);
  absl::StatusOr<double> Number(const YAML::Node& node, const std::string& path);
  absl::StatusOr<int64_t> DurationMs(const YAML::Node& node, const std::string& path);

  // Exact enumeration value, or an error with a hint.
  template <typename T, size_t N>
  absl::StatusOr<T> Enum(const YAML::Node& node, const std::string& path, std::string_view what,
                         const std::array<std::pair<std::string_view, T>, N>& table) {
    absl::StatusOr<std::string> text = Text(node, path, what);
    if (!text.ok()) return text.status();
    std::vector<std::string> names;
    for (const auto& [name, value] : table) {
      if (name == *text) return value;
      names.emplace_back(name);
    }
    return Error(node.Mark(), path, "unknown " + std::string(what) + " " + Quoted(*text) + Hint(*text, names));
  }

  // ---- input (input_schema.cc) ----

  absl::Status ParseInput(const YAML::Node& node, const std::string& path, InputSchema* input);
  absl::Status ParseField(const YAML::Node& node, const std::string& path, InputField* field);

  // ---- groups (feature_groups.cc) ----

  absl::Status ParseGroups(const YAML::Node& node, const std::string& path, const InputSchema& input,
                           std::vector<FeatureGroup>* groups);
  absl::Status ParseGroup(const YAML::Node& node, const std::string& path, const InputSchema& input,
                          FeatureGroup* group);
  absl::Status ParseWindow(const YAML::Node& node, const std::string& path, WindowSpec* window);
  // The placeholders a group's key template may use.
  static std::vector<std::string> PlaceholderNames(const InputSchema& input, WindowType type);
  absl::Status ParseKeyTemplate(const YAML::Node& node, const std::string& path, const InputSchema& input,
                                FeatureGroup* group);
  absl::Status ParseFeatures(const YAML::Node& node, const std::string& path, const InputSchema& input,
                             FeatureGroup* group);
  // A window field by the name a feature list uses: the key field's name or
  // one of kWindowFieldNames valid for the window type.
  absl::Status WindowFieldByName(const YAML::Node& node, const std::string& path, const InputSchema& input,
                                 WindowType type, WindowField* out);
  absl::Status ParseFeature(const YAML::Node& node, const std::string& path, const InputSchema& input,
                            WindowType window_type, FeatureSpec* feature);
  // Parts of an aggregate feature {name, aggregate, ...}: its `field` (none
  // for count; a type the aggregate takes), `exact_limit` and `filter`.
  absl::Status ParseAggregateField(const YAML::Node& node, const std::string& path, const InputSchema& input,
                                   FeatureSpec* feature);
  absl::Status ParseExactLimit(const YAML::Node& node, const std::string& path, FeatureSpec* feature);
  absl::Status ParseFeatureFilter(const YAML::Node& node, const std::string& path, const InputSchema& input,
                                  FeatureSpec* feature);

  std::string_view text_;
  std::string_view origin_;
};

}  // namespace slipstream::features_internal
