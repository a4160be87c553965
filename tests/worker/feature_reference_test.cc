// Randomized differential test of declared features: the WindowEngine running
// a multi-group definition (tumbling, sliding with slide dividing the size and
// not, sessions; every aggregate, with and without filters) against a
// deliberately naive model written from docs/features.md, not from the
// engine. The model keeps every event with the watermark at its arrival; a
// window fires (if non-empty) with exactly the events of the key in it that
// arrived while the watermark was before its max timestamp; it evaluates
// filters with C++ lambdas written beside the YAML, and aggregates by
// recomputing from the window's events. Sums use quarter values, exact in
// doubles, so the model's plain sums must equal the engine's exactly.
//
// Compared: for every key (Redis key), the sequence of written field lists.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/features/feature_definition.h"
#include "tests/worker/engine_test_util.h"
#include "worker/window/distinct_values.h"
#include "worker/window/feature_program.h"

namespace slipstream {
namespace {

using namespace testing_util;  // NOLINT

constexpr char kDefinition[] = R"yaml(
input:
  key: user
  event_time: {field: ts, format: epoch_millis}
  fields:
    - {name: ts, type: long}
    - {name: user, type: string}
    - {name: kind, type: string, allowed: [a, b, c]}
    - {name: amount, type: double}
    - {name: qty, type: long}
    - {name: flag, type: boolean}
    - {name: tag, type: string, required: false}
groups:
  - name: tumbling
    window: {type: tumbling, size: 5 min}
    key: "t:{user}"
    ttl: 1 h
    features:
      - user
      - {name: n, aggregate: count}
      - {name: n_a, aggregate: count, filter: "kind == 'a'"}
      - {name: amount_sum, aggregate: sum, field: amount}
      - {name: qty_sum, aggregate: sum, field: qty, filter: "qty > 2 and not flag"}
      - {name: amount_avg_ab, aggregate: avg, field: amount, filter: "kind in ('a', 'b')"}
      - {name: amount_min, aggregate: min, field: amount}
      - {name: qty_max, aggregate: max, field: qty}
      - {name: tag_first, aggregate: first, field: tag}
      - {name: tag_last, aggregate: last, field: tag}
      - {name: tag_min, aggregate: min, field: tag}
      - {name: tag_max, aggregate: max, field: tag, filter: "kind != 'c'"}
      - {name: tags, aggregate: count_distinct, field: tag}
      - event_count
      - window_start
      - window_end
  - name: sliding
    window: {type: sliding, size: 30 min, slide: 10 min}
    key: "s:{user}"
    ttl: 1 h
    features:
      - {name: qty_flag, aggregate: sum, field: qty, filter: flag}
      - {name: qty_avg, aggregate: avg, field: qty}
      - {name: amount_first, aggregate: first, field: amount}
      - {name: amount_last, aggregate: last, field: amount, filter: "amount >= 2.5 or kind = 'c'"}
      - {name: qtys, aggregate: count_distinct, field: qty}
      - window_end
  - name: odd_slide
    window: {type: sliding, size: 25 min, slide: 10 min}
    key: "o:{user}:{window_start}"
    ttl: 1 h
    features:
      - {name: n, aggregate: count}
      - {name: tag_avg_present, aggregate: count, filter: "tag == 'x'"}
      - window_start
      - window_end
  - name: session
    window: {type: session, gap: 5 min}
    key: "se:{user}:{session_start}"
    ttl: 1 h
    features:
      - {name: b, aggregate: count, filter: "kind == 'b'"}
      - {name: amount_sum, aggregate: sum, field: amount}
      - {name: kind_last, aggregate: last, field: kind}
      - {name: flags, aggregate: count_distinct, field: flag}
      - event_count
      - session_start
      - session_end
      - duration_seconds
)yaml";

struct TestEvent {
  int64_t t;
  std::string user;
  std::string kind;
  double amount;
  int64_t qty;
  bool flag;
  std::optional<std::string> tag;
};

Event ToEvent(const TestEvent& e) {
  Event out;
  out.event_time_ms = e.t;
  out.user_id = e.user;
  out.fields.resize(7);
  for (FieldValue& v : out.fields) v.present = true;
  out.fields[0].long_value = e.t;
  out.fields[1].string_value = e.user;
  out.fields[2].string_value = e.kind;
  out.fields[3].double_value = e.amount;
  out.fields[4].long_value = e.qty;
  out.fields[5].long_value = e.flag ? 1 : 0;
  out.fields[6].present = e.tag.has_value();
  if (e.tag) out.fields[6].string_value = *e.tag;
  return out;
}

std::string Num(double v) { return FormatDouble(v); }

// --- The model ---------------------------------------------------------------

using Fields = std::vector<std::string>;
using Writes = std::map<std::string, std::vector<Fields>>;

template <typename T, typename Less = std::less<T>>
std::optional<T> Pick(const std::vector<const TestEvent*>& events, const std::function<std::optional<T>(const TestEvent&)>& get,
                      bool first_by_time, bool last_by_time, bool min, Less less = Less()) {
  std::optional<T> best;
  int64_t best_t = 0;
  for (const TestEvent* e : events) {
    std::optional<T> v = get(*e);
    if (!v) continue;
    bool take = !best;
    if (best) {
      if (first_by_time) take = e->t < best_t || (e->t == best_t && less(*v, *best));
      else if (last_by_time) take = e->t > best_t || (e->t == best_t && less(*best, *v));
      else take = min ? less(*v, *best) : less(*best, *v);
    }
    if (take) {
      best = v;
      best_t = e->t;
    }
  }
  return best;
}

std::vector<const TestEvent*> Where(const std::vector<const TestEvent*>& events,
                                    const std::function<bool(const TestEvent&)>& pred) {
  std::vector<const TestEvent*> out;
  for (const TestEvent* e : events)
    if (pred(*e)) out.push_back(e);
  return out;
}

Fields TumblingFields(const std::string& user, int64_t start, int64_t end, const std::vector<const TestEvent*>& ev) {
  auto all = [](const TestEvent&) { return true; };
  const auto ab = Where(ev, [](const TestEvent& e) { return e.kind == "a" || e.kind == "b"; });
  double sum_ab = 0;
  for (const TestEvent* e : ab) sum_ab += e->amount;
  double sum = 0;
  int64_t qty_sum = 0;
  for (const TestEvent* e : ev) sum += e->amount;
  for (const TestEvent* e : Where(ev, [](const TestEvent& e) { return e.qty > 2 && !e.flag; })) qty_sum += e->qty;
  auto tag = [](const TestEvent& e) { return e.tag; };
  auto amount = [](const TestEvent& e) { return std::optional<double>(e.amount); };
  auto qty = [](const TestEvent& e) { return std::optional<int64_t>(e.qty); };
  std::set<std::string> tags;
  for (const TestEvent* e : ev)
    if (e->tag) tags.insert(*e->tag);
  const auto not_c = Where(ev, [](const TestEvent& e) { return e.kind != "c"; });
  (void)all;
  return {"user", user,
          "n", absl::StrCat(ev.size()),
          "n_a", absl::StrCat(Where(ev, [](const TestEvent& e) { return e.kind == "a"; }).size()),
          "amount_sum", Num(sum),
          "qty_sum", absl::StrCat(qty_sum),
          "amount_avg_ab", ab.empty() ? "0" : Num(sum_ab / static_cast<double>(ab.size())),
          "amount_min", Num(*Pick<double>(ev, amount, false, false, true)),
          "qty_max", absl::StrCat(*Pick<int64_t>(ev, qty, false, false, false)),
          "tag_first", Pick<std::string>(ev, tag, true, false, false).value_or(""),
          "tag_last", Pick<std::string>(ev, tag, false, true, false).value_or(""),
          "tag_min", Pick<std::string>(ev, tag, false, false, true).value_or(""),
          "tag_max", Pick<std::string>(not_c, tag, false, false, false).value_or(""),
          "tags", absl::StrCat(tags.size()),
          "event_count", absl::StrCat(ev.size()),
          "window_start", absl::StrCat(start),
          "window_end", absl::StrCat(end)};
}

Fields SlidingFields(const std::string&, int64_t, int64_t end, const std::vector<const TestEvent*>& ev) {
  int64_t qty_flag = 0, qty_total = 0;
  std::set<int64_t> qtys;
  for (const TestEvent* e : ev) {
    if (e->flag) qty_flag += e->qty;
    qty_total += e->qty;
    qtys.insert(e->qty);
  }
  auto amount = [](const TestEvent& e) { return std::optional<double>(e.amount); };
  const auto last_pool = Where(ev, [](const TestEvent& e) { return e.amount >= 2.5 || e.kind == "c"; });
  const std::optional<double> last = Pick<double>(last_pool, amount, false, true, false);
  return {"qty_flag", absl::StrCat(qty_flag),
          "qty_avg", Num(static_cast<double>(qty_total) / static_cast<double>(ev.size())),
          "amount_first", Num(*Pick<double>(ev, amount, true, false, false)),
          "amount_last", last ? Num(*last) : "",
          "qtys", absl::StrCat(qtys.size()),
          "window_end", absl::StrCat(end)};
}

Fields OddFields(const std::string&, int64_t start, int64_t end, const std::vector<const TestEvent*>& ev) {
  return {"n", absl::StrCat(ev.size()),
          "tag_avg_present", absl::StrCat(Where(ev, [](const TestEvent& e) { return e.tag == "x"; }).size()),
          "window_start", absl::StrCat(start),
          "window_end", absl::StrCat(end)};
}

Fields SessionFields(const std::vector<const TestEvent*>& ev) {
  int64_t first = INT64_MAX, last = INT64_MIN;
  double sum = 0;
  std::set<bool> flags;
  for (const TestEvent* e : ev) {
    first = std::min(first, e->t);
    last = std::max(last, e->t);
    sum += e->amount;
    flags.insert(e->flag);
  }
  auto kind = [](const TestEvent& e) { return std::optional<std::string>(e.kind); };
  return {"b", absl::StrCat(Where(ev, [](const TestEvent& e) { return e.kind == "b"; }).size()),
          "amount_sum", Num(sum),
          "kind_last", *Pick<std::string>(ev, kind, false, true, false),
          "flags", absl::StrCat(flags.size()),
          "event_count", absl::StrCat(ev.size()),
          "session_start", absl::StrCat(first),
          "session_end", absl::StrCat(last),
          "duration_seconds", absl::StrCat((last - first) / 1000)};
}

struct PaneGroupModel {
  std::string prefix;
  int64_t size, slide;
  bool key_has_start;
  std::function<Fields(const std::string&, int64_t, int64_t, const std::vector<const TestEvent*>&)> fields;
};

class Model {
 public:
  Model() {
    groups_ = {{"t:", 5 * kMin, 5 * kMin, false, TumblingFields},
               {"s:", 30 * kMin, 10 * kMin, false, SlidingFields},
               {"o:", 25 * kMin, 10 * kMin, true, OddFields}};
  }

  // Returns whether the event is accepted by any window (not late for all).
  bool Add(const TestEvent& e) {
    bool accepted = false;
    for (const PaneGroupModel& g : groups_) {
      for (int64_t start = FloorTo(e.t, g.slide); start > e.t - g.size; start -= g.slide) {
        if (start + g.size - 1 > watermark_) accepted = true;
      }
    }
    // Sessions: the event's window [t, t+gap) merged with every open session
    // it touches, until nothing changes.
    auto& open = sessions_[e.user];
    int64_t lo = e.t, hi = e.t;
    std::vector<size_t> hit;
    bool changed = true;
    while (changed) {
      changed = false;
      for (size_t i = 0; i < open.size(); ++i) {
        if (std::find(hit.begin(), hit.end(), i) != hit.end()) continue;
        const auto [f, l] = Bounds(open[i]);
        if (f <= hi + kGap && l + kGap >= lo) {
          hit.push_back(i);
          lo = std::min(lo, f);
          hi = std::max(hi, l);
          changed = true;
        }
      }
    }
    if (hi + kGap - 1 > watermark_) {
      accepted = true;
      std::vector<TestEvent> merged{e};
      std::sort(hit.rbegin(), hit.rend());
      for (size_t i : hit) {
        merged.insert(merged.end(), open[i].begin(), open[i].end());
        open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));
      }
      open.push_back(std::move(merged));
    }
    if (accepted) events_.push_back({e, watermark_});
    return accepted;
  }

  void Advance(int64_t w, Writes* out) {
    if (w <= watermark_) return;
    const int64_t old = watermark_;
    watermark_ = w;
    for (const PaneGroupModel& g : groups_) {
      // Every window end in (old + 1, w + 1] that some event's window has.
      std::map<std::pair<std::string, int64_t>, std::vector<const TestEvent*>> windows;  // (user, end)
      for (const Stored& s : events_) {
        for (int64_t start = FloorTo(s.e.t, g.slide); start > s.e.t - g.size; start -= g.slide) {
          const int64_t end = start + g.size;
          if (end - 1 > old && end - 1 <= w && s.arrival < end - 1) windows[{s.e.user, end}].push_back(&s.e);
        }
      }
      for (const auto& [key, events] : windows) {
        const int64_t end = key.second;
        const std::string redis_key =
            g.key_has_start ? absl::StrCat(g.prefix, key.first, ":", end - g.size) : g.prefix + key.first;
        (*out)[redis_key].push_back(g.fields(key.first, end - g.size, end, events));
      }
    }
    for (auto& [user, open] : sessions_) {
      std::vector<std::vector<TestEvent>> still;
      std::vector<std::vector<TestEvent>> due;
      for (auto& s : open) (Bounds(s).second + kGap - 1 <= w ? due : still).push_back(std::move(s));
      std::sort(due.begin(), due.end(), [](const auto& a, const auto& b) { return Bounds(a) < Bounds(b); });
      for (const auto& s : due) {
        std::vector<const TestEvent*> ptrs;
        for (const TestEvent& e : s) ptrs.push_back(&e);
        (*out)[absl::StrCat("se:", user, ":", Bounds(s).first)].push_back(SessionFields(ptrs));
      }
      open = std::move(still);
    }
  }

 private:
  static constexpr int64_t kGap = 5 * kMin;
  struct Stored {
    TestEvent e;
    int64_t arrival;
  };
  static std::pair<int64_t, int64_t> Bounds(const std::vector<TestEvent>& s) {
    int64_t f = INT64_MAX, l = INT64_MIN;
    for (const TestEvent& e : s) {
      f = std::min(f, e.t);
      l = std::max(l, e.t);
    }
    return {f, l};
  }
  std::vector<PaneGroupModel> groups_;
  std::deque<Stored> events_;
  std::map<std::string, std::vector<std::vector<TestEvent>>> sessions_;
  int64_t watermark_ = INT64_MIN;
};

std::shared_ptr<const FeatureProgram> TestProgram() {
  absl::StatusOr<FeatureDefinition> parsed = ParseFeatureDefinition(kDefinition, "test.yaml");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  if (!parsed.ok()) return nullptr;
  auto program = FeatureProgram::Compile(std::make_shared<const FeatureDefinition>(*std::move(parsed)));
  EXPECT_TRUE(program.ok()) << program.status();
  return program.ok() ? *program : nullptr;
}

void RunSeed(uint64_t seed, const std::shared_ptr<const FeatureProgram>& program) {
  std::mt19937_64 rng(seed);
  WindowEngineOptions options;
  options.program = program;
  if (rng() % 3 == 0) options.max_pending = 1;  // every Commit writes
  EngineHarness harness(options);
  ASSERT_TRUE(harness.ok());
  Model model;
  Writes want, got;
  static const char* kKinds[] = {"a", "b", "c"};
  static const char* kTags[] = {"x", "y", "z", "w"};
  int64_t now = 1'700'000'000'000 + static_cast<int64_t>(rng() % kHour);
  int64_t watermark = now - kHour;
  const int users = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < 400; ++i) {
    if (rng() % 10 == 0) {
      watermark = std::max(watermark, now - static_cast<int64_t>(rng() % (15 * kMin)));
      model.Advance(watermark, &want);
      for (const FeatureWrite& w : harness.Advance(watermark)) got[w.key].push_back(w.fields);
      if (rng() % 2 == 0) harness.Commit();
      continue;
    }
    now += static_cast<int64_t>(rng() % (2 * kMin));
    TestEvent e;
    e.t = now - (rng() % 6 == 0 ? static_cast<int64_t>(rng() % (30 * kMin)) : 0);
    e.user = "u" + std::to_string(rng() % users);
    e.kind = kKinds[rng() % 3];
    e.amount = static_cast<double>(rng() % 40) / 4.0;  // quarters: exact sums
    e.qty = static_cast<int64_t>(rng() % 7);
    e.flag = rng() % 2 == 0;
    if (rng() % 3 != 0) e.tag = kTags[rng() % 4];
    const bool expected = model.Add(e);
    ASSERT_EQ(harness.Process(ToEvent(e)), expected) << "seed " << seed << " event " << i;
  }
  model.Advance(now + 3 * kHour, &want);
  for (const FeatureWrite& w : harness.Advance(now + 3 * kHour)) got[w.key].push_back(w.fields);
  ASSERT_EQ(got.size(), want.size()) << "seed " << seed;
  for (const auto& [key, writes] : want) {
    ASSERT_TRUE(got.count(key)) << "seed " << seed << ": no writes for " << key;
    ASSERT_EQ(got[key], writes) << "seed " << seed << " key " << key;
  }
}

TEST(FeatureReference, EveryAggregateAndWindowTypeMatchesTheModel) {
  const std::shared_ptr<const FeatureProgram> program = TestProgram();
  ASSERT_NE(program, nullptr);
  for (uint64_t seed = 1; seed <= 60; ++seed) RunSeed(seed, program);
}

TEST(FeatureReference, DefaultDefinitionCompilesToTheOriginalStateLayout) {
  const std::shared_ptr<const FeatureProgram> program = FeatureProgram::Default();
  ASSERT_NE(program, nullptr);
  ASSERT_EQ(program->groups().size(), 2u);
  // views, carts, purchases, then the viewed-price sum (3 words); avg shares
  // the view count: 48 bytes per pane, as the hard-coded engine kept.
  EXPECT_EQ(program->groups()[0].words(), 6u);
  EXPECT_EQ(program->groups()[0].vars(), 0u);
  EXPECT_EQ(program->groups()[1].words(), 0u);
}

TEST(FeatureReference, WritesNameTheirGuardFieldsAsTheHardCodedEngineDid) {
  const std::shared_ptr<const FeatureProgram> program = FeatureProgram::Default();
  std::vector<uint64_t> words(program->groups()[0].words(), 0);
  const FeatureWrite sliding = program->groups()[0].MakeWrite("u", {0, kHour, 0, 0, 0}, words.data(), nullptr);
  EXPECT_EQ(sliding.guard_fields, (std::array<int, 2>{12, -1}));
  EXPECT_EQ(sliding.fields[12], "window_end");
  EXPECT_EQ(sliding.order, kHour);
  const FeatureWrite session = program->groups()[1].MakeWrite("u", {5, 10, 5, 7, 3}, nullptr, nullptr);
  EXPECT_EQ(session.guard_fields, (std::array<int, 2>{8, 2}));
  EXPECT_EQ(session.fields[8], "session_end");
  EXPECT_EQ(session.fields[2], "event_count");
  EXPECT_EQ(session.order, 7);
}

TEST(FeatureReference, CountDistinctIsExactToItsLimitThenEstimatesWithinTwoPercent) {
  VarSlot slot;
  FieldValue v;
  v.present = true;
  for (int64_t i = 0; i < 1000; ++i) {
    v.long_value = i;
    AddDistinct(DistinctHash(v, FieldType::kLong), 1000, &slot);
    AddDistinct(DistinctHash(v, FieldType::kLong), 1000, &slot);  // duplicates do not count
  }
  EXPECT_EQ(DistinctCount(slot), 1000);
  EXPECT_TRUE(slot.registers.empty());
  for (int64_t i = 1000; i < 100000; ++i) {
    v.long_value = i;
    AddDistinct(DistinctHash(v, FieldType::kLong), 1000, &slot);
  }
  EXPECT_FALSE(slot.registers.empty());
  EXPECT_NEAR(static_cast<double>(DistinctCount(slot)), 100000.0, 2000.0);
  // Merging two halves estimates the union the same as adding everything.
  VarSlot a, b;
  for (int64_t i = 0; i < 100000; ++i) {
    v.long_value = i;
    AddDistinct(DistinctHash(v, FieldType::kLong), 1000, i % 2 == 0 ? &a : &b);
  }
  MergeDistinct(b, 1000, &a);
  EXPECT_EQ(DistinctCount(a), DistinctCount(slot));
}

TEST(FeatureReference, DoubleSumsDoNotDependOnArrivalOrder) {
  const std::shared_ptr<const FeatureProgram> program = FeatureProgram::Default();
  const GroupProgram& group = program->groups()[0];
  std::vector<double> prices;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) prices.push_back(std::ldexp(static_cast<double>(rng() % 1000000), -7) + 0.01 * i);
  std::string first;
  for (int round = 0; round < 5; ++round) {
    std::shuffle(prices.begin(), prices.end(), rng);
    std::vector<uint64_t> words(group.words(), 0);
    for (double p : prices) group.Accumulate(MakeEvent("u", 0, EventType::kView, p), words.data(), nullptr);
    const FeatureWrite w = group.MakeWrite("u", {0, kHour, 0, 0, 0}, words.data(), nullptr);
    const std::string avg = *Field(w, "avg_viewed_price_1h");
    if (round == 0) first = avg;
    EXPECT_EQ(avg, first) << "round " << round;
  }
}

}  // namespace
}  // namespace slipstream

namespace slipstream {
namespace {

using namespace testing_util;  // NOLINT

// State written under the shipped definition, restored under one that adds a
// feature to user_features and a whole group: the old accumulators carry
// over (the restored windows count the events from before the restore), the
// added feature and group start empty (they see only what comes after).
TEST(FeatureRestore, AddedFeaturesAndGroupsStartEmptyAndTheRestCarriesOver) {
  std::string text(DefaultFeaturesYaml());
  const std::string anchor = "      - {name: avg_viewed_price_1h";
  const size_t at = text.find(anchor);
  ASSERT_NE(at, std::string::npos);
  text.insert(at, "      - {name: spent_1h, aggregate: sum, field: price, filter: \"event_type == 'purchase'\"}\n");
  text += R"yaml(
  - name: activity
    window: {type: tumbling, size: 1 h}
    key: "activity:{user_id}"
    ttl: 2 h
    features: [{name: events, aggregate: count}, window_end]
)yaml";
  absl::StatusOr<FeatureDefinition> extended = ParseFeatureDefinition(text, "extended.yaml");
  ASSERT_TRUE(extended.ok()) << extended.status();
  std::vector<std::string> added;
  ASSERT_TRUE(CheckRestoreCompatible(DefaultFeatureDefinition(), *extended, &added).ok());
  EXPECT_EQ(added, std::vector<std::string>({"user_features.spent_1h", "activity"}));
  auto program = FeatureProgram::Compile(std::make_shared<const FeatureDefinition>(*std::move(extended)));
  ASSERT_TRUE(program.ok()) << program.status();

  TempDir dir;
  const int64_t t0 = 1'700'000'400'000 - 1'700'000'400'000 % kHour;  // an hour boundary
  const std::string snapshot_file = dir.path() + "/kg-0-127.sst";
  {
    // A checkpoint of the shipped definition's state.
    auto store = StateStore::Open(dir.path() + "/before", StateStoreOptions{});
    ASSERT_TRUE(store.ok());
    WindowEngine before(store->get(), KeyGroupRange{0, kMaxParallelism - 1});
    for (int i = 0; i < 3; ++i) {
      const Event e = MakeEvent("u", t0 + i * kMin, i == 0 ? EventType::kView : EventType::kPurchase, 10);
      ASSERT_TRUE(*before.ProcessEvent(KeyGroupForKey("u", kMaxParallelism), e));
    }
    before.BeginSnapshot();
    ASSERT_TRUE(before.Flush().ok());
    std::unique_ptr<StateSnapshot> snapshot = before.TakeSnapshot();
    ASSERT_NE(snapshot, nullptr);
    ASSERT_TRUE(snapshot->WriteKeyGroups(snapshot_file, KeyGroupRange{0, kMaxParallelism - 1}).ok());
  }
  auto store = StateStore::Open(dir.path() + "/after", StateStoreOptions{});
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->IngestKeyGroups({snapshot_file}, KeyGroupRange{0, kMaxParallelism - 1}).ok());
  WindowEngineOptions options;
  options.program = *program;
  options.restored_program = FeatureProgram::Default();
  WindowEngine after(store->get(), KeyGroupRange{0, kMaxParallelism - 1}, options);
  ASSERT_TRUE(after.Restore().ok());
  EXPECT_EQ(after.stats().users, 1);
  EXPECT_EQ(after.stats().timers, 2) << "the pane's window and the session";
  const Event purchase = MakeEvent("u", t0 + 5 * kMin, EventType::kPurchase, 7.5);
  ASSERT_TRUE(*after.ProcessEvent(KeyGroupForKey("u", kMaxParallelism), purchase));
  std::vector<FeatureWrite> out;
  ASSERT_TRUE(after.AdvanceWatermark(t0 + 10 * kMin - 1, &out).ok());
  std::map<std::string, FeatureWrite> by_key;
  for (const FeatureWrite& w : out) by_key.emplace(w.key, w);  // the first window of each key
  ASSERT_TRUE(by_key.count("user_features:u")) << Describe(out);
  const FeatureWrite& sliding = by_key["user_features:u"];
  EXPECT_EQ(*Field(sliding, "view_count_1h"), "1") << "restored";
  EXPECT_EQ(*Field(sliding, "purchase_count_1h"), "3") << "2 restored + 1 after";
  EXPECT_EQ(*Field(sliding, "spent_1h"), "7.5") << "added: only the purchase after the restore";
  EXPECT_EQ(*Field(sliding, "avg_viewed_price_1h"), "10");
  // The session (restored) and the tumbling hour (added) fire later.
  out.clear();
  ASSERT_TRUE(after.AdvanceWatermark(t0 + 2 * kHour, &out).ok());
  by_key.clear();
  for (const FeatureWrite& w : out) by_key.emplace(w.key, w);
  ASSERT_TRUE(by_key.count("activity:u")) << Describe(out);
  EXPECT_EQ(*Field(by_key["activity:u"], "events"), "1") << "added group: only the event after the restore";
  ASSERT_TRUE(by_key.count(absl::StrCat("session_features:u:", t0))) << Describe(out);
  EXPECT_EQ(*Field(by_key[absl::StrCat("session_features:u:", t0)], "event_count"), "4");
  // Written back in the new layout: the next checkpoint restores under the
  // new program alone.
  const Event later = MakeEvent("u", t0 + 3 * kHour, EventType::kCart, 1);
  ASSERT_TRUE(*after.ProcessEvent(KeyGroupForKey("u", kMaxParallelism), later));  // state in all three groups
  const int64_t users = after.stats().users;
  ASSERT_EQ(users, 1);
  after.BeginSnapshot();
  ASSERT_TRUE(after.Flush().ok());
  std::unique_ptr<StateSnapshot> snapshot = after.TakeSnapshot();
  ASSERT_NE(snapshot, nullptr);
  const std::string second_file = dir.path() + "/second.sst";
  ASSERT_TRUE(snapshot->WriteKeyGroups(second_file, KeyGroupRange{0, kMaxParallelism - 1}).ok());
  snapshot.reset();
  auto again_store = StateStore::Open(dir.path() + "/again", StateStoreOptions{});
  ASSERT_TRUE(again_store.ok());
  ASSERT_TRUE((*again_store)->IngestKeyGroups({second_file}, KeyGroupRange{0, kMaxParallelism - 1}).ok());
  WindowEngineOptions same;
  same.program = *program;
  WindowEngine again(again_store->get(), KeyGroupRange{0, kMaxParallelism - 1}, same);
  ASSERT_TRUE(again.Restore().ok());
  EXPECT_EQ(again.stats().users, users);
  EXPECT_EQ(again.stats().timers, 3) << "a window, a session and an hour of the added group";
}

}  // namespace
}  // namespace slipstream
