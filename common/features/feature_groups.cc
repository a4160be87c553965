// The `groups` section of a feature definition: each group's name, window
// (tumbling, sliding, session), Redis key template, TTL and features (window
// fields, and aggregates with their field, exact_limit and filter); and the
// names of window types, aggregates and window fields.
#include "common/features/definition_parsing.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "common/features/filter.h"

namespace slipstream {

namespace features_internal {

absl::Status DefinitionParser::ParseGroups(const YAML::Node& node, const std::string& path, const InputSchema& input,
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

absl::Status DefinitionParser::ParseGroup(const YAML::Node& node, const std::string& path, const InputSchema& input,
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

absl::Status DefinitionParser::ParseWindow(const YAML::Node& node, const std::string& path, WindowSpec* window) {
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
    if (!Optional(node, key, &value)) {
      return Error(node.Mark(), path, "a " + type_name + " window needs " + Quoted(key));
    }
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

std::vector<std::string> DefinitionParser::PlaceholderNames(const InputSchema& input, WindowType type) {
  std::vector<std::string> names = {input.key().name, "window_start", "window_end"};
  if (type == WindowType::kSession) {
    names.emplace_back("session_start");
    names.emplace_back("session_end");
  }
  return names;
}

absl::Status DefinitionParser::ParseKeyTemplate(const YAML::Node& node, const std::string& path,
                                                const InputSchema& input, FeatureGroup* group) {
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

absl::Status DefinitionParser::ParseFeatures(const YAML::Node& node, const std::string& path, const InputSchema& input,
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

absl::Status DefinitionParser::WindowFieldByName(const YAML::Node& node, const std::string& path,
                                                 const InputSchema& input, WindowType type, WindowField* out) {
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

absl::Status DefinitionParser::ParseFeature(const YAML::Node& node, const std::string& path, const InputSchema& input,
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

  if (absl::Status s = ParseAggregateField(node, path, input, feature); !s.ok()) return s;
  if (absl::Status s = ParseExactLimit(node, path, feature); !s.ok()) return s;
  return ParseFeatureFilter(node, path, input, feature);
}

absl::Status DefinitionParser::ParseAggregateField(const YAML::Node& node, const std::string& path,
                                                   const InputSchema& input, FeatureSpec* feature) {
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
  return absl::OkStatus();
}

absl::Status DefinitionParser::ParseExactLimit(const YAML::Node& node, const std::string& path,
                                               FeatureSpec* feature) {
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
  return absl::OkStatus();
}

absl::Status DefinitionParser::ParseFeatureFilter(const YAML::Node& node, const std::string& path,
                                                  const InputSchema& input, FeatureSpec* feature) {
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

}  // namespace features_internal

using features_internal::kAggregateNames;
using features_internal::kWindowFieldNames;

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

}  // namespace slipstream
