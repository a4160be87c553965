#include "coordinator/job_id.h"

#include "common/random_id.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace slipstream {

bool IsJobId(std::string_view text) {
  if (text.size() != 32) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::StatusOr<std::string> LoadOrCreateJobId(const std::string& checkpoints_dir,
                                              std::vector<std::string>* ended_jobs) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(checkpoints_dir, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("state.checkpoints.dir: cannot create ", checkpoints_dir, ": ", ec.message()));
  }
  std::string newest;
  fs::file_time_type newest_time;
  for (const fs::directory_entry& entry : fs::directory_iterator(checkpoints_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || !IsJobId(name)) continue;
    std::error_code exists_ec;
    if (fs::exists(entry.path() / kJobEndedFile, exists_ec)) {
      if (ended_jobs != nullptr) ended_jobs->push_back(name);
      continue;
    }
    if (fs::exists(entry.path() / kBoundedJobFile, exists_ec)) continue;  // a bounded run's, never resumed
    const fs::file_time_type t = entry.last_write_time(ec);
    if (newest.empty() || t > newest_time) newest = name, newest_time = t;
  }
  if (ec) return absl::InternalError(absl::StrCat("state.checkpoints.dir: cannot list ", checkpoints_dir, ": ", ec.message()));
  if (!newest.empty()) return newest;

  const std::string id = RandomHex(32);
  fs::create_directories(fs::path(checkpoints_dir) / id, ec);
  if (ec) return absl::InternalError(absl::StrCat("state.checkpoints.dir: cannot create job directory: ", ec.message()));
  return id;
}

absl::StatusOr<std::string> CreateBoundedJobId(const std::string& checkpoints_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string id = RandomHex(32);
  const fs::path dir = fs::path(checkpoints_dir) / id;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("state.checkpoints.dir: cannot create job directory: ", ec.message()));
  }
  std::ofstream marker(dir / kBoundedJobFile, std::ios::trunc);
  marker << "execution.runtime-mode=BATCH\n";
  marker.close();
  if (!marker) return absl::InternalError(absl::StrCat("cannot write ", (dir / kBoundedJobFile).string()));
  return id;
}

absl::Status RecordJobEnded(const std::string& job_dir, std::string_view state, std::string_view reason) {
  const std::filesystem::path path = std::filesystem::path(job_dir) / kJobEndedFile;
  std::ofstream out(path, std::ios::trunc);
  out << state << "\n" << reason << "\n";
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

absl::Status RecordAttempt(const std::string& job_dir, int64_t attempt) {
  const std::filesystem::path path = std::filesystem::path(job_dir) / kAttemptFile;
  const std::filesystem::path staged = std::filesystem::path(job_dir) / (std::string(kAttemptFile) + ".tmp");
  {
    std::ofstream out(staged, std::ios::trunc);
    out << attempt << "\n";
    out.close();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", staged.string()));
  }
  std::error_code ec;
  std::filesystem::rename(staged, path, ec);  // atomic: a reader sees the old number or the new one
  if (ec) return absl::InternalError(absl::StrCat("cannot write ", path.string(), ": ", ec.message()));
  return absl::OkStatus();
}

int64_t LastRecordedAttempt(const std::string& job_dir) {
  std::ifstream in(std::filesystem::path(job_dir) / kAttemptFile);
  int64_t attempt = 0;
  if (!(in >> attempt) || attempt < 0) return 0;
  return attempt;
}

}  // namespace slipstream
