#include "common/features/feature_definition.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipstream {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A small valid definition; tests edit one spot of it. Line numbers in the
// expected messages refer to this text.
constexpr std::string_view kBase = R"(input:
  key: user_id
  event_time: {field: event_time, format: iso8601}
  fields:
    - {name: event_time, type: string}
    - {name: event_type, type: string, allowed: [view, cart, purchase]}
    - {name: user_id, type: string}
    - {name: price, type: double, min: 0}
groups:
  - name: user_features
    window: {type: sliding, size: 1 h, slide: 10 min}
    key: "user_features:{user_id}"
    ttl: 2 h
    features:
      - user_id
      - {name: view_count_1h, aggregate: count, filter: "event_type == 'view'"}
      - window_end
)";

// kBase with `from` replaced by `to` (which must occur exactly once).
std::string Edit(std::string_view from, std::string_view to, std::string text = std::string(kBase)) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  EXPECT_EQ(text.find(from, at + 1), std::string::npos) << from << " occurs twice";
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

std::string ErrorOf(const std::string& text) {
  absl::StatusOr<FeatureDefinition> def = ParseFeatureDefinition(text, "f.yaml");
  EXPECT_FALSE(def.ok()) << text;
  return def.ok() ? "" : std::string(def.status().message());
}

FeatureDefinition Parse(const std::string& text) {
  absl::StatusOr<FeatureDefinition> def = ParseFeatureDefinition(text, "f.yaml");
  EXPECT_TRUE(def.ok()) << def.status();
  return def.ok() ? *def : FeatureDefinition();
}

// ---- the shipped file ----

TEST(FeatureDefinition, DefaultFileParsesAsTheOriginalProject) {
  const FeatureDefinition& def = DefaultFeatureDefinition();
  EXPECT_EQ(def.origin, "conf/features.yaml (built in)");
  EXPECT_EQ(def.text, DefaultFeaturesYaml());
  ASSERT_EQ(def.input.fields.size(), 4u);
  EXPECT_EQ(def.input.fields[0].name, "event_time");
  EXPECT_EQ(def.input.fields[1].name, "event_type");
  EXPECT_EQ(def.input.fields[2].name, "user_id");
  EXPECT_EQ(def.input.fields[3].name, "price");
  EXPECT_EQ(def.input.fields[3].type, FieldType::kDouble);
  EXPECT_EQ(def.input.fields[3].min, 0.0);
  EXPECT_FALSE(def.input.fields[3].max.has_value());
  EXPECT_THAT(def.input.fields[1].allowed, ElementsAre("view", "cart", "purchase"));
  EXPECT_TRUE(def.input.fields[1].required);
  EXPECT_EQ(def.input.key().name, "user_id");
  EXPECT_EQ(def.input.time_field, 0);
  EXPECT_EQ(def.input.time_format, TimeFormat::kIso8601);

  ASSERT_EQ(def.groups.size(), 2u);
  const FeatureGroup& user = def.groups[0];
  EXPECT_EQ(user.name, "user_features");
  EXPECT_EQ(user.window.type, WindowType::kSliding);
  EXPECT_EQ(user.window.size_ms, 3'600'000);
  EXPECT_EQ(user.window.slide_ms, 600'000);
  EXPECT_EQ(user.ttl_seconds, 7200);
  EXPECT_EQ(user.key_template, "user_features:{user_id}");
  ASSERT_EQ(user.key_parts.size(), 2u);
  EXPECT_FALSE(user.key_parts[0].is_placeholder);
  EXPECT_EQ(user.key_parts[0].literal, "user_features:");
  EXPECT_TRUE(user.key_parts[1].is_placeholder);
  EXPECT_EQ(user.key_parts[1].field, WindowField::kKey);
  std::vector<std::string> names;
  for (const FeatureSpec& f : user.features) names.push_back(f.name);
  EXPECT_THAT(names, ElementsAre("user_id", "view_count_1h", "cart_count_1h", "purchase_count_1h",
                                 "avg_viewed_price_1h", "window_start", "window_end"));
  EXPECT_TRUE(user.features[0].is_window_field);
  EXPECT_EQ(user.features[0].window_field, WindowField::kKey);
  EXPECT_EQ(user.features[1].aggregate, Aggregate::kCount);
  EXPECT_EQ(user.features[1].field, -1);
  ASSERT_TRUE(user.features[1].filter.has_value());
  EXPECT_EQ(user.features[1].filter->text, "event_type == 'view'");
  EXPECT_EQ(user.features[4].aggregate, Aggregate::kAvg);
  EXPECT_EQ(user.features[4].field, 3);
  EXPECT_EQ(user.features[6].window_field, WindowField::kWindowEnd);

  const FeatureGroup& session = def.groups[1];
  EXPECT_EQ(session.name, "session_features");
  EXPECT_EQ(session.window.type, WindowType::kSession);
  EXPECT_EQ(session.window.gap_ms, 600'000);
  EXPECT_EQ(session.ttl_seconds, 3600);
  ASSERT_EQ(session.key_parts.size(), 4u);
  EXPECT_EQ(session.key_parts[0].literal, "session_features:");
  EXPECT_EQ(session.key_parts[1].field, WindowField::kKey);
  EXPECT_EQ(session.key_parts[2].literal, ":");
  EXPECT_EQ(session.key_parts[3].field, WindowField::kSessionStart);
  names.clear();
  for (const FeatureSpec& f : session.features) names.push_back(f.name);
  EXPECT_THAT(names, ElementsAre("user_id", "event_count", "duration_seconds", "session_start", "session_end"));
  EXPECT_EQ(session.features[2].window_field, WindowField::kDurationSeconds);

  EXPECT_EQ(def.Summary(), "user_features: sliding 1 h / 10 min, 7 fields; session_features: session gap 10 min, 5 fields");
  EXPECT_EQ(def.fingerprint.size(), 64u);
  EXPECT_EQ(&DefaultFeatureDefinition(), &def);  // parsed once
}

TEST(FeatureDefinition, LoadsAFile) {
  const std::string path = ::testing::TempDir() + "/feature_definition_test.yaml";
  { std::ofstream(path) << kBase; }
  absl::StatusOr<FeatureDefinition> def = LoadFeatureDefinitionFile(path);
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(def->origin, path);
  EXPECT_EQ(def->text, kBase);
  std::filesystem::remove(path);
  EXPECT_THAT(LoadFeatureDefinitionFile(path).status().message(), HasSubstr("cannot open"));
}

TEST(FeatureDefinition, NamesAndCanonicalForms) {
  EXPECT_EQ(FieldTypeName(FieldType::kBoolean), "boolean");
  EXPECT_EQ(TimeFormatName(TimeFormat::kEpochSeconds), "epoch_seconds");
  EXPECT_EQ(WindowTypeName(WindowType::kTumbling), "tumbling");
  EXPECT_EQ(AggregateName(Aggregate::kCountDistinct), "count_distinct");
  EXPECT_EQ(WindowFieldName(WindowField::kDurationSeconds), "duration_seconds");
  EXPECT_EQ(WindowFieldName(WindowField::kKey), "key");
  const FeatureDefinition& def = DefaultFeatureDefinition();
  EXPECT_EQ(def.input.FieldIndex("price"), 3);
  EXPECT_EQ(def.input.FieldIndex("nope"), -1);
  const FeatureGroup& user = def.groups[0];
  EXPECT_EQ(def.CanonicalGroup(user),
            "user_features: sliding size_ms=3600000 slide_ms=600000 key=\"user_features:{user_id}\" ttl_s=7200");
  EXPECT_EQ(def.CanonicalGroup(def.groups[1]),
            "session_features: session gap_ms=600000 key=\"session_features:{user_id}:{session_start}\" ttl_s=3600");
  EXPECT_EQ(user.features[4].StateIdentity(def.input), "avg(price:double) where event_type == 'view'");
  EXPECT_EQ(def.CanonicalFeature(user.features[1]), "view_count_1h = count where event_type == 'view'");
  EXPECT_EQ(user.features[0].StateIdentity(def.input), "window:key");
  EXPECT_EQ(user.features[6].StateIdentity(def.input), "window:window_end");
}

TEST(FeatureDefinition, AllFeatureForms) {
  const FeatureDefinition def = Parse(Edit("      - window_end\n", R"(      - window_end
      - {name: total, aggregate: sum, field: price}
      - {name: cheapest, aggregate: min, field: price}
      - {name: last_type, aggregate: last, field: event_type}
      - {name: first_type, aggregate: first, field: event_type}
      - {name: highest_type, aggregate: max, field: event_type}
      - {name: types, aggregate: count_distinct, field: event_type, exact_limit: 50}
      - {name: end, value: window_end}
      - {name: who, value: user_id}
      - event_count
      - window_start
)"));
  const std::vector<FeatureSpec>& f = def.groups[0].features;
  ASSERT_EQ(f.size(), 13u);
  EXPECT_EQ(f[3].aggregate, Aggregate::kSum);
  EXPECT_EQ(f[8].aggregate, Aggregate::kCountDistinct);
  EXPECT_EQ(f[8].distinct_exact_limit, 50);
  EXPECT_EQ(f[8].StateIdentity(def.input), "count_distinct(event_type:string) exact_limit=50");
  EXPECT_TRUE(f[9].is_window_field);
  EXPECT_EQ(f[9].window_field, WindowField::kWindowEnd);
  EXPECT_EQ(f[10].window_field, WindowField::kKey);
  EXPECT_EQ(f[11].window_field, WindowField::kEventCount);
}

TEST(FeatureDefinition, WindowsAndTimeFormats) {
  FeatureDefinition def = Parse(Edit("{type: sliding, size: 1 h, slide: 10 min}", "{type: tumbling, size: 5 min}"));
  EXPECT_EQ(def.groups[0].window.type, WindowType::kTumbling);
  EXPECT_EQ(def.groups[0].window.size_ms, 300'000);
  EXPECT_EQ(def.groups[0].window.slide_ms, 300'000);
  EXPECT_EQ(def.Summary(), "user_features: tumbling 5 min, 3 fields");
  // Flink allows a slide that does not divide the size.
  def = Parse(Edit("slide: 10 min", "slide: 7 min"));
  EXPECT_EQ(def.groups[0].window.slide_ms, 420'000);
  def = Parse(Edit("- {name: event_time, type: string}", "- {name: event_time, type: long}",
                   Edit("format: iso8601", "format: epoch_millis")));
  EXPECT_EQ(def.input.time_format, TimeFormat::kEpochMillis);
  def = Parse(Edit("{field: event_time, format: iso8601}", "{field: event_time}"));
  EXPECT_EQ(def.input.time_format, TimeFormat::kIso8601);
  def = Parse(Edit("- {name: user_id, type: string}", "- {name: user_id, type: long}"));
  EXPECT_EQ(def.input.key().type, FieldType::kLong);
}

// ---- validation: whole messages ----

TEST(FeatureDefinitionErrors, FilterErrorPointsIntoTheQuotedScalar) {
  // Line 16, the filter's text starts at column 58 (after the quote).
  EXPECT_EQ(ErrorOf(Edit("\"event_type == 'view'\"", "\"evnt_type == 'view'\"")),
            "f.yaml:16:58: groups[0].features[1].filter: unknown field 'evnt_type'; did you mean 'event_type'?");
  EXPECT_EQ(ErrorOf(Edit("\"event_type == 'view'\"", "\"event_type == 5\"")),
            "f.yaml:16:72: groups[0].features[1].filter: field 'event_type' is string; compare it with text in "
            "quotes, not a number");
  // A plain (unquoted) scalar has no quote to skip.
  EXPECT_EQ(ErrorOf(Edit("filter: \"event_type == 'view'\"}", "filter: price > x}")),
            "f.yaml:16:65: groups[0].features[1].filter: expected a value after '>', got 'x' (text goes in quotes: 'x')");
}

TEST(FeatureDefinitionErrors, UnknownKeysWithDidYouMean) {
  EXPECT_EQ(ErrorOf(Edit("window: {type: sliding, size: 1 h, slide: 10 min}",
                         "window: {type: sliding, size: 1 h, slid: 10 min}")),
            "f.yaml:11:40: groups[0].window: unknown key 'slid'; did you mean 'slide'?");
  EXPECT_EQ(ErrorOf(Edit("    ttl: 2 h\n", "    tll: 2 h\n")),
            "f.yaml:13:5: groups[0]: unknown key 'tll'; did you mean 'ttl'?");
  EXPECT_EQ(ErrorOf(Edit("groups:", "grups:")), "f.yaml:9:1: unknown key 'grups'; did you mean 'groups'?");
  EXPECT_THAT(ErrorOf(Edit("{name: price, type: double, min: 0}", "{name: price, type: double, minimum: 0}")),
              HasSubstr("f.yaml:8:35: input.fields[3]: unknown key 'minimum' (one of name, type, required, allowed, min, max, allow_empty)"));
  EXPECT_THAT(ErrorOf(Edit("aggregate: count,", "agregate: count,")),
              HasSubstr("f.yaml:16:31: groups[0].features[1]: unknown key 'agregate'; did you mean 'aggregate'?"));
  EXPECT_THAT(ErrorOf(Edit("{field: event_time, format: iso8601}", "{field: event_time, fromat: iso8601}")),
              HasSubstr("input.event_time: unknown key 'fromat'; did you mean 'format'?"));
  EXPECT_THAT(ErrorOf(Edit("  key: user_id\n", "  key: user_id\n  colour: red\n")),
              HasSubstr("f.yaml:3:3: input: unknown key 'colour' (one of key, event_time, fields)"));
  EXPECT_THAT(ErrorOf(Edit("    ttl: 2 h\n", "    ttl: 2 h\n    ttl: 3 h\n")), HasSubstr("key 'ttl' appears twice"));
}

TEST(FeatureDefinitionErrors, WriteGuardNeedsTheOrderField) {
  EXPECT_EQ(ErrorOf(Edit("      - window_end\n", "      - window_start\n")),
            "f.yaml:15:7: groups[0].features: a sliding group must include window_end: the write guard orders a "
            "key's writes by it");
  const std::string session = Edit("{type: sliding, size: 1 h, slide: 10 min}", "{type: session, gap: 10 min}");
  EXPECT_THAT(ErrorOf(session), HasSubstr("groups[0].features: a session group must include session_end: the write "
                                          "guard orders a key's writes by it"));
  EXPECT_TRUE(ParseFeatureDefinition(Edit("- window_end", "- session_end", session), "f.yaml").ok());
}

TEST(FeatureDefinitionErrors, KeyTemplatePlaceholders) {
  EXPECT_EQ(ErrorOf(Edit("\"user_features:{user_id}\"", "\"user_features:{user_id}:{windw_start}\"")),
            "f.yaml:12:35: groups[0].key: unknown placeholder {windw_start}; did you mean {window_start}?");
  EXPECT_THAT(ErrorOf(Edit("\"user_features:{user_id}\"", "\"user_features:{user_id}:{session_start}\"")),
              HasSubstr("unknown placeholder {session_start} (a sliding group's key can use {user_id}, "
                        "{window_start}, {window_end})"));
  EXPECT_THAT(ErrorOf(Edit("\"user_features:{user_id}\"", "\"user_features\"")),
              HasSubstr("groups[0].key: the key must contain {user_id}"));
  EXPECT_THAT(ErrorOf(Edit("\"user_features:{user_id}\"", "\"user_features:{user_id\"")),
              HasSubstr("f.yaml:12:25: groups[0].key: '{' without '}'"));
  const FeatureDefinition def =
      Parse(Edit("\"user_features:{user_id}\"", "\"u:{user_id}:{window_start}-{window_end}\""));
  ASSERT_EQ(def.groups[0].key_parts.size(), 6u);
  EXPECT_EQ(def.groups[0].key_parts[3].field, WindowField::kWindowStart);
  EXPECT_EQ(def.groups[0].key_parts[4].literal, "-");
  EXPECT_EQ(def.groups[0].key_parts[5].field, WindowField::kWindowEnd);
}

// ---- validation: messages by substring ----

TEST(FeatureDefinitionErrors, MissingKeys) {
  EXPECT_THAT(ErrorOf(Edit("    ttl: 2 h\n", "")), HasSubstr("f.yaml:10:5: groups[0]: missing 'ttl'"));
  EXPECT_THAT(ErrorOf(Edit("  key: user_id\n", "")), HasSubstr("input: missing 'key'"));
  EXPECT_THAT(ErrorOf(Edit("aggregate: count, ", "")),
              HasSubstr("groups[0].features[1]: missing 'aggregate' (or 'value' for a window field)"));
  EXPECT_THAT(ErrorOf(Edit("{name: view_count_1h, ", "{")), HasSubstr("groups[0].features[1]: missing 'name'"));
  EXPECT_THAT(ErrorOf(Edit(", size: 1 h", "")), HasSubstr("groups[0].window: a sliding window needs 'size'"));
  EXPECT_THAT(ErrorOf("# nothing\n"), HasSubstr("f.yaml:1:1: the file is empty"));
  EXPECT_THAT(ErrorOf("input: [\n"), StartsWith("f.yaml:"));  // a YAML syntax error, with its position
}

TEST(FeatureDefinitionErrors, WrongTypes) {
  EXPECT_THAT(ErrorOf(Edit("ttl: 2 h", "ttl: [2 h]")), HasSubstr("f.yaml:13:10: groups[0].ttl: expected a duration"));
  EXPECT_THAT(ErrorOf(Edit("    features:\n", "    features: 3\n", Edit("      - user_id\n      - {name: view_count_1h, aggregate: count, filter: \"event_type == 'view'\"}\n      - window_end\n", ""))),
              HasSubstr("groups[0].features: expected a list of features, got '3'"));
  EXPECT_THAT(ErrorOf(Edit("type: double", "type: float")),
              HasSubstr("input.fields[3].type: unknown type 'float' (one of string, long, double, boolean)"));
  EXPECT_THAT(ErrorOf(Edit("type: double", "type: dobule")), HasSubstr("did you mean 'double'?"));
  EXPECT_THAT(ErrorOf(Edit("type: sliding", "type: slidng")),
              HasSubstr("groups[0].window.type: unknown window type 'slidng'; did you mean 'sliding'?"));
  EXPECT_THAT(ErrorOf(Edit("aggregate: count", "aggregate: cnt")), HasSubstr("did you mean 'count'?"));
  EXPECT_THAT(ErrorOf(Edit("format: iso8601", "format: iso")), HasSubstr("unknown time format 'iso'"));
  EXPECT_THAT(ErrorOf(Edit("min: 0", "min: zero")), HasSubstr("input.fields[3].min: expected a number, got 'zero'"));
  EXPECT_THAT(ErrorOf(Edit("{name: event_time, type: string}", "{name: event_time, type: string, required: maybe}")),
              HasSubstr("expected true or false, got 'maybe'"));
  EXPECT_THAT(ErrorOf(Edit("min: 0", "allowed: [a]")), HasSubstr("only string fields take allowed"));
  EXPECT_THAT(ErrorOf(Edit("allowed: [view, cart, purchase]", "min: 1")), HasSubstr("only long and double fields take min"));
  EXPECT_THAT(ErrorOf(Edit("min: 0", "min: 5, max: 1")), HasSubstr("input.fields[3].max: max is below min"));
}

TEST(FeatureDefinitionErrors, DuplicateNames) {
  EXPECT_THAT(ErrorOf(Edit("{name: price, type: double", "{name: user_id, type: double")),
              HasSubstr("f.yaml:8:14: input.fields[3].name: duplicate field 'user_id' (first at line 7)"));
  EXPECT_THAT(ErrorOf(Edit("      - window_end\n", "      - window_end\n      - {name: window_end, aggregate: count}\n")),
              HasSubstr("f.yaml:18:16: groups[0].features[3].name: duplicate feature 'window_end' (first at line 17): "
                        "a group's features are the fields of one Redis hash"));
  EXPECT_THAT(ErrorOf(Edit("      - window_end\n", "      - window_end\n      - user_id\n")),
              HasSubstr("groups[0].features[3]: duplicate feature 'user_id'"));
  std::string twice(kBase);
  twice += std::string(kBase.substr(kBase.find("  - name: user_features")));
  EXPECT_THAT(ErrorOf(twice), HasSubstr("f.yaml:18:11: groups[1].name: duplicate group 'user_features' (first at line 10)"));
}

TEST(FeatureDefinitionErrors, KeyAndTimeFields) {
  EXPECT_THAT(ErrorOf(Edit("key: user_id", "key: userid")),
              HasSubstr("f.yaml:2:8: input.key: unknown field 'userid'; did you mean 'user_id'?"));
  EXPECT_THAT(ErrorOf(Edit("key: user_id", "key: price",
                           Edit("\"user_features:{user_id}\"", "\"user_features:{price}\"",
                                Edit("      - user_id\n", "")))),
              HasSubstr("input.key: the key field 'price' is double; it must be string or long"));
  EXPECT_THAT(ErrorOf(Edit("{name: user_id, type: string}", "{name: user_id, type: string, required: false}")),
              HasSubstr("input.key: the key field 'user_id' must be required"));
  EXPECT_THAT(ErrorOf(Edit("field: event_time,", "field: event_tim,")),
              HasSubstr("f.yaml:3:23: input.event_time.field: unknown field 'event_tim'; did you mean 'event_time'?"));
  EXPECT_THAT(ErrorOf(Edit("format: iso8601", "format: epoch_seconds")),
              HasSubstr("input.event_time.field: the time field 'event_time' is string; format epoch_seconds needs a "
                        "long field"));
  EXPECT_THAT(ErrorOf(Edit("{name: event_time, type: string}", "{name: event_time, type: long}")),
              HasSubstr("format iso8601 needs a string field"));
}

TEST(FeatureDefinitionErrors, Windows) {
  EXPECT_THAT(ErrorOf(Edit("slide: 10 min", "slide: 2 h")),
              HasSubstr("f.yaml:11:47: groups[0].window.slide: the slide (2 h) must not exceed the size (1 h)"));
  EXPECT_THAT(ErrorOf(Edit("size: 1 h", "size: 0 s")), HasSubstr("groups[0].window.size: must be positive"));
  EXPECT_THAT(ErrorOf(Edit("size: 1 h", "size: 1 hour and a bit")),
              HasSubstr("groups[0].window.size: \"1 hour and a bit\" is not a duration"));
  EXPECT_THAT(ErrorOf(Edit("{type: sliding, size: 1 h, slide: 10 min}", "{type: session, gap: 1 min, size: 1 h}")),
              HasSubstr("groups[0].window.size: a session window takes no size (only gap)"));
  EXPECT_THAT(ErrorOf(Edit("{type: sliding, size: 1 h, slide: 10 min}", "{type: session}")),
              HasSubstr("groups[0].window: a session window needs 'gap'"));
  EXPECT_THAT(ErrorOf(Edit("type: sliding", "type: tumbling")),
              HasSubstr("groups[0].window.slide: a tumbling window takes no slide (only size)"));
  EXPECT_THAT(ErrorOf(Edit("{type: sliding, size: 1 h, slide: 10 min}", "{type: sliding, size: 1 h, gap: 1 min}")),
              HasSubstr("groups[0].window.gap: a sliding window takes no gap (only size and slide)"));
  EXPECT_THAT(ErrorOf(Edit("ttl: 2 h", "ttl: 0 s")), HasSubstr("groups[0].ttl: must be positive"));
  EXPECT_THAT(ErrorOf(Edit("ttl: 2 h", "ttl: 1500 ms")), HasSubstr("groups[0].ttl: must be whole seconds"));
}

TEST(FeatureDefinitionErrors, AggregateFields) {
  const auto with = [](std::string_view feature) {
    return Edit("      - window_end\n", "      - window_end\n      - " + std::string(feature) + "\n");
  };
  EXPECT_THAT(ErrorOf(with("{name: s, aggregate: sum, field: event_type}")),
              HasSubstr("f.yaml:18:42: groups[0].features[3].field: sum needs a long or double field; 'event_type' is string"));
  EXPECT_THAT(ErrorOf(with("{name: s, aggregate: avg, field: event_type}")), HasSubstr("avg needs a long or double field"));
  const std::string with_flag = Edit("    - {name: price, type: double, min: 0}\n",
                                     "    - {name: price, type: double, min: 0}\n    - {name: flag, type: boolean}\n");
  EXPECT_THAT(ErrorOf(Edit("      - window_end\n", "      - window_end\n      - {name: m, aggregate: max, field: flag}\n",
                           with_flag)),
              HasSubstr("max needs a long, double or string field; 'flag' is boolean"));
  EXPECT_TRUE(ParseFeatureDefinition(Edit("      - window_end\n",
                                          "      - window_end\n      - {name: m, aggregate: last, field: flag}\n"
                                          "      - {name: d, aggregate: count_distinct, field: flag}\n",
                                          with_flag),
                                     "f.yaml")
                  .ok());
  EXPECT_THAT(ErrorOf(with("{name: c, aggregate: count, field: price}")),
              HasSubstr("groups[0].features[3].field: count takes no field"));
  EXPECT_THAT(ErrorOf(with("{name: s, aggregate: sum}")), HasSubstr("groups[0].features[3]: sum needs 'field'"));
  EXPECT_THAT(ErrorOf(with("{name: s, aggregate: sum, field: prise}")),
              HasSubstr("groups[0].features[3].field: unknown field 'prise'; did you mean 'price'?"));
  EXPECT_THAT(ErrorOf(with("{name: s, aggregate: sum, field: price, exact_limit: 5}")),
              HasSubstr("groups[0].features[3].exact_limit: only count_distinct takes exact_limit"));
  EXPECT_THAT(ErrorOf(with("{name: s, aggregate: count_distinct, field: price, exact_limit: 0}")),
              HasSubstr("expected a whole number from 1 to 1000000, got '0'"));
  EXPECT_THAT(ErrorOf(with("{name: s, value: window_end, filter: \"price > 1\"}")),
              HasSubstr("groups[0].features[3].filter: a window field feature ({name, value}) takes no filter"));
  EXPECT_THAT(ErrorOf(with("{name: s, value: window_end, aggregate: count}")),
              HasSubstr("a feature has either aggregate or value, not both"));
}

TEST(FeatureDefinitionErrors, WindowFields) {
  EXPECT_THAT(ErrorOf(Edit("      - window_end\n", "      - window_end\n      - session_start\n")),
              HasSubstr("f.yaml:18:9: groups[0].features[3]: 'session_start' exists only in session groups (this "
                        "group's window is sliding)"));
  EXPECT_THAT(ErrorOf(Edit("      - window_end\n", "      - window_end\n      - {name: d, value: duration_seconds}\n")),
              HasSubstr("groups[0].features[3].value: 'duration_seconds' exists only in session groups"));
  EXPECT_THAT(ErrorOf(Edit("      - window_end\n", "      - window_ned\n")),
              HasSubstr("groups[0].features[2]: unknown window field 'window_ned'; did you mean 'window_end'?"));
  EXPECT_THAT(ErrorOf(Edit("      - window_end\n", "      - window_end\n      - [a]\n")),
              HasSubstr("groups[0].features[3]: expected a window field name or a map"));
}

// ---- fingerprints and restore compatibility ----

TEST(FeatureDefinition, FingerprintIgnoresLayoutCommentsAndDurationSpelling) {
  const std::string base = Parse(std::string(kBase)).fingerprint;
  const std::string respelled = Edit("size: 1 h, slide: 10 min", "size: 60 min, slide: 600 s",
                                     Edit("ttl: 2 h", "ttl: 7200000"));
  EXPECT_EQ(Parse(respelled).fingerprint, base);
  const std::string block = R"(# a comment
input:
  key: user_id   # the key
  event_time:
    field: event_time
    format: iso8601
  fields:
    - name: event_time
      type: string
    - {name: event_type, type: string, allowed: ["view", 'cart', purchase]}
    - {name: user_id, type: string, required: true}
    - {name: price, type: double, min: 0.0}
groups:
  - name: user_features
    window:
      type: sliding
      size: 1h
      slide: 10min
    key: user_features:{user_id}
    ttl: 2 h
    features:
      - user_id
      - name: view_count_1h
        aggregate: count
        filter: event_type='view'
      - {value: window_end, name: window_end}
)";
  EXPECT_EQ(Parse(block).fingerprint, base);
  EXPECT_NE(Parse(Edit("event_type == 'view'", "event_type == 'cart'")).fingerprint, base);
  EXPECT_NE(Parse(Edit("min: 0", "min: 1")).fingerprint, base);
  EXPECT_NE(Parse(Edit("ttl: 2 h", "ttl: 3 h")).fingerprint, base);
  EXPECT_NE(Parse(Edit("name: view_count_1h", "name: views_1h")).fingerprint, base);
}

TEST(RestoreCompatibility, UnchangedAndAdditionsAreAccepted) {
  const FeatureDefinition saved = Parse(std::string(kBase));
  std::vector<std::string> added = {"stale"};
  EXPECT_TRUE(CheckRestoreCompatible(saved, saved, &added).ok());
  EXPECT_TRUE(added.empty());

  // Input schema changes alone are fine.
  EXPECT_TRUE(CheckRestoreCompatible(saved, Parse(Edit("min: 0", "min: 1")), &added).ok());

  const std::string more = Edit("      - window_end\n", R"(      - window_end
      - {name: purchase_amount_1h, aggregate: sum, field: price, filter: "event_type == 'purchase'"}
  - name: purchase_features
    window: {type: sliding, size: 24 h, slide: 1 h}
    key: "purchase_features:{user_id}"
    ttl: 25 h
    features: [user_id, window_end]
)");
  ASSERT_TRUE(CheckRestoreCompatible(saved, Parse(more), &added).ok());
  EXPECT_THAT(added, ElementsAre("user_features.purchase_amount_1h", "purchase_features"));
}

TEST(RestoreCompatibility, ChangesAndRemovalsAreRefused) {
  const FeatureDefinition saved = Parse(std::string(kBase));
  std::vector<std::string> added;
  absl::Status s = CheckRestoreCompatible(saved, Parse(Edit("event_type == 'view'", "event_type == 'cart'")), &added);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "group 'user_features', feature 'view_count_1h' changed: was view_count_1h = count where event_type == "
            "'view', now view_count_1h = count where event_type == 'cart'");

  s = CheckRestoreCompatible(saved, Parse(Edit("size: 1 h", "size: 2 h")), &added);
  EXPECT_EQ(s.message(), "group 'user_features' changed its window: was sliding 1 h / 10 min, now sliding 2 h / 10 min");
  s = CheckRestoreCompatible(saved, Parse(Edit("ttl: 2 h", "ttl: 3 h")), &added);
  EXPECT_EQ(s.message(), "group 'user_features' changed its ttl: was 2 h, now 3 h");

  s = CheckRestoreCompatible(
      saved, Parse(Edit("      - {name: view_count_1h, aggregate: count, filter: \"event_type == 'view'\"}\n", "")),
      &added);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("group 'user_features', feature 'view_count_1h' was removed"));

  s = CheckRestoreCompatible(saved, Parse(Edit("name: user_features", "name: features")), &added);
  EXPECT_THAT(s.message(), HasSubstr("group 'user_features' was removed"));

  // The aggregated field's type is part of the feature.
  const std::string avg = Edit("      - window_end\n", "      - window_end\n      - {name: a, aggregate: avg, field: price}\n");
  s = CheckRestoreCompatible(Parse(avg), Parse(Edit("type: double", "type: long", avg)), &added);
  EXPECT_THAT(s.message(), HasSubstr("feature 'a' changed: was a = avg(price:double), now a = avg(price:long)"));
}

// The worked example of docs/features.md: a second sliding group appended to
// the shipped file.
TEST(RestoreCompatibility, DocsExampleAddsPurchaseAmount24h) {
  const std::string text = std::string(DefaultFeaturesYaml()) + R"(
  # Per user, every hour: the last 24 hours' purchases.
  - name: purchase_features
    window: {type: sliding, size: 24 h, slide: 1 h}
    key: "purchase_features:{user_id}"
    ttl: 25 h
    features:
      - user_id
      - {name: purchase_amount_24h, aggregate: sum, field: price, filter: "event_type == 'purchase'"}
      - window_end
)";
  const FeatureDefinition def = Parse(text);
  EXPECT_EQ(def.Summary(),
            "user_features: sliding 1 h / 10 min, 7 fields; session_features: session gap 10 min, 5 fields; "
            "purchase_features: sliding 1 d / 1 h, 3 fields");
  EXPECT_EQ(def.groups[2].ttl_seconds, 90000);
  EXPECT_EQ(def.groups[2].features[1].StateIdentity(def.input), "sum(price:double) where event_type == 'purchase'");
  std::vector<std::string> added;
  ASSERT_TRUE(CheckRestoreCompatible(DefaultFeatureDefinition(), def, &added).ok());
  EXPECT_THAT(added, ElementsAre("purchase_features"));
  EXPECT_NE(def.fingerprint, DefaultFeatureDefinition().fingerprint);
}

TEST(NearestName, EditDistance) {
  const std::vector<std::string> names = {"event_type", "event_time", "user_id", "price"};
  EXPECT_EQ(NearestName("evnt_type", names), "event_type");
  EXPECT_EQ(NearestName("prise", names), "price");
  EXPECT_EQ(NearestName("userid", names), "user_id");
  EXPECT_EQ(NearestName("colour", names), "");
  EXPECT_EQ(NearestName("x", {"y"}), "");  // replacing everything is no hint
}

}  // namespace
}  // namespace slipstream
