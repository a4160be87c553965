// Logging: every binary logs through spdlog with one pattern; the level comes
// from `log.level` (or a flag). One line per important event.
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace slipstream {

// Sets the process-wide level ("trace", "debug", "info", "warn", "error") and
// pattern; `component` names the process in every line.
[[nodiscard]] absl::Status SetUpLogging(std::string_view component, std::string_view level);

}  // namespace slipstream
