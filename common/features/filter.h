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

  struct Op;  // defined in filter.cc

 private:
  friend absl::StatusOr<CompiledFilter> ParseFilter(std::string_view, const InputSchema&);
  std::vector<Op> ops_;
  std::vector<std::string> strings_;  // string constants
  std::string canonical_;
};

// Errors are InvalidArgument with the 1-based column in the filter text:
// "column 1: unknown field 'evnt_type'; did you mean 'event_type'?".
[[nodiscard]] absl::StatusOr<CompiledFilter> ParseFilter(std::string_view text, const InputSchema& schema);

}  // namespace slipstream
