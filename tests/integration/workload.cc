#include "tests/integration/workload.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <queue>
#include <random>
#include <utility>

namespace slipstream::it {

namespace {

// Deterministic on every platform: only raw mt19937_64 output is used (the
// standard distributions are implementation-defined).
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  uint64_t Next() { return engine_(); }
  // Uniform in [lo, hi] (tiny modulo bias is irrelevant here).
  int64_t Uniform(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1)); }
  bool Chance(double p) { return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p; }

 private:
  std::mt19937_64 engine_;
};

int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, int64_t* m, int64_t* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = yoe + era * 400 + (*m <= 2);
}

std::string PriceText(int64_t cents, Rng& rng) {
  char buf[64];
  const int64_t r = rng.Uniform(0, 99);
  if (r < 4 && cents % 100 == 0) {
    std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(cents / 100));
  } else if (r < 6) {
    std::snprintf(buf, sizeof(buf), "%llde-2", static_cast<long long>(cents));  // 12345e-2 == 123.45
  } else if (r < 8) {
    std::snprintf(buf, sizeof(buf), "%lld.%02lld00", static_cast<long long>(cents / 100),
                  static_cast<long long>(cents % 100));
  } else {
    std::snprintf(buf, sizeof(buf), "%lld.%02lld", static_cast<long long>(cents / 100),
                  static_cast<long long>(cents % 100));
  }
  return buf;
}

const char* KindName(EventKind kind) {
  switch (kind) {
    case EventKind::kView:
      return "view";
    case EventKind::kCart:
      return "cart";
    case EventKind::kPurchase:
      return "purchase";
  }
  return "?";
}

bool IsPlainInteger(const std::string& s) {
  if (s.empty() || s.size() > 15 || (s.size() > 1 && s[0] == '0')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A valid event's JSON in one of several equivalent layouts.
std::string EventJson(const ValidEvent& e, Rng& rng) {
  const int64_t layout = rng.Uniform(0, 99);
  TimeFormat format = TimeFormat::kZuluMillis;
  if (rng.Chance(0.05)) format = static_cast<TimeFormat>(rng.Uniform(1, 4));
  const std::string time = "\"" + FormatTime(e.time_ms, format) + "\"";
  const std::string type = std::string("\"") + KindName(e.kind) + "\"";
  std::string user = "\"" + JsonEscape(e.user) + "\"";
  if (IsPlainInteger(e.user) && rng.Chance(0.1)) user = e.user;  // JSON integer user id
  const std::string price = PriceText(e.price_cents, rng);
  if (layout < 90) {
    return "{\"event_time\": " + time + ", \"event_type\": " + type + ", \"user_id\": " + user +
           ", \"price\": " + price + "}";
  }
  if (layout < 95) {
    return "{\"price\":" + price + ",\"user_id\":" + user + ",\"event_type\":" + type + ",\"event_time\":" + time +
           "}";
  }
  if (layout < 98) {
    return "{\"event_time\": " + time + ", \"source\": \"web\", \"event_type\": " + type +
           ", \"meta\": {\"a\": [1, 2.5, null, true, {\"b\": \"x\"}]}, \"user_id\": " + user + ", \"price\": " + price +
           "}";
  }
  return "\n  {\n\t\"user_id\" : " + user + " ,\n\t\"event_time\" : " + time + " ,\r\n \"price\" : " + price +
         " , \"event_type\" : " + type + "\n}\n ";
}

// An invalid record built around a plausible event; `code` gets its reason code.
std::string MalformedJson(int kind, int64_t time_ms, const std::string& user, Rng& rng, std::string* code) {
  const std::string t = FormatTime(time_ms);
  const std::string u = JsonEscape(user);
  const std::string good =
      "{\"event_time\": \"" + t + "\", \"event_type\": \"view\", \"user_id\": \"" + u + "\", \"price\": 12.5}";
  switch (kind) {
    case 0:
      *code = "malformed_json";
      return "this is not json";
    case 1:
      *code = "malformed_json";
      return good.substr(0, static_cast<size_t>(rng.Uniform(1, static_cast<int64_t>(good.size()) - 2)));
    case 2:
      *code = "malformed_json";
      return "";
    case 3:
      *code = "malformed_json";
      return "[1, 2, 3]";
    case 4:
      *code = "malformed_json";
      return good + " trailing";
    case 5:
      *code = "missing_field";
      return "{\"event_time\": \"" + t + "\", \"event_type\": \"cart\", \"price\": 3.5}";
    case 6:
      *code = "missing_field";
      return "{\"event_time\": \"" + t + "\", \"event_type\": \"view\", \"user_id\": \"" + u + "\"}";
    case 7:
      *code = "missing_field";
      return "{\"event_type\": \"purchase\", \"user_id\": \"" + u + "\", \"price\": 99.99}";
    case 8:
      *code = "wrong_type";
      return "{\"event_time\": \"" + t + "\", \"event_type\": \"view\", \"user_id\": \"" + u + "\", \"price\": \"29.99\"}";
    case 9:
      *code = "wrong_type";
      return "{\"event_time\": " + std::to_string(time_ms) + ", \"event_type\": \"view\", \"user_id\": \"" + u +
             "\", \"price\": 1}";
    case 10:
      *code = "invalid_event_type";
      return "{\"event_time\": \"" + t + "\", \"event_type\": \"click\", \"user_id\": \"" + u + "\", \"price\": 1.25}";
    case 11:
      *code = "invalid_event_time";
      return "{\"event_time\": \"2024-02-30T10:00:00Z\", \"event_type\": \"view\", \"user_id\": \"" + u +
             "\", \"price\": 1.25}";
    case 12:
      *code = "invalid_event_time";
      return "{\"event_time\": \"yesterday at noon\", \"event_type\": \"view\", \"user_id\": \"" + u +
             "\", \"price\": 1.25}";
    case 13:
      *code = "invalid_user_id";
      return "{\"event_time\": \"" + t + "\", \"event_type\": \"view\", \"user_id\": \"\", \"price\": 1.25}";
    case 14:
      *code = "invalid_price";
      return "{\"event_time\": \"" + t + "\", \"event_type\": \"view\", \"user_id\": \"" + u + "\", \"price\": -1.5}";
    case 15:
      *code = "wrong_type";
      return "{\"event_time\": \"" + t + "\", \"event_type\": \"view\", \"user_id\": null, \"price\": 1.25}";
    case 16:
      *code = "malformed_json";
      return std::string("\xff\xfe{\"event_time\": \"") + t + "\"}";
    case 17:
      *code = "malformed_json";
      return "{\"event_time\": \"" + t + "\", \"event_type\": \"view\", \"event_type\": \"cart\", \"user_id\": \"" + u +
             "\", \"price\": 1.25}";
    case 18:
      *code = "invalid_event_type";
      return "{\"event_time\": \"" + t + "\", \"event_type\": \"VIEW\", \"user_id\": \"" + u + "\", \"price\": 1.25}";
    case 19:
      *code = "wrong_type";
      return "{\"event_time\": \"" + t + "\", \"event_type\": \"view\", \"user_id\": 12.5, \"price\": 1.25}";
    default:
      *code = "missing_field";
      return "{}";
  }
}
constexpr int kMalformedKinds = 21;

}  // namespace

int64_t FloorTo(int64_t t, int64_t unit) {
  int64_t q = t / unit;
  if ((t % unit) != 0 && ((t < 0) != (unit < 0))) --q;
  return q * unit;
}

int64_t EpochMs(int year, int month, int day, int hour, int minute, int second, int millis) {
  return ((DaysFromCivil(year, month, day) * 24 + hour) * 60 + minute) * 60000 + second * 1000LL + millis;
}

std::string FormatTime(int64_t epoch_ms, TimeFormat format) {
  int offset_minutes = 0;
  if (format == TimeFormat::kPlusTwo) offset_minutes = 120;
  if (format == TimeFormat::kMinusFiveThirty) offset_minutes = -330;
  const int64_t local = epoch_ms + offset_minutes * kMinuteMs;
  const int64_t day = FloorTo(local, 86400000) / 86400000;
  const int64_t ms_of_day = local - day * 86400000;
  int64_t y = 0, m = 0, d = 0;
  CivilFromDays(day, &y, &m, &d);
  char buf[80];
  const int n = std::snprintf(buf, sizeof(buf), "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lld",
                              static_cast<long long>(y), static_cast<long long>(m), static_cast<long long>(d),
                              static_cast<long long>(ms_of_day / 3600000), static_cast<long long>(ms_of_day / 60000 % 60),
                              static_cast<long long>(ms_of_day / 1000 % 60), static_cast<long long>(ms_of_day % 1000));
  std::string out(buf, static_cast<size_t>(n));
  switch (format) {
    case TimeFormat::kZuluMillis:
      return out + "Z";
    case TimeFormat::kZeroOffset:
      return out + "+00:00";
    case TimeFormat::kPlusTwo:
      return out + "+02:00";
    case TimeFormat::kMinusFiveThirty:
      return out + "-05:30";
    case TimeFormat::kMicros:
      return out + "000Z";
  }
  return out;
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string CanonicalEventJson(const std::string& user, int64_t time_ms, EventKind kind, int64_t price_cents) {
  char price[40];
  std::snprintf(price, sizeof(price), "%lld.%02lld", static_cast<long long>(price_cents / 100),
                static_cast<long long>(price_cents % 100));
  return "{\"event_time\": \"" + FormatTime(time_ms) + "\", \"event_type\": \"" + KindName(kind) +
         "\", \"user_id\": \"" + JsonEscape(user) + "\", \"price\": " + price + "}";
}

Workload GenerateWorkload(const WorkloadOptions& options) {
  Rng rng(options.seed);
  Workload w;
  w.start_ms = EpochMs(2024, 3, 10, 8, 3, 17, 123);

  // Users: mostly numeric ids, plus ids that need care in JSON, Kafka keys
  // and Redis keys.
  const std::vector<std::string> special = {"alice",       "bob-7",      "jos\xc3\xa9",      "user:with:colons",
                                            "\xe5\x90\x8d\xe5\x89\x8d", "quote\"d",   "back\\slash",     "space user",
                                            "UPPER_case",  "0"};
  for (int i = 0; i < options.users - static_cast<int>(special.size()); ++i) w.users.push_back(std::to_string(1000 + 7 * i));
  for (const std::string& s : special) w.users.push_back(s);
  const int n_users = static_cast<int>(w.users.size());

  struct UserState {
    bool online = false;
    bool heavy = false;
    int online_pos = -1;
    int64_t max_time = INT64_MIN;
  };
  std::vector<UserState> state(n_users);
  std::vector<int> online;
  auto set_online = [&](int u) {
    if (state[u].online) return;
    state[u].online = true;
    state[u].online_pos = static_cast<int>(online.size());
    online.push_back(u);
  };
  auto set_offline = [&](int u) {
    if (!state[u].online) return;
    const int pos = state[u].online_pos;
    const int last = online.back();
    online[pos] = last;
    state[last].online_pos = pos;
    online.pop_back();
    state[u].online = false;
    state[u].online_pos = -1;
  };
  using Entry = std::pair<int64_t, int>;  // (time, user)
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> toggles;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> forced;
  for (int u = 0; u < n_users; ++u) {
    if (u % 100 == 3) {  // a few users never go offline: sessions hours long
      state[u].heavy = true;
      set_online(u);
      continue;
    }
    if (rng.Chance(0.35)) set_online(u);
    toggles.emplace(w.start_ms + rng.Uniform(0, 25 * kMinuteMs), u);
  }

  auto emit = [&](int u, int64_t t) {
    ValidEvent e;
    e.user = w.users[u];
    e.time_ms = t;
    const int64_t r = rng.Uniform(0, 99);
    e.kind = r < 70 ? EventKind::kView : r < 90 ? EventKind::kCart : EventKind::kPurchase;
    e.price_cents = rng.Chance(0.01) ? 0 : rng.Uniform(1, 99999);
    state[u].max_time = std::max(state[u].max_time, t);
    w.max_time_ms = std::max(w.max_time_ms, t);
    RecordSpec rec;
    rec.key = e.user;
    rec.value = EventJson(e, rng);
    rec.event_index = static_cast<int>(w.valid.size());
    w.valid.push_back(std::move(e));
    w.records.push_back(std::move(rec));
  };

  for (int i = 0; i < options.valid_events; ++i) {
    const int64_t base = w.start_ms + i * options.step_ms;
    while (!toggles.empty() && toggles.top().first <= base) {
      const auto [at, u] = toggles.top();
      toggles.pop();
      if (state[u].online) {
        set_offline(u);
        const int64_t mode = rng.Uniform(0, 99);
        if (mode < 25 && state[u].max_time != INT64_MIN) {
          // Come back exactly one gap after the last event (sessions touch
          // and merge) or one millisecond later (they do not).
          forced.emplace(state[u].max_time + kGapMs + (rng.Next() & 1), u);
        } else if (mode < 50) {
          toggles.emplace(at + rng.Uniform(4 * kMinuteMs, 12 * kMinuteMs), u);
        } else {
          toggles.emplace(at + rng.Uniform(12 * kMinuteMs, 80 * kMinuteMs), u);
        }
      } else {
        set_online(u);
        toggles.emplace(at + rng.Uniform(3 * kMinuteMs, 25 * kMinuteMs), u);
      }
    }

    if (rng.Chance(options.malformed_fraction)) {
      const int kind = static_cast<int>(rng.Uniform(0, kMalformedKinds - 1));
      const int u = static_cast<int>(rng.Uniform(0, n_users - 1));
      RecordSpec rec;
      rec.value = MalformedJson(kind, base - rng.Uniform(0, kMaxJitterMs), w.users[u], rng, &rec.dlq_code);
      const int64_t key_mode = rng.Uniform(0, 9);
      if (key_mode < 4) {
        rec.key = w.users[u];
      } else if (key_mode < 7) {
        std::string garbage(static_cast<size_t>(rng.Uniform(1, 16)), '\0');
        for (char& c : garbage) c = static_cast<char>(rng.Next() & 0xff);
        rec.key = garbage;
      }  // else: null key
      ++w.malformed;
      ++w.malformed_by_code[rec.dlq_code];
      w.records.push_back(std::move(rec));
    }

    if (!forced.empty() && forced.top().first <= base) {
      const auto [f, u] = forced.top();
      forced.pop();
      if (f >= base - kMaxJitterMs) emit(u, f);
      set_online(u);
      toggles.emplace(std::max(f, base) + rng.Uniform(3 * kMinuteMs, 25 * kMinuteMs), u);
      if (f >= base - kMaxJitterMs) continue;
    }

    const int u = online.empty() ? static_cast<int>(rng.Uniform(0, n_users - 1))
                                 : online[static_cast<size_t>(rng.Uniform(0, static_cast<int64_t>(online.size()) - 1))];
    int64_t t = base - rng.Uniform(0, kMaxJitterMs);
    const int64_t boundary = FloorTo(base, kSlideMs);
    if (boundary >= base - kMaxJitterMs && rng.Chance(0.3)) {
      // Exactly on a pane boundary, or the millisecond before it.
      t = (rng.Next() & 1) && boundary - 1 >= base - kMaxJitterMs ? boundary - 1 : boundary;
    }
    emit(u, t);
  }
  return w;
}

std::vector<ValidEvent> BehindWatermarkEvents(const std::vector<ValidEvent>& events, int64_t watermark, int count,
                                              uint64_t seed) {
  Rng rng(seed);
  std::map<std::string, std::vector<int64_t>> times;
  for (const ValidEvent& e : events) times[e.user].push_back(e.time_ms);
  std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> candidates;  // user, [lo, hi] for t
  for (auto& [user, list] : times) {
    std::sort(list.begin(), list.end());
    const int64_t last = list.back();
    size_t i = list.size() - 1;
    while (i > 0 && list[i] - list[i - 1] <= kGapMs) --i;
    const int64_t first = list[i];  // start of the user's last session
    // Open at `watermark` (with a margin), and started before it.
    if (last + kGapMs - 1 <= watermark + kMinuteMs || first > watermark) continue;
    const int64_t lo = std::max(first, watermark - 90 * kMinuteMs);
    const int64_t hi = std::min(last, watermark);
    if (lo <= hi) candidates.push_back({user, {lo, hi}});
  }
  std::vector<ValidEvent> out;
  for (size_t k = 0; k < candidates.size() && static_cast<int>(out.size()) < count; ++k) {
    // Spread the picks over the candidate list deterministically.
    const size_t j = k + static_cast<size_t>(rng.Uniform(0, static_cast<int64_t>(candidates.size() - k) - 1));
    std::swap(candidates[k], candidates[j]);
    const auto& [user, range] = candidates[k];
    ValidEvent e;
    e.user = user;
    // Half of them on exactly the watermark or a pane boundary behind it.
    e.time_ms = rng.Uniform(range.first, range.second);
    if (k % 4 == 0) e.time_ms = range.second;
    if (k % 4 == 1 && FloorTo(range.second, kSlideMs) >= range.first) e.time_ms = FloorTo(range.second, kSlideMs);
    const int64_t r = rng.Uniform(0, 2);
    e.kind = r == 0 ? EventKind::kView : r == 1 ? EventKind::kCart : EventKind::kPurchase;
    e.price_cents = rng.Uniform(1, 99999);
    e.arrival_watermark = watermark;
    out.push_back(std::move(e));
  }
  return out;
}

ReferenceModel::ReferenceModel(const std::vector<ValidEvent>& events) {
  std::map<std::string, std::vector<const ValidEvent*>> by_user;
  for (const ValidEvent& e : events) by_user[e.user].push_back(&e);
  for (auto& [user, list] : by_user) {
    std::stable_sort(list.begin(), list.end(),
                     [](const ValidEvent* a, const ValidEvent* b) { return a->time_ms < b->time_ms; });
    // Sliding windows: each event is in the six windows starting at its pane
    // and the five panes before it.
    std::map<int64_t, ExpectedWindow> windows;
    for (const ValidEvent* e : list) {
      const int64_t pane = FloorTo(e->time_ms, kSlideMs);
      for (int k = 0; k < kWindowMs / kSlideMs; ++k) {
        const int64_t start = pane - k * kSlideMs;
        if (start + kWindowMs - 1 <= e->arrival_watermark) continue;  // fired before the event arrived
        ExpectedWindow& win = windows[start];
        win.start = start;
        switch (e->kind) {
          case EventKind::kView:
            ++win.views;
            win.view_price_cents += e->price_cents;
            break;
          case EventKind::kCart:
            ++win.carts;
            break;
          case EventKind::kPurchase:
            ++win.purchases;
            break;
        }
      }
    }
    sliding_windows_ += static_cast<int64_t>(windows.size());
    user_features_[user] = windows.rbegin()->second;
    std::vector<ExpectedWindow>& all = windows_[user];
    for (const auto& [start, win] : windows) all.push_back(win);

    // Sessions: split where consecutive events are more than one gap apart.
    ExpectedSession current{user, list.front()->time_ms, list.front()->time_ms, 0};
    auto flush = [&] { sessions_["session_features:" + user + ":" + std::to_string(current.first_ms)] = current; };
    for (const ValidEvent* e : list) {
      if (e->time_ms - current.last_ms > kGapMs) {
        flush();
        current = ExpectedSession{user, e->time_ms, e->time_ms, 0};
      }
      current.last_ms = e->time_ms;
      ++current.count;
    }
    flush();
  }
}

}  // namespace slipstream::it
