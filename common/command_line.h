// Command line of the Slipstream daemons (coordinator, worker): `--config
// FILE`, any number of `-Dkey=value` overrides (Flink's dynamic properties)
// and `--help`, which documents every configuration key. Plus a reader that
// pulls typed settings out of a Config and remembers the first error (which
// names its key), so a binary reports one clear line and exits.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/config.h"

namespace slipstream {

struct LoadedCommandLine {
  std::optional<Config> config;  // set when the program should run
  int exit_code = 0;             // otherwise: exit with this (help, bad flags, bad config)
};

// Parses argv; prints help or an error line prefixed with `program` itself.
LoadedCommandLine LoadCommandLine(int argc, char** argv, std::string_view program, std::string_view description);

class SettingsReader {
 public:
  explicit SettingsReader(const Config& config) : config_(config) {}
  std::string String(std::string_view key);
  int64_t Int(std::string_view key);
  int64_t DurationMs(std::string_view key);
  bool Bool(std::string_view key);
  // The first error met, or OK.
  const absl::Status& status() const { return status_; }

 private:
  const Config& config_;
  absl::Status status_;
};

}  // namespace slipstream
