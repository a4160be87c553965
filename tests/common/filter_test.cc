#include "common/features/filter.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipstream {
namespace {

using ::testing::HasSubstr;

InputField Field(std::string name, FieldType type, bool required = true) {
  InputField field;
  field.name = std::move(name);
  field.type = type;
  field.required = required;
  return field;
}

// A schema with one field of each type, plus an optional string.
InputSchema TestSchema() {
  InputSchema schema;
  schema.fields = {
      Field("event_type", FieldType::kString), Field("user_id", FieldType::kString),
      Field("price", FieldType::kDouble),      Field("quantity", FieldType::kLong),
      Field("premium", FieldType::kBoolean),   Field("country", FieldType::kString, /*required=*/false),
  };
  schema.key_field = 1;
  return schema;
}

struct Values {
  std::string event_type = "view";
  std::string user_id = "u1";
  double price = 10.5;
  int64_t quantity = 3;
  bool premium = false;
  const char* country = nullptr;  // nullptr: absent
};

Event MakeEvent(const Values& v) {
  Event event;
  event.fields.resize(6);
  auto set_string = [&](size_t i, const std::string& s) {
    event.fields[i].present = true;
    event.fields[i].string_value = s;
  };
  set_string(0, v.event_type);
  set_string(1, v.user_id);
  event.fields[2].present = true;
  event.fields[2].double_value = v.price;
  event.fields[3].present = true;
  event.fields[3].long_value = v.quantity;
  event.fields[4].present = true;
  event.fields[4].long_value = v.premium ? 1 : 0;
  if (v.country != nullptr) set_string(5, v.country);
  return event;
}

CompiledFilter Compile(const std::string& text) {
  absl::StatusOr<CompiledFilter> filter = ParseFilter(text, TestSchema());
  EXPECT_TRUE(filter.ok()) << text << ": " << filter.status();
  return filter.ok() ? *filter : CompiledFilter();
}

bool Match(const std::string& text, const Values& values) { return Compile(text).Matches(MakeEvent(values)); }

std::string ErrorOf(const std::string& text) {
  absl::StatusOr<CompiledFilter> filter = ParseFilter(text, TestSchema());
  EXPECT_FALSE(filter.ok()) << text;
  return filter.ok() ? "" : std::string(filter.status().message());
}

TEST(Filter, DefaultMatchesEverything) {
  CompiledFilter filter;
  EXPECT_TRUE(filter.always_true());
  EXPECT_TRUE(filter.Matches(MakeEvent({})));
}

TEST(Filter, StringComparisons) {
  EXPECT_TRUE(Match("event_type == 'view'", {}));
  EXPECT_TRUE(Match("event_type = \"view\"", {}));
  EXPECT_FALSE(Match("event_type == 'cart'", {}));
  EXPECT_TRUE(Match("event_type != 'cart'", {}));
  EXPECT_TRUE(Match("event_type <> 'cart'", {}));
  EXPECT_TRUE(Match("event_type < 'w'", {}));
  EXPECT_TRUE(Match("event_type <= 'view'", {}));
  EXPECT_FALSE(Match("event_type > 'view'", {}));
  EXPECT_TRUE(Match("event_type >= 'view'", {}));
  // Bytes, not locale: 'Z' (0x5a) sorts before 'a'.
  EXPECT_TRUE(Match("event_type > 'Zebra'", {}));
}

TEST(Filter, LongComparisonsAreExact) {
  EXPECT_TRUE(Match("quantity == 3", {}));
  EXPECT_TRUE(Match("quantity != 4", {}));
  EXPECT_TRUE(Match("quantity < 4", {}));
  EXPECT_TRUE(Match("quantity <= 3", {}));
  EXPECT_FALSE(Match("quantity > 3", {}));
  EXPECT_TRUE(Match("quantity >= 3", {}));
  EXPECT_TRUE(Match("quantity > -1", {}));
  // Beyond 2^53 a double comparison would call these equal.
  Values big;
  big.quantity = 9007199254740993;  // 2^53 + 1
  EXPECT_FALSE(Match("quantity == 9007199254740992", big));
  EXPECT_TRUE(Match("quantity > 9007199254740992", big));
  // A fractional literal compares as double; a whole one stays exact.
  EXPECT_TRUE(Match("quantity < 3.5", {}));
  EXPECT_FALSE(Match("quantity == 3.5", {}));
  EXPECT_TRUE(Match("quantity == 3.0", {}));
}

TEST(Filter, DoubleComparisons) {
  EXPECT_TRUE(Match("price == 10.5", {}));
  EXPECT_TRUE(Match("price != 10", {}));
  EXPECT_TRUE(Match("price > 10", {}));
  EXPECT_TRUE(Match("price >= 10.5", {}));
  EXPECT_FALSE(Match("price < 10.5", {}));
  EXPECT_TRUE(Match("price <= 1.05e1", {}));
}

TEST(Filter, Booleans) {
  Values premium;
  premium.premium = true;
  EXPECT_TRUE(Match("premium", premium));
  EXPECT_FALSE(Match("premium", {}));
  EXPECT_TRUE(Match("not premium", {}));
  EXPECT_TRUE(Match("premium == true", premium));
  EXPECT_TRUE(Match("premium != TRUE", {}));
  EXPECT_TRUE(Match("premium == false", {}));
  EXPECT_TRUE(Match("premium in (true)", premium));
}

TEST(Filter, InAndNotIn) {
  EXPECT_TRUE(Match("event_type in ('cart', 'view')", {}));
  EXPECT_FALSE(Match("event_type in ('cart', 'purchase')", {}));
  EXPECT_TRUE(Match("event_type not in ('cart', 'purchase')", {}));
  EXPECT_TRUE(Match("event_type NOT IN ('cart')", {}));
  EXPECT_TRUE(Match("quantity in (1, 2, 3)", {}));
  EXPECT_FALSE(Match("quantity in (1, 2, 3.5)", {}));
  EXPECT_TRUE(Match("price in (10.5, 11)", {}));
  EXPECT_TRUE(Match("price not in (10, 11)", {}));
}

TEST(Filter, PrecedenceNotOverAndOverOr) {
  // and binds tighter than or: true or (false and false).
  EXPECT_TRUE(Match("event_type == 'view' or quantity == 0 and price == 0", {}));
  EXPECT_FALSE(Match("(event_type == 'view' or quantity == 0) and price == 0", {}));
  // not binds tighter than and.
  EXPECT_FALSE(Match("not event_type == 'view' and quantity == 3", {}));
  EXPECT_TRUE(Match("not (event_type == 'cart' and quantity == 3)", {}));
  EXPECT_TRUE(Match("not not event_type == 'view'", {}));
  EXPECT_TRUE(Match("event_type == 'x' or event_type == 'y' or event_type == 'view'", {}));
  EXPECT_FALSE(Match("event_type == 'view' and quantity == 3 and premium", {}));
}

TEST(Filter, MissingOptionalFieldIsUnknownAsInSql) {
  EXPECT_FALSE(Match("country == 'DE'", {}));
  EXPECT_FALSE(Match("country != 'DE'", {}));
  EXPECT_FALSE(Match("country not in ('DE')", {}));
  EXPECT_FALSE(Match("not (country == 'DE')", {}));
  // UNKNOWN or TRUE is TRUE; UNKNOWN and FALSE is FALSE.
  EXPECT_TRUE(Match("country == 'DE' or event_type == 'view'", {}));
  EXPECT_TRUE(Match("not (country == 'DE' and event_type == 'cart')", {}));
  Values german;
  german.country = "DE";
  EXPECT_TRUE(Match("country == 'DE'", german));
  EXPECT_TRUE(Match("not (country != 'DE')", german));
}

TEST(Filter, CanonicalIsEqualForEquivalentSpellings) {
  EXPECT_EQ(Compile("event_type='view'").canonical(), "event_type == 'view'");
  EXPECT_EQ(Compile("  event_type   ==  \"view\" ").canonical(), "event_type == 'view'");
  EXPECT_EQ(Compile("NOT (event_type <> 'a' AND price>=1.50) OR premium").canonical(),
            "not (event_type != 'a' and price >= 1.5) or premium");
  EXPECT_EQ(Compile("(event_type == 'a' or premium) and quantity in (1,2)").canonical(),
            "(event_type == 'a' or premium) and quantity in (1, 2)");
  EXPECT_EQ(Compile("((event_type == 'a'))").canonical(), "event_type == 'a'");
  EXPECT_EQ(Compile("quantity == 3.0").canonical(), "quantity == 3");
  EXPECT_EQ(Compile("event_type == \"it's\"").canonical(), "event_type == \"it's\"");
  EXPECT_NE(Compile("event_type == 'view'").canonical(), Compile("event_type == 'cart'").canonical());
}

TEST(Filter, ErrorsNameTheColumn) {
  EXPECT_EQ(ErrorOf("evnt_type == 'view'"), "column 1: unknown field 'evnt_type'; did you mean 'event_type'?");
  EXPECT_EQ(ErrorOf("price > 'cheap'"), "column 9: field 'price' is double; compare it with a number, not text 'cheap'");
  EXPECT_EQ(ErrorOf("event_type == 5"), "column 15: field 'event_type' is string; compare it with text in quotes, not a number");
  EXPECT_THAT(ErrorOf("premium == 1"), HasSubstr("column 12: field 'premium' is boolean"));
  EXPECT_THAT(ErrorOf("premium > true"), HasSubstr("column 9: field 'premium' is boolean: only ==, != and in apply"));
  EXPECT_THAT(ErrorOf("event_type == view"), HasSubstr("column 15: expected a value after '==', got 'view'"));
  EXPECT_THAT(ErrorOf("event_type == 'view"), HasSubstr("column 15: unterminated text"));
  EXPECT_THAT(ErrorOf("(event_type == 'view'"), HasSubstr("column 22: expected ')'"));
  EXPECT_THAT(ErrorOf("event_type == 'view' premium"), HasSubstr("column 22: expected 'and', 'or'"));
  EXPECT_THAT(ErrorOf("price"), HasSubstr("column 1: field 'price' is double"));
  EXPECT_THAT(ErrorOf(""), HasSubstr("column 1: the filter is empty"));
  EXPECT_THAT(ErrorOf("event_type in 'a'"), HasSubstr("column 15: expected '('"));
  EXPECT_THAT(ErrorOf("quantity == 99999999999999999999"), HasSubstr("column 13: '99999999999999999999' is not a 64-bit integer"));
  EXPECT_THAT(ErrorOf("event_type == 'a' and"), HasSubstr("column 22: expected a field name"));
  EXPECT_THAT(ErrorOf("zzz == 1"), HasSubstr("unknown field 'zzz' (the input fields are: event_type, user_id"));
  EXPECT_THAT(ErrorOf("price ! 1"), HasSubstr("column 7: '!' is not an operator"));
}

TEST(Filter, DeepNestingIsAnErrorNotACrash) {
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += "(";
  deep += "premium";
  for (int i = 0; i < 200; ++i) deep += ")";
  EXPECT_THAT(ErrorOf(deep), HasSubstr("nests too deeply"));
  std::string wide = "premium";
  for (int i = 0; i < 100; ++i) wide = "premium or (" + wide + ")";
  EXPECT_FALSE(ParseFilter(wide, TestSchema()).ok());
  // Long flat chains need little stack: and/or fold as they go.
  std::string flat = "premium";
  for (int i = 0; i < 500; ++i) flat += " or premium";
  EXPECT_TRUE(ParseFilter(flat, TestSchema()).ok());
}

}  // namespace
}  // namespace slipstream
