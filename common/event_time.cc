// ISO-8601 event times: parsing (the parser's rules are at the top of
// common/event.cc) and formatting, on proleptic Gregorian civil dates.
#include <cstring>

#include "common/event_internal.h"

namespace slipstream {
namespace event_internal {
namespace {

// ---------------------------------------------------------------------------
// Calendar arithmetic (proleptic Gregorian), after Howard Hinnant,
// http://howardhinnant.github.io/date_algorithms.html

constexpr int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);                 // [0, 399]
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            // [0, 146096]
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct CivilDate {
  int64_t year;
  unsigned month;
  unsigned day;
};

constexpr CivilDate CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);                    // [0, 146096]
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const unsigned mp = (5 * doy + 2) / 153;                                     // [0, 11]
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;                             // [1, 31]
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;                                // [1, 12]
  return {static_cast<int64_t>(yoe) + era * 400 + (m <= 2), m, d};
}

static_assert(DaysFromCivil(1970, 1, 1) == 0);
static_assert(DaysFromCivil(2000, 3, 1) == 11017);
static_assert(DaysFromCivil(1969, 12, 31) == -1);
static_assert(CivilFromDays(-1).year == 1969 && CivilFromDays(-1).day == 31);

constexpr bool IsLeapYear(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

constexpr unsigned DaysInMonth(int64_t y, unsigned m) {
  constexpr unsigned char kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

// ---------------------------------------------------------------------------
// ISO-8601 parsing. Returns nullptr on success, else a static description of
// the problem; `number` receives the offending field value when relevant.

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

inline bool ParseDigits(std::string_view s, size_t pos, size_t count, unsigned* value) {
  if (pos + count > s.size()) return false;
  unsigned v = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (!IsDigit(s[i])) return false;
    v = v * 10 + static_cast<unsigned>(s[i] - '0');
  }
  *value = v;
  return true;
}

// On failure fills *why (error path only, so allocation is fine).
// Digit value, or > 9 for a non-digit.
inline unsigned DigitValue(char c) { return static_cast<unsigned>(static_cast<unsigned char>(c) - '0'); }

// Fast path for the fixed "YYYY-MM-DDTHH:MM:SS" prefix (branch-light; the
// slow path below re-checks field by field to explain a failure).
inline bool ParseFixedPrefix(std::string_view s, unsigned* year, unsigned* month, unsigned* day,
                             unsigned* hour, unsigned* minute, unsigned* second) {
  if (s.size() < 19) return false;
  const char* p = s.data();
  const auto digit = [p](int i) { return DigitValue(p[i]); };
  const unsigned y0 = digit(0), y1 = digit(1), y2 = digit(2), y3 = digit(3);
  const unsigned mo0 = digit(5), mo1 = digit(6), d0 = digit(8), d1 = digit(9);
  const unsigned h0 = digit(11), h1 = digit(12), mi0 = digit(14), mi1 = digit(15);
  const unsigned s0 = digit(17), s1 = digit(18);
  const bool bad = (y0 > 9) | (y1 > 9) | (y2 > 9) | (y3 > 9) | (mo0 > 9) | (mo1 > 9) | (d0 > 9) |
                   (d1 > 9) | (h0 > 9) | (h1 > 9) | (mi0 > 9) | (mi1 > 9) | (s0 > 9) | (s1 > 9);
  if (bad || p[4] != '-' || p[7] != '-' || p[13] != ':' || p[16] != ':' ||
      (p[10] != 'T' && p[10] != 't' && p[10] != ' ')) {
    return false;
  }
  *year = y0 * 1000 + y1 * 100 + y2 * 10 + y3;
  *month = mo0 * 10 + mo1;
  *day = d0 * 10 + d1;
  *hour = h0 * 10 + h1;
  *minute = mi0 * 10 + mi1;
  *second = s0 * 10 + s1;
  return true;
}

}  // namespace


bool ParseIso8601Core(std::string_view s, int64_t* out_ms, std::string* why) {
  unsigned year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (ParseFixedPrefix(s, &year, &month, &day, &hour, &minute, &second)) {
    // Layout fine; ranges checked below.
  } else if (!ParseDigits(s, 0, 4, &year) || s.size() < 5 || s[4] != '-' ||
             !ParseDigits(s, 5, 2, &month) || s.size() < 8 || s[7] != '-' ||
             !ParseDigits(s, 8, 2, &day)) {
    *why = "expected a date as YYYY-MM-DD";
    return false;
  } else if (s.size() < 11 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ')) {
    *why = "expected 'T' between date and time";
    return false;
  } else if (!ParseDigits(s, 11, 2, &hour) || s.size() < 14 || s[13] != ':' ||
             !ParseDigits(s, 14, 2, &minute) || s.size() < 17 || s[16] != ':' ||
             !ParseDigits(s, 17, 2, &second)) {
    *why = "expected a time as HH:MM:SS";
    return false;
  }
  if (month < 1 || month > 12) {
    *why = Cat("month ", month, " is out of range");
    return false;
  }
  if (day < 1 || day > DaysInMonth(year, month)) {
    *why = Cat("day ", day, " is out of range for ", s.substr(0, 7));
    return false;
  }
  if (hour > 23) {
    *why = Cat("hour ", hour, " is out of range");
    return false;
  }
  if (minute > 59) {
    *why = Cat("minute ", minute, " is out of range");
    return false;
  }
  if (second > 59) {
    *why = Cat("second ", second, " is out of range");
    return false;
  }

  size_t pos = 19;
  int64_t millis = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const size_t start = pos;
    while (pos < s.size() && IsDigit(s[pos])) ++pos;
    const size_t digits = pos - start;
    if (digits < 1 || digits > 9) {
      *why = "fractional seconds need 1 to 9 digits";
      return false;
    }
    // First three digits, right-padded with zeros; the rest is truncated.
    for (size_t i = 0; i < 3; ++i) {
      millis = millis * 10 + (i < digits ? s[start + i] - '0' : 0);
    }
  }

  int64_t offset_minutes = 0;
  if (pos < s.size()) {
    const char z = s[pos];
    if (z == 'Z' || z == 'z') {
      ++pos;
    } else if (z == '+' || z == '-') {
      unsigned oh = 0, om = 0;
      if (!ParseDigits(s, pos + 1, 2, &oh)) {
        *why = "expected a zone offset as +hh:mm";
        return false;
      }
      pos += 3;
      if (pos < s.size()) {
        if (s[pos] == ':') ++pos;
        if (!ParseDigits(s, pos, 2, &om)) {
          *why = "expected a zone offset as +hh:mm";
          return false;
        }
        pos += 2;
      }
      if (oh > 23 || om > 59) {
        *why = "zone offset is out of range";
        return false;
      }
      offset_minutes = (z == '+' ? 1 : -1) * static_cast<int64_t>(oh * 60 + om);
    } else {
      *why = "expected 'Z', an offset like +hh:mm, or nothing after the time";
      return false;
    }
  }
  if (pos != s.size()) {
    *why = "unexpected characters after the zone";
    return false;
  }

  const int64_t days = DaysFromCivil(year, month, day);
  const int64_t local_seconds = days * 86400 + hour * 3600 + minute * 60 + second;
  *out_ms = (local_seconds - offset_minutes * 60) * 1000 + millis;
  return true;
}

std::string Iso8601Problem(std::string_view text, std::string_view why) {
  return Cat(Quote(text), ": ", why);
}

}  // namespace event_internal

using namespace event_internal;  // NOLINT: this file's own helpers

// ---------------------------------------------------------------------------
// Public functions.

absl::StatusOr<int64_t> ParseIso8601Millis(std::string_view text) {
  int64_t ms = 0;
  std::string why;
  if (!ParseIso8601Core(text, &ms, &why)) {
    return absl::InvalidArgumentError(Iso8601Problem(text, why));
  }
  return ms;
}

std::string FormatIso8601Millis(int64_t epoch_ms) {
  constexpr int64_t kMsPerDay = 86'400'000;
  int64_t days = epoch_ms / kMsPerDay;
  int64_t ms_of_day = epoch_ms % kMsPerDay;
  if (ms_of_day < 0) {  // floor division without overflowing at INT64_MIN
    ms_of_day += kMsPerDay;
    --days;
  }
  const CivilDate date = CivilFromDays(days);
  const auto hour = static_cast<unsigned>(ms_of_day / 3'600'000);
  const auto minute = static_cast<unsigned>(ms_of_day / 60'000 % 60);
  const auto second = static_cast<unsigned>(ms_of_day / 1000 % 60);
  const auto millis = static_cast<unsigned>(ms_of_day % 1000);

  char buf[48];
  char* p = buf;
  const auto put = [&p](uint64_t v, int width) {
    char tmp[24];
    int n = 0;
    do {
      tmp[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n < width) tmp[n++] = '0';
    while (n > 0) *p++ = tmp[--n];
  };
  if (date.year < 0) {
    *p++ = '-';
    put(static_cast<uint64_t>(-date.year), 4);
  } else {
    if (date.year > 9999) *p++ = '+';
    put(static_cast<uint64_t>(date.year), 4);
  }
  *p++ = '-';
  put(date.month, 2);
  *p++ = '-';
  put(date.day, 2);
  *p++ = 'T';
  put(hour, 2);
  *p++ = ':';
  put(minute, 2);
  *p++ = ':';
  put(second, 2);
  if (millis != 0) {
    *p++ = '.';
    put(millis, 3);
  }
  *p++ = 'Z';
  return std::string(buf, p);
}

}  // namespace slipstream
