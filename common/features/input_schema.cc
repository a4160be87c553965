// The `input` section of a feature definition: the record's fields and
// their validation (required, allowed values, ranges, allow_empty), the key
// field and the event time (field and format); and the names of field types
// and time formats.
#include "common/features/definition_parsing.h"

#include <algorithm>
#include <array>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace slipstream {

namespace features_internal {

absl::Status DefinitionParser::ParseInput(const YAML::Node& node, const std::string& path, InputSchema* input) {
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

absl::Status DefinitionParser::ParseField(const YAML::Node& node, const std::string& path, InputField* field) {
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

}  // namespace features_internal

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

int InputSchema::FieldIndex(std::string_view name) const {
  for (size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace slipstream
