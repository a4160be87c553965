// Levenshtein distance, for "did you mean" hints in configuration and
// feature-definition errors.
#pragma once

#include <cstddef>
#include <string_view>

namespace slipstream {

// Insertions, deletions and substitutions turning `a` into `b`.
size_t EditDistance(std::string_view a, std::string_view b);

}  // namespace slipstream
