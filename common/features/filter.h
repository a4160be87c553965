// Filters on input fields, as declared in a feature definition:
//   event_type == 'view'
//   price > 100 and event_type in ('cart', 'purchase')
//   not (country == 'DE' or premium)
// Grammar (keywords case-insensitive):
//   expr    := or
//   or      := and ('or' and)*
//   and     := unary ('and' unary)*
//   unary   := 'not' unary | '(' expr ')' | compare
//   compare := field op literal | field ['not'] 'in' '(' literal (',' literal)* ')' | field
//   op      := '==' | '=' | '!=' | '<>' | '<' | '<=' | '>' | '>='
//   literal := 'text' | "text" | number | true | false
// A bare field is true when a boolean field is true. A comparison with a
// field the event lacks (an optional field) is false, as SQL's NULL.
// Literals must fit the field's type (a string field compares with text, a
// number field with numbers); strings compare by bytes.
//
// ParseFilter compiles the text once into a flat program (postfix, field
// indexes and typed constants resolved), so evaluating it per event does no
// name lookups and no allocation.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/event.h"
#include "common/features/feature_definition.h"

namespace slipstream {

class CompiledFilter {
 public:
  CompiledFilter() = default;  // matches everything

  bool Matches(const Event& event) const;
  // Normalised text: keywords lower-case, single spaces, literals quoted the
  // same way; equal for equivalent spellings of one filter.
  const std::string& canonical() const { return canonical_; }
  bool always_true() const { return ops_.empty(); }

  // One instruction of the postfix program. Defined here (not in filter.cc)
  // because std::vector<Op> needs a complete type for the implicit
  // destructor of every user of this header.
  struct Op {
    enum class Kind : uint8_t {
      kCompare,  // pushes field <cmp> constant
      kIn,       // pushes field in constants[begin, begin + count)
      kTruthy,   // pushes a boolean field's value
      kAnd,      // pops two, pushes their conjunction
      kOr,
      kNot,      // pops one, pushes its negation
    };
    enum class Cmp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };
    Kind kind = Kind::kCompare;
    Cmp cmp = Cmp::kEq;
    bool negate = false;     // kIn: `not in`
    bool as_double = false;  // numbers: compare as double (a double field or a fractional literal)
    FieldType type = FieldType::kString;
    int field = -1;          // index into Event::fields
    int64_t long_value = 0;  // kCompare on long / boolean fields (exact)
    double double_value = 0; // kCompare with as_double
    uint32_t begin = 0;      // kCompare on strings: index into strings_; kIn: first constant
    uint32_t count = 0;      // kIn: number of constants (in strings_, longs_ or doubles_ by type)
  };

 private:
  friend absl::StatusOr<CompiledFilter> ParseFilter(std::string_view, const InputSchema&);
  std::vector<Op> ops_;
  std::vector<std::string> strings_;  // string constants
  std::vector<int64_t> longs_;        // `in` lists of long / boolean fields
  std::vector<double> doubles_;       // `in` lists compared as double
  std::string canonical_;
};

// Errors are InvalidArgument with the 1-based column in the filter text:
// "column 1: unknown field 'evnt_type'; did you mean 'event_type'?".
[[nodiscard]] absl::StatusOr<CompiledFilter> ParseFilter(std::string_view text, const InputSchema& schema);

}  // namespace slipstream
