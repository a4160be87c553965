#include "common/event.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/common/test_schemas.h"

namespace slipstream {
namespace {

using namespace testing_schemas;  // NOLINT: test helpers

using std::chrono::days;
using std::chrono::milliseconds;
using std::chrono::sys_days;
using std::chrono::sys_time;

constexpr std::string_view kAllReasons[] = {
    kReasonMalformedJson,    kReasonMissingField,     kReasonWrongType,    kReasonInvalidEventType,
    kReasonInvalidEventTime, kReasonInvalidUserId,    kReasonInvalidPrice,
};

constexpr char kTypicalEvent[] =
    R"({"event_time": "2024-01-01T10:00:00", "event_type": "view", "user_id": "111", "price": 29.99})";
constexpr int64_t kJan1At10 = 1704103200000;  // 2024-01-01T10:00:00Z

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// The reason code of a dead-letter status ("" when OK or not InvalidArgument).
std::string ReasonOf(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kInvalidArgument) return "";
  const std::string message = Message(status);
  const size_t colon = message.find(": ");
  return colon == std::string::npos ? "" : message.substr(0, colon);
}

bool IsKnownReason(std::string_view reason) {
  for (std::string_view known : kAllReasons) {
    if (reason == known) return true;
  }
  return false;
}

// Builds an event from raw JSON value texts (already quoted where needed).
std::string EventJson(std::string_view time, std::string_view type, std::string_view user,
                      std::string_view price) {
  std::string json = "{";
  json += R"("event_time": )";
  json += time;
  json += R"(, "event_type": )";
  json += type;
  json += R"(, "user_id": )";
  json += user;
  json += R"(, "price": )";
  json += price;
  json += "}";
  return json;
}

std::string EventWithTime(std::string_view time) {
  return EventJson(time, R"("view")", R"("u1")", "1.0");
}
std::string EventWithType(std::string_view type) {
  return EventJson(R"("2024-01-01T10:00:00")", type, R"("u1")", "1.0");
}
std::string EventWithUser(std::string_view user) {
  return EventJson(R"("2024-01-01T10:00:00")", R"("view")", user, "1.0");
}
std::string EventWithPrice(std::string_view price) {
  return EventJson(R"("2024-01-01T10:00:00")", R"("view")", R"("u1")", price);
}

absl::Status ParseOne(std::string_view json, Event* event = nullptr) {
  EventParser parser(DefaultTestSchema());
  Event scratch;
  return parser.Parse(json, event != nullptr ? event : &scratch);
}

// Reference ISO-8601 formatter built on <chrono> (independent of event.cc).
std::string ReferenceFormat(int64_t epoch_ms, bool with_zone = true) {
  const sys_time<milliseconds> tp{milliseconds{epoch_ms}};
  const sys_days day = std::chrono::floor<days>(tp);
  const std::chrono::year_month_day ymd{day};
  const std::chrono::hh_mm_ss<milliseconds> hms{tp - day};
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", static_cast<int>(ymd.year()),
                        static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                        static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                        static_cast<int>(hms.seconds().count()));
  if (hms.subseconds().count() != 0) {
    n += std::snprintf(buf + n, sizeof buf - n, ".%03d", static_cast<int>(hms.subseconds().count()));
  }
  std::string text(buf, n);
  if (with_zone) text += 'Z';
  return text;
}

int64_t ReferenceMillis(int y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0,
                        int ms = 0) {
  const sys_days day{std::chrono::year{y} / m / d};
  return (day.time_since_epoch() + std::chrono::hours{hh} + std::chrono::minutes{mm} +
          std::chrono::seconds{ss} + milliseconds{ms})
      .count();
}

int64_t ParseOk(std::string_view text) {
  absl::StatusOr<int64_t> ms = ParseIso8601Millis(text);
  EXPECT_TRUE(ms.ok()) << text << ": " << ms.status();
  return ms.ok() ? *ms : std::numeric_limits<int64_t>::min();
}

// ---------------------------------------------------------------------------
// ParseIso8601Millis

TEST(Iso8601, ParsesPlainDateTimeAsUtc) {
  EXPECT_EQ(ParseOk("2024-01-01T10:00:00"), kJan1At10);
  EXPECT_EQ(ParseOk("1970-01-01T00:00:00"), 0);
}

TEST(Iso8601, ZuluAndNoZoneAreTheSameInstant) {
  EXPECT_EQ(ParseOk("2024-01-01T10:00:00Z"), ParseOk("2024-01-01T10:00:00"));
  EXPECT_EQ(ParseOk("2024-01-01T10:00:00z"), kJan1At10);
  EXPECT_EQ(ParseOk("2024-01-01T10:00:00+00:00"), kJan1At10);
  EXPECT_EQ(ParseOk("2024-01-01T10:00:00-00:00"), kJan1At10);
}

TEST(Iso8601, AcceptsLowercaseTAndSpaceAsSeparator) {
  EXPECT_EQ(ParseOk("2024-01-01t10:00:00"), kJan1At10);
  EXPECT_EQ(ParseOk("2024-01-01 10:00:00"), kJan1At10);
}

TEST(Iso8601, FractionOfHalfSecondIs500Millis) {
  EXPECT_EQ(ParseOk("2024-01-01T10:00:00.5"), kJan1At10 + 500);
  EXPECT_EQ(ParseOk("2024-01-01T10:00:00.05Z"), kJan1At10 + 50);
  EXPECT_EQ(ParseOk("2024-01-01T10:00:00.123Z"), kJan1At10 + 123);
}

TEST(Iso8601, FractionDigitsBeyondMillisAreTruncated) {
  EXPECT_EQ(ParseOk("2024-01-01T10:00:00.123456"), kJan1At10 + 123);
  EXPECT_EQ(ParseOk("2024-01-01T10:00:00.999999999Z"), kJan1At10 + 999);
  EXPECT_EQ(ParseOk("2024-01-01T10:00:00.0009"), kJan1At10);
}

TEST(Iso8601, RejectsEmptyOrOverlongFraction) {
  EXPECT_FALSE(ParseIso8601Millis("2024-01-01T10:00:00.").ok());
  EXPECT_FALSE(ParseIso8601Millis("2024-01-01T10:00:00.Z").ok());
  EXPECT_FALSE(ParseIso8601Millis("2024-01-01T10:00:00.1234567890").ok());
}

TEST(Iso8601, PositiveOffsetMeansTheInstantIsEarlierInUtc) {
  // 10:00 in India (+05:30) is 04:30 UTC.
  EXPECT_EQ(ParseOk("2024-01-01T10:00:00+05:30"), ReferenceMillis(2024, 1, 1, 4, 30));
}

TEST(Iso8601, NegativeOffsetMeansTheInstantIsLaterInUtc) {
  // 10:00 in California (-08:00) is 18:00 UTC.
  EXPECT_EQ(ParseOk("2024-01-01T10:00:00-08:00"), ReferenceMillis(2024, 1, 1, 18, 0));
  // Crosses midnight backwards into the previous year.
  EXPECT_EQ(ParseOk("2024-01-01T00:30:00+01:00"), ReferenceMillis(2023, 12, 31, 23, 30));
}

TEST(Iso8601, AcceptsCompactAndHourOnlyOffsets) {
  const int64_t expected = ReferenceMillis(2024, 1, 1, 4, 30);
  EXPECT_EQ(ParseOk("2024-01-01T10:00:00+0530"), expected);
  EXPECT_EQ(ParseOk("2024-01-01T10:00:00.000+05:30"), expected);
  EXPECT_EQ(ParseOk("2024-01-01T10:00:00+05"), ReferenceMillis(2024, 1, 1, 5, 0));
  EXPECT_EQ(ParseOk("2024-01-01T10:00:00-0800"), ReferenceMillis(2024, 1, 1, 18, 0));
}

TEST(Iso8601, RejectsMalformedOffsets) {
  for (const char* text : {"2024-01-01T10:00:00+", "2024-01-01T10:00:00+5", "2024-01-01T10:00:00+05:",
                           "2024-01-01T10:00:00+05:3", "2024-01-01T10:00:00+053",
                           "2024-01-01T10:00:00+24:00", "2024-01-01T10:00:00+05:60",
                           "2024-01-01T10:00:00+05:30Z", "2024-01-01T10:00:00ZZ",
                           "2024-01-01T10:00:00 Z", "2024-01-01T10:00:00UTC",
                           "2024-01-01T10:00:00+05:30:00"}) {
    EXPECT_FALSE(ParseIso8601Millis(text).ok()) << text;
  }
}

TEST(Iso8601, AcceptsLeapDayInLeapYears) {
  EXPECT_EQ(ParseOk("2024-02-29T00:00:00Z"), ReferenceMillis(2024, 2, 29));
  EXPECT_EQ(ParseOk("2000-02-29T12:00:00Z"), ReferenceMillis(2000, 2, 29, 12));
}

TEST(Iso8601, RejectsFebruary29InCommonYears) {
  EXPECT_FALSE(ParseIso8601Millis("2023-02-29T00:00:00").ok());
  EXPECT_FALSE(ParseIso8601Millis("1900-02-29T00:00:00").ok());  // divisible by 100
  EXPECT_FALSE(ParseIso8601Millis("2100-02-29T00:00:00").ok());
}

TEST(Iso8601, RejectsOutOfRangeFields) {
  for (const char* text : {"2024-00-01T00:00:00", "2024-13-01T00:00:00", "2024-01-00T00:00:00",
                           "2024-01-32T00:00:00", "2024-04-31T00:00:00", "2024-02-30T00:00:00",
                           "2024-01-01T24:00:00", "2024-01-01T10:60:00", "2024-01-01T10:00:60",
                           "2024-12-31T23:59:60Z"}) {
    EXPECT_FALSE(ParseIso8601Millis(text).ok()) << text;
  }
}

TEST(Iso8601, RejectsMalformedLayouts) {
  for (const char* text :
       {"", "2024", "2024-01-01", "2024-01-01T", "2024-01-01T10:00", "2024-1-01T10:00:00",
        "24-01-01T10:00:00", "20240101T100000Z", "2024/01/01T10:00:00", "2024-01-01X10:00:00",
        "2024-01-01T10-00-00", "2024-01-01T10:00:00 ", " 2024-01-01T10:00:00",
        "2024-01-01  10:00:00", "+2024-01-01T10:00:00", "-0001-01-01T00:00:00",
        "12024-01-01T10:00:00", "2024-01-01T1a:00:00", "2024-0a-01T10:00:00",
        "2024-01-01T10:00:00,5", "1704103200000"}) {
    EXPECT_FALSE(ParseIso8601Millis(text).ok()) << '"' << text << '"';
  }
}

TEST(Iso8601, ErrorsAreInvalidArgumentQuotingTheInputAndNamingTheProblem) {
  const absl::StatusOr<int64_t> result = ParseIso8601Millis("2023-02-29T10:00:00");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(result.status()), R"("2023-02-29T10:00:00": day 29 is out of range for 2023-02)");
  EXPECT_NE(Message(ParseIso8601Millis("2024-13-01T00:00:00").status()).find("month 13"),
            std::string::npos);
}

TEST(Iso8601, ErrorMessageTruncatesHugeInputs) {
  const std::string huge = "2024-01-01T10:00:00" + std::string(100000, '9');
  const absl::StatusOr<int64_t> result = ParseIso8601Millis(huge);
  ASSERT_FALSE(result.ok());
  EXPECT_LT(Message(result.status()).size(), 200u);
  EXPECT_NE(Message(result.status()).find("(100019 bytes)"), std::string::npos);
}

TEST(Iso8601, DatesBefore1970GiveNegativeMillis) {
  EXPECT_EQ(ParseOk("1969-12-31T23:59:59.999Z"), -1);
  EXPECT_EQ(ParseOk("1969-12-31T00:00:00Z"), -86400000);
  EXPECT_EQ(ParseOk("1900-01-01T00:00:00Z"), -2208988800000);
  EXPECT_EQ(ParseOk("1600-02-29T00:00:00Z"), ReferenceMillis(1600, 2, 29));
}

TEST(Iso8601, FractionIsTruncatedTowardThePastBefore1970) {
  // 0.9999 s before the epoch's last second: floor to ...59.999, i.e. -1 ms.
  EXPECT_EQ(ParseOk("1969-12-31T23:59:59.9999Z"), -1);
  EXPECT_EQ(ParseOk("1969-12-31T23:59:59.0001Z"), -1000);
}

TEST(Iso8601, AcceptsTheFullFourDigitYearRange) {
  EXPECT_EQ(ParseOk("0000-01-01T00:00:00Z"), -62167219200000);
  EXPECT_EQ(ParseOk("0000-02-29T00:00:00Z"), ReferenceMillis(0, 2, 29));  // year 0 is leap
  EXPECT_EQ(ParseOk("9999-12-31T23:59:59.999Z"), 253402300799999);
  EXPECT_EQ(ParseOk("9999-12-31T23:59:59.999-23:59"), 253402300799999 + (23 * 60 + 59) * 60000);
}

TEST(Iso8601, DayValidationMatchesTheChronoCalendar) {
  for (int year : {1900, 1996, 1999, 2000, 2023, 2024, 2100, 2400}) {
    for (unsigned month = 1; month <= 12; ++month) {
      for (unsigned day = 1; day <= 31; ++day) {
        char text[32];
        std::snprintf(text, sizeof text, "%04d-%02u-%02uT00:00:00Z", year, month, day);
        const std::chrono::year_month_day ymd{std::chrono::year{year}, std::chrono::month{month},
                                              std::chrono::day{day}};
        const absl::StatusOr<int64_t> result = ParseIso8601Millis(text);
        ASSERT_EQ(result.ok(), ymd.ok()) << text;
        if (result.ok()) {
          EXPECT_EQ(*result, ReferenceMillis(year, month, day)) << text;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// FormatIso8601Millis

TEST(Timestamp, FormatsUtcWithMillis) {
  EXPECT_EQ(FormatIso8601Millis(kJan1At10 + 123), "2024-01-01T10:00:00.123Z");
  EXPECT_EQ(FormatIso8601Millis(kJan1At10 + 5), "2024-01-01T10:00:00.005Z");
}

TEST(Timestamp, FormatOmitsZeroMillis) {
  EXPECT_EQ(FormatIso8601Millis(kJan1At10), "2024-01-01T10:00:00Z");
  EXPECT_EQ(FormatIso8601Millis(0), "1970-01-01T00:00:00Z");
}

TEST(Timestamp, FormatsNegativeEpochs) {
  EXPECT_EQ(FormatIso8601Millis(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatIso8601Millis(-86400000), "1969-12-31T00:00:00Z");
  EXPECT_EQ(FormatIso8601Millis(-2208988800000), "1900-01-01T00:00:00Z");
  EXPECT_EQ(FormatIso8601Millis(-62167219200000), "0000-01-01T00:00:00Z");
}

TEST(Timestamp, FormatsYearsOutsideFourDigitsWithASign) {
  EXPECT_EQ(FormatIso8601Millis(-62167219200001), "-0001-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatIso8601Millis(253402300800000), "+10000-01-01T00:00:00Z");
}

TEST(Timestamp, FormatHandlesTheWholeInt64Range) {
  const std::string low = FormatIso8601Millis(std::numeric_limits<int64_t>::min());
  const std::string high = FormatIso8601Millis(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(low, "-292275055-05-16T16:47:04.192Z");
  EXPECT_EQ(high, "+292278994-08-17T07:12:55.807Z");
}

TEST(Timestamp, RandomInstantsRoundTripAgainstChronoReference) {
  std::mt19937_64 rng(20240101);
  const int64_t lo = ReferenceMillis(1900, 1, 1);
  const int64_t hi = ReferenceMillis(2201, 1, 1) - 1;
  std::uniform_int_distribution<int64_t> instant(lo, hi);
  std::uniform_int_distribution<int> offset_minutes(-(23 * 60 + 59), 23 * 60 + 59);
  std::uniform_int_distribution<int> extra_digits(0, 6);
  for (int i = 0; i < 10000; ++i) {
    int64_t ms = instant(rng);
    if (i % 4 == 0) ms -= ((ms % 1000) + 1000) % 1000;  // whole seconds too
    const std::string reference = ReferenceFormat(ms);
    ASSERT_EQ(FormatIso8601Millis(ms), reference) << ms;
    ASSERT_EQ(ParseOk(reference), ms) << reference;

    // The same instant written as local time with an offset, with extra
    // sub-millisecond digits that must be truncated.
    const int offset = offset_minutes(rng);
    std::string local = ReferenceFormat(ms + int64_t{offset} * 60000, /*with_zone=*/false);
    if (local.find('.') == std::string::npos) local += ".000";
    local.append(static_cast<size_t>(extra_digits(rng)), '7');
    char zone[8];
    std::snprintf(zone, sizeof zone, "%c%02d:%02d", offset < 0 ? '-' : '+', std::abs(offset) / 60,
                  std::abs(offset) % 60);
    local += zone;
    ASSERT_EQ(ParseOk(local), ms) << local;
  }
}

TEST(Iso8601, RandomStringsNeverCrashAndErrorsAreInvalidArgument) {
  std::mt19937_64 rng(7);
  constexpr std::string_view kAlphabet = "0123456789-T:.Z+ tz";
  std::uniform_int_distribution<size_t> length(0, 40);
  std::uniform_int_distribution<size_t> pick(0, kAlphabet.size() - 1);
  std::uniform_int_distribution<int> any_byte(0, 255);
  const std::string valid = "2024-02-29T23:59:59.999+05:30";
  for (int i = 0; i < 10000; ++i) {
    std::string text;
    if (i % 2 == 0) {
      const size_t n = length(rng);
      for (size_t k = 0; k < n; ++k) text += kAlphabet[pick(rng)];
    } else {
      text = valid;
      text[rng() % text.size()] = static_cast<char>(i % 4 == 1 ? kAlphabet[pick(rng)] : any_byte(rng));
    }
    const absl::StatusOr<int64_t> result = ParseIso8601Millis(text);
    if (!result.ok()) {
      ASSERT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << text;
    } else {
      // Whatever is accepted formats to a valid instant that parses back.
      ASSERT_EQ(ParseOk(FormatIso8601Millis(*result)), *result) << text;
    }
  }
}

// ---------------------------------------------------------------------------
// EventParser: valid records

TEST(EventParser, ParsesTypicalEvent) {
  Event event;
  ASSERT_TRUE(ParseOne(kTypicalEvent, &event).ok());
  EXPECT_EQ(event.event_time_ms, kJan1At10);
  EXPECT_EQ(event.user_id, "111");
  ASSERT_EQ(event.fields.size(), 4u);
  for (const FieldValue& f : event.fields) EXPECT_TRUE(f.present);
  EXPECT_EQ(event.fields[kEventTime].long_value, kJan1At10);
  EXPECT_EQ(event.fields[kEventType].string_value, "view");
  EXPECT_EQ(event.fields[kUserId].string_value, "111");
  EXPECT_DOUBLE_EQ(event.fields[kPrice].double_value, 29.99);
}

TEST(EventParser, AcceptsEveryEventType) {
  const std::pair<const char*, const char*> cases[] = {
      {R"("view")", "view"},
      {R"("cart")", "cart"},
      {R"("purchase")", "purchase"},
  };
  EventParser parser(DefaultTestSchema());
  for (const auto& [json_type, expected] : cases) {
    Event event;
    ASSERT_TRUE(parser.Parse(EventWithType(json_type), &event).ok()) << json_type;
    EXPECT_EQ(event.fields[kEventType].string_value, expected);
  }
}

TEST(EventParser, AcceptsIntegerUserIdAsDecimalText) {
  const std::pair<const char*, const char*> cases[] = {
      {"111", "111"},
      {"-7", "-7"},
      {"0", "0"},
      {"-0", "0"},
      {"9223372036854775807", "9223372036854775807"},
      {"18446744073709551616", "18446744073709551616"},  // beyond 64 bits: kept as text
  };
  for (const auto& [json_user, expected] : cases) {
    Event event;
    ASSERT_TRUE(ParseOne(EventWithUser(json_user), &event).ok()) << json_user;
    EXPECT_EQ(event.user_id, expected);
  }
}

TEST(EventParser, KeepsStringUserIdVerbatimIncludingEscapes) {
  Event event;
  ASSERT_TRUE(ParseOne(EventWithUser(R"("a\"b\u00e9 c")"), &event).ok());
  EXPECT_EQ(event.user_id, "a\"b\xc3\xa9 c");
  ASSERT_TRUE(ParseOne(EventWithUser(R"("007")"), &event).ok());
  EXPECT_EQ(event.user_id, "007");
}

TEST(EventParser, AcceptsIntegerAndZeroPrices) {
  const std::pair<const char*, double> cases[] = {
      {"29", 29.0}, {"0", 0.0}, {"0.0", 0.0}, {"-0", 0.0}, {"-0.0", 0.0},
      {"1e2", 100.0}, {"2.5E-1", 0.25}, {"1e-400", 0.0}, {"123456789012345678901234567890", 1.2345678901234568e29},
  };
  for (const auto& [json_price, expected] : cases) {
    Event event;
    ASSERT_TRUE(ParseOne(EventWithPrice(json_price), &event).ok()) << json_price;
    EXPECT_DOUBLE_EQ(event.fields[kPrice].double_value, expected) << json_price;
    EXPECT_FALSE(std::signbit(event.fields[kPrice].double_value)) << json_price;
  }
}

TEST(EventParser, AcceptsEventTimeWithFractionAndOffset) {
  Event event;
  ASSERT_TRUE(ParseOne(EventWithTime(R"("2024-01-01T15:30:00.250+05:30")"), &event).ok());
  EXPECT_EQ(event.event_time_ms, kJan1At10 + 250);
}

TEST(EventParser, IgnoresExtraFieldsAndFieldOrder) {
  const char* json = R"({"price": 5, "meta": {"a": [1, -2.5e3, true, false, null, "x", {}, []]},
    "user_id": "u", "session": 12345678901234567890123, "event_type": "cart",
    "event_time": "2024-01-01T10:00:00Z", "tags": ["a", "b"]})";
  Event event;
  const absl::Status status = ParseOne(json, &event);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(event.fields[kEventType].string_value, "cart");
  EXPECT_EQ(event.user_id, "u");
  EXPECT_EQ(event.fields[kPrice].double_value, 5.0);
}

TEST(EventParser, MatchesKeysAfterUnescaping) {
  Event event;
  const absl::Status status = ParseOne(
      R"({"event\u005ftime": "2024-01-01T10:00:00", "event_type": "vi\u0065w", "user_id": "1", "\u0070rice": 1})",
      &event);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(event.fields[kEventType].string_value, "view");
}

TEST(EventParser, ToleratesSurroundingWhitespace) {
  EXPECT_TRUE(ParseOne(std::string(" \n\t") + kTypicalEvent + " \r\n").ok());
}

TEST(EventParser, DoesNotRequireNulTerminationOrPaddingOfTheInput) {
  // A view into the middle of a larger buffer, followed by garbage bytes.
  const std::string buffer = std::string("xx") + kTypicalEvent + "}}garbage";
  const std::string_view view(buffer.data() + 2, sizeof(kTypicalEvent) - 1);
  EXPECT_TRUE(ParseOne(view).ok());
}

TEST(EventParser, ReusesOneParserAcrossRecordsOfDifferentSizes) {
  EventParser parser(DefaultTestSchema());
  Event event;
  const std::string big =
      EventJson(R"("2024-01-01T10:00:00")", R"("purchase")", R"("big")", "3") + std::string(5000, ' ');
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(parser.Parse(kTypicalEvent, &event).ok());
    EXPECT_EQ(event.user_id, "111");
    ASSERT_TRUE(parser.Parse(big, &event).ok());
    EXPECT_EQ(event.user_id, "big");
    EXPECT_EQ(ReasonOf(parser.Parse("{", &event)), kReasonMalformedJson);
  }
}

TEST(EventParser, MovedParserKeepsWorking) {
  EventParser first(DefaultTestSchema());
  Event event;
  ASSERT_TRUE(first.Parse(kTypicalEvent, &event).ok());
  EventParser second(std::move(first));
  ASSERT_TRUE(second.Parse(kTypicalEvent, &event).ok());
  EventParser third(DefaultTestSchema());
  third = std::move(second);
  ASSERT_TRUE(third.Parse(kTypicalEvent, &event).ok());
}

// ---------------------------------------------------------------------------
// EventParser: one test per reason code

TEST(EventParser, RejectsInvalidJsonAsMalformedJson) {
  const std::string cases[] = {
      "",
      "   ",
      "not json",
      "{",
      "}",
      R"({"event_time": "2024-01-01T10:00:00")",
      R"({"a" 1})",
      R"({"a": 1,})",
      R"({a: 1})",
      R"({'a': 1})",
      R"({"a": 01})",
      R"({"a": [1, 2,]})",
      R"({"a": [1 2]})",
      R"({"a": tru})",
      R"({"a": nulll})",
      R"({"a": "\q"})",
      R"({"a": 1.})",
      R"({"a": .5})",
      R"({"a": +1})",
      R"({"a": NaN})",
      R"({"a": Infinity})",
      EventWithPrice("1.2.3"),
      EventWithPrice("-"),
      EventWithUser("01"),
      EventWithUser("12abc"),
      EventWithType("tru"),
      "{\"event_type\": \"a\nb\"}",  // raw control character in a string
  };
  for (const std::string& json : cases) {
    EXPECT_EQ(ReasonOf(ParseOne(json)), kReasonMalformedJson) << json;
  }
}

TEST(EventParser, RejectsTopLevelThatIsNotAnObject) {
  for (const char* json : {"[]", R"(["view"])", R"("view")", "1", "null", "true"}) {
    const absl::Status status = ParseOne(json);
    EXPECT_EQ(ReasonOf(status), kReasonMalformedJson) << json;
    EXPECT_NE(Message(status).find("top level must be an object"), std::string::npos) << status;
  }
}

TEST(EventParser, RejectsTrailingContentAfterTheObject) {
  for (const std::string& json : {std::string(kTypicalEvent) + " x", std::string(kTypicalEvent) + "}",
                                  std::string(kTypicalEvent) + "{}", std::string(kTypicalEvent) + "1",
                                  std::string(kTypicalEvent) + "\"\"", std::string(kTypicalEvent) + "[]"}) {
    EXPECT_EQ(ReasonOf(ParseOne(json)), kReasonMalformedJson) << json;
  }
}

TEST(EventParser, RejectsInvalidUtf8AsMalformedJson) {
  for (const char* bad : {"\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"}) {
    EXPECT_EQ(ReasonOf(ParseOne(EventWithUser(std::string("\"a") + bad + "\""))), kReasonMalformedJson);
    EXPECT_EQ(ReasonOf(ParseOne(std::string("{\"x\": \"") + bad + "\", " + (kTypicalEvent + 1))),
              kReasonMalformedJson);
  }
}

TEST(EventParser, RejectsDuplicateContractFields) {
  const absl::Status status =
      ParseOne(R"({"event_time": "2024-01-01T10:00:00", "event_type": "view", "user_id": "1", "price": 1, "price": 2})");
  EXPECT_EQ(Message(status), R"(malformed_json: duplicate key "price")");
  // Duplicates of fields outside the contract are ignored like the fields.
  EXPECT_TRUE(ParseOne(R"({"x": 1, "x": 2, "event_time": "2024-01-01T10:00:00", "event_type": "view", "user_id": "1", "price": 1})")
                  .ok());
}

TEST(EventParser, RejectsHugeNumbersWithoutCrashing) {
  for (const char* price : {"1e400", "-1e400", "1e99999999999999999999"}) {
    const std::string reason = ReasonOf(ParseOne(EventWithPrice(price)));
    EXPECT_TRUE(reason == kReasonInvalidPrice || reason == kReasonMalformedJson) << price << " " << reason;
  }
  EXPECT_EQ(Message(ParseOne(EventWithPrice("1e400"))), R"(invalid_price: "1e400" is out of range for a price)");
}

TEST(EventParser, ReportsEachMissingField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"event_type": "view", "user_id": "1", "price": 1})", "missing_field: event_time"},
      {R"({"event_time": "2024-01-01T10:00:00", "user_id": "1", "price": 1})", "missing_field: event_type"},
      {R"({"event_time": "2024-01-01T10:00:00", "event_type": "view", "price": 1})", "missing_field: user_id"},
      {R"({"event_time": "2024-01-01T10:00:00", "event_type": "view", "user_id": "1"})", "missing_field: price"},
      {"{}", "missing_field: event_time"},
  };
  for (const auto& [json, expected] : cases) {
    EXPECT_EQ(Message(ParseOne(json)), expected) << json;
  }
}

TEST(EventParser, ReportsWrongJsonTypes) {
  const std::pair<std::string, const char*> cases[] = {
      {EventWithTime("1704103200000"), "wrong_type: event_time must be a string, got number"},
      {EventWithTime("null"), "wrong_type: event_time must be a string, got null"},
      {EventWithType("1"), "wrong_type: event_type must be a string, got number"},
      {EventWithType(R"(["view"])"), "wrong_type: event_type must be a string, got array"},
      {EventWithUser("true"), "wrong_type: user_id must be a string or an integer, got boolean"},
      {EventWithUser(R"({"id": 1})"), "wrong_type: user_id must be a string or an integer, got object"},
      {EventWithUser("1.5"), R"(wrong_type: user_id must be a string or an integer, got non-integer number "1.5")"},
      {EventWithUser("1e3"), R"(wrong_type: user_id must be a string or an integer, got non-integer number "1e3")"},
      {EventWithUser("1.0"), R"(wrong_type: user_id must be a string or an integer, got non-integer number "1.0")"},
      {EventWithPrice(R"("29.99")"), "wrong_type: price must be a number, got string"},
      {EventWithPrice("null"), "wrong_type: price must be a number, got null"},
      {EventWithPrice("false"), "wrong_type: price must be a number, got boolean"},
  };
  for (const auto& [json, expected] : cases) {
    EXPECT_EQ(Message(ParseOne(json)), expected) << json;
  }
}

TEST(EventParser, RejectsUnknownEventType) {
  EXPECT_EQ(Message(ParseOne(EventWithType(R"("clik")"))),
            R"(invalid_event_type: "clik" is not one of view, cart, purchase)");
  for (const char* type : {R"("")", R"("View")", R"("VIEW")", R"(" view")", R"("view ")", R"("views")",
                           R"("purchases")", R"("view\u0000")"}) {
    EXPECT_EQ(ReasonOf(ParseOne(EventWithType(type))), kReasonInvalidEventType) << type;
  }
}

TEST(EventParser, RejectsBadEventTime) {
  EXPECT_EQ(Message(ParseOne(EventWithTime(R"("2023-02-29T10:00:00")"))),
            R"(invalid_event_time: "2023-02-29T10:00:00": day 29 is out of range for 2023-02)");
  for (const char* time : {R"("")", R"("yesterday")", R"("2024-01-01")", R"("2024-01-01T25:00:00")",
                           R"("2024-01-01T10:00:00+25:00")", R"("1704103200000")"}) {
    EXPECT_EQ(ReasonOf(ParseOne(EventWithTime(time))), kReasonInvalidEventTime) << time;
  }
}

TEST(EventParser, RejectsEmptyUserId) {
  EXPECT_EQ(Message(ParseOne(EventWithUser(R"("")"))), "invalid_user_id: user_id is empty");
}

TEST(EventParser, RejectsNegativePrice) {
  EXPECT_EQ(Message(ParseOne(EventWithPrice("-0.01"))), R"(invalid_price: "-0.01" is negative)");
  EXPECT_EQ(ReasonOf(ParseOne(EventWithPrice("-5"))), kReasonInvalidPrice);
}

TEST(EventParser, ReportsMalformedJsonBeforeFieldProblems) {
  // A bad event type followed by a syntax error: the syntax error wins.
  EXPECT_EQ(ReasonOf(ParseOne(R"({"event_type": "clik", "x": [1 2]})")), kReasonMalformedJson);
  EXPECT_EQ(ReasonOf(ParseOne(R"({"event_type": "clik", "price": 1.2.3})")), kReasonMalformedJson);
  EXPECT_EQ(ReasonOf(ParseOne(std::string(R"({"event_type": "clik"} x)"))), kReasonMalformedJson);
  // A wrong-typed value must still be valid JSON.
  EXPECT_EQ(ReasonOf(ParseOne(EventWithUser("[1 2]"))), kReasonMalformedJson);
}

TEST(EventParser, ReportsFieldProblemsInContractOrder) {
  // Every field is bad; event_time is reported first, then event_type, ...
  std::string time = R"("nope")", type = R"("clik")", user = R"("")", price = "-1";
  EXPECT_EQ(ReasonOf(ParseOne(EventJson(time, type, user, price))), kReasonInvalidEventTime);
  time = R"("2024-01-01T10:00:00")";
  EXPECT_EQ(ReasonOf(ParseOne(EventJson(time, type, user, price))), kReasonInvalidEventType);
  type = R"("view")";
  EXPECT_EQ(ReasonOf(ParseOne(EventJson(time, type, user, price))), kReasonInvalidUserId);
  user = R"("u")";
  EXPECT_EQ(ReasonOf(ParseOne(EventJson(time, type, user, price))), kReasonInvalidPrice);
  // Order in the document does not matter.
  EXPECT_EQ(ReasonOf(ParseOne(R"({"price": -1, "user_id": "", "event_type": "x", "event_time": "y"})")),
            kReasonInvalidEventTime);
  // A missing earlier field is reported before a bad later one.
  EXPECT_EQ(Message(ParseOne(R"({"event_time": "2024-01-01T10:00:00", "price": -1, "user_id": "u"})")),
            "missing_field: event_type");
}

TEST(EventParser, TruncatesHugeValuesInReasons) {
  const std::string huge_type(100000, 'x');
  const std::string message = Message(ParseOne(EventWithType("\"" + huge_type + "\"")));
  EXPECT_EQ(message.rfind("invalid_event_type: \"" + std::string(64, 'x') + "\"... (100000 bytes)", 0), 0u)
      << message.substr(0, 200);
  EXPECT_LT(message.size(), 200u);

  const std::string huge_time(100000, '9');
  EXPECT_LT(Message(ParseOne(EventWithTime("\"" + huge_time + "\""))).size(), 200u);
}

TEST(EventParser, TruncationDoesNotSplitUtf8Characters) {
  // 63 ASCII bytes then a 2-byte character straddling the 64-byte limit.
  const std::string type = std::string(63, 'a') + "\xc3\xa9" + "bbbb";
  const std::string message = Message(ParseOne(EventWithType("\"" + type + "\"")));
  EXPECT_NE(message.find("\"" + std::string(63, 'a') + "\"... (69 bytes)"), std::string::npos) << message;
}

TEST(EventParser, EscapesControlCharactersInReasons) {
  const std::string message = Message(ParseOne(EventWithType(R"("a\nb\"c")")));
  EXPECT_EQ(message, R"(invalid_event_type: "a\x0ab\"c" is not one of view, cart, purchase)");
}

TEST(EventParser, KeepsValidUtf8InReasonsReadable) {
  EXPECT_EQ(Message(ParseOne(EventWithType(R"("caf\u00e9")"))),
            "invalid_event_type: \"caf\xc3\xa9\" is not one of view, cart, purchase");
}

TEST(EventParser, LimitsNestingOfExtraFields) {
  const auto nested = [](int depth) {
    return R"({"x": )" + std::string(depth, '[') + std::string(depth, ']') + ", " + (kTypicalEvent + 1);
  };
  EXPECT_TRUE(ParseOne(nested(100)).ok());
  EXPECT_EQ(Message(ParseOne(nested(200))), "malformed_json: nested too deeply");
  EXPECT_EQ(ReasonOf(ParseOne(R"({"x": )" + std::string(100000, '['))), kReasonMalformedJson);
}

// ---------------------------------------------------------------------------
// EventParser: robustness

void ExpectOkOrKnownReason(const absl::Status& status, const Event& event, std::string_view input) {
  if (status.ok()) {
    ASSERT_FALSE(event.user_id.empty()) << input;
    ASSERT_EQ(event.fields.size(), 4u) << input;
    const double price = event.fields[kPrice].double_value;
    ASSERT_TRUE(std::isfinite(price) && price >= 0) << input;
    return;
  }
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << input;
  ASSERT_TRUE(IsKnownReason(ReasonOf(status))) << status << " for " << input;
  ASSERT_LT(status.message().size(), 600u) << input;
  for (char c : Message(status)) {
    ASSERT_FALSE(static_cast<unsigned char>(c) < 0x20) << status;
  }
}

TEST(EventParser, RandomBytesNeverCrash) {
  std::mt19937_64 rng(42);
  constexpr std::string_view kJsonish = R"({}[]":,0123456789.eE+-tfnul \"\\ event_timeypricuser_id)";
  std::uniform_int_distribution<size_t> length(0, 300);
  std::uniform_int_distribution<int> any_byte(0, 255);
  EventParser parser(DefaultTestSchema());
  Event event;
  for (int i = 0; i < 10000; ++i) {
    std::string input(length(rng), '\0');
    for (char& c : input) {
      c = i % 2 == 0 ? static_cast<char>(any_byte(rng)) : kJsonish[rng() % kJsonish.size()];
    }
    if (i % 3 == 0) input.insert(0, "{");
    ExpectOkOrKnownReason(parser.Parse(input, &event), event, input);
  }
}

TEST(EventParser, RandomMutationsOfAValidEventNeverCrash) {
  std::mt19937_64 rng(4242);
  const std::string valid =
      R"({"event_time": "2024-02-29T23:59:59.123+05:30", "event_type": "purchase", "user_id": 111, "price": 29.99, "extra": [1, {"a": null}]})";
  constexpr std::string_view kInteresting = R"({}[]":,.-+eE0123456789\ tfn)";
  std::uniform_int_distribution<int> any_byte(0, 255);
  EventParser parser(DefaultTestSchema());
  Event event;
  int accepted = 0;
  std::vector<std::string> reasons_seen;
  for (int i = 0; i < 10000; ++i) {
    std::string input = valid;
    const int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations && !input.empty(); ++m) {
      const size_t pos = rng() % input.size();
      const char byte = rng() % 2 ? static_cast<char>(any_byte(rng)) : kInteresting[rng() % kInteresting.size()];
      switch (rng() % 5) {
        case 0:
          input[pos] = byte;
          break;
        case 1:
          input.insert(input.begin() + static_cast<std::ptrdiff_t>(pos), byte);
          break;
        case 2:
          input.erase(pos, 1 + rng() % 3);
          break;
        case 3:
          input.resize(pos);
          break;
        default:
          input.insert(pos, input.substr(rng() % input.size(), rng() % 20));
          break;
      }
    }
    const absl::Status status = parser.Parse(input, &event);
    ExpectOkOrKnownReason(status, event, input);
    if (status.ok()) ++accepted;
  }
  // Sanity: the parser is still healthy after all that.
  ASSERT_TRUE(parser.Parse(valid, &event).ok());
  EXPECT_EQ(event.user_id, "111");
  EXPECT_EQ(event.fields[kEventType].string_value, "purchase");
  EXPECT_GT(accepted, 0);  // some mutations (e.g. in whitespace) stay valid
}

// Speed check, not a pass/fail test: run with --gtest_also_run_disabled_tests.
TEST(EventParser, DISABLED_MeasureParseSpeed) {
  EventParser parser(DefaultTestSchema());
  Event event;
  constexpr int kIterations = 1'000'000;
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(parser.Parse(kTypicalEvent, &event).ok());
  const auto start = std::chrono::steady_clock::now();
  int ok = 0;
  for (int i = 0; i < kIterations; ++i) ok += parser.Parse(kTypicalEvent, &event).ok();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(ok, kIterations);
  const double ns = std::chrono::duration<double, std::nano>(elapsed).count() / kIterations;
  std::printf("EventParser::Parse: %.1f ns/event (%zu-byte event)\n", ns, sizeof(kTypicalEvent) - 1);
}

// ---------------------------------------------------------------------------
// EventParser: other schemas (built by hand, tests/common/test_schemas.h)

// {ts: epoch millis, uid: long key, qty: long [1, 100], score: double
//  (-1, 1] ..., premium: boolean optional, country: string optional}
InputSchema TypedSchema(TimeFormat format = TimeFormat::kEpochMillis) {
  InputSchema schema;
  schema.fields.push_back(Field("ts", FieldType::kLong));
  schema.fields.push_back(Field("uid", FieldType::kLong));
  InputField qty = Field("qty", FieldType::kLong);
  qty.min = 1;
  qty.max = 100;
  schema.fields.push_back(qty);
  InputField score = Field("score", FieldType::kDouble);
  score.min = -1;
  score.max = 1;
  schema.fields.push_back(score);
  schema.fields.push_back(Field("premium", FieldType::kBoolean, /*required=*/false));
  InputField country = Field("country", FieldType::kString, /*required=*/false);
  country.allow_empty = true;
  schema.fields.push_back(country);
  schema.time_field = 0;
  schema.key_field = 1;
  schema.time_format = format;
  return schema;
}

TEST(EventParserSchema, ReadsLongDoubleBooleanAndOptionalFields) {
  EventParser parser(TypedSchema());
  Event event;
  ASSERT_TRUE(parser.Parse(R"({"ts": 1704103200000, "uid": -0, "qty": 3, "score": -0.0, "premium": true,
                              "country": ""})",
                           &event)
                  .ok());
  EXPECT_EQ(event.event_time_ms, kJan1At10);
  EXPECT_EQ(event.user_id, "0");
  ASSERT_EQ(event.fields.size(), 6u);
  EXPECT_EQ(event.fields[0].long_value, kJan1At10);
  EXPECT_EQ(event.fields[1].long_value, 0);
  EXPECT_EQ(event.fields[2].long_value, 3);
  EXPECT_EQ(event.fields[3].double_value, 0.0);
  EXPECT_FALSE(std::signbit(event.fields[3].double_value));
  EXPECT_TRUE(event.fields[4].present);
  EXPECT_EQ(event.fields[4].long_value, 1);
  EXPECT_TRUE(event.fields[5].present);
  EXPECT_EQ(event.fields[5].string_value, "");

  // The same Event reused: optional fields absent now, values reset.
  ASSERT_TRUE(parser.Parse(R"({"uid": 42, "ts": 5, "qty": 100, "score": 1})", &event).ok());
  EXPECT_EQ(event.user_id, "42");
  EXPECT_EQ(event.fields[1].long_value, 42);
  EXPECT_FALSE(event.fields[4].present);
  EXPECT_EQ(event.fields[4].long_value, 0);
  EXPECT_FALSE(event.fields[5].present);
  EXPECT_TRUE(event.fields[5].string_value.empty());
  ASSERT_TRUE(parser.Parse(R"({"uid": 42, "ts": 5, "qty": 1, "score": 0.5, "premium": false})", &event).ok());
  EXPECT_TRUE(event.fields[4].present);
  EXPECT_EQ(event.fields[4].long_value, 0);
}

TEST(EventParserSchema, ReportsTypedFieldProblems) {
  EventParser parser(TypedSchema());
  Event event;
  const auto with = [](std::string_view qty, std::string_view rest = R"("score": 0)") {
    return std::string(R"({"ts": 1, "uid": 7, "qty": )") + std::string(qty) + ", " + std::string(rest) + "}";
  };
  const std::pair<std::string, std::string> cases[] = {
      {with("1.5"), R"(wrong_type: qty must be an integer, got non-integer number "1.5")"},
      {with("1e2"), R"(wrong_type: qty must be an integer, got non-integer number "1e2")"},
      {with(R"("3")"), "wrong_type: qty must be an integer, got string"},
      {with("9223372036854775808"), R"(invalid_qty: "9223372036854775808" is out of range for a 64-bit integer)"},
      {with("0"), R"(invalid_qty: "0" is below the minimum 1)"},
      {with("101"), R"(invalid_qty: "101" is above the maximum 100)"},
      {with("5", R"("score": 1.5)"), R"(invalid_score: "1.5" is above the maximum 1)"},
      {with("5", R"("score": -2)"), R"(invalid_score: "-2" is below the minimum -1)"},
      {with("5", R"("score": 1e400)"), R"(invalid_score: "1e400" is out of range for a score)"},
      {with("5", R"("score": 0, "premium": 1)"), "wrong_type: premium must be a boolean, got number"},
      {with("5", R"("score": 0, "premium": "true")"), "wrong_type: premium must be a boolean, got string"},
      {with("5", R"("score": 0, "country": 3)"), "wrong_type: country must be a string, got number"},
      {with("5", R"("score": 0, "premium": true, "premium": true)"), R"(malformed_json: duplicate key "premium")"},
      {R"({"ts": 1, "qty": 5, "score": 0})", "missing_field: uid"},
      {R"({"ts": 1, "uid": 1.5, "qty": 5, "score": 0})",
       R"(wrong_type: uid must be an integer, got non-integer number "1.5")"},
      {R"({"ts": 1, "uid": "7", "qty": 5, "score": 0})", "wrong_type: uid must be an integer, got string"},
      {R"({"ts": "2024-01-01T10:00:00", "uid": 7, "qty": 5, "score": 0})",
       "wrong_type: ts must be an integer, got string"},
      {R"({"ts": 1.0, "uid": 7, "qty": 5, "score": 0})",
       R"(wrong_type: ts must be an integer, got non-integer number "1.0")"},
      // Schema order: uid (1) before qty (2), whatever the document order.
      {R"({"qty": 0, "uid": 1.5, "ts": 1, "score": 0})",
       R"(wrong_type: uid must be an integer, got non-integer number "1.5")"},
  };
  for (const auto& [json, expected] : cases) {
    EXPECT_EQ(Message(parser.Parse(json, &event)), expected) << json;
  }
}

TEST(EventParserSchema, LongRangesAreExactForLargeIntegers) {
  InputSchema schema = TypedSchema();
  schema.fields[2].min = std::nullopt;
  schema.fields[2].max = 9007199254740992.0;  // 2^53
  EventParser parser(schema);
  Event event;
  const auto with = [](std::string_view qty) {
    return std::string(R"({"ts": 1, "uid": 7, "score": 0, "qty": )") + std::string(qty) + "}";
  };
  EXPECT_TRUE(parser.Parse(with("-9223372036854775808"), &event).ok());
  EXPECT_EQ(event.fields[2].long_value, std::numeric_limits<int64_t>::min());
  EXPECT_TRUE(parser.Parse(with("9007199254740992"), &event).ok());
  // 2^53 + 1 becomes 2^53 as a double: a comparison in doubles would let it in.
  EXPECT_EQ(Message(parser.Parse(with("9007199254740993"), &event)),
            R"(invalid_qty: "9007199254740993" is above the maximum 9007199254740992)");
}

TEST(EventParserSchema, EpochSecondsAreMultipliedWithAnOverflowCheck) {
  EventParser parser(TypedSchema(TimeFormat::kEpochSeconds));
  Event event;
  ASSERT_TRUE(parser.Parse(R"({"ts": 1704103200, "uid": 1, "qty": 1, "score": 0})", &event).ok());
  EXPECT_EQ(event.event_time_ms, kJan1At10);
  EXPECT_EQ(event.fields[0].long_value, kJan1At10);
  ASSERT_TRUE(parser.Parse(R"({"ts": -1, "uid": 1, "qty": 1, "score": 0})", &event).ok());
  EXPECT_EQ(event.event_time_ms, -1000);
  EXPECT_EQ(Message(parser.Parse(R"({"ts": 9223372036854776, "uid": 1, "qty": 1, "score": 0})", &event)),
            R"(invalid_ts: "9223372036854776" is out of range for epoch seconds)");
  EXPECT_EQ(ReasonOf(parser.Parse(R"({"ts": 99999999999999999999, "uid": 1, "qty": 1, "score": 0})", &event)),
            "invalid_ts");
}

TEST(EventParserSchema, EpochMillisKeepTheInteger) {
  EventParser parser(TypedSchema(TimeFormat::kEpochMillis));
  Event event;
  ASSERT_TRUE(parser.Parse(R"({"ts": -9223372036854775808, "uid": 1, "qty": 1, "score": 0})", &event).ok());
  EXPECT_EQ(event.event_time_ms, std::numeric_limits<int64_t>::min());
}

TEST(EventParserSchema, IsoTimeFieldNeedNotBeCalledEventTime) {
  InputSchema schema = DefaultTestSchema();
  schema.fields[kEventTime].name = "ts";
  EventParser parser(schema);
  Event event;
  ASSERT_TRUE(parser.Parse(R"({"ts": "2024-01-01T10:00:00Z", "event_type": "view", "user_id": "u", "price": 1})",
                           &event)
                  .ok());
  EXPECT_EQ(event.event_time_ms, kJan1At10);
  EXPECT_EQ(ReasonOf(parser.Parse(R"({"ts": "nope", "event_type": "view", "user_id": "u", "price": 1})", &event)),
            "invalid_ts");
}

TEST(EventParserSchema, AllowedValuesAndEmptiness) {
  InputSchema schema = DefaultTestSchema();
  InputField many = Field("color", FieldType::kString, /*required=*/false);
  many.allowed = {"red", "green", "blue", "cyan", "magenta", "yellow", "black", "white", ""};  // hashed
  schema.fields.push_back(many);
  InputField name = Field("name", FieldType::kString, /*required=*/false);
  schema.fields.push_back(name);
  EventParser parser(schema);
  Event event;
  const auto with = [](std::string_view extra) {
    return std::string(R"({"event_time": "2024-01-01T10:00:00", "event_type": "cart", "user_id": "u", "price": 1, )") +
           std::string(extra) + "}";
  };
  ASSERT_TRUE(parser.Parse(with(R"("color": "white")"), &event).ok());
  EXPECT_EQ(event.fields[4].string_value, "white");
  EXPECT_TRUE(parser.Parse(with(R"("color": "")"), &event).ok());  // "" is allowed explicitly
  EXPECT_EQ(Message(parser.Parse(with(R"("color": "pink")"), &event)),
            R"(invalid_color: "pink" is not one of red, green, blue, cyan, magenta, yellow, black, white, )");
  EXPECT_EQ(Message(parser.Parse(with(R"("name": "")"), &event)), "invalid_name: name is empty");
  EXPECT_TRUE(parser.Parse(with(R"("name": " ")"), &event).ok());
}

TEST(EventParserSchema, StringKeyAcceptsIntegersLongKeyIsDecimal) {
  InputSchema schema = TypedSchema();
  EventParser long_key(schema);
  Event event;
  EXPECT_EQ(ReasonOf(long_key.Parse(R"({"ts": 1, "uid": -0012, "qty": 1, "score": 0})", &event)),
            kReasonMalformedJson);  // leading zeros are not JSON
  ASSERT_TRUE(long_key.Parse(R"({"ts": 1, "uid": -9223372036854775808, "qty": 1, "score": 0})", &event).ok());
  EXPECT_EQ(event.user_id, "-9223372036854775808");
  EXPECT_EQ(event.fields[1].long_value, std::numeric_limits<int64_t>::min());
}

TEST(EventParserSchema, ATenFieldSchemaMatchesEveryFieldByName) {
  // Names chosen to share lengths (hash lookup above four of one length)
  // and prefixes/suffixes (the inline comparison).
  InputSchema schema;
  const char* names[] = {"aaaa", "aaab", "baaa", "abaa", "aaba", "event_time", "user_id", "x",
                         "a_rather_long_field_name_1", "a_rather_long_field_name_2"};
  for (const char* name : names) schema.fields.push_back(Field(name, FieldType::kLong, /*required=*/false));
  schema.fields[5].type = FieldType::kString;
  schema.fields[6].type = FieldType::kString;
  schema.time_field = 5;
  schema.key_field = 6;
  EventParser parser(schema);
  Event event;
  std::string json = R"({"event_time": "2024-01-01T10:00:00", "user_id": 5)";
  for (int i = 0; i < 10; ++i) {
    if (i == 5 || i == 6) continue;
    json += ", \"" + std::string(names[i]) + "\": " + std::to_string(i * 10);
  }
  json += R"(, "aaa": 1, "aaaaa": 2, "a_rather_long_field_name_3": 3})";
  const absl::Status status = parser.Parse(json, &event);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(event.user_id, "5");
  EXPECT_EQ(event.event_time_ms, kJan1At10);
  for (int i = 0; i < 10; ++i) {
    if (i == 5 || i == 6) continue;
    EXPECT_TRUE(event.fields[i].present) << names[i];
    EXPECT_EQ(event.fields[i].long_value, i * 10) << names[i];
  }
  // Each optional field can be left out on its own.
  ASSERT_TRUE(parser.Parse(R"({"event_time": "2024-01-01T10:00:00", "user_id": "k", "baaa": 1})", &event).ok());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(event.fields[i].present, i == 2 || i == 5 || i == 6) << names[i];
  // Duplicates are found in hashed buckets too.
  EXPECT_EQ(Message(parser.Parse(R"({"event_time": "2024-01-01T10:00:00", "user_id": "k", "abaa": 1, "abaa": 2})",
                                 &event)),
            R"(malformed_json: duplicate key "abaa")");
}

TEST(EventParserSchema, MovedFromParserFailsInsteadOfCrashing) {
  EventParser first(DefaultTestSchema());
  EventParser second(std::move(first));
  Event event;
  EXPECT_EQ(first.Parse(kTypicalEvent, &event).code(), absl::StatusCode::kFailedPrecondition);  // NOLINT: use after move
  EXPECT_TRUE(second.Parse(kTypicalEvent, &event).ok());
  EXPECT_EQ(second.schema().fields.size(), 4u);
}

}  // namespace
}  // namespace slipstream
