// Flink-style dynamic properties on the command line: `-D key=value` and
// `-Dkey=value` (repeatable). CLI11 cannot express an option glued to its
// value with a one-letter name and an '=' inside, so binaries run this
// pre-pass over argv first: it removes every -D occurrence and returns the
// overrides (for Config::Load) plus the remaining arguments for CLI11.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace slipstream {

struct SplitArgs {
  std::vector<std::string> remaining;  // argv[0] first, in original order
  std::vector<std::string> overrides;  // "key=value", in command-line order
};

// Arguments after a literal "--" are left untouched. A -D without a value, or
// one whose value has no '=' or an empty key, is an InvalidArgument error.
absl::StatusOr<SplitArgs> ExtractDynamicProperties(int argc, const char* const* argv);

}  // namespace slipstream
