// The ids of the chk-<n> directories in a job directory, ascending: what
// retention and discards left on disk.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace slipstream::test_support {

inline std::vector<int64_t> CheckpointIdsOnDisk(const std::filesystem::path& job_dir) {
  std::vector<int64_t> ids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(job_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("chk-", 0) == 0) ids.push_back(std::stoll(name.substr(4)));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace slipstream::test_support
