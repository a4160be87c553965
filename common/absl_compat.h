// Debian's Abseil is built with its own absl::string_view (not an alias of
// std::string_view), so the two do not convert implicitly. Our interfaces use
// std::string_view; these convert at the Abseil boundary (StrCat, Status
// messages) at no cost.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace slipstream {

inline absl::string_view ToAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view ToStd(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace slipstream

// Lets spdlog/fmt print absl::string_view (e.g. Status::message()).
#include "fmt/format.h"
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<std::string_view> {
  auto format(absl::string_view s, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(std::string_view(s.data(), s.size()), ctx);
  }
};
