#include "common/logging.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace slipstream {

absl::Status SetUpLogging(std::string_view component, std::string_view level) {
  const spdlog::level::level_enum parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(absl::StrCat("log.level: \"", ToAbsl(level), "\" must be one of trace, debug, info, warn, error"));
  }
  auto logger = spdlog::stderr_color_mt(std::string(component));
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%n] %v");
  spdlog::set_level(parsed);
  spdlog::flush_on(spdlog::level::info);
  return absl::OkStatus();
}

}  // namespace slipstream
