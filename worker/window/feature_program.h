// FeatureProgram: a FeatureDefinition compiled for the window engine, once per
// task. For each group it decides the accumulator layout — what one pane (or
// session) keeps — and how to turn accumulators into the group's Redis write.
//
// Accumulators ("slots") are shared: two features that accumulate the same
// thing (avg and count with one filter; a count written twice) read one
// slot, and avg keeps no state of its own (its sum and count slots). Numeric
// state lives in a fixed number of 64-bit words per pane, so a pane is one
// contiguous run of words and the per-event path touches no heap; strings
// (min/max/first/last of a string field) and distinct-value sets live in
// VarSlots beside them. Filters are compiled once (common/features/filter.h)
// and evaluated once per event and group, not per feature.
//
// Exactness: sums of doubles are kept in fixed point (ExactSum), so a sum or
// average does not depend on the order events arrive in and a replay writes
// bit-identical values; first/last break event-time ties by value, for the
// same reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/event.h"
#include "common/features/feature_definition.h"
#include "common/features/filter.h"
#include "worker/window/feature_write.h"

namespace slipstream {

// Variable-size state of one slot in one pane or session.
struct VarSlot {
  bool present = false;
  int64_t time_ms = 0;  // first / last: the event time of `text`
  std::string text;     // min / max / first / last of a string field
  // count_distinct: sorted 64-bit hashes of the values while exact; once
  // more than the limit, HyperLogLog registers instead (hashes cleared).
  std::vector<uint64_t> hashes;
  std::vector<uint8_t> registers;
  bool operator==(const VarSlot&) const = default;
};

enum class SlotKind : uint8_t {
  kCount,         // 1 word: events that passed the filter
  kCountPresent,  // 1 word: ... and carry the (optional) field: avg's divisor
  kSumLong,       // 1 word: int64, saturating
  kSumDouble,     // 3 words: ExactSum
  kMinNumber,     // 2 words: present, value (long, or double bits)
  kMaxNumber,     // 2 words
  kFirstNumber,   // 3 words: present, time, value
  kLastNumber,    // 3 words
  kMinString,     // VarSlot
  kMaxString,     // VarSlot
  kFirstString,   // VarSlot
  kLastString,    // VarSlot
  kCountDistinct  // VarSlot
};

// 64-bit words a fixed-size slot takes (0: it is a VarSlot).
size_t SlotWords(SlotKind kind);

struct SlotSpec {
  SlotKind kind = SlotKind::kCount;
  int field = -1;    // input field (-1: count)
  bool is_double = false;
  FieldType field_type = FieldType::kLong;
  int filter = -1;   // index into GroupProgram::filters (-1: none)
  int word = -1;     // first word (fixed-size kinds)
  int var = -1;      // VarSlot index (variable-size kinds)
  int64_t distinct_exact_limit = 0;
  std::string identity;  // FeatureSpec::StateIdentity of what it accumulates
};

// How one feature of the group's write is produced.
struct OutputSpec {
  std::string name;
  bool is_window_field = false;
  WindowField window_field = WindowField::kKey;
  Aggregate aggregate = Aggregate::kCount;
  FieldType field_type = FieldType::kLong;
  int slot = -1;        // the aggregate's slot (avg: the sum)
  int count_slot = -1;  // avg: the count with the same filter
};

class GroupProgram {
 public:
  const FeatureGroup& spec() const { return *spec_; }
  const WindowSpec& window() const { return spec_->window; }
  bool is_session() const { return spec_->window.type == WindowType::kSession; }
  // Pane length: gcd(size, slide), so a sliding window is a whole number of
  // panes and each event is stored once, not size/slide times.
  int64_t pane_ms() const { return pane_ms_; }
  int64_t slide_ms() const { return slide_ms_; }
  int64_t size_ms() const { return size_ms_; }
  size_t words() const { return words_; }
  size_t vars() const { return vars_; }
  const std::vector<SlotSpec>& slots() const { return slots_; }
  const std::vector<OutputSpec>& outputs() const { return outputs_; }

  // Adds `event` to one pane's or session's accumulator.
  void Accumulate(const Event& event, uint64_t* words, VarSlot* vars) const;
  // Merges accumulator `from` into `into` (window = sum of its panes; a
  // session absorbing another).
  void Merge(const uint64_t* from, const VarSlot* from_vars, uint64_t* into, VarSlot* into_vars) const;

  // The window's own values, for the write.
  struct WindowValues {
    int64_t start_ms = 0;  // pane windows: window start; sessions: first event
    int64_t end_ms = 0;    // pane windows: window end; sessions: last event + gap
    int64_t first_event_ms = 0;  // sessions
    int64_t last_event_ms = 0;   // sessions
    int64_t event_count = 0;
  };
  // The group's Redis write for one fired window of `key`.
  FeatureWrite MakeWrite(std::string_view key, const WindowValues& window, const uint64_t* words,
                         const VarSlot* vars) const;

  // Pane windows that write event_count: the unfiltered count slot's word
  // (-1 otherwise; sessions count their events themselves).
  int event_count_word() const { return event_count_word_; }

 private:
  friend class FeatureProgram;
  const FeatureGroup* spec_ = nullptr;
  int64_t pane_ms_ = 0, slide_ms_ = 0, size_ms_ = 0;
  std::vector<CompiledFilter> filters_;
  std::vector<SlotSpec> slots_;
  std::vector<OutputSpec> outputs_;
  size_t words_ = 0;
  size_t vars_ = 0;
  int event_count_word_ = -1;
  int guard_primary_ = -1;    // output index of the write's order field
  int guard_secondary_ = -1;  // sessions: event_count, when written
};

class FeatureProgram {
 public:
  // At most kMaxGroups groups (a timer stores its group in one byte).
  static constexpr size_t kMaxGroups = 255;
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<const FeatureProgram>> Compile(
      std::shared_ptr<const FeatureDefinition> definition);
  // The built-in default definition, compiled once.
  static std::shared_ptr<const FeatureProgram> Default();

  const FeatureDefinition& definition() const { return *definition_; }
  const std::vector<GroupProgram>& groups() const { return groups_; }

 private:
  std::shared_ptr<const FeatureDefinition> definition_;
  std::vector<GroupProgram> groups_;
};

// Shortest round-trip text of a double ("0" for zero, never "-0").
std::string FormatDouble(double value);

}  // namespace slipstream
