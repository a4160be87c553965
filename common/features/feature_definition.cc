// The entry points of feature definitions: ParseFeatureDefinition (the
// parser's top level: the `input` and `groups` sections, then the
// fingerprint), LoadFeatureDefinitionFile and the built-in default.
//
// Validation stops at the first error and reports it with the file position
// yaml-cpp recorded for the offending node, so an operator can jump to it.
// Where the rest lives: see definition_parsing.h.
#include "common/features/feature_definition.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#include "common/features/definition_parsing.h"

namespace slipstream {

namespace {

constexpr std::string_view kDefaultOrigin = "conf/features.yaml (built in)";

}  // namespace

namespace features_internal {

absl::StatusOr<FeatureDefinition> DefinitionParser::Parse() {
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

}  // namespace features_internal

using features_internal::DefinitionParser;

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

}  // namespace slipstream
