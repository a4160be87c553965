#include "coordinator/checkpoint/checkpoint_store.h"

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "common/config.h"
#include "common/random_id.h"
#include "spdlog/spdlog.h"

namespace slipstream {

namespace {

namespace fs = std::filesystem;

constexpr char kMetadataFile[] = "_metadata";
constexpr char kDirPrefix[] = "chk-";

// "chk-<n>" with n > 0 -> n.
std::optional<int64_t> ParseCheckpointDirName(std::string_view name) {
  const std::string_view prefix = kDirPrefix;
  if (name.size() <= prefix.size() || name.substr(0, prefix.size()) != prefix) return std::nullopt;
  int64_t id = 0;
  for (char c : name.substr(prefix.size())) {
    if (c < '0' || c > '9' || id > (INT64_MAX - 9) / 10) return std::nullopt;
    id = id * 10 + (c - '0');
  }
  if (id <= 0) return std::nullopt;
  return id;
}

std::string ErrnoText() { return std::strerror(errno); }

// Writes `content` to `path` so that a reader sees either nothing or all of
// it, also after a crash: `<path>.tmp`, fsync, rename, fsync the directory.
absl::Status WriteFileDurably(const fs::path& path, const std::string& content) {
  const std::string tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", ErrnoText()));
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string error = ErrnoText();
      ::close(fd);
      return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", error));
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const std::string error = ErrnoText();
    ::close(fd);
    return absl::InternalError(absl::StrCat("cannot fsync ", tmp, ": ", error));
  }
  if (::close(fd) != 0) return absl::InternalError(absl::StrCat("cannot close ", tmp, ": ", ErrnoText()));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path.string(), ": ", ErrnoText()));
  }
  const int dir = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return absl::OkStatus();
}

bool SamePath(const fs::path& a, const fs::path& b) {
  std::error_code ec_a, ec_b;
  const fs::path ca = fs::weakly_canonical(a, ec_a);
  const fs::path cb = fs::weakly_canonical(b, ec_b);
  if (ec_a || ec_b) return a.lexically_normal() == b.lexically_normal();
  return ca == cb;
}

absl::StatusOr<v1::CheckpointMetadata> ReadMetadata(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", file.string()));
  std::stringstream text;
  text << in.rdbuf();
  v1::CheckpointMetadata metadata;
  const auto status = google::protobuf::util::JsonStringToMessage(text.str(), &metadata);
  if (!status.ok()) return absl::DataLossError(absl::StrCat(file.string(), ": ", status.ToString()));
  return metadata;
}

}  // namespace

absl::StatusOr<CompletedCheckpoint> ReadCompletedCheckpoint(const std::string& path) {
  std::error_code ec;
  fs::path dir = fs::absolute(path, ec).lexically_normal();
  if (ec) return absl::InvalidArgumentError(absl::StrCat("bad path ", path, ": ", ec.message()));
  if (dir.filename().empty()) dir = dir.parent_path();  // a trailing slash
  if (dir.filename() == kMetadataFile && fs::is_regular_file(dir, ec)) dir = dir.parent_path();
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(dir.string(), " is not a directory (expected a chk-<n> or savepoint "
                                            "directory holding a _metadata file)"));
  }
  if (!fs::is_regular_file(dir / kMetadataFile, ec)) {
    return absl::NotFoundError(absl::StrCat(dir.string(), " has no _metadata file: it is not a completed "
                                            "checkpoint or savepoint"));
  }
  absl::StatusOr<v1::CheckpointMetadata> metadata = ReadMetadata(dir / kMetadataFile);
  if (!metadata.ok()) return metadata.status();
  if (const std::optional<int64_t> id = ParseCheckpointDirName(dir.filename().string())) {
    metadata->set_checkpoint_id(*id);
  }
  return CompletedCheckpoint{*std::move(metadata), dir.string()};
}

absl::StatusOr<std::string> NewSavepointDirectory(std::string_view target_dir, std::string_view default_dir,
                                                  std::string_view job_id) {
  const bool use_default = target_dir.empty();
  const std::string_view key = use_default ? "state.savepoints.dir" : "savepoint target directory";
  const std::string_view uri = use_default ? default_dir : target_dir;
  if (uri.empty()) {
    // Flink's message for the same situation, nearly.
    return absl::InvalidArgumentError(
        "no savepoint directory: give a target directory, or configure a default with state.savepoints.dir");
  }
  absl::StatusOr<std::string> local = LocalPathFromUri(key, uri);
  if (!local.ok()) return local.status();
  const fs::path dir = fs::path(*local).lexically_normal();
  if (!dir.is_absolute()) {
    // The coordinator resolves it, not the caller: a relative path would
    // mean the coordinator's working directory, which is never what is meant.
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(key), ": \"", ToAbsl(uri),
                                                   "\" is not absolute; give an absolute path or a file:/// URI"));
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(key), ": cannot create directory ", dir.string(), ": ",
                                                   ec ? ec.message() : "a file of that name exists"));
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(key), ": directory ", dir.string(), " is not writable: ", ErrnoText()));
  }
  // Flink's layout: savepoint-<first 6 characters of the job id>-<12 hex>.
  return (dir / absl::StrCat("savepoint-", ToAbsl(job_id.substr(0, 6)), "-", RandomHex(12))).string();
}

absl::StatusOr<CheckpointStore> CheckpointStore::Open(std::string_view job_dir) {
  if (job_dir.empty()) return absl::InvalidArgumentError("state.checkpoints.dir: no job directory");
  std::error_code ec;
  const fs::path absolute = fs::absolute(fs::path(job_dir), ec).lexically_normal();
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("state.checkpoints.dir: bad path ", ToAbsl(job_dir), ": ", ec.message()));
  }
  return CheckpointStore(absolute.string());
}

std::string CheckpointStore::CheckpointDir(int64_t id) const {
  return (fs::path(job_dir_) / absl::StrCat(kDirPrefix, id)).string();
}

absl::StatusOr<CheckpointStore::Contents> CheckpointStore::Scan() const {
  std::error_code ec;
  fs::create_directories(job_dir_, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("state.checkpoints.dir: cannot create ", job_dir_, ": ", ec.message()));
  }
  Contents found;
  for (const fs::directory_entry& entry : fs::directory_iterator(job_dir_, ec)) {
    const std::optional<int64_t> id = ParseCheckpointDirName(entry.path().filename().string());
    std::error_code entry_ec;
    if (!id || !entry.is_directory(entry_ec)) continue;
    found.last_id = std::max(found.last_id, *id);
    if (found.latest_completed && found.latest_completed->metadata.checkpoint_id() > *id) continue;
    if (!fs::exists(entry.path() / kMetadataFile, entry_ec)) continue;
    absl::StatusOr<v1::CheckpointMetadata> metadata = ReadMetadata(entry.path() / kMetadataFile);
    if (!metadata.ok()) {
      spdlog::warn("ignoring checkpoint {}: {}", entry.path().string(), metadata.status().message());
      continue;
    }
    metadata->set_checkpoint_id(*id);  // the directory is the truth
    found.latest_completed = CompletedCheckpoint{*std::move(metadata), entry.path().string()};
  }
  if (ec) {
    return absl::InternalError(absl::StrCat("state.checkpoints.dir: cannot list ", job_dir_, ": ", ec.message()));
  }
  return found;
}

absl::Status CheckpointStore::CreateDirectory(const std::string& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status CheckpointStore::WriteMetadata(const std::string& dir, const v1::CheckpointMetadata& metadata) const {
  google::protobuf::util::JsonPrintOptions json_options;
  json_options.add_whitespace = true;
  json_options.preserve_proto_field_names = true;
  json_options.always_print_primitive_fields = true;
  std::string json;
  if (const auto status = google::protobuf::util::MessageToJsonString(metadata, &json, json_options); !status.ok()) {
    return absl::InternalError(absl::StrCat("cannot encode the checkpoint metadata: ", status.ToString()));
  }
  return WriteFileDurably(fs::path(dir) / kMetadataFile, json);
}

absl::Status CheckpointStore::Remove(const std::string& dir) const {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot delete ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

void CheckpointStore::DeleteSubsumed(int64_t completed_id, int num_retained, const std::string& keep) const {
  std::error_code ec;
  std::vector<std::pair<int64_t, fs::path>> completed;
  std::vector<fs::path> obsolete;
  for (const fs::directory_entry& entry : fs::directory_iterator(job_dir_, ec)) {
    const std::optional<int64_t> id = ParseCheckpointDirName(entry.path().filename().string());
    std::error_code entry_ec;
    if (!id || !entry.is_directory(entry_ec)) continue;
    if (fs::exists(entry.path() / kMetadataFile, entry_ec)) {
      completed.emplace_back(*id, entry.path());
    } else if (*id < completed_id) {
      obsolete.push_back(entry.path());
    }
  }
  if (ec) {
    spdlog::warn("cannot list {} to delete old checkpoints: {}", job_dir_, ec.message());
    return;
  }
  std::sort(completed.begin(), completed.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t i = std::max(num_retained, 1); i < completed.size(); ++i) obsolete.push_back(completed[i].second);
  for (const fs::path& path : obsolete) {
    if (!keep.empty() && SamePath(path, fs::path(keep))) {
      spdlog::debug("keeping {}: the running attempt restored it", path.string());
      continue;
    }
    std::error_code remove_ec;
    fs::remove_all(path, remove_ec);
    if (remove_ec) spdlog::warn("cannot delete old checkpoint {}: {}", path.string(), remove_ec.message());
  }
}

size_t CheckpointStore::DeleteAll() const {
  std::error_code ec;
  std::vector<fs::path> doomed;
  for (const fs::directory_entry& entry : fs::directory_iterator(job_dir_, ec)) {
    if (ParseCheckpointDirName(entry.path().filename().string())) doomed.push_back(entry.path());
  }
  for (const fs::path& path : doomed) {
    std::error_code remove_ec;
    fs::remove_all(path, remove_ec);
    if (remove_ec) spdlog::warn("cannot delete checkpoint {}: {}", path.string(), remove_ec.message());
  }
  return doomed.size();
}

}  // namespace slipstream
