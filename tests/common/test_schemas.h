// InputSchemas built by hand for tests, so tests of the parser and the
// shuffle codec do not depend on the YAML parser (ParseFeatureDefinition).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/features/feature_definition.h"

namespace slipstream::testing_schemas {

inline InputField Field(std::string name, FieldType type, bool required = true) {
  InputField f;
  f.name = std::move(name);
  f.type = type;
  f.required = required;
  return f;
}

// Mirrors conf/features.yaml's input section.
inline InputSchema DefaultTestSchema() {
  InputSchema schema;
  schema.fields.push_back(Field("event_time", FieldType::kString));
  InputField type = Field("event_type", FieldType::kString);
  type.allowed = {"view", "cart", "purchase"};
  schema.fields.push_back(type);
  schema.fields.push_back(Field("user_id", FieldType::kString));
  InputField price = Field("price", FieldType::kDouble);
  price.min = 0.0;
  schema.fields.push_back(price);
  schema.time_field = 0;
  schema.key_field = 2;
  schema.time_format = TimeFormat::kIso8601;
  return schema;
}

// Indexes of DefaultTestSchema's fields.
inline constexpr int kEventTime = 0;
inline constexpr int kEventType = 1;
inline constexpr int kUserId = 2;
inline constexpr int kPrice = 3;

}  // namespace slipstream::testing_schemas
