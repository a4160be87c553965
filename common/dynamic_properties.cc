#include "common/dynamic_properties.h"

#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace slipstream {

absl::StatusOr<SplitArgs> ExtractDynamicProperties(int argc, const char* const* argv) {
  SplitArgs out;
  bool passthrough = false;
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (i == 0 || passthrough || arg.size() < 2 || arg.substr(0, 2) != "-D") {
      if (i > 0 && arg == "--") passthrough = true;
      out.remaining.emplace_back(arg);
      continue;
    }
    std::string_view property = arg.substr(2);
    if (property.empty()) {  // "-D key=value": the value is the next argument
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError("-D: missing key=value after -D");
      }
      property = argv[++i];
    }
    const size_t eq = property.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("-D", std::string(property), ": expected -Dkey=value"));
    }
    out.overrides.emplace_back(property);
  }
  return out;
}

}  // namespace slipstream
