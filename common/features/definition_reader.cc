// Reading a feature definition's YAML: errors that carry the file position
// (origin:line:column: path: what), key checks (unknown keys with a "did you
// mean" hint, repeated keys, required and optional keys), typed scalars
// (text, names, booleans, numbers, durations, enumerations) and the
// formatting helpers shared with the canonical form, plus NearestName.
#include "common/features/definition_parsing.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "common/config.h"
#include "common/edit_distance.h"

namespace slipstream {

namespace features_internal {

bool IsSessionOnly(WindowField field) {
  return field == WindowField::kSessionStart || field == WindowField::kSessionEnd ||
         field == WindowField::kDurationSeconds;
}

// "1 h", "10 min", "90 s", "1500 ms": the largest unit that divides exactly.
std::string FormatDuration(int64_t ms) {
  static constexpr std::pair<int64_t, std::string_view> kUnits[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "min"}, {1'000, "s"}};
  if (ms != 0) {
    for (const auto& [factor, label] : kUnits) {
      if (ms % factor == 0) return std::to_string(ms / factor) + " " + std::string(label);
    }
  }
  return std::to_string(ms) + " ms";
}

std::string FormatNumber(double value) {
  std::array<char, 32> buffer;
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  return std::string(buffer.data(), result.ptr);
}

std::string WindowText(const WindowSpec& window) {
  switch (window.type) {
    case WindowType::kTumbling:
      return "tumbling " + FormatDuration(window.size_ms);
    case WindowType::kSliding:
      return "sliding " + FormatDuration(window.size_ms) + " / " + FormatDuration(window.slide_ms);
    case WindowType::kSession:
      return "session gap " + FormatDuration(window.gap_ms);
  }
  return "";
}

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string JoinList(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += separator;
    out += items[i];
  }
  return out;
}

// " (one of a, b, c)" or "; did you mean 'x'?" for an unknown name.
std::string Hint(std::string_view word, const std::vector<std::string>& candidates) {
  const std::string nearest = NearestName(word, candidates);
  if (!nearest.empty()) return "; did you mean " + Quoted(nearest) + "?";
  return " (one of " + JoinList(candidates, ", ") + ")";
}

std::string KindOf(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    default:
      return "nothing";
  }
}


absl::Status DefinitionParser::Error(const YAML::Mark& mark, const std::string& path,
                                     const std::string& what) const {
  const int line = mark.is_null() ? 1 : mark.line + 1;
  const int column = mark.is_null() ? 1 : mark.column + 1;
  return Error(line, column, path, what);
}

absl::Status DefinitionParser::Error(int line, int column, const std::string& path,
                                     const std::string& what) const {
  std::string message = std::string(origin_) + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
  if (!path.empty()) message += path + ": ";
  return absl::InvalidArgumentError(message + what);
}

int DefinitionParser::ValueColumn(const YAML::Node& scalar) const {
  const YAML::Mark mark = scalar.Mark();
  if (mark.is_null()) return 1;
  const size_t pos = static_cast<size_t>(mark.pos);
  const bool quoted = pos < text_.size() && (text_[pos] == '"' || text_[pos] == '\'');
  return mark.column + 1 + (quoted ? 1 : 0);
}

absl::Status DefinitionParser::CheckKeys(const YAML::Node& map, const std::string& path,
                                         const std::vector<std::string>& allowed) {
  std::set<std::string> seen;
  for (const auto& entry : map) {
    const YAML::Node& key = entry.first;
    if (!key.IsScalar()) return Error(key.Mark(), path, "a key must be a plain name, got " + KindOf(key));
    const std::string& name = key.Scalar();
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return Error(key.Mark(), path, "unknown key " + Quoted(name) + Hint(name, allowed));
    }
    if (!seen.insert(name).second) return Error(key.Mark(), path, "key " + Quoted(name) + " appears twice");
  }
  return absl::OkStatus();
}

absl::Status DefinitionParser::Required(const YAML::Node& map, const std::string& path, std::string_view key,
                                        YAML::Node* out) {
  const YAML::Node value = map[std::string(key)];
  if (!value.IsDefined() || value.IsNull()) {
    return Error(map.Mark(), path, "missing " + Quoted(key));
  }
  *out = value;
  return absl::OkStatus();
}

bool DefinitionParser::Optional(const YAML::Node& map, std::string_view key, YAML::Node* out) {
  const YAML::Node value = map[std::string(key)];
  if (!value.IsDefined()) return false;
  *out = value;
  return true;
}

absl::Status DefinitionParser::Expect(const YAML::Node& node, YAML::NodeType::value type, const std::string& path,
                                      std::string_view what) {
  if (node.Type() == type) return absl::OkStatus();
  return Error(node.Mark(), path, "expected " + std::string(what) + ", got " + KindOf(node));
}

absl::StatusOr<std::string> DefinitionParser::Text(const YAML::Node& node, const std::string& path,
                                                   std::string_view what) {
  if (absl::Status s = Expect(node, YAML::NodeType::Scalar, path, what); !s.ok()) return s;
  return node.Scalar();
}

absl::StatusOr<std::string> DefinitionParser::Name(const YAML::Node& node, const std::string& path) {
  absl::StatusOr<std::string> name = Text(node, path, "a name");
  if (!name.ok()) return name;
  if (name->empty()) return Error(node.Mark(), path, "the name is empty");
  return name;
}

absl::StatusOr<bool> DefinitionParser::Bool(const YAML::Node& node, const std::string& path) {
  absl::StatusOr<std::string> text = Text(node, path, "true or false");
  if (!text.ok()) return text.status();
  if (*text == "true" || *text == "True" || *text == "TRUE") return true;
  if (*text == "false" || *text == "False" || *text == "FALSE") return false;
  return Error(node.Mark(), path, "expected true or false, got " + Quoted(*text));
}

absl::StatusOr<double> DefinitionParser::Number(const YAML::Node& node, const std::string& path) {
  absl::StatusOr<std::string> text = Text(node, path, "a number");
  if (!text.ok()) return text.status();
  double value = 0;
  const std::string_view t = *text;
  const auto result = std::from_chars(t.data(), t.data() + t.size(), value);
  if (t.empty() || result.ec != std::errc() || result.ptr != t.data() + t.size() || !std::isfinite(value)) {
    return Error(node.Mark(), path, "expected a number, got " + Quoted(t));
  }
  return value;
}

absl::StatusOr<int64_t> DefinitionParser::DurationMs(const YAML::Node& node, const std::string& path) {
  absl::StatusOr<std::string> text = Text(node, path, "a duration such as \"10 min\"");
  if (!text.ok()) return text.status();
  absl::StatusOr<int64_t> ms = ParseDurationMs(*text);
  if (!ms.ok()) return Error(node.Mark(), path, std::string(ms.status().message()));
  if (*ms <= 0) return Error(node.Mark(), path, "must be positive");
  return *ms;
}

}  // namespace features_internal

std::string NearestName(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = SIZE_MAX;
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  for (const std::string& candidate : candidates) {
    const size_t d = EditDistance(word, candidate);
    if (d <= limit && d < best_distance && d < std::max(word.size(), candidate.size())) {
      best = candidate;
      best_distance = d;
    }
  }
  return best;
}

}  // namespace slipstream
