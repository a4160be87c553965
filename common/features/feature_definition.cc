// Parsing and validation of the feature definition file (yaml-cpp), its
// canonical form and fingerprint, and the restore-compatibility rule.
//
// Validation stops at the first error and reports it with the file position
// yaml-cpp recorded for the offending node, so an operator can jump to it.
// The canonical form deliberately ignores everything that does not change
// what is computed or written (comments, layout, how a duration is spelled),
// so a reformatted file keeps its fingerprint.
#include "common/features/feature_definition.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/config.h"
#include "common/features/filter.h"
#include "yaml-cpp/yaml.h"

namespace slipstream {

namespace {

constexpr std::string_view kDefaultOrigin = "conf/features.yaml (built in)";

// Every window field by name, in documentation order (kKey is spelled as the
// key field's own name and so is not in this table).
constexpr std::array<std::pair<std::string_view, WindowField>, 6> kWindowFieldNames = {{
    {"window_start", WindowField::kWindowStart},
    {"window_end", WindowField::kWindowEnd},
    {"session_start", WindowField::kSessionStart},
    {"session_end", WindowField::kSessionEnd},
    {"duration_seconds", WindowField::kDurationSeconds},
    {"event_count", WindowField::kEventCount},
}};

constexpr std::array<std::pair<std::string_view, Aggregate>, 8> kAggregateNames = {{
    {"count", Aggregate::kCount},
    {"sum", Aggregate::kSum},
    {"avg", Aggregate::kAvg},
    {"min", Aggregate::kMin},
    {"max", Aggregate::kMax},
    {"first", Aggregate::kFirst},
    {"last", Aggregate::kLast},
    {"count_distinct", Aggregate::kCountDistinct},
}};

constexpr int64_t kMaxExactLimit = 1'000'000;

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

std::string HexSha256(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
    // Only fails when OpenSSL cannot allocate; a fingerprint is not optional.
    std::fprintf(stderr, "slipstream: OpenSSL SHA-256 failed\n");
    std::abort();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
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

// The parser proper: one instance per ParseFeatureDefinition call.
class DefinitionParser {
 public:
  DefinitionParser(std::string_view text, std::string_view origin) : text_(text), origin_(origin) {}

  absl::StatusOr<FeatureDefinition> Parse() {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(text_));
    } catch (const YAML::Exception& e) {
      return Error(e.mark, "", e.msg);
    }
    if (!root.IsDefined() || root.IsNull()) {
      return Error(YAML::Mark(), "", "the file is empty (expected 'input' and 'groups')");
    }
    if (!root.IsMap()) return Error(root.Mark(), "", "expected a map with 'input' and 'groups', got " + KindOf(root));
    FeatureDefinition def;
    def.text = std::string(text_);
    def.origin = std::string(origin_);
    if (absl::Status s = CheckKeys(root, "", {"input", "groups"}); !s.ok()) return s;
    YAML::Node input, groups;
    if (absl::Status s = Required(root, "", "input", &input); !s.ok()) return s;
    if (absl::Status s = ParseInput(input, "input", &def.input); !s.ok()) return s;
    if (absl::Status s = Required(root, "", "groups", &groups); !s.ok()) return s;
    if (absl::Status s = ParseGroups(groups, "groups", def.input, &def.groups); !s.ok()) return s;
    def.fingerprint = Fingerprint(def);
    return def;
  }

 private:
  // ---- errors and generic node access ----

  absl::Status Error(const YAML::Mark& mark, const std::string& path, const std::string& what) const {
    const int line = mark.is_null() ? 1 : mark.line + 1;
    const int column = mark.is_null() ? 1 : mark.column + 1;
    return Error(line, column, path, what);
  }
  absl::Status Error(int line, int column, const std::string& path, const std::string& what) const {
    std::string message = std::string(origin_) + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
    if (!path.empty()) message += path + ": ";
    return absl::InvalidArgumentError(message + what);
  }

  // Column (1-based) of the first character of a scalar's value: after the
  // opening quote of a quoted scalar.
  int ValueColumn(const YAML::Node& scalar) const {
    const YAML::Mark mark = scalar.Mark();
    if (mark.is_null()) return 1;
    const size_t pos = static_cast<size_t>(mark.pos);
    const bool quoted = pos < text_.size() && (text_[pos] == '"' || text_[pos] == '\'');
    return mark.column + 1 + (quoted ? 1 : 0);
  }

  static std::string Join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }
  static std::string Index(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

  // Unknown and repeated keys of a map (yaml-cpp keeps the first of two equal
  // keys silently; a repeated key is almost always a mistake).
  absl::Status CheckKeys(const YAML::Node& map, const std::string& path, const std::vector<std::string>& allowed) {
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

  absl::Status Required(const YAML::Node& map, const std::string& path, std::string_view key, YAML::Node* out) {
    const YAML::Node value = map[std::string(key)];
    if (!value.IsDefined() || value.IsNull()) {
      return Error(map.Mark(), path, "missing " + Quoted(key));
    }
    *out = value;
    return absl::OkStatus();
  }

  static bool Optional(const YAML::Node& map, std::string_view key, YAML::Node* out) {
    const YAML::Node value = map[std::string(key)];
    if (!value.IsDefined()) return false;
    *out = value;
    return true;
  }

  absl::Status Expect(const YAML::Node& node, YAML::NodeType::value type, const std::string& path,
                      std::string_view what) {
    if (node.Type() == type) return absl::OkStatus();
    return Error(node.Mark(), path, "expected " + std::string(what) + ", got " + KindOf(node));
  }

  absl::StatusOr<std::string> Text(const YAML::Node& node, const std::string& path, std::string_view what = "text") {
    if (absl::Status s = Expect(node, YAML::NodeType::Scalar, path, what); !s.ok()) return s;
    return node.Scalar();
  }

  absl::StatusOr<std::string> Name(const YAML::Node& node, const std::string& path) {
    absl::StatusOr<std::string> name = Text(node, path, "a name");
    if (!name.ok()) return name;
    if (name->empty()) return Error(node.Mark(), path, "the name is empty");
    return name;
  }

  absl::StatusOr<bool> Bool(const YAML::Node& node, const std::string& path) {
    absl::StatusOr<std::string> text = Text(node, path, "true or false");
    if (!text.ok()) return text.status();
    if (*text == "true" || *text == "True" || *text == "TRUE") return true;
    if (*text == "false" || *text == "False" || *text == "FALSE") return false;
    return Error(node.Mark(), path, "expected true or false, got " + Quoted(*text));
  }

  absl::StatusOr<double> Number(const YAML::Node& node, const std::string& path) {
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

  absl::StatusOr<int64_t> DurationMs(const YAML::Node& node, const std::string& path) {
    absl::StatusOr<std::string> text = Text(node, path, "a duration such as \"10 min\"");
    if (!text.ok()) return text.status();
    absl::StatusOr<int64_t> ms = ParseDurationMs(*text);
    if (!ms.ok()) return Error(node.Mark(), path, std::string(ms.status().message()));
    if (*ms <= 0) return Error(node.Mark(), path, "must be positive");
    return *ms;
  }

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

  // ---- input ----

  absl::Status ParseInput(const YAML::Node& node, const std::string& path, InputSchema* input) {
    if (absl::Status s = Expect(node, YAML::NodeType::Map, path, "a map"); !s.ok()) return s;
    if (absl::Status s = CheckKeys(node, path, {"key", "event_time", "fields"}); !s.ok()) return s;
    YAML::Node fields, key, event_time;
    if (absl::Status s = Required(node, path, "fields", &fields); !s.ok()) return s;
    const std::string fields_path = Join(path, "fields");
    if (absl::Status s = Expect(fields, YAML::NodeType::Sequence, fields_path, "a list of fields"); !s.ok()) return s;
    if (fields.size() == 0) return Error(fields.Mark(), fields_path, "the input needs at least one field");
    std::map<std::string, int> first_line;
    for (size_t i = 0; i < fields.size(); ++i) {
      InputField field;
      const YAML::Node entry = fields[i];
      if (absl::Status s = ParseField(entry, Index(fields_path, i), &field); !s.ok()) return s;
      const auto [it, inserted] = first_line.emplace(field.name, entry["name"].Mark().line + 1);
      if (!inserted) {
        return Error(entry["name"].Mark(), Index(fields_path, i) + ".name",
                     "duplicate field " + Quoted(field.name) + " (first at line " + std::to_string(it->second) + ")");
      }
      input->fields.push_back(std::move(field));
    }
    std::vector<std::string> names;
    for (const InputField& f : input->fields) names.push_back(f.name);

    if (absl::Status s = Required(node, path, "key", &key); !s.ok()) return s;
    const std::string key_path = Join(path, "key");
    absl::StatusOr<std::string> key_name = Name(key, key_path);
    if (!key_name.ok()) return key_name.status();
    input->key_field = input->FieldIndex(*key_name);
    if (input->key_field < 0) {
      return Error(key.Mark(), key_path, "unknown field " + Quoted(*key_name) + Hint(*key_name, names));
    }
    const InputField& key_field = input->key();
    if (key_field.type != FieldType::kString && key_field.type != FieldType::kLong) {
      return Error(key.Mark(), key_path,
                   "the key field " + Quoted(key_field.name) + " is " + std::string(FieldTypeName(key_field.type)) +
                       "; it must be string or long");
    }
    if (!key_field.required) {
      return Error(key.Mark(), key_path, "the key field " + Quoted(key_field.name) + " must be required");
    }

    if (absl::Status s = Required(node, path, "event_time", &event_time); !s.ok()) return s;
    const std::string time_path = Join(path, "event_time");
    if (absl::Status s = Expect(event_time, YAML::NodeType::Map, time_path, "a map {field, format}"); !s.ok()) return s;
    if (absl::Status s = CheckKeys(event_time, time_path, {"field", "format"}); !s.ok()) return s;
    YAML::Node time_field_node, format_node;
    if (absl::Status s = Required(event_time, time_path, "field", &time_field_node); !s.ok()) return s;
    absl::StatusOr<std::string> time_name = Name(time_field_node, Join(time_path, "field"));
    if (!time_name.ok()) return time_name.status();
    input->time_field = input->FieldIndex(*time_name);
    if (input->time_field < 0) {
      return Error(time_field_node.Mark(), Join(time_path, "field"),
                   "unknown field " + Quoted(*time_name) + Hint(*time_name, names));
    }
    if (Optional(event_time, "format", &format_node)) {
      static constexpr std::array<std::pair<std::string_view, TimeFormat>, 3> kFormats = {{
          {"iso8601", TimeFormat::kIso8601},
          {"epoch_millis", TimeFormat::kEpochMillis},
          {"epoch_seconds", TimeFormat::kEpochSeconds},
      }};
      absl::StatusOr<TimeFormat> format = Enum(format_node, Join(time_path, "format"), "time format", kFormats);
      if (!format.ok()) return format.status();
      input->time_format = *format;
    }
    const InputField& time_field = input->fields[static_cast<size_t>(input->time_field)];
    const FieldType want = input->time_format == TimeFormat::kIso8601 ? FieldType::kString : FieldType::kLong;
    if (time_field.type != want) {
      return Error(time_field_node.Mark(), Join(time_path, "field"),
                   "the time field " + Quoted(time_field.name) + " is " + std::string(FieldTypeName(time_field.type)) +
                       "; format " + std::string(TimeFormatName(input->time_format)) + " needs a " +
                       std::string(FieldTypeName(want)) + " field");
    }
    if (!time_field.required) {
      return Error(time_field_node.Mark(), Join(time_path, "field"),
                   "the time field " + Quoted(time_field.name) + " must be required");
    }
    return absl::OkStatus();
  }

  absl::Status ParseField(const YAML::Node& node, const std::string& path, InputField* field) {
    if (absl::Status s = Expect(node, YAML::NodeType::Map, path, "a map {name, type, ...}"); !s.ok()) return s;
    if (absl::Status s = CheckKeys(node, path, {"name", "type", "required", "allowed", "min", "max", "allow_empty"});
        !s.ok()) {
      return s;
    }
    YAML::Node name, type, value;
    if (absl::Status s = Required(node, path, "name", &name); !s.ok()) return s;
    absl::StatusOr<std::string> field_name = Name(name, Join(path, "name"));
    if (!field_name.ok()) return field_name.status();
    field->name = *field_name;
    if (absl::Status s = Required(node, path, "type", &type); !s.ok()) return s;
    static constexpr std::array<std::pair<std::string_view, FieldType>, 4> kTypes = {{
        {"string", FieldType::kString},
        {"long", FieldType::kLong},
        {"double", FieldType::kDouble},
        {"boolean", FieldType::kBoolean},
    }};
    absl::StatusOr<FieldType> field_type = Enum(type, Join(path, "type"), "type", kTypes);
    if (!field_type.ok()) return field_type.status();
    field->type = *field_type;
    const bool is_string = field->type == FieldType::kString;
    const bool is_number = field->type == FieldType::kLong || field->type == FieldType::kDouble;
    if (Optional(node, "required", &value)) {
      absl::StatusOr<bool> required = Bool(value, Join(path, "required"));
      if (!required.ok()) return required.status();
      field->required = *required;
    }
    if (Optional(node, "allow_empty", &value)) {
      if (!is_string) return Error(value.Mark(), Join(path, "allow_empty"), "only string fields take allow_empty");
      absl::StatusOr<bool> allow_empty = Bool(value, Join(path, "allow_empty"));
      if (!allow_empty.ok()) return allow_empty.status();
      field->allow_empty = *allow_empty;
    }
    if (Optional(node, "allowed", &value)) {
      const std::string allowed_path = Join(path, "allowed");
      if (!is_string) {
        return Error(value.Mark(), allowed_path, "only string fields take allowed (numbers take min and max)");
      }
      if (absl::Status s = Expect(value, YAML::NodeType::Sequence, allowed_path, "a list of values"); !s.ok()) return s;
      if (value.size() == 0) return Error(value.Mark(), allowed_path, "the list is empty (omit it to allow any value)");
      for (size_t i = 0; i < value.size(); ++i) {
        absl::StatusOr<std::string> allowed = Text(value[i], Index(allowed_path, i), "a value");
        if (!allowed.ok()) return allowed.status();
        if (std::find(field->allowed.begin(), field->allowed.end(), *allowed) != field->allowed.end()) {
          return Error(value[i].Mark(), Index(allowed_path, i), "duplicate value " + Quoted(*allowed));
        }
        field->allowed.push_back(*allowed);
      }
    }
    for (std::string_view bound : {"min", "max"}) {
      if (!Optional(node, bound, &value)) continue;
      if (!is_number) {
        return Error(value.Mark(), Join(path, bound), "only long and double fields take " + std::string(bound));
      }
      absl::StatusOr<double> number = Number(value, Join(path, bound));
      if (!number.ok()) return number.status();
      (bound == "min" ? field->min : field->max) = *number;
    }
    if (field->min && field->max && *field->min > *field->max) {
      return Error(node["max"].Mark(), Join(path, "max"), "max is below min");
    }
    return absl::OkStatus();
  }

  // ---- groups ----

  absl::Status ParseGroups(const YAML::Node& node, const std::string& path, const InputSchema& input,
                           std::vector<FeatureGroup>* groups) {
    if (absl::Status s = Expect(node, YAML::NodeType::Sequence, path, "a list of groups"); !s.ok()) return s;
    if (node.size() == 0) return Error(node.Mark(), path, "there must be at least one group");
    std::map<std::string, int> first_line;
    for (size_t i = 0; i < node.size(); ++i) {
      FeatureGroup group;
      const YAML::Node entry = node[i];
      if (absl::Status s = ParseGroup(entry, Index(path, i), input, &group); !s.ok()) return s;
      const auto [it, inserted] = first_line.emplace(group.name, entry["name"].Mark().line + 1);
      if (!inserted) {
        return Error(entry["name"].Mark(), Index(path, i) + ".name",
                     "duplicate group " + Quoted(group.name) + " (first at line " + std::to_string(it->second) + ")");
      }
      groups->push_back(std::move(group));
    }
    return absl::OkStatus();
  }

  absl::Status ParseGroup(const YAML::Node& node, const std::string& path, const InputSchema& input,
                          FeatureGroup* group) {
    if (absl::Status s = Expect(node, YAML::NodeType::Map, path, "a map {name, window, key, ttl, features}"); !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckKeys(node, path, {"name", "window", "key", "ttl", "features"}); !s.ok()) return s;
    YAML::Node name, window, key, ttl, features;
    if (absl::Status s = Required(node, path, "name", &name); !s.ok()) return s;
    absl::StatusOr<std::string> group_name = Name(name, Join(path, "name"));
    if (!group_name.ok()) return group_name.status();
    // Group names appear in logs and lists as "<group>.<feature>".
    for (char c : *group_name) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
        return Error(name.Mark(), Join(path, "name"),
                     "a group name uses letters, digits, '_' and '-' only, got " + Quoted(*group_name));
      }
    }
    group->name = *group_name;
    if (absl::Status s = Required(node, path, "window", &window); !s.ok()) return s;
    if (absl::Status s = ParseWindow(window, Join(path, "window"), &group->window); !s.ok()) return s;
    if (absl::Status s = Required(node, path, "key", &key); !s.ok()) return s;
    if (absl::Status s = ParseKeyTemplate(key, Join(path, "key"), input, group); !s.ok()) return s;
    if (absl::Status s = Required(node, path, "ttl", &ttl); !s.ok()) return s;
    absl::StatusOr<int64_t> ttl_ms = DurationMs(ttl, Join(path, "ttl"));
    if (!ttl_ms.ok()) return ttl_ms.status();
    // Redis EXPIRE takes whole seconds.
    if (*ttl_ms % 1000 != 0) return Error(ttl.Mark(), Join(path, "ttl"), "must be whole seconds (Redis EXPIRE)");
    group->ttl_seconds = *ttl_ms / 1000;
    if (absl::Status s = Required(node, path, "features", &features); !s.ok()) return s;
    return ParseFeatures(features, Join(path, "features"), input, group);
  }

  absl::Status ParseWindow(const YAML::Node& node, const std::string& path, WindowSpec* window) {
    if (absl::Status s = Expect(node, YAML::NodeType::Map, path, "a map {type, size, slide, gap}"); !s.ok()) return s;
    if (absl::Status s = CheckKeys(node, path, {"type", "size", "slide", "gap"}); !s.ok()) return s;
    YAML::Node type, value;
    if (absl::Status s = Required(node, path, "type", &type); !s.ok()) return s;
    static constexpr std::array<std::pair<std::string_view, WindowType>, 3> kTypes = {{
        {"tumbling", WindowType::kTumbling},
        {"sliding", WindowType::kSliding},
        {"session", WindowType::kSession},
    }};
    absl::StatusOr<WindowType> window_type = Enum(type, Join(path, "type"), "window type", kTypes);
    if (!window_type.ok()) return window_type.status();
    window->type = *window_type;
    const std::string type_name(WindowTypeName(window->type));
    // Which durations each type takes; the others are an error, not ignored.
    const bool wants_size = window->type != WindowType::kSession;
    const bool wants_slide = window->type == WindowType::kSliding;
    const bool wants_gap = window->type == WindowType::kSession;
    const std::pair<std::string_view, bool> keys[] = {{"size", wants_size}, {"slide", wants_slide}, {"gap", wants_gap}};
    for (const auto& [key, wanted] : keys) {
      if (!wanted && Optional(node, key, &value)) {
        return Error(value.Mark(), Join(path, key),
                     "a " + type_name + " window takes no " + std::string(key) +
                         (window->type == WindowType::kSession ? " (only gap)"
                          : window->type == WindowType::kTumbling ? " (only size)"
                                                                   : " (only size and slide)"));
      }
    }
    for (const auto& [key, wanted] : keys) {
      if (!wanted) continue;
      if (!Optional(node, key, &value)) return Error(node.Mark(), path, "a " + type_name + " window needs " + Quoted(key));
      absl::StatusOr<int64_t> ms = DurationMs(value, Join(path, key));
      if (!ms.ok()) return ms.status();
      (key == "size" ? window->size_ms : key == "slide" ? window->slide_ms : window->gap_ms) = *ms;
    }
    if (window->type == WindowType::kTumbling) window->slide_ms = window->size_ms;
    // Flink allows any slide up to the size (not only divisors of it); a
    // slide beyond the size would drop the events between windows.
    if (window->type == WindowType::kSliding && window->slide_ms > window->size_ms) {
      return Error(node["slide"].Mark(), Join(path, "slide"),
                   "the slide (" + FormatDuration(window->slide_ms) + ") must not exceed the size (" +
                       FormatDuration(window->size_ms) + ")");
    }
    return absl::OkStatus();
  }

  // The placeholders a group's key template may use.
  static std::vector<std::string> PlaceholderNames(const InputSchema& input, WindowType type) {
    std::vector<std::string> names = {input.key().name, "window_start", "window_end"};
    if (type == WindowType::kSession) {
      names.emplace_back("session_start");
      names.emplace_back("session_end");
    }
    return names;
  }

  absl::Status ParseKeyTemplate(const YAML::Node& node, const std::string& path, const InputSchema& input,
                                FeatureGroup* group) {
    absl::StatusOr<std::string> text = Text(node, path, "a key template such as \"features:{user_id}\"");
    if (!text.ok()) return text.status();
    group->key_template = *text;
    const int line = node.Mark().is_null() ? 1 : node.Mark().line + 1;
    const int base = ValueColumn(node);
    const std::vector<std::string> allowed = PlaceholderNames(input, group->window.type);
    const std::string& t = *text;
    bool has_key = false;
    std::string literal;
    for (size_t i = 0; i < t.size(); ++i) {
      const int column = base + static_cast<int>(i);
      if (t[i] == '}') return Error(line, column, path, "'}' without '{'");
      if (t[i] != '{') {
        literal.push_back(t[i]);
        continue;
      }
      const size_t close = t.find('}', i + 1);
      if (close == std::string::npos) return Error(line, column, path, "'{' without '}'");
      const std::string name = t.substr(i + 1, close - i - 1);
      KeyPart part;
      part.is_placeholder = true;
      if (name == input.key().name) {
        part.field = WindowField::kKey;
        has_key = true;
      } else if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) {
        for (const auto& [field_name, field] : kWindowFieldNames) {
          if (field_name == name) part.field = field;
        }
      } else {
        std::string what = "unknown placeholder {" + name + "}";
        const std::string nearest = NearestName(name, allowed);
        if (!nearest.empty()) {
          what += "; did you mean {" + nearest + "}?";
        } else {
          what += " (a " + std::string(WindowTypeName(group->window.type)) + " group's key can use {" +
                  JoinList(allowed, "}, {") + "})";
        }
        return Error(line, column, path, what);
      }
      if (!literal.empty()) {
        KeyPart text_part;
        text_part.literal = std::move(literal);
        group->key_parts.push_back(std::move(text_part));
        literal.clear();
      }
      group->key_parts.push_back(part);
      i = close;
    }
    if (!literal.empty()) {
      KeyPart text_part;
      text_part.literal = std::move(literal);
      group->key_parts.push_back(std::move(text_part));
    }
    if (!has_key) {
      return Error(node.Mark(), path,
                   "the key must contain {" + input.key().name + "}: features are per key, and without it every " +
                       "key would write the same Redis key");
    }
    return absl::OkStatus();
  }

  absl::Status ParseFeatures(const YAML::Node& node, const std::string& path, const InputSchema& input,
                             FeatureGroup* group) {
    if (absl::Status s = Expect(node, YAML::NodeType::Sequence, path, "a list of features"); !s.ok()) return s;
    if (node.size() == 0) return Error(node.Mark(), path, "a group needs at least one feature");
    std::map<std::string, int> first_line;
    for (size_t i = 0; i < node.size(); ++i) {
      FeatureSpec feature;
      const YAML::Node entry = node[i];
      const std::string entry_path = Index(path, i);
      if (absl::Status s = ParseFeature(entry, entry_path, input, group->window.type, &feature); !s.ok()) return s;
      const YAML::Node name_node = entry.IsMap() ? entry["name"] : entry;
      const auto [it, inserted] = first_line.emplace(feature.name, name_node.Mark().line + 1);
      if (!inserted) {
        return Error(name_node.Mark(), entry.IsMap() ? entry_path + ".name" : entry_path,
                     "duplicate feature " + Quoted(feature.name) + " (first at line " + std::to_string(it->second) +
                         "): a group's features are the fields of one Redis hash");
      }
      group->features.push_back(std::move(feature));
    }
    // The sink's write guard keeps a key's writes in order by this field
    // (a replayed or late, older window must not overwrite a newer one).
    const WindowField order = group->window.type == WindowType::kSession ? WindowField::kSessionEnd
                                                                           : WindowField::kWindowEnd;
    const bool has_order = std::any_of(group->features.begin(), group->features.end(), [&](const FeatureSpec& f) {
      return f.is_window_field && f.window_field == order;
    });
    if (!has_order) {
      return Error(node.Mark(), path,
                   "a " + std::string(WindowTypeName(group->window.type)) + " group must include " +
                       std::string(WindowFieldName(order)) + ": the write guard orders a key's writes by it");
    }
    return absl::OkStatus();
  }

  // A window field by the name a feature list uses: the key field's name or
  // one of kWindowFieldNames valid for the window type.
  absl::Status WindowFieldByName(const YAML::Node& node, const std::string& path, const InputSchema& input,
                                 WindowType type, WindowField* out) {
    absl::StatusOr<std::string> text = Text(node, path, "a window field name");
    if (!text.ok()) return text.status();
    if (*text == input.key().name) {
      *out = WindowField::kKey;
      return absl::OkStatus();
    }
    std::vector<std::string> names = {input.key().name};
    for (const auto& [name, field] : kWindowFieldNames) {
      names.emplace_back(name);
      if (name != *text) continue;
      if (IsSessionOnly(field) && type != WindowType::kSession) {
        return Error(node.Mark(), path,
                     Quoted(name) + " exists only in session groups (this group's window is " +
                         std::string(WindowTypeName(type)) + ")");
      }
      *out = field;
      return absl::OkStatus();
    }
    return Error(node.Mark(), path,
                 "unknown window field " + Quoted(*text) + Hint(*text, names) +
                     " (a feature is a window field's name, or a map with name and aggregate or value)");
  }

  absl::Status ParseFeature(const YAML::Node& node, const std::string& path, const InputSchema& input,
                            WindowType window_type, FeatureSpec* feature) {
    if (node.IsScalar()) {
      feature->is_window_field = true;
      feature->name = node.Scalar();
      return WindowFieldByName(node, path, input, window_type, &feature->window_field);
    }
    if (!node.IsMap()) {
      return Error(node.Mark(), path,
                   "expected a window field name or a map {name, aggregate, ...}, got " + KindOf(node));
    }
    if (absl::Status s = CheckKeys(node, path, {"name", "aggregate", "field", "filter", "exact_limit", "value"});
        !s.ok()) {
      return s;
    }
    YAML::Node name, value;
    if (absl::Status s = Required(node, path, "name", &name); !s.ok()) return s;
    absl::StatusOr<std::string> feature_name = Name(name, Join(path, "name"));
    if (!feature_name.ok()) return feature_name.status();
    feature->name = *feature_name;
    const bool has_value = Optional(node, "value", &value);
    const bool has_aggregate = node["aggregate"].IsDefined();
    if (has_value && has_aggregate) {
      return Error(node["value"].Mark(), path, "a feature has either aggregate or value, not both");
    }
    if (has_value) {
      for (std::string_view other : {"field", "filter", "exact_limit"}) {
        if (node[std::string(other)].IsDefined()) {
          return Error(node[std::string(other)].Mark(), Join(path, other),
                       "a window field feature ({name, value}) takes no " + std::string(other));
        }
      }
      feature->is_window_field = true;
      return WindowFieldByName(value, Join(path, "value"), input, window_type, &feature->window_field);
    }
    YAML::Node aggregate_node;
    if (!has_aggregate) return Error(node.Mark(), path, "missing 'aggregate' (or 'value' for a window field)");
    aggregate_node = node["aggregate"];
    absl::StatusOr<Aggregate> aggregate = Enum(aggregate_node, Join(path, "aggregate"), "aggregate", kAggregateNames);
    if (!aggregate.ok()) return aggregate.status();
    feature->aggregate = *aggregate;
    const std::string aggregate_name(AggregateName(feature->aggregate));

    YAML::Node field_node;
    const bool has_field = Optional(node, "field", &field_node);
    if (feature->aggregate == Aggregate::kCount) {
      if (has_field) {
        return Error(field_node.Mark(), Join(path, "field"),
                     "count takes no field (it counts the window's events that pass the filter)");
      }
    } else {
      if (!has_field) return Error(node.Mark(), path, aggregate_name + " needs 'field'");
      const std::string field_path = Join(path, "field");
      absl::StatusOr<std::string> field_name = Name(field_node, field_path);
      if (!field_name.ok()) return field_name.status();
      feature->field = input.FieldIndex(*field_name);
      if (feature->field < 0) {
        std::vector<std::string> names;
        for (const InputField& f : input.fields) names.push_back(f.name);
        return Error(field_node.Mark(), field_path, "unknown field " + Quoted(*field_name) + Hint(*field_name, names));
      }
      const FieldType type = input.fields[static_cast<size_t>(feature->field)].type;
      const bool numeric = type == FieldType::kLong || type == FieldType::kDouble;
      const bool fits = feature->aggregate == Aggregate::kSum || feature->aggregate == Aggregate::kAvg ? numeric
                        : feature->aggregate == Aggregate::kMin || feature->aggregate == Aggregate::kMax
                            ? numeric || type == FieldType::kString
                            : true;
      if (!fits) {
        const std::string needs = feature->aggregate == Aggregate::kSum || feature->aggregate == Aggregate::kAvg
                                      ? "a long or double field"
                                      : "a long, double or string field";
        return Error(field_node.Mark(), field_path,
                     aggregate_name + " needs " + needs + "; " + Quoted(*field_name) + " is " +
                         std::string(FieldTypeName(type)));
      }
    }

    YAML::Node limit_node;
    if (Optional(node, "exact_limit", &limit_node)) {
      const std::string limit_path = Join(path, "exact_limit");
      if (feature->aggregate != Aggregate::kCountDistinct) {
        return Error(limit_node.Mark(), limit_path, "only count_distinct takes exact_limit");
      }
      absl::StatusOr<std::string> text = Text(limit_node, limit_path, "a whole number");
      if (!text.ok()) return text.status();
      int64_t limit = 0;
      const auto result = std::from_chars(text->data(), text->data() + text->size(), limit);
      if (result.ec != std::errc() || result.ptr != text->data() + text->size() || limit < 1 ||
          limit > kMaxExactLimit) {
        return Error(limit_node.Mark(), limit_path,
                     "expected a whole number from 1 to " + std::to_string(kMaxExactLimit) + ", got " + Quoted(*text));
      }
      feature->distinct_exact_limit = limit;
    }

    YAML::Node filter_node;
    if (Optional(node, "filter", &filter_node)) {
      const std::string filter_path = Join(path, "filter");
      absl::StatusOr<std::string> text = Text(filter_node, filter_path, "a filter such as \"event_type == 'view'\"");
      if (!text.ok()) return text.status();
      absl::StatusOr<CompiledFilter> filter = ParseFilter(*text, input);
      if (!filter.ok()) {
        // ParseFilter's messages start "column N: "; place N within the file.
        std::string_view message(filter.status().message().data(), filter.status().message().size());
        int column = 1;
        if (message.starts_with("column ")) {
          const size_t colon = message.find(": ");
          std::from_chars(message.data() + 7, message.data() + colon, column);
          message = message.substr(colon + 2);
        }
        const int line = filter_node.Mark().is_null() ? 1 : filter_node.Mark().line + 1;
        return Error(line, ValueColumn(filter_node) + column - 1, filter_path, std::string(message));
      }
      if (!filter->always_true()) feature->filter = FilterSpec{*text, filter->canonical()};
    }
    return absl::OkStatus();
  }

  // ---- canonical form ----

  static std::string Fingerprint(const FeatureDefinition& def) {
    const InputSchema& input = def.input;
    std::string canonical = "slipstream-features-v1\n";
    canonical += "input key=" + input.key().name +
                 " time=" + input.fields[static_cast<size_t>(input.time_field)].name +
                 " format=" + std::string(TimeFormatName(input.time_format)) + "\n";
    for (const InputField& field : input.fields) {
      canonical += "field " + field.name + " " + std::string(FieldTypeName(field.type)) +
                   (field.required ? " required" : " optional");
      if (!field.allowed.empty()) {
        canonical += " allowed=[";
        // Length-prefixed, so no value can forge a separator.
        for (const std::string& value : field.allowed) canonical += std::to_string(value.size()) + ":" + value + ",";
        canonical += "]";
      }
      if (field.min) canonical += " min=" + FormatNumber(*field.min);
      if (field.max) canonical += " max=" + FormatNumber(*field.max);
      if (field.allow_empty) canonical += " allow_empty";
      canonical += "\n";
    }
    for (const FeatureGroup& group : def.groups) {
      canonical += "group " + def.CanonicalGroup(group) + "\n";
      for (const FeatureSpec& feature : group.features) canonical += "feature " + def.CanonicalFeature(feature) + "\n";
    }
    return HexSha256(canonical);
  }

  std::string_view text_;
  std::string_view origin_;
};

}  // namespace

std::string_view FieldTypeName(FieldType type) {
  switch (type) {
    case FieldType::kString: return "string";
    case FieldType::kLong: return "long";
    case FieldType::kDouble: return "double";
    case FieldType::kBoolean: return "boolean";
  }
  return "?";
}

std::string_view TimeFormatName(TimeFormat format) {
  switch (format) {
    case TimeFormat::kIso8601: return "iso8601";
    case TimeFormat::kEpochMillis: return "epoch_millis";
    case TimeFormat::kEpochSeconds: return "epoch_seconds";
  }
  return "?";
}

std::string_view WindowTypeName(WindowType type) {
  switch (type) {
    case WindowType::kTumbling: return "tumbling";
    case WindowType::kSliding: return "sliding";
    case WindowType::kSession: return "session";
  }
  return "?";
}

std::string_view AggregateName(Aggregate aggregate) {
  for (const auto& [name, value] : kAggregateNames) {
    if (value == aggregate) return name;
  }
  return "?";
}

std::string_view WindowFieldName(WindowField field) {
  if (field == WindowField::kKey) return "key";
  for (const auto& [name, value] : kWindowFieldNames) {
    if (value == field) return name;
  }
  return "?";
}

int InputSchema::FieldIndex(std::string_view name) const {
  for (size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

std::string FeatureSpec::StateIdentity(const InputSchema& input) const {
  if (is_window_field) return "window:" + std::string(WindowFieldName(window_field));
  std::string identity(AggregateName(aggregate));
  if (field >= 0) {
    const InputField& f = input.fields[static_cast<size_t>(field)];
    identity += "(" + f.name + ":" + std::string(FieldTypeName(f.type)) + ")";
  }
  if (aggregate == Aggregate::kCountDistinct) identity += " exact_limit=" + std::to_string(distinct_exact_limit);
  if (filter) identity += " where " + filter->canonical;
  return identity;
}

std::string FeatureDefinition::CanonicalGroup(const FeatureGroup& group) const {
  std::string out = group.name + ": " + std::string(WindowTypeName(group.window.type));
  switch (group.window.type) {
    case WindowType::kTumbling:
      out += " size_ms=" + std::to_string(group.window.size_ms);
      break;
    case WindowType::kSliding:
      out += " size_ms=" + std::to_string(group.window.size_ms) + " slide_ms=" + std::to_string(group.window.slide_ms);
      break;
    case WindowType::kSession:
      out += " gap_ms=" + std::to_string(group.window.gap_ms);
      break;
  }
  // Placeholders are canonical by construction (names resolved); the
  // template's text is what is written.
  out += " key=\"" + group.key_template + "\" ttl_s=" + std::to_string(group.ttl_seconds);
  return out;
}

std::string FeatureDefinition::CanonicalFeature(const FeatureSpec& feature) const {
  return feature.name + " = " + feature.StateIdentity(input);
}

std::string FeatureDefinition::Summary() const {
  std::string out;
  for (const FeatureGroup& group : groups) {
    if (!out.empty()) out += "; ";
    out += group.name + ": " + WindowText(group.window) + ", " + std::to_string(group.features.size()) +
           (group.features.size() == 1 ? " field" : " fields");
  }
  return out;
}

absl::StatusOr<FeatureDefinition> ParseFeatureDefinition(std::string_view yaml_text, std::string_view origin) {
  return DefinitionParser(yaml_text, origin).Parse();
}

absl::StatusOr<FeatureDefinition> LoadFeatureDefinitionFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(path + ": cannot open the feature definition file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(path + ": cannot read the feature definition file");
  return ParseFeatureDefinition(text.str(), path);
}

absl::Status CheckRestoreCompatible(const FeatureDefinition& saved, const FeatureDefinition& current,
                                    std::vector<std::string>* added) {
  const auto find_group = [](const FeatureDefinition& def, const std::string& name) -> const FeatureGroup* {
    for (const FeatureGroup& g : def.groups) {
      if (g.name == name) return &g;
    }
    return nullptr;
  };
  const auto find_feature = [](const FeatureGroup& group, const std::string& name) -> const FeatureSpec* {
    for (const FeatureSpec& f : group.features) {
      if (f.name == name) return &f;
    }
    return nullptr;
  };
  std::vector<std::string> new_items;
  for (const FeatureGroup& was : saved.groups) {
    const FeatureGroup* now = find_group(current, was.name);
    if (now == nullptr) {
      return absl::FailedPreconditionError("group '" + was.name +
                                           "' was removed; the savepoint holds its state (a restore may only add "
                                           "groups and features)");
    }
    const auto changed = [&](std::string_view what, const std::string& before, const std::string& after) {
      return absl::FailedPreconditionError("group '" + was.name + "' changed its " + std::string(what) + ": was " +
                                           before + ", now " + after);
    };
    if (WindowText(was.window) != WindowText(now->window) || was.window.type != now->window.type) {
      return changed("window", WindowText(was.window), WindowText(now->window));
    }
    if (was.key_template != now->key_template) {
      return changed("key", "\"" + was.key_template + "\"", "\"" + now->key_template + "\"");
    }
    if (was.ttl_seconds != now->ttl_seconds) {
      return changed("ttl", FormatDuration(was.ttl_seconds * 1000), FormatDuration(now->ttl_seconds * 1000));
    }
    if (saved.CanonicalGroup(was) != current.CanonicalGroup(*now)) {  // anything the checks above missed
      return changed("definition", saved.CanonicalGroup(was), current.CanonicalGroup(*now));
    }
    for (const FeatureSpec& feature : was.features) {
      const FeatureSpec* now_feature = find_feature(*now, feature.name);
      if (now_feature == nullptr) {
        return absl::FailedPreconditionError("group '" + was.name + "', feature '" + feature.name +
                                             "' was removed; the savepoint holds its state (a restore may only add "
                                             "groups and features)");
      }
      const std::string before = saved.CanonicalFeature(feature);
      const std::string after = current.CanonicalFeature(*now_feature);
      if (before != after) {
        return absl::FailedPreconditionError("group '" + was.name + "', feature '" + feature.name +
                                             "' changed: was " + before + ", now " + after);
      }
    }
    for (const FeatureSpec& feature : now->features) {
      if (find_feature(was, feature.name) == nullptr) new_items.push_back(was.name + "." + feature.name);
    }
  }
  for (const FeatureGroup& group : current.groups) {
    if (find_group(saved, group.name) == nullptr) new_items.push_back(group.name);
  }
  if (added != nullptr) *added = std::move(new_items);
  return absl::OkStatus();
}

// DefaultFeaturesYaml() is defined in the CMake-generated
// default_features_yaml.cc (conf/features.yaml embedded at build time).

const FeatureDefinition& DefaultFeatureDefinition() {
  static const FeatureDefinition definition = [] {
    absl::StatusOr<FeatureDefinition> parsed = ParseFeatureDefinition(DefaultFeaturesYaml(), kDefaultOrigin);
    if (!parsed.ok()) {
      // The built-in file is checked by a unit test; failing here is a build bug.
      std::fprintf(stderr, "slipstream: the built-in feature definition is invalid: %s\n",
                   std::string(parsed.status().message()).c_str());
      std::abort();
    }
    return std::move(*parsed);
  }();
  return definition;
}

std::string NearestName(std::string_view word, const std::vector<std::string>& candidates) {
  // Levenshtein distance, one row at a time.
  const auto distance = [](std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        const size_t above = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
        diagonal = above;
      }
    }
    return row[b.size()];
  };
  std::string best;
  size_t best_distance = SIZE_MAX;
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  for (const std::string& candidate : candidates) {
    const size_t d = distance(word, candidate);
    if (d <= limit && d < best_distance && d < std::max(word.size(), candidate.size())) {
      best = candidate;
      best_distance = d;
    }
  }
  return best;
}

}  // namespace slipstream
