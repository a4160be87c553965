#include "coordinator/feature_info.h"

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "common/config.h"

namespace slipstream {

std::string DescribeWindow(const WindowSpec& window) {
  switch (window.type) {
    case WindowType::kTumbling:
      return absl::StrCat("tumbling ", FormatDurationMs(window.size_ms));
    case WindowType::kSliding:
      return absl::StrCat("sliding ", FormatDurationMs(window.size_ms), " / ", FormatDurationMs(window.slide_ms));
    case WindowType::kSession:
      return absl::StrCat("session gap ", FormatDurationMs(window.gap_ms));
  }
  return "";
}

std::string DescribeFeature(const FeatureSpec& feature, const InputSchema& input) {
  if (feature.is_window_field) {
    return feature.window_field == WindowField::kKey ? input.key().name
                                                     : std::string(WindowFieldName(feature.window_field));
  }
  std::string text(AggregateName(feature.aggregate));
  if (feature.field >= 0) absl::StrAppend(&text, "(", input.fields[static_cast<size_t>(feature.field)].name, ")");
  if (feature.filter) absl::StrAppend(&text, " where ", feature.filter->canonical);
  return text;
}

void FillFeatureInfo(const FeatureDefinition& definition, v1::FeatureDefinitionInfo* out) {
  out->set_origin(definition.origin);
  out->set_fingerprint(definition.fingerprint);
  for (const FeatureGroup& group : definition.groups) {
    v1::FeatureGroupInfo* g = out->add_groups();
    g->set_name(group.name);
    g->set_window(DescribeWindow(group.window));
    g->set_key_template(group.key_template);
    g->set_ttl_seconds(group.ttl_seconds);
    for (const FeatureSpec& feature : group.features) {
      v1::FeatureInfo* f = g->add_features();
      f->set_name(feature.name);
      f->set_definition(DescribeFeature(feature, definition.input));
    }
  }
}

}  // namespace slipstream
