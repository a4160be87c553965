#include "common/command_line.h"

#include <iostream>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/dynamic_properties.h"

namespace slipstream {

LoadedCommandLine LoadCommandLine(int argc, char** argv, std::string_view program, std::string_view description) {
  LoadedCommandLine result;
  auto fail = [&](absl::string_view message) {
    std::cerr << program << ": " << message << "\n";
    result.exit_code = 1;
    return result;
  };
  absl::StatusOr<SplitArgs> split = ExtractDynamicProperties(argc, argv);
  if (!split.ok()) return fail(split.status().message());

  CLI::App app{std::string(description), std::string(program)};
  std::string config_path;
  app.add_option("--config", config_path, "application.properties to load");
  // -D is consumed by ExtractDynamicProperties; declared here for --help.
  app.add_option("-D", [](const CLI::results_t&) { return true; },
                 "-Dkey=value overrides a configuration key (repeatable)");
  app.footer("Configuration keys (set in --config or with -Dkey=value):\n\n" + ConfigHelpText());
  std::vector<const char*> args;
  for (const std::string& a : split->remaining) args.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::ParseError& e) {
    result.exit_code = app.exit(e);
    return result;
  }
  absl::StatusOr<Config> config = Config::Load(config_path, split->overrides);
  if (!config.ok()) return fail(config.status().message());
  result.config = std::move(*config);
  return result;
}

std::string SettingsReader::String(std::string_view key) {
  absl::StatusOr<std::string> v = config_.GetString(key);
  if (!v.ok() && status_.ok()) status_ = v.status();
  return v.ok() ? *v : std::string();
}

bool SettingsReader::Bool(std::string_view key) {
  absl::StatusOr<bool> v = config_.GetBool(key);
  if (!v.ok() && status_.ok()) status_ = v.status();
  return v.ok() && *v;
}

int64_t SettingsReader::Int(std::string_view key) {
  absl::StatusOr<int64_t> v = config_.GetInt(key);
  if (!v.ok() && status_.ok()) status_ = v.status();
  return v.ok() ? *v : 0;
}

int64_t SettingsReader::DurationMs(std::string_view key) {
  absl::StatusOr<int64_t> v = config_.GetDurationMs(key);
  if (!v.ok() && status_.ok()) status_ = v.status();
  return v.ok() ? *v : 0;
}

}  // namespace slipstream
