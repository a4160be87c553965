// The job's feature definition as GetJob, the REST job details and the web UI
// show it (v1::FeatureDefinitionInfo).
#pragma once

#include <string>

#include "common/features/feature_definition.h"
#include "proto/slipstream.pb.h"

namespace slipstream {

// "sliding 1 h / 10 min", "tumbling 5 min", "session gap 10 min".
std::string DescribeWindow(const WindowSpec& window);
// "count where event_type == 'view'", "avg(price)", "window_end".
std::string DescribeFeature(const FeatureSpec& feature, const InputSchema& input);
void FillFeatureInfo(const FeatureDefinition& definition, v1::FeatureDefinitionInfo* out);

}  // namespace slipstream
