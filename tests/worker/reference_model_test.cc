// Randomized differential test: the WindowEngine against a deliberately
// simple reference model of the job's Flink semantics, written from the
// output contract (not from the engine):
//
//  Sliding windows, SlidingEventTimeWindows.of(1 h, 10 min), lateness 0:
//    the model keeps every event with the watermark at its arrival. When the
//    watermark moves from `old` to `w`, every window [s, s+1h) with
//    old < s+1h-1 <= w fires (if non-empty) with exactly the events of that
//    user in [s, s+1h) that arrived while the watermark was < s+1h-1.
//  Sessions, EventTimeSessionWindows.withGap(10 min), lateness 0:
//    open sessions per user; a new event's window [t, t+gap) absorbs every
//    open session it intersects (touching included) until nothing changes; a
//    merged window with end-1 <= watermark is late. A session fires once the
//    watermark reaches last + gap - 1.
//
// Each run compares, for every AdvanceWatermark call, the per-user ordered
// sequence of sliding results and of session results, and for every
// ProcessEvent its late/not-late answer. Commit() and Flush() are interleaved
// at random points (in a third of the runs every Commit() flushes); after each
// flush RocksDB must hold exactly the engine's users and timers, and after the
// final huge watermark nothing may be left. On a mismatch the operation list
// is shrunk and printed as a reproduction together with the seed
// (SLIPSTREAM_REFERENCE_SEED=<seed> reruns just that seed).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/worker/engine_test_util.h"

namespace slipstream {
namespace {

using namespace testing_util;  // NOLINT

constexpr int64_t kSlide = 10 * kMin;
constexpr int64_t kSize = kHour;
constexpr int64_t kGap = 10 * kMin;
constexpr int64_t kNoWatermark = std::numeric_limits<int64_t>::min();

// ---------------------------------------------------------------------------
// Reference model

struct ExpectedWrite {
  bool sliding = true;
  std::string user;
  std::string key;
  int ttl = 0;
  // Fields as field/value pairs; for sliding windows the avg value is checked
  // separately (tolerance) against `avg`, with `views` telling whether "0" is
  // required.
  std::vector<std::string> fields;
  long double avg = 0;
  int64_t views = 0;

  std::string Describe() const {
    std::string out = "{" + Escape(key) + " ttl=" + std::to_string(ttl);
    for (size_t i = 0; i < fields.size(); ++i) {
      std::string v = fields[i];
      if (sliding && i == 9) {
        std::ostringstream os;
        os.precision(20);
        os << "~" << avg;
        v = os.str();
      }
      out += (i % 2 == 0 ? " " : "=") + Escape(v);
    }
    return out + "}";
  }
};

// How often the generator reached the interesting cases (checked to be > 0
// over all runs so the randomized test cannot silently become vacuous).
struct Coverage {
  int64_t late_events = 0;             // late for everything
  int64_t partly_late_sliding = 0;     // added to some but not all 6 windows
  int64_t saved_by_session = 0;        // late for all windows, joins an open session
  int64_t late_for_session_only = 0;   // session-late, but some window took it
  int64_t bridging_merges = 0;         // one event merged two or more sessions
  int64_t touching_joins = 0;          // joined a session exactly gap away
  int64_t windows_fired = 0;
  int64_t windows_without_views = 0;
  int64_t sessions_fired = 0;
  int64_t multi_window_steps = 0;      // one advance fired >= 2 windows of a user
  int64_t negative_times = 0;
};

class ReferenceModel {
 public:
  explicit ReferenceModel(Coverage* coverage = nullptr) : cov_(coverage ? coverage : &own_) {}

  int64_t watermark() const { return wm_; }
  int64_t sliding_fired() const { return sliding_fired_; }
  int64_t sessions_fired() const { return sessions_fired_; }
  size_t open_sessions() const {
    size_t n = 0;
    for (const auto& [u, l] : open_) n += l.size();
    return n;
  }

  // Returns false when the event is late for all its windows and sessions.
  bool Process(const Event& e) {
    const int64_t t = e.event_time_ms;
    int windows_in = 0;
    const int64_t latest_start = FloorTo(t, kSlide);
    for (int k = 0; k < 6; ++k) {
      const int64_t s = latest_start - k * kSlide;
      if (s + kSize - 1 > wm_) ++windows_in;
    }
    const bool sliding_in = windows_in > 0;
    if (windows_in > 0 && windows_in < 6) ++cov_->partly_late_sliding;
    if (t < 0) ++cov_->negative_times;
    events_.push_back({e, wm_});

    int64_t first = t, last = t, count = 1;
    std::vector<Sess>& list = open_[e.user_id];
    bool merged = false;
    int merges = 0;
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t i = 0; i < list.size(); ++i) {
        const Sess& o = list[i];
        // [first, last+gap) and [o.first, o.last+gap) intersect, touching included.
        if (first <= o.last + kGap && last + kGap >= o.first) {
          ++merges;
          if (t == o.last + kGap || t + kGap == o.first) ++cov_->touching_joins;
          first = std::min(first, o.first);
          last = std::max(last, o.last);
          count += o.count;
          list.erase(list.begin() + static_cast<ptrdiff_t>(i));
          changed = true;
          merged = true;
          break;
        }
      }
    }
    const bool session_in = last + kGap - 1 > wm_;
    if (merges >= 2) ++cov_->bridging_merges;
    if (!sliding_in && !session_in) ++cov_->late_events;
    if (!sliding_in && session_in) ++cov_->saved_by_session;
    if (sliding_in && !session_in) ++cov_->late_for_session_only;
    if (session_in) {
      list.push_back({first, last, count});
    } else if (merged) {
      ADD_FAILURE() << "reference model invariant: merged session is late";
    }
    return sliding_in || session_in;
  }

  std::vector<ExpectedWrite> Advance(int64_t w) {
    std::vector<ExpectedWrite> out;
    if (w <= wm_) return out;
    const int64_t old = wm_;
    wm_ = w;

    // Sliding: every window whose fire time is in (old, w], by brute force.
    std::set<std::pair<std::string, int64_t>> candidates;
    for (const Stored& st : events_) {
      const int64_t latest_start = FloorTo(st.e.event_time_ms, kSlide);
      for (int k = 0; k < 6; ++k) {
        const int64_t s = latest_start - k * kSlide;
        const int64_t fire = s + kSize - 1;
        if (fire > old && fire <= w) candidates.insert({st.e.user_id, s});
      }
    }
    std::map<std::string, int> fired_per_user;
    for (const auto& [user, s] : candidates) {
      const int64_t end = s + kSize;
      int64_t views = 0, carts = 0, purchases = 0;
      long double sum = 0;
      for (const Stored& st : events_) {
        if (st.e.user_id != user) continue;
        if (st.e.event_time_ms < s || st.e.event_time_ms >= end) continue;
        if (st.arrival_wm >= end - 1) continue;  // arrived after the window was due
        switch (TypeOf(st.e)) {
          case EventType::kView:
            ++views;
            sum += static_cast<long double>(PriceOf(st.e));
            break;
          case EventType::kCart:
            ++carts;
            break;
          case EventType::kPurchase:
            ++purchases;
            break;
        }
      }
      if (views + carts + purchases == 0) continue;
      ExpectedWrite x;
      x.sliding = true;
      x.user = user;
      x.key = "user_features:" + user;
      x.ttl = 7200;
      x.views = views;
      x.avg = views == 0 ? 0.0L : sum / static_cast<long double>(views);
      x.fields = {"user_id",           user,
                  "view_count_1h",     std::to_string(views),
                  "cart_count_1h",     std::to_string(carts),
                  "purchase_count_1h", std::to_string(purchases),
                  "avg_viewed_price_1h", "?",
                  "window_start",      std::to_string(s),
                  "window_end",        std::to_string(end)};
      out.push_back(std::move(x));
      ++sliding_fired_;
      ++cov_->windows_fired;
      if (views == 0) ++cov_->windows_without_views;
      if (++fired_per_user[user] == 2) ++cov_->multi_window_steps;
    }

    // Sessions.
    for (auto& [user, list] : open_) {
      std::vector<Sess> due;
      std::vector<Sess> keep;
      for (const Sess& s : list) (s.last + kGap - 1 <= w ? due : keep).push_back(s);
      std::sort(due.begin(), due.end(), [](const Sess& a, const Sess& b) { return a.last < b.last; });
      for (const Sess& s : due) {
        ExpectedWrite x;
        x.sliding = false;
        x.user = user;
        x.key = "session_features:" + user + ":" + std::to_string(s.first);
        x.ttl = 3600;
        x.fields = {"user_id",          user,
                    "event_count",      std::to_string(s.count),
                    "duration_seconds", std::to_string((s.last - s.first) / 1000),
                    "session_start",    std::to_string(s.first),
                    "session_end",      std::to_string(s.last)};
        out.push_back(std::move(x));
        ++sessions_fired_;
        ++cov_->sessions_fired;
      }
      list = std::move(keep);
    }
    return out;
  }

 private:
  struct Stored {
    Event e;
    int64_t arrival_wm;
  };
  struct Sess {
    int64_t first, last, count;
  };
  int64_t wm_ = kNoWatermark;
  std::vector<Stored> events_;
  std::map<std::string, std::vector<Sess>> open_;
  int64_t sliding_fired_ = 0;
  int64_t sessions_fired_ = 0;
  Coverage own_;
  Coverage* cov_;
};

// ---------------------------------------------------------------------------
// Comparison

std::string CompareWrite(const ExpectedWrite& x, const FeatureWrite& w) {
  auto mismatch = [&](const std::string& why) {
    return why + "\n    want " + x.Describe() + "\n    got  " + Describe(w);
  };
  if (w.key != x.key) return mismatch("key differs");
  if (w.ttl_seconds != x.ttl) return mismatch("ttl differs");
  if (w.fields.size() != x.fields.size()) return mismatch("field count differs");
  for (size_t i = 0; i < x.fields.size(); ++i) {
    if (x.sliding && i == 9) {
      const std::string& text = w.fields[i];
      std::optional<double> v = ParseDouble(text);
      if (!v) return mismatch("avg_viewed_price_1h is not a number");
      if (ShortestDouble(*v) != text) return mismatch("avg_viewed_price_1h is not in shortest round-trip form");
      if (x.views == 0 || x.avg == 0) {
        if (text != "0") return mismatch("avg_viewed_price_1h should be \"0\"");
      } else {
        const long double diff = std::fabs(static_cast<long double>(*v) - x.avg);
        if (diff > 1e-12L * std::fabs(x.avg)) return mismatch("avg_viewed_price_1h outside 1e-12 relative");
      }
      continue;
    }
    if (w.fields[i] != x.fields[i]) return mismatch("field " + std::to_string(i) + " differs");
  }
  return "";
}

// Compares one AdvanceWatermark step: per user, the ordered sliding results
// and the ordered session results.
std::string CompareStep(const std::vector<ExpectedWrite>& want, const std::vector<FeatureWrite>& got) {
  using Group = std::pair<bool, std::string>;  // (sliding, user)
  std::map<Group, std::vector<const ExpectedWrite*>> want_by;
  std::map<Group, std::vector<const FeatureWrite*>> got_by;
  for (const auto& x : want) want_by[{x.sliding, x.user}].push_back(&x);
  for (const auto& w : got) {
    const bool sliding = IsSliding(w);
    if (!sliding && !IsSession(w)) return "unexpected key in output: " + Describe(w);
    std::optional<std::string> user = Field(w, "user_id");
    if (!user) return "output without user_id: " + Describe(w);
    got_by[{sliding, *user}].push_back(&w);
  }
  std::set<Group> groups;
  for (const auto& [g, v] : want_by) groups.insert(g);
  for (const auto& [g, v] : got_by) groups.insert(g);
  for (const Group& g : groups) {
    const auto& xs = want_by[g];
    const auto& ws = got_by[g];
    const std::string what = std::string(g.first ? "sliding" : "session") + " results of user \"" + Escape(g.second) + "\"";
    for (size_t i = 0; i < std::max(xs.size(), ws.size()); ++i) {
      if (i >= ws.size()) return what + ": missing #" + std::to_string(i) + " want " + xs[i]->Describe();
      if (i >= xs.size()) return what + ": unexpected #" + std::to_string(i) + " got " + Describe(*ws[i]);
      std::string diff = CompareWrite(*xs[i], *ws[i]);
      if (!diff.empty()) return what + " #" + std::to_string(i) + ": " + diff;
    }
  }
  return "";
}

// ---------------------------------------------------------------------------
// Operations and their random generation

struct Op {
  enum Kind { kEvent, kAdvance, kCommit, kFlush } kind = kCommit;
  Event event;
  int64_t watermark = 0;

  std::string ToString() const {
    switch (kind) {
      case kEvent:
        return "ProcessEvent(user=\"" + Escape(event.user_id) + "\", t=" + std::to_string(event.event_time_ms) +
               ", " + std::string(EventTypeName(TypeOf(event))) + ", price=" + ShortestDouble(PriceOf(event)) + ")";
      case kAdvance:
        return "AdvanceWatermark(" + std::to_string(watermark) + ")";
      case kCommit:
        return "Commit()";
      case kFlush:
        return "Flush()";
    }
    return "";
  }
};

std::vector<Op> Generate(uint64_t seed) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + 12345);
  auto U = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };

  std::vector<std::string> pool = {"1", "111", "user-7", "a:b", "\xc3\xbc\xe6\x97\xa5", std::string("n\0l", 3), "42"};
  std::shuffle(pool.begin(), pool.end(), rng);
  const int n_users = static_cast<int>(U(1, 5));
  std::vector<std::string> users(pool.begin(), pool.begin() + n_users);

  int64_t base = 0;
  switch (U(0, 3)) {
    case 0: base = 1'700'000'000'000 + U(0, kHour); break;
    case 1: base = FloorTo(1'700'000'000'000, kSlide); break;  // epoch aligned
    case 2: base = -2 * kHour + U(-kHour, kHour); break;         // crosses 1970
    default: base = -U(0, 100 * kHour); break;                   // pre-1970
  }

  int64_t cur = base;
  int64_t sim_wm = kNoWatermark;
  int64_t max_t = kNoWatermark;
  std::map<std::string, int64_t> last_t;
  std::vector<int64_t> times;

  // Dense runs keep users' sessions open for hours, so very old events can
  // still join them.
  const bool dense = U(0, 2) == 0;
  // Chaos runs: event times and watermarks uniformly spread over 4 hours
  // (often on pane boundaries), in no order at all.
  const bool chaos = !dense && U(0, 3) == 0;
  auto chaos_time = [&]() {
    int64_t t = base + U(0, 4 * kHour);
    if (U(0, 2) == 0) t = FloorTo(t, kSlide) + U(-1, 1);
    return t;
  };

  std::vector<Op> ops;
  const int n_ops = static_cast<int>(U(100, 450));
  for (int i = 0; i < n_ops; ++i) {
    const int64_t r = U(0, 99);
    Op op;
    if (r < 58) {
      op.kind = Op::kEvent;
      const std::string& user = users[U(0, n_users - 1)];
      int64_t t = cur;
      const int64_t k = U(0, 99);
      if (k < 35) {  // in order
        if (!dense && U(0, 19) == 0) cur += U(10 * kMin, kHour);  // a pause that ends sessions
        cur += U(0, 3) != 0 ? U(0, dense ? std::min<int64_t>(9 * kMin, 24 * kMin / n_users) : 6 * kMin) : U(0, 2000);
        t = cur;
      } else if (k < 47) {  // out of order within 10 s
        t = cur - U(0, 10'000);
      } else if (k < 50) {  // much older
        t = cur - U(10 * kMin, 2 * kHour);
      } else if (k < 53) {  // late for every sliding window (may still join a session)
        if (sim_wm != kNoWatermark) t = sim_wm - kSize - U(0, 40 * kMin);
      } else if (k < 68) {  // pane / window boundaries
        t = FloorTo(cur, kSlide) + U(-1, 1) - U(0, 1) * kSlide;
      } else if (k < 80) {  // exactly one gap from this user's previous event
        auto it = last_t.find(user);
        if (it != last_t.end()) t = it->second + (U(0, 1) ? kGap : -kGap) + (U(0, 3) == 0 ? U(-1, 1) : 0);
      } else if (k < 88) {  // same time as an earlier event
        if (!times.empty()) t = times[U(0, static_cast<int64_t>(times.size()) - 1)];
      } else if (k < 95) {  // session lateness boundary: t + gap - 1 vs watermark
        if (sim_wm != kNoWatermark) t = sim_wm - kGap + 1 + U(-1, 1);
      } else {  // sliding lateness boundary: latest window's end - 1 vs watermark
        if (sim_wm != kNoWatermark) t = FloorTo(sim_wm - kSize + 1, kSlide) + U(-1, 1) + U(-1, 1) * kSlide;
      }
      if (chaos && U(0, 1) == 0) t = chaos_time();
      EventType type = EventType::kView;
      const int64_t ty = U(0, 9);
      if (ty >= 8) type = EventType::kPurchase;
      else if (ty >= 6) type = EventType::kCart;
      double price = static_cast<double>(U(0, 99'999)) / 100.0;
      if (U(0, 19) == 0) price = 0;
      if (U(0, 49) == 0) price = std::ldexp(static_cast<double>(U(1, 7)), 40) + static_cast<double>(U(0, 99)) / 100.0;
      op.event = MakeEvent(user, t, type, price);
      last_t[user] = t;
      times.push_back(t);
      max_t = std::max(max_t, t);
    } else if (r < 90) {
      op.kind = Op::kAdvance;
      const int64_t base_wm = sim_wm == kNoWatermark ? cur - kHour : sim_wm;
      int64_t w = base_wm;
      const int64_t k = U(0, 99);
      if (k < 25) {  // small step behind the event-time frontier
        w = std::max(base_wm, cur - 10'000 - 1 - U(0, 10 * kMin)) + U(1, 30'000);
      } else if (k < 45) {  // what the tracker would give
        w = max_t == kNoWatermark ? base_wm : max_t - 10'000 - 1;
      } else if (k < 62) {  // exactly a window's end - 1 (or end - 2, or end)
        w = FloorTo(cur, kSlide) + U(-5, 1) * kSlide - 1 + U(-1, 1);
      } else if (k < 77) {  // exactly a session's end - 1 (+-1)
        if (!last_t.empty()) {
          auto it = last_t.begin();
          std::advance(it, U(0, static_cast<int64_t>(last_t.size()) - 1));
          w = it->second + kGap - 1 + U(-1, 1);
        }
      } else if (k < 82) {  // big jump; the stream follows
        w = base_wm + U(30 * kMin, 3 * kHour);
        cur = std::max(cur, w + U(0, 20 * kMin));
      } else {  // backwards (or equal)
        w = U(0, 2) == 0 ? base_wm : base_wm - U(1, kHour);
      }
      // Dense runs mostly keep the watermark behind the newest events, as the
      // tracker would, so long sessions survive.
      if (dense && sim_wm != kNoWatermark && U(0, 9) != 0) w = std::min(w, cur - 10'000 - 1);
      if (chaos && U(0, 1) == 0) w = chaos_time() - 1;
      op.watermark = w;
      sim_wm = std::max(sim_wm, w);
    } else {
      op.kind = U(0, 2) == 0 ? Op::kFlush : Op::kCommit;
    }
    ops.push_back(std::move(op));
  }
  Op last;
  last.kind = Op::kAdvance;
  // Flink's end-of-input watermark is Long.MAX_VALUE.
  const int64_t finals[] = {std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max() / 2,
                            4'000'000'000'000'000'000};
  last.watermark = finals[U(0, 2)];
  ops.push_back(last);
  if (U(0, 1)) ops.push_back(Op{});  // a final Commit
  return ops;
}

// ---------------------------------------------------------------------------
// Execution

// After a flush RocksDB must hold exactly the engine's users and timers:
// one [kg]['u'][user] key per user in memory, one [kg]['t']... key per timer.
std::string CheckStoreMatchesEngine(StateStore& store, const WindowEngine& engine, const std::string& where) {
  int64_t user_keys = 0, timer_keys = 0, other_keys = 0;
  absl::Status s = store.Scan(std::string_view(), std::string_view("\xff\xff\xff\xff", 4),
                              [&](std::string_view key, std::string_view) {
                                if (key.size() < 3) {
                                  ++other_keys;
                                } else if (key[2] == 'u') {
                                  ++user_keys;
                                } else if (key[2] == 't') {
                                  ++timer_keys;
                                } else {
                                  ++other_keys;
                                }
                                return true;
                              });
  if (!s.ok()) return where + ": Scan: " + std::string(s.message());
  const WindowEngineStats st = engine.stats();
  if (user_keys != st.users || timer_keys != st.timers || other_keys != 0) {
    return where + ": after flush RocksDB has " + std::to_string(user_keys) + " user keys, " +
           std::to_string(timer_keys) + " timer keys, " + std::to_string(other_keys) + " other keys; engine has " +
           std::to_string(st.users) + " users, " + std::to_string(st.timers) + " timers";
  }
  return "";
}

// Runs `ops` against a fresh engine and the model. Returns "" when they agree,
// else a description of the first divergence. Appends a trace to `log`.
// With `eager_flush` every Commit() writes through to RocksDB.
std::string Execute(const std::vector<Op>& ops, bool eager_flush, std::string* log, Coverage* coverage = nullptr) {
  TempDir dir;
  auto store_or = StateStore::Open(dir.path() + "/db", StateStoreOptions{});
  if (!store_or.ok()) return "StateStore::Open: " + std::string(store_or.status().message());
  std::unique_ptr<StateStore> store = std::move(*store_or);
  WindowEngineOptions options;
  if (eager_flush) {
    options.flush_interval_ms = 0;
    options.max_pending = 0;
  }
  auto engine = std::make_unique<WindowEngine>(store.get(), KeyGroupRange{0, kMaxParallelism - 1}, options);
  if (log) *log += std::string("  (engine options: ") + (eager_flush ? "every Commit flushes" : "defaults") + ")\n";
  ReferenceModel model(coverage);
  std::string failure;

  for (size_t i = 0; i < ops.size() && failure.empty(); ++i) {
    const Op& op = ops[i];
    const std::string where = "op #" + std::to_string(i) + " " + op.ToString();
    switch (op.kind) {
      case Op::kEvent: {
        auto got = engine->ProcessEvent(KeyGroupForKey(op.event.user_id, kMaxParallelism), op.event);
        const bool want = model.Process(op.event);
        if (!got.ok()) {
          failure = where + ": error " + std::string(got.status().message());
          break;
        }
        if (log) *log += "  " + op.ToString() + " -> " + (*got ? "true" : "false") + "\n";
        if (*got != want) {
          failure = where + ": returned " + (*got ? "true" : "false") + ", model says " + (want ? "true" : "false");
        }
        break;
      }
      case Op::kAdvance: {
        std::vector<FeatureWrite> got;
        absl::Status s = engine->AdvanceWatermark(op.watermark, &got);
        const std::vector<ExpectedWrite> want = model.Advance(op.watermark);
        if (!s.ok()) {
          failure = where + ": error " + std::string(s.message());
          break;
        }
        if (log) *log += "  " + op.ToString() + " -> " + std::to_string(got.size()) + " writes\n";
        std::string diff = CompareStep(want, got);
        if (!diff.empty()) {
          failure = where + ": " + diff + "\n  all got: " + Describe(got);
        } else if (engine->watermark() != model.watermark()) {
          failure = where + ": engine watermark " + std::to_string(engine->watermark()) + ", model " +
                    std::to_string(model.watermark());
        }
        break;
      }
      case Op::kCommit: {
        absl::Status s = engine->Commit();
        if (log) *log += "  Commit()\n";
        if (!s.ok()) {
          failure = where + ": error " + std::string(s.message());
        } else if (eager_flush) {
          failure = CheckStoreMatchesEngine(*store, *engine, where);
        }
        break;
      }
      case Op::kFlush: {
        absl::Status s = engine->Flush();
        if (log) *log += "  Flush()\n";
        if (!s.ok()) {
          failure = where + ": error " + std::string(s.message());
        } else {
          failure = CheckStoreMatchesEngine(*store, *engine, where);
        }
        break;
      }
    }
  }
  // After the final huge watermark nothing may be left: no timers, and after
  // a flush no users in memory and nothing in RocksDB.
  if (failure.empty() && model.watermark() > (int64_t{1} << 61)) {
    if (engine->stats().timers != 0) {
      failure = "after the final watermark the engine still has " + std::to_string(engine->stats().timers) + " timers";
    } else if (absl::Status s = engine->Flush(); !s.ok()) {
      failure = "final Flush: " + std::string(s.message());
    } else if (engine->stats().users != 0) {
      failure = "after the final watermark and a flush the engine still has " +
                std::to_string(engine->stats().users) + " users in memory";
    } else {
      failure = CheckStoreMatchesEngine(*store, *engine, "final flush");
    }
  }
  if (failure.empty()) {
    const WindowEngineStats st = engine->stats();
    if (st.sliding_windows_fired != model.sliding_fired() || st.sessions_fired != model.sessions_fired()) {
      failure = "stats: engine fired " + std::to_string(st.sliding_windows_fired) + " windows / " +
                std::to_string(st.sessions_fired) + " sessions, model " + std::to_string(model.sliding_fired()) +
                " / " + std::to_string(model.sessions_fired());
    }
  }
  engine.reset();
  store.reset();
  return failure;
}

// Greedy shrinking: drops chunks of operations while the run still diverges.
std::vector<Op> Shrink(std::vector<Op> ops, bool eager_flush) {
  for (size_t chunk = std::max<size_t>(1, ops.size() / 2);; chunk /= 2) {
    for (bool progress = true; progress;) {
      progress = false;
      for (size_t i = 0; i + chunk <= ops.size();) {
        std::vector<Op> candidate = ops;
        candidate.erase(candidate.begin() + static_cast<ptrdiff_t>(i),
                        candidate.begin() + static_cast<ptrdiff_t>(i + chunk));
        if (!Execute(candidate, eager_flush, nullptr).empty()) {
          ops = std::move(candidate);
          progress = true;
        } else {
          i += chunk;
        }
      }
    }
    if (chunk == 1) break;
  }
  return ops;
}

constexpr uint64_t kRuns = 200;

// SLIPSTREAM_REFERENCE_RUNS=n runs n seeds instead (for a long soak);
// SLIPSTREAM_REFERENCE_SEED=s runs only seed s (to reproduce a failure).
uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST(ReferenceModel, RandomRunsMatchFlinkSemantics) {
  int failures = 0;
  int64_t events = 0;
  Coverage cov;
  const uint64_t runs = EnvOr("SLIPSTREAM_REFERENCE_RUNS", kRuns);
  const uint64_t first_seed = EnvOr("SLIPSTREAM_REFERENCE_SEED", 0);
  const uint64_t end_seed = std::getenv("SLIPSTREAM_REFERENCE_SEED") ? first_seed + 1 : first_seed + runs;
  for (uint64_t seed = first_seed; seed < end_seed; ++seed) {
    const std::vector<Op> ops = Generate(seed);
    for (const Op& op : ops) events += op.kind == Op::kEvent;
    const bool eager_flush = seed % 3 == 0;
    std::string failure = Execute(ops, eager_flush, nullptr, &cov);
    if (failure.empty()) continue;
    ++failures;
    if (failures == 1) {
      std::vector<Op> small = Shrink(ops, eager_flush);
      std::string trace;
      std::string small_failure = Execute(small, eager_flush, &trace);
      ADD_FAILURE() << "seed " << seed << " (" << ops.size() << " ops): " << failure << "\n\nshrunk to "
                    << small.size() << " ops:\n" << trace << "diverges: " << small_failure;
    } else if (failures <= 5) {
      ADD_FAILURE() << "seed " << seed << ": " << failure;
    }
  }
  EXPECT_EQ(failures, 0) << "of " << (end_seed - first_seed) << " seeds (" << events << " events in all)";
  std::cout << "[ coverage ] events=" << events << " late=" << cov.late_events
            << " partly_late_sliding=" << cov.partly_late_sliding << " saved_by_session=" << cov.saved_by_session
            << " late_for_session_only=" << cov.late_for_session_only << " bridging_merges=" << cov.bridging_merges
            << " touching_joins=" << cov.touching_joins << " windows_fired=" << cov.windows_fired
            << " windows_without_views=" << cov.windows_without_views << " sessions_fired=" << cov.sessions_fired
            << " multi_window_steps=" << cov.multi_window_steps << " negative_times=" << cov.negative_times << "\n";
  if (end_seed - first_seed < kRuns) return;  // a single seed need not reach every case
  EXPECT_GT(cov.late_events, 0);
  EXPECT_GT(cov.partly_late_sliding, 0);
  EXPECT_GT(cov.saved_by_session, 0);
  EXPECT_GT(cov.late_for_session_only, 0);
  EXPECT_GT(cov.bridging_merges, 0);
  EXPECT_GT(cov.touching_joins, 0);
  EXPECT_GT(cov.windows_without_views, 0);
  EXPECT_GT(cov.multi_window_steps, 0);
  EXPECT_GT(cov.negative_times, 0);
}

// The model itself, on a hand-checked scenario, so a wrong model cannot make
// the randomized test vacuous.
TEST(ReferenceModel, ModelSanityOnHandCheckedScenario) {
  ReferenceModel m;
  const int64_t b = 6 * kHour;  // epoch aligned
  EXPECT_TRUE(m.Process(MakeEvent("u", b + 5 * kMin, EventType::kView, 10)));
  EXPECT_TRUE(m.Process(MakeEvent("u", b + 15 * kMin, EventType::kCart, 0)));
  auto out = m.Advance(b + 10 * kMin - 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].fields[11], std::to_string(b - 50 * kMin));
  EXPECT_EQ(out[0].fields[3], "1");
  EXPECT_EQ(out[0].fields[5], "0");
  // Sliding-late for all windows and no session to join: late.
  EXPECT_FALSE(m.Process(MakeEvent("u", b - 2 * kHour)));
  out = m.Advance(b + 25 * kMin - 1);  // session [b+5, b+15+10) fires
  ASSERT_EQ(out.size(), 2u);           // window ending b+20 and the session
  EXPECT_TRUE(out[0].sliding);
  EXPECT_FALSE(out[1].sliding);
  EXPECT_EQ(out[1].fields[3], "2");
  EXPECT_EQ(out[1].fields[5], "600");
  out = m.Advance(std::numeric_limits<int64_t>::max() / 2);
  EXPECT_EQ(out.size(), 5u);  // the remaining windows, ending b+30 .. b+70
  EXPECT_EQ(m.open_sessions(), 0u);
}

}  // namespace
}  // namespace slipstream
