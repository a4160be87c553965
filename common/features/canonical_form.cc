// What identifies a feature definition: its canonical form (one line per
// input field, group and feature; comments, layout and the spelling of
// durations do not matter, so a reformatted file keeps its fingerprint), the
// SHA-256 fingerprint of it, each feature's state identity, the restore
// compatibility rule (CheckRestoreCompatible) and the human Summary().
#include "common/features/definition_parsing.h"

#include <openssl/evp.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace slipstream {

namespace {

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

}  // namespace

namespace features_internal {

std::string Fingerprint(const FeatureDefinition& def) {
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

}  // namespace features_internal

using features_internal::FormatDuration;
using features_internal::WindowText;

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

}  // namespace slipstream
