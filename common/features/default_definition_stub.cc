// TEMPORARY (issue 15, feat15-parse): a stand-in for DefaultFeatureDefinition()
// so this branch links before the YAML parser (ParseFeatureDefinition,
// DefaultFeatureDefinition) lands from its own branch. It hand-builds only the
// input schema of conf/features.yaml; no groups, text or fingerprint.
// The integrator deletes this file (common/CMakeLists.txt picks it up only if
// it exists) once the real implementation is merged.
#include "common/features/feature_definition.h"

namespace slipstream {

const FeatureDefinition& DefaultFeatureDefinition() {
  static const FeatureDefinition* const kDefinition = [] {
    auto* definition = new FeatureDefinition;
    InputSchema& input = definition->input;
    InputField event_time;
    event_time.name = "event_time";
    InputField event_type;
    event_type.name = "event_type";
    event_type.allowed = {"view", "cart", "purchase"};
    InputField user_id;
    user_id.name = "user_id";
    InputField price;
    price.name = "price";
    price.type = FieldType::kDouble;
    price.min = 0.0;
    input.fields = {event_time, event_type, user_id, price};
    input.time_field = 0;
    input.key_field = 2;
    input.time_format = TimeFormat::kIso8601;
    definition->origin = "default_definition_stub.cc (TEMPORARY)";
    return definition;
  }();
  return *kDefinition;
}

}  // namespace slipstream
