#include "worker/window/feature_program.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <numeric>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "worker/window/distinct_values.h"

namespace slipstream {
namespace {

// ExactSum: doubles with |v| in [2^-8, 2^40) — every real price or amount —
// are added as fixed-point integers with 60 fractional bits. Such a double's
// last mantissa bit is worth at least 2^-60, so the conversion is exact and
// the sum does not depend on the order of additions. Other values go to a
// plain double term (order-dependent in its last bits).
constexpr int kFractionBits = 60;
constexpr double kFixedLimit = 1099511627776.0;  // 2^40
constexpr double kFixedFloor = 1.0 / 256;

__int128 LoadI128(const uint64_t* w) {
  __int128 v;
  std::memcpy(&v, w, 16);
  return v;
}
void StoreI128(__int128 v, uint64_t* w) { std::memcpy(w, &v, 16); }
double LoadDouble(uint64_t w) {
  double d;
  std::memcpy(&d, &w, 8);
  return d;
}
uint64_t DoubleBits(double d) {
  uint64_t w;
  std::memcpy(&w, &d, 8);
  return w;
}

void ExactSumAdd(double v, uint64_t* w) {
  const double magnitude = std::fabs(v);
  if (magnitude >= kFixedFloor && magnitude < kFixedLimit) {
    StoreI128(LoadI128(w) + static_cast<__int128>(std::ldexp(v, kFractionBits)), w);
  } else {
    w[2] = DoubleBits(LoadDouble(w[2]) + v);
  }
}
void ExactSumMerge(const uint64_t* from, uint64_t* into) {
  StoreI128(LoadI128(into) + LoadI128(from), into);
  into[2] = DoubleBits(LoadDouble(into[2]) + LoadDouble(from[2]));
}
double ExactSumValue(const uint64_t* w) {
  return std::ldexp(static_cast<double>(LoadI128(w)), -kFractionBits) + LoadDouble(w[2]);
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

// Numbers are compared as their field's type: long words as int64, double
// words as doubles.
bool NumberLess(uint64_t a, uint64_t b, bool is_double) {
  if (is_double) return LoadDouble(a) < LoadDouble(b);
  return static_cast<int64_t>(a) < static_cast<int64_t>(b);
}

uint64_t NumberBits(const FieldValue& v, bool is_double) {
  return is_double ? DoubleBits(v.double_value) : static_cast<uint64_t>(v.long_value);
}

// first: the earliest value wins, ties to the smaller; last: the latest, ties
// to the larger. Total orders, so the result does not depend on arrival.
bool TakeFirst(int64_t time, uint64_t value, const uint64_t* w, bool is_double) {
  if (w[0] == 0) return true;
  const int64_t held = static_cast<int64_t>(w[1]);
  return time < held || (time == held && NumberLess(value, w[2], is_double));
}
bool TakeLast(int64_t time, uint64_t value, const uint64_t* w, bool is_double) {
  if (w[0] == 0) return true;
  const int64_t held = static_cast<int64_t>(w[1]);
  return time > held || (time == held && NumberLess(w[2], value, is_double));
}

bool TakeString(SlotKind kind, int64_t time, std::string_view value, const VarSlot& v) {
  if (!v.present) return true;
  switch (kind) {
    case SlotKind::kMinString:
      return value < v.text;
    case SlotKind::kMaxString:
      return value > v.text;
    case SlotKind::kFirstString:
      return time < v.time_ms || (time == v.time_ms && value < v.text);
    case SlotKind::kLastString:
      return time > v.time_ms || (time == v.time_ms && value > v.text);
    default:
      return false;
  }
}

}  // namespace

size_t SlotWords(SlotKind kind) {
  switch (kind) {
    case SlotKind::kCount:
    case SlotKind::kCountPresent:
    case SlotKind::kSumLong:
      return 1;
    case SlotKind::kMinNumber:
    case SlotKind::kMaxNumber:
      return 2;
    case SlotKind::kSumDouble:
    case SlotKind::kFirstNumber:
    case SlotKind::kLastNumber:
      return 3;
    default:
      return 0;
  }
}

namespace {

std::string FormatFieldNumber(uint64_t bits, FieldType type) {
  switch (type) {
    case FieldType::kDouble:
      return FormatDouble(LoadDouble(bits));
    case FieldType::kBoolean:
      return bits != 0 ? "true" : "false";
    default:
      return absl::StrCat(static_cast<int64_t>(bits));
  }
}

}  // namespace

std::string FormatDouble(double value) {
  if (value == 0) return "0";
  char buf[32];
  auto result = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, result.ptr);
}

void GroupProgram::Accumulate(const Event& event, uint64_t* words, VarSlot* vars) const {
  // Each filter once per event, not once per feature.
  bool passed[64];
  const size_t filter_count = std::min<size_t>(filters_.size(), 64);
  for (size_t i = 0; i < filter_count; ++i) passed[i] = filters_[i].Matches(event);
  for (const SlotSpec& slot : slots_) {
    if (slot.filter >= 0 && !(static_cast<size_t>(slot.filter) < 64 ? passed[slot.filter]
                                                                   : filters_[slot.filter].Matches(event))) {
      continue;
    }
    if (slot.kind == SlotKind::kCount) {
      ++words[slot.word];
      continue;
    }
    const FieldValue& value = event.fields[static_cast<size_t>(slot.field)];
    if (!value.present) continue;  // an optional field the event lacks: as SQL's NULL
    uint64_t* w = words + slot.word;
    switch (slot.kind) {
      case SlotKind::kCountPresent:
        ++w[0];
        break;
      case SlotKind::kSumLong:
        w[0] = static_cast<uint64_t>(SaturatingAdd(static_cast<int64_t>(w[0]), value.long_value));
        break;
      case SlotKind::kSumDouble:
        ExactSumAdd(value.double_value, w);
        break;
      case SlotKind::kMinNumber:
      case SlotKind::kMaxNumber: {
        const uint64_t bits = NumberBits(value, slot.is_double);
        const bool take = w[0] == 0 || (slot.kind == SlotKind::kMinNumber ? NumberLess(bits, w[1], slot.is_double)
                                                                          : NumberLess(w[1], bits, slot.is_double));
        if (take) {
          w[0] = 1;
          w[1] = bits;
        }
        break;
      }
      case SlotKind::kFirstNumber:
      case SlotKind::kLastNumber: {
        const uint64_t bits = NumberBits(value, slot.is_double);
        const bool take = slot.kind == SlotKind::kFirstNumber ? TakeFirst(event.event_time_ms, bits, w, slot.is_double)
                                                              : TakeLast(event.event_time_ms, bits, w, slot.is_double);
        if (take) {
          w[0] = 1;
          w[1] = static_cast<uint64_t>(event.event_time_ms);
          w[2] = bits;
        }
        break;
      }
      case SlotKind::kCountDistinct:
        AddDistinct(DistinctHash(value, slot.field_type), slot.distinct_exact_limit, &vars[slot.var]);
        break;
      default: {  // the string kinds
        VarSlot& v = vars[slot.var];
        if (TakeString(slot.kind, event.event_time_ms, value.string_value, v)) {
          v.present = true;
          v.time_ms = event.event_time_ms;
          v.text.assign(value.string_value);
        }
        break;
      }
    }
  }
}

void GroupProgram::Merge(const uint64_t* from, const VarSlot* from_vars, uint64_t* into, VarSlot* into_vars) const {
  for (const SlotSpec& slot : slots_) {
    const uint64_t* f = slot.word >= 0 ? from + slot.word : nullptr;
    uint64_t* w = slot.word >= 0 ? into + slot.word : nullptr;
    switch (slot.kind) {
      case SlotKind::kCount:
      case SlotKind::kCountPresent:
        w[0] += f[0];
        break;
      case SlotKind::kSumLong:
        w[0] = static_cast<uint64_t>(SaturatingAdd(static_cast<int64_t>(w[0]), static_cast<int64_t>(f[0])));
        break;
      case SlotKind::kSumDouble:
        ExactSumMerge(f, w);
        break;
      case SlotKind::kMinNumber:
      case SlotKind::kMaxNumber:
        if (f[0] != 0 && (w[0] == 0 || (slot.kind == SlotKind::kMinNumber ? NumberLess(f[1], w[1], slot.is_double)
                                                                          : NumberLess(w[1], f[1], slot.is_double)))) {
          w[0] = 1;
          w[1] = f[1];
        }
        break;
      case SlotKind::kFirstNumber:
      case SlotKind::kLastNumber:
        if (f[0] != 0 && (slot.kind == SlotKind::kFirstNumber
                              ? TakeFirst(static_cast<int64_t>(f[1]), f[2], w, slot.is_double)
                              : TakeLast(static_cast<int64_t>(f[1]), f[2], w, slot.is_double))) {
          w[0] = 1;
          w[1] = f[1];
          w[2] = f[2];
        }
        break;
      case SlotKind::kCountDistinct:
        MergeDistinct(from_vars[slot.var], slot.distinct_exact_limit, &into_vars[slot.var]);
        break;
      default: {
        const VarSlot& fv = from_vars[slot.var];
        VarSlot& v = into_vars[slot.var];
        if (fv.present && TakeString(slot.kind, fv.time_ms, fv.text, v)) {
          v.present = true;
          v.time_ms = fv.time_ms;
          v.text = fv.text;
        }
        break;
      }
    }
  }
}

FeatureWrite GroupProgram::MakeWrite(std::string_view key, const WindowValues& window, const uint64_t* words,
                                     const VarSlot* vars) const {
  FeatureWrite write;
  write.ttl_seconds = static_cast<int>(spec_->ttl_seconds);
  for (const KeyPart& part : spec_->key_parts) {
    if (!part.is_placeholder) {
      write.key.append(part.literal);
      continue;
    }
    switch (part.field) {
      case WindowField::kKey:
        write.key.append(key);
        break;
      case WindowField::kWindowStart:
        absl::StrAppend(&write.key, window.start_ms);
        break;
      case WindowField::kWindowEnd:
        absl::StrAppend(&write.key, window.end_ms);
        break;
      case WindowField::kSessionStart:
        absl::StrAppend(&write.key, window.first_event_ms);
        break;
      case WindowField::kSessionEnd:
        absl::StrAppend(&write.key, window.last_event_ms);
        break;
      default:
        break;  // validation allows no other placeholder
    }
  }
  write.fields.reserve(outputs_.size() * 2);
  for (const OutputSpec& out : outputs_) {
    write.fields.push_back(out.name);
    if (out.is_window_field) {
      switch (out.window_field) {
        case WindowField::kKey:
          write.fields.emplace_back(key);
          break;
        case WindowField::kWindowStart:
          write.fields.push_back(absl::StrCat(window.start_ms));
          break;
        case WindowField::kWindowEnd:
          write.fields.push_back(absl::StrCat(window.end_ms));
          break;
        case WindowField::kSessionStart:
          write.fields.push_back(absl::StrCat(window.first_event_ms));
          break;
        case WindowField::kSessionEnd:
          write.fields.push_back(absl::StrCat(window.last_event_ms));
          break;
        case WindowField::kDurationSeconds:  // >= 0, so this rounds down
          write.fields.push_back(absl::StrCat((window.last_event_ms - window.first_event_ms) / 1000));
          break;
        case WindowField::kEventCount:
          write.fields.push_back(
              absl::StrCat(is_session() ? window.event_count : static_cast<int64_t>(words[event_count_word_])));
          break;
      }
      continue;
    }
    const SlotSpec& slot = slots_[static_cast<size_t>(out.slot)];
    const uint64_t* w = slot.word >= 0 ? words + slot.word : nullptr;
    switch (out.aggregate) {
      case Aggregate::kCount:
        write.fields.push_back(absl::StrCat(static_cast<int64_t>(w[0])));
        break;
      case Aggregate::kSum:
        write.fields.push_back(slot.kind == SlotKind::kSumDouble ? FormatDouble(ExactSumValue(w))
                                                                 : absl::StrCat(static_cast<int64_t>(w[0])));
        break;
      case Aggregate::kAvg: {
        const int64_t count = static_cast<int64_t>(words[slots_[static_cast<size_t>(out.count_slot)].word]);
        const double sum = slot.kind == SlotKind::kSumDouble ? ExactSumValue(w)
                                                             : static_cast<double>(static_cast<int64_t>(w[0]));
        write.fields.push_back(count == 0 ? std::string("0") : FormatDouble(sum / static_cast<double>(count)));
        break;
      }
      case Aggregate::kCountDistinct:
        write.fields.push_back(absl::StrCat(DistinctCount(vars[slot.var])));
        break;
      default:  // min, max, first, last
        if (slot.word >= 0) {
          const uint64_t value = (slot.kind == SlotKind::kMinNumber || slot.kind == SlotKind::kMaxNumber) ? w[1] : w[2];
          write.fields.push_back(w[0] != 0 ? FormatFieldNumber(value, out.field_type) : std::string());
        } else {
          const VarSlot& v = vars[slot.var];
          write.fields.push_back(v.present ? v.text : std::string());
        }
        break;
    }
  }
  // Positions of the guard fields' names in `fields` (feature_write.h).
  write.guard_fields = {guard_primary_ < 0 ? -1 : 2 * guard_primary_, guard_secondary_ < 0 ? -1 : 2 * guard_secondary_};
  write.order = is_session() ? window.last_event_ms : window.end_ms;
  return write;
}

absl::StatusOr<std::shared_ptr<const FeatureProgram>> FeatureProgram::Compile(
    std::shared_ptr<const FeatureDefinition> definition) {
  if (definition->groups.size() > kMaxGroups) {
    return absl::InvalidArgumentError(absl::StrCat("at most ", kMaxGroups, " feature groups"));
  }
  auto program = std::make_shared<FeatureProgram>();
  program->definition_ = definition;
  const InputSchema& input = definition->input;
  for (const FeatureGroup& group : definition->groups) {
    GroupProgram& g = program->groups_.emplace_back();
    g.spec_ = &group;
    if (group.window.type == WindowType::kSession) {
      g.size_ms_ = g.slide_ms_ = g.pane_ms_ = 0;
    } else {
      g.size_ms_ = group.window.size_ms;
      g.slide_ms_ = group.window.type == WindowType::kTumbling ? group.window.size_ms : group.window.slide_ms;
      g.pane_ms_ = std::gcd(g.size_ms_, g.slide_ms_);
    }
    absl::flat_hash_map<std::string, int> filter_index;
    absl::flat_hash_map<std::string, int> slot_index;
    auto filter_of = [&](const FeatureSpec& f) -> absl::StatusOr<int> {
      if (!f.filter) return -1;
      auto compiled = ParseFilter(f.filter->text, input);
      if (!compiled.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("group '", group.name, "', feature '", f.name,
                                                       "': filter: ", compiled.status().message()));
      }
      auto [it, inserted] = filter_index.try_emplace(compiled->canonical(), static_cast<int>(g.filters_.size()));
      if (inserted) g.filters_.push_back(*std::move(compiled));
      return it->second;
    };
    auto slot_of = [&](SlotKind kind, int field, int filter, int64_t limit, const std::string& identity) {
      auto [it, inserted] = slot_index.try_emplace(identity, static_cast<int>(g.slots_.size()));
      if (inserted) {
        SlotSpec& s = g.slots_.emplace_back();
        s.kind = kind;
        s.field = field;
        s.field_type = field >= 0 ? input.fields[static_cast<size_t>(field)].type : FieldType::kLong;
        s.is_double = s.field_type == FieldType::kDouble;
        s.filter = filter;
        s.distinct_exact_limit = limit;
        s.identity = identity;
        const size_t words = SlotWords(kind);
        if (words > 0) {
          s.word = static_cast<int>(g.words_);
          g.words_ += words;
        } else {
          s.var = static_cast<int>(g.vars_++);
        }
      }
      return it->second;
    };
    for (const FeatureSpec& f : group.features) {
      OutputSpec& out = g.outputs_.emplace_back();
      out.name = f.name;
      out.is_window_field = f.is_window_field;
      if (f.is_window_field) {
        out.window_field = f.window_field;
        if (f.window_field == WindowField::kEventCount && !g.is_session()) {
          g.event_count_word_ = g.slots_[static_cast<size_t>(slot_of(SlotKind::kCount, -1, -1, 0, "count()|"))].word;
        }
        const auto index = static_cast<int>(g.outputs_.size()) - 1;
        if (f.window_field == (g.is_session() ? WindowField::kSessionEnd : WindowField::kWindowEnd) &&
            g.guard_primary_ < 0) {
          g.guard_primary_ = index;
        }
        if (g.is_session() && f.window_field == WindowField::kEventCount && g.guard_secondary_ < 0) {
          g.guard_secondary_ = index;
        }
        continue;
      }
      absl::StatusOr<int> filter = filter_of(f);
      if (!filter.ok()) return filter.status();
      out.aggregate = f.aggregate;
      const bool has_field = f.field >= 0;
      const FieldType type = has_field ? input.fields[static_cast<size_t>(f.field)].type : FieldType::kLong;
      out.field_type = type;
      const bool is_string = type == FieldType::kString;
      // Slots are named by what they hold, so avg(price | F) and sum(price | F)
      // share one sum, and avg and count(F) one count.
      const std::string filter_text = f.filter ? f.filter->canonical : std::string();
      const std::string field_name = has_field ? input.fields[static_cast<size_t>(f.field)].name : std::string();
      const std::string field_type(FieldTypeName(type));
      auto identity = [&](std::string_view what) {
        return absl::StrCat(ToAbsl(what), "(", field_name, ":", field_type, ")|", filter_text);
      };
      const std::string count_identity = absl::StrCat("count()|", filter_text);
      switch (f.aggregate) {
        case Aggregate::kCount:
          out.slot = slot_of(SlotKind::kCount, -1, *filter, 0, count_identity);
          break;
        case Aggregate::kSum:
          out.slot = slot_of(type == FieldType::kDouble ? SlotKind::kSumDouble : SlotKind::kSumLong, f.field, *filter,
                             0, identity("sum"));
          break;
        case Aggregate::kAvg:
          out.slot = slot_of(type == FieldType::kDouble ? SlotKind::kSumDouble : SlotKind::kSumLong, f.field, *filter,
                             0, identity("sum"));
          // Divided by the events that carry the field: all of them for a
          // required field (then it shares count(F)), else only those.
          out.count_slot = input.fields[static_cast<size_t>(f.field)].required
                               ? slot_of(SlotKind::kCount, -1, *filter, 0, count_identity)
                               : slot_of(SlotKind::kCountPresent, f.field, *filter, 0, identity("count"));
          break;
        case Aggregate::kMin:
          out.slot = slot_of(is_string ? SlotKind::kMinString : SlotKind::kMinNumber, f.field, *filter, 0,
                             identity("min"));
          break;
        case Aggregate::kMax:
          out.slot = slot_of(is_string ? SlotKind::kMaxString : SlotKind::kMaxNumber, f.field, *filter, 0,
                             identity("max"));
          break;
        case Aggregate::kFirst:
          out.slot = slot_of(is_string ? SlotKind::kFirstString : SlotKind::kFirstNumber, f.field, *filter, 0,
                             identity("first"));
          break;
        case Aggregate::kLast:
          out.slot = slot_of(is_string ? SlotKind::kLastString : SlotKind::kLastNumber, f.field, *filter, 0,
                             identity("last"));
          break;
        case Aggregate::kCountDistinct:
          out.slot = slot_of(SlotKind::kCountDistinct, f.field, *filter, f.distinct_exact_limit,
                             absl::StrCat(identity("count_distinct"), "|", f.distinct_exact_limit));
          break;
      }
    }
  }
  return std::shared_ptr<const FeatureProgram>(std::move(program));
}

std::shared_ptr<const FeatureProgram> FeatureProgram::Default() {
  static const std::shared_ptr<const FeatureProgram> program = [] {
    auto definition = std::make_shared<const FeatureDefinition>(DefaultFeatureDefinition());
    absl::StatusOr<std::shared_ptr<const FeatureProgram>> compiled = Compile(definition);
    return compiled.ok() ? *compiled : nullptr;  // a unit test compiles the default
  }();
  return program;
}

}  // namespace slipstream
