#include "worker/sink/file_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/file_sink_commit.h"
#include "spdlog/spdlog.h"
#include "worker/sink/feature_json_line.h"
#include "worker/sink/redis_sink_queue.h"

namespace slipstream {

namespace {

constexpr int64_t kFirstBackoffMs = 100;
constexpr int64_t kMaxBackoffMs = 5000;
// While the sink is being destroyed, a disk that keeps failing is given up
// on after this many retries (about a minute) rather than hanging the stop.
constexpr int kMaxRetriesWhileStopping = 15;

absl::Status ErrnoError(const std::string& what, const std::string& path, int err) {
  return absl::InternalError(absl::StrCat("file sink: ", what, " ", path, ": ", std::strerror(err)));
}

// fsync of the directory: a new file's name is durable only once its
// directory is synced.
absl::Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : ErrnoError("fsync", dir, err);
}

}  // namespace

// The queue (RedisSinkQueue: the same hand-off, backpressure and
// acknowledgement counting as the Redis sink's) is shared by the task thread
// and the writer thread; the file descriptor and `synced_bytes` belong to
// the writer thread once it runs; the stats have their own lock.
struct FileSink::Impl {
  explicit Impl(const FileSinkOptions& o) : options(o), queue(o.max_queued) {}

  const FileSinkOptions options;
  std::string path;
  RedisSinkQueue queue;
  int fd = -1;
  int64_t synced_bytes = 0;  // the file's length up to the last successful fsync
  std::thread thread;

  mutable std::mutex stats_mu;
  int64_t errors = 0;
  std::string last_error;
  int64_t last_error_ms = 0;
  LatencyHistogram batch_latency;
  int64_t last_error_log_ms = 0;

  void Run();
  // Appends `bytes` and fsyncs, retrying failures; false when it gave up
  // (the sink is discarding, or stopping on a disk that keeps failing).
  bool WriteDurably(const std::string& bytes);
  absl::Status AppendAndSync(const std::string& bytes);
  void RecordError(const absl::Status& status, int64_t backoff_ms);
};

void FileSink::Impl::Run() {
  std::vector<FeatureWrite> batch;
  std::string bytes;
  for (;;) {
    batch.clear();
    bool guarded = false;  // unused: a file has no stored versions to guard
    const RedisSinkQueue::Take take =
        queue.TakeBatch(options.batch_size, /*nothing_in_flight=*/true, INT64_MIN, &batch, &guarded);
    if (take == RedisSinkQueue::Take::kStop) return;
    if (take == RedisSinkQueue::Take::kNothingNow) continue;
    const auto started = std::chrono::steady_clock::now();
    bytes.clear();
    for (const FeatureWrite& f : batch) AppendFeatureJsonLine(f, &bytes);
    if (!WriteDurably(bytes)) {
      spdlog::error("file sink: stopping with {} features of a batch not written to {}", batch.size(), path);
      return;
    }
    {
      std::lock_guard lock(stats_mu);
      batch_latency.Observe(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
    }
    queue.Acknowledge(batch.size());
  }
}

bool FileSink::Impl::WriteDurably(const std::string& bytes) {
  int64_t backoff_ms = kFirstBackoffMs;
  for (int retries = 0;; ++retries) {
    const absl::Status s = AppendAndSync(bytes);
    if (s.ok()) return true;
    // A partial write must not stay: the retry appends the whole batch
    // again, and a reader must never see half a line followed by the line.
    if (::ftruncate(fd, static_cast<off_t>(synced_bytes)) != 0) {
      spdlog::warn("file sink: cannot cut {} back to {} bytes: {}", path, synced_bytes, std::strerror(errno));
    }
    RecordError(s, backoff_ms);
    if (queue.flags().stopping && retries >= kMaxRetriesWhileStopping) return false;
    if (!queue.Pause(backoff_ms)) return false;  // discarding
    backoff_ms = std::min(backoff_ms * 2, kMaxBackoffMs);
  }
}

absl::Status FileSink::Impl::AppendAndSync(const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done,
                               static_cast<off_t>(synced_bytes + static_cast<int64_t>(done)));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", path, errno);
    }
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd) != 0) return ErrnoError("fsync", path, errno);
  synced_bytes += static_cast<int64_t>(bytes.size());
  return absl::OkStatus();
}

void FileSink::Impl::RecordError(const absl::Status& status, int64_t backoff_ms) {
  const int64_t now_ms = Clock::Real().WallMs();
  bool log = false;
  {
    std::lock_guard lock(stats_mu);
    ++errors;
    last_error = std::string(status.message());
    last_error_ms = now_ms;
    // At most one line per 10 s: a full disk fails every retry.
    if (now_ms - last_error_log_ms >= 10000) {
      last_error_log_ms = now_ms;
      log = true;
    }
  }
  if (log) spdlog::warn("{} (retrying in {} ms)", std::string(status.message()), backoff_ms);
}

FileSink::FileSink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<FileSink>> FileSink::Start(const FileSinkOptions& options) {
  if (options.directory.empty()) return absl::InvalidArgumentError("sink.path is required with sink.type=file");
  auto impl = std::make_unique<Impl>(options);
  impl->path = FileSinkInProgressPart(options.directory, options.job_id, options.attempt, options.writer_index);
  const std::string dir = FileSinkAttemptDir(options.directory, options.job_id, options.attempt);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("file sink (sink.path): cannot create ", dir, ": ", ec.message()));
  const std::string marker =
      FileSinkRestoredMarker(options.directory, options.job_id, options.attempt, options.writer_index);
  if (!options.restored_checkpoint.empty()) {
    // Written before the part exists: a part without its marker would look
    // committable.
    const int mfd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (mfd < 0) return ErrnoError("create", marker, errno);
    const std::string text = options.restored_checkpoint + "\n";
    const bool written = ::write(mfd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                         ::fsync(mfd) == 0;
    const int err = errno;
    ::close(mfd);
    if (!written) return ErrnoError("write", marker, err);
  } else {
    std::filesystem::remove(marker, ec);  // an earlier deployment of the same attempt and index
  }
  impl->fd = ::open(impl->path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (impl->fd < 0) return ErrnoError("create", impl->path, errno);
  if (absl::Status s = SyncDirectory(dir); !s.ok()) {
    ::close(impl->fd);
    return s;
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->Run(); });
  return std::unique_ptr<FileSink>(new FileSink(std::move(impl)));
}

FileSink::~FileSink() {
  impl_->queue.Stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  if (impl_->fd >= 0) ::close(impl_->fd);
}

void FileSink::Write(std::vector<FeatureWrite>* features) { impl_->queue.Push(features); }

void FileSink::Flush() { impl_->queue.WaitUntilAllAcked(); }

void FileSink::DropQueued() { impl_->queue.DropQueued(); }

size_t FileSink::Discard() {
  DropQueued();
  impl_->queue.Stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  return impl_->queue.Dropped();
}

uint64_t FileSink::Enqueued() const { return impl_->queue.Enqueued(); }

bool FileSink::WaitUntilAcked(uint64_t mark, int64_t timeout_ms) {
  return impl_->queue.WaitUntilAcked(mark, timeout_ms);
}

FeatureSinkStats FileSink::stats() const {
  FeatureSinkStats s;
  const RedisSinkQueue::Counts counts = impl_->queue.counts();
  s.features_written = static_cast<int64_t>(counts.acked);
  s.queued = static_cast<int64_t>(counts.queued);
  s.pending = static_cast<int64_t>(counts.enqueued - counts.acked);
  std::lock_guard lock(impl_->stats_mu);
  s.error_replies = impl_->errors;
  s.last_error = impl_->last_error;
  s.last_error_ms = impl_->last_error_ms;
  s.batch_latency = impl_->batch_latency;
  return s;
}

const std::string& FileSink::path() const { return impl_->path; }

}  // namespace slipstream
