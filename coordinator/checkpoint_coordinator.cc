#include "coordinator/checkpoint_coordinator.h"

#include "common/random_id.h"

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/absl_compat.h"
#include "common/config.h"
#include "spdlog/spdlog.h"

namespace slipstream {

namespace {

namespace fs = std::filesystem;
using Stub = v1::TaskControl::StubInterface;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kHistorySize = 20;
constexpr size_t kMaxSavepointOperations = 100;
constexpr char kMetadataFile[] = "_metadata";
constexpr char kDirPrefix[] = "chk-";


std::string CheckpointDirName(int64_t id) { return absl::StrCat(kDirPrefix, id); }

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

// Flink's checkpoint_type names.
const char* CheckpointType(bool savepoint, bool stop) {
  return !savepoint ? "CHECKPOINT" : stop ? "SYNC_SAVEPOINT" : "SAVEPOINT";
}


// A state path a worker reported is inside the checkpoint directory: a
// relative path without "..", so the directory can be moved as a whole.
bool IsContainedRelativePath(const std::string& path) {
  const fs::path p(path);
  if (path.empty() || p.is_absolute()) return false;
  for (const fs::path& part : p.lexically_normal()) {
    if (part == "..") return false;
  }
  return true;
}

v1::CheckpointStats StatsFromMetadata(const v1::CheckpointMetadata& metadata, const std::string& path) {
  v1::CheckpointStats stats;
  stats.set_id(metadata.checkpoint_id());
  stats.set_status("COMPLETED");
  stats.set_is_savepoint(metadata.savepoint());
  stats.set_checkpoint_type(CheckpointType(metadata.savepoint(), false));
  stats.set_trigger_time_ms(metadata.trigger_time_ms());
  stats.set_end_to_end_ms(metadata.completion_time_ms() - metadata.trigger_time_ms());
  int64_t bytes = 0;
  for (const v1::WorkerSnapshot& w : metadata.workers()) {
    bytes += w.state_bytes();
    stats.set_alignment_ms(std::max(stats.alignment_ms(), w.alignment_ms()));
    stats.set_sync_ms(std::max(stats.sync_ms(), w.sync_ms()));
    stats.set_async_ms(std::max(stats.async_ms(), w.async_ms()));
  }
  stats.set_state_bytes(bytes);
  stats.set_acknowledged(metadata.workers_size());
  stats.set_expected(metadata.workers_size());
  stats.set_path(path);
  return stats;
}

std::string Target(const v1::PeerEndpoint& worker) { return absl::StrCat(worker.host(), ":", worker.data_port()); }

// RPCs to workers that have not finished, so Stop can cancel them and wait
// for their callbacks (which run on gRPC's threads) before anything they use
// goes away.
struct RpcBase {
  virtual ~RpcBase() = default;
  grpc::ClientContext ctx;
};

class RpcTracker {
 public:
  // False once cancelled: the call must not start.
  bool Begin(std::shared_ptr<RpcBase> rpc) {
    std::lock_guard lock(mu_);
    if (cancelled_) return false;
    live_.emplace(rpc.get(), std::move(rpc));
    return true;
  }
  void End(RpcBase* rpc) {
    std::lock_guard lock(mu_);
    live_.erase(rpc);
    if (live_.empty()) cv_.notify_all();
  }
  void CancelAll() {
    std::vector<std::shared_ptr<RpcBase>> live;
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
      for (const auto& [raw, rpc] : live_) live.push_back(rpc);
    }
    // Outside the lock: a cancelled call's callback may run inline.
    for (const auto& rpc : live) rpc->ctx.TryCancel();
  }
  void WaitIdle() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return live_.empty(); });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<RpcBase*, std::shared_ptr<RpcBase>> live_;
  bool cancelled_ = false;
};

template <typename Request, typename Response>
struct Rpc final : RpcBase {
  Request request;
  Response response;
  std::shared_ptr<Stub> stub;
};

template <typename Request, typename Response>
using AsyncMethod = void (Stub::async_interface::*)(grpc::ClientContext*, const Request*, Response*,
                                                    std::function<void(grpc::Status)>);
template <typename Request, typename Response>
using SyncMethod = grpc::Status (Stub::*)(grpc::ClientContext*, const Request&, Response*);

// Starts one unary call; `done` runs exactly once, on a gRPC thread (inline
// when the call cannot start or the stub has no callback API).
template <typename Request, typename Response>
void StartRpc(RpcTracker* tracker, std::shared_ptr<Stub> stub, Request request, int64_t timeout_ms,
              std::type_identity_t<AsyncMethod<Request, Response>> async_method,
              std::type_identity_t<SyncMethod<Request, Response>> sync_method,
              std::function<void(const grpc::Status&)> done) {
  auto rpc = std::make_shared<Rpc<Request, Response>>();
  rpc->request = std::move(request);
  rpc->stub = stub;
  rpc->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  if (!tracker->Begin(rpc)) {
    done(grpc::Status(grpc::StatusCode::CANCELLED, "the checkpoint coordinator is stopping"));
    return;
  }
  Stub::async_interface* async = stub->async();
  if (async == nullptr) {  // a hand-written stub without the callback API
    done(((*stub).*sync_method)(&rpc->ctx, rpc->request, &rpc->response));
    tracker->End(rpc.get());
    return;
  }
  Rpc<Request, Response>* raw = rpc.get();
  (async->*async_method)(&raw->ctx, &raw->request, &raw->response,
                         [rpc = std::move(rpc), tracker, done = std::move(done)](grpc::Status status) {
                           done(status);
                           tracker->End(rpc.get());
                         });
}

// The checkpoint in progress.
struct Pending {
  int64_t id = 0;
  int64_t attempt = 0;
  int64_t trigger_time_ms = 0;
  SteadyClock::time_point deadline;
  std::vector<v1::PeerEndpoint> workers;
  int num_partitions = 0;
  fs::path dir;
  std::map<std::string, v1::WorkerSnapshot> acks;  // by worker id
  std::string failure;                             // set: to be aborted
  bool counts_towards_tolerable = true;
  bool savepoint = false;
  bool stop = false;           // stop-with-savepoint
  std::string request_id;      // the savepoint's operation

  bool acknowledged_by_all() const { return acks.size() == workers.size(); }

  v1::CheckpointStats Stats(int64_t now_ms) const {
    v1::CheckpointStats stats;
    stats.set_id(id);
    stats.set_status("IN_PROGRESS");
    stats.set_is_savepoint(savepoint);
    stats.set_checkpoint_type(CheckpointType(savepoint, stop));
    stats.set_trigger_time_ms(trigger_time_ms);
    stats.set_end_to_end_ms(now_ms - trigger_time_ms);
    int64_t bytes = 0;
    for (const auto& [worker, s] : acks) {
      bytes += s.state_bytes();
      stats.set_alignment_ms(std::max(stats.alignment_ms(), s.alignment_ms()));
      stats.set_sync_ms(std::max(stats.sync_ms(), s.sync_ms()));
      stats.set_async_ms(std::max(stats.async_ms(), s.async_ms()));
    }
    stats.set_state_bytes(bytes);
    stats.set_acknowledged(static_cast<int32_t>(acks.size()));
    stats.set_expected(static_cast<int32_t>(workers.size()));
    stats.set_path(dir.string());
    return stats;
  }

  std::string MissingWorkers() const {
    std::vector<std::string> missing;
    for (const v1::PeerEndpoint& w : workers) {
      if (!acks.contains(w.worker_id())) missing.push_back(w.worker_id());
    }
    return absl::StrJoin(missing, ", ");
  }
};

// A savepoint requested but not triggered yet (a checkpoint is running).
struct QueuedSavepoint {
  std::string request_id;
  fs::path dir;
  bool stop = false;
  int64_t attempt = 0;
};

}  // namespace

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

std::unique_ptr<v1::TaskControl::StubInterface> MakeTaskControlStub(const std::string& target) {
  return v1::TaskControl::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
}

struct CheckpointCoordinator::Impl {
  CheckpointCoordinatorOptions options;
  fs::path job_dir;  // absolute
  RpcTracker rpcs;
  std::map<std::string, std::shared_ptr<Stub>> stubs;  // by target; the checkpoint thread only
  std::thread thread;

  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  int64_t attempt = 0;  // running attempt; 0: none (nothing is triggered)
  std::vector<v1::PeerEndpoint> workers;
  int num_partitions = 0;
  SteadyClock::time_point next_trigger;
  int64_t last_id = 0;
  std::optional<Pending> pending;
  int64_t completed_count = 0;
  int64_t failed_count = 0;
  int64_t consecutive_failures = 0;
  std::deque<v1::CheckpointStats> history;  // finished checkpoints, newest first
  std::optional<v1::CheckpointStats> latest_completed_stats;
  std::optional<CompletedCheckpoint> latest_completed;
  // The checkpoint `protected_attempt` restored: not deleted by retention
  // until a checkpoint of that attempt or a later one completes.
  fs::path protected_path;
  int64_t protected_attempt = 0;
  // Savepoints: the one waiting to be triggered, and every operation by
  // request id (the newest kMaxSavepointOperations).
  std::optional<QueuedSavepoint> queued_savepoint;
  std::map<std::string, v1::SavepointOperation> operations;
  std::deque<std::string> operation_order;
  bool terminated = false;          // canceled or finished: never trigger again
  bool discard_checkpoints = false; // DELETE_ON_CANCELLATION still to do
  bool trigger_soon = false;        // RequestCheckpoint: trigger without waiting for the interval
  // CancelTask calls to send (the thread owns the stubs): attempts that ended.
  std::vector<v1::CancelTaskRequest> cancel_orders;
  std::vector<std::vector<v1::PeerEndpoint>> cancel_targets;

  v1::SavepointOperation* Operation(const std::string& request_id) {
    auto it = operations.find(request_id);
    return it == operations.end() ? nullptr : &it->second;
  }

  void FailOperation(const std::string& request_id, const std::string& cause) {
    if (v1::SavepointOperation* op = Operation(request_id)) {
      op->set_status("FAILED");
      op->set_failure_cause(cause);
      op->set_end_time_ms(options.clock->WallMs());
    }
  }

  void FailQueuedSavepoint(const std::string& cause) {
    if (!queued_savepoint) return;
    spdlog::warn("savepoint request {} of job {} failed before it started: {}", queued_savepoint->request_id,
                 options.job_id, cause);
    FailOperation(queued_savepoint->request_id, cause);
    queued_savepoint.reset();
  }

  const CheckpointSettings& settings() const { return options.settings; }

  std::shared_ptr<Stub> StubFor(const std::string& target) {
    std::shared_ptr<Stub>& stub = stubs[target];
    if (!stub) stub = options.make_stub ? options.make_stub(target) : MakeTaskControlStub(target);
    return stub;
  }

  void PushHistory(v1::CheckpointStats stats) {
    history.push_front(std::move(stats));
    while (history.size() > kHistorySize) history.pop_back();
  }

  // Flink: the next periodic trigger comes one interval after the previous
  // trigger, but never sooner than min-pause after the previous checkpoint
  // ended (completed or failed).
  void ScheduleAfterEnd() {
    next_trigger = std::max(next_trigger, SteadyClock::now() + std::chrono::milliseconds(settings().min_pause_ms));
  }

  absl::Status Validate(const std::string& worker_id, const std::string& job_id, int64_t attempt_id,
                        int64_t checkpoint_id, const v1::PeerEndpoint** worker) const {
    if (job_id != options.job_id) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint ", checkpoint_id, " of job \"", job_id,
                                                     "\": this coordinator runs job ", options.job_id));
    }
    if (!pending || pending->id != checkpoint_id || pending->attempt != attempt_id || !pending->failure.empty()) {
      std::string now;
      if (pending && pending->failure.empty()) {
        now = absl::StrCat(" (checkpoint ", pending->id, " of attempt ", pending->attempt, " is)");
      }
      return absl::NotFoundError(absl::StrCat("checkpoint ", checkpoint_id, " of attempt ", attempt_id,
                                              " is not in progress: it completed, failed, or never existed", now));
    }
    for (const v1::PeerEndpoint& w : pending->workers) {
      if (w.worker_id() == worker_id) {
        *worker = &w;
        return absl::OkStatus();
      }
    }
    return absl::InvalidArgumentError(
        absl::StrCat("worker \"", worker_id, "\" is not part of attempt ", attempt_id, " of job ", options.job_id));
  }

  // Queues CancelTask for every worker of an attempt that ended (under `mu`).
  void OrderCancel(int64_t ended_attempt, std::string_view cause) {
    if (ended_attempt == 0 || workers.empty()) return;
    v1::CancelTaskRequest request;
    request.set_job_id(options.job_id);
    request.set_attempt(ended_attempt);
    request.set_reason(std::string(cause));
    cancel_orders.push_back(std::move(request));
    cancel_targets.push_back(workers);
  }

  // Tells the workers of ended attempts at once, instead of at their next
  // heartbeat (heartbeat.interval), that their task is to stop: this is most
  // of the pause of a rescale or a recovery. Best effort; heartbeats remain
  // the authority.
  void SendCancels(std::vector<v1::CancelTaskRequest> orders, std::vector<std::vector<v1::PeerEndpoint>> targets) {
    for (size_t i = 0; i < orders.size(); ++i) {
      for (const v1::PeerEndpoint& w : targets[i]) {
        StartRpc<v1::CancelTaskRequest, v1::CancelTaskResponse>(
            &rpcs, StubFor(Target(w)), orders[i], settings().rpc_timeout_ms, &Stub::async_interface::CancelTask,
            &Stub::CancelTask, [worker_id = w.worker_id(), attempt = orders[i].attempt()](const grpc::Status& status) {
              if (!status.ok()) {
                spdlog::debug("CancelTask of attempt {} on worker {}: {}", attempt, worker_id, status.error_message());
              }
            });
      }
    }
  }

  void Run() {
    std::unique_lock lock(mu);
    while (!stopping) {
      if (!cancel_orders.empty()) {
        std::vector<v1::CancelTaskRequest> orders = std::move(cancel_orders);
        std::vector<std::vector<v1::PeerEndpoint>> targets = std::move(cancel_targets);
        cancel_orders.clear();
        cancel_targets.clear();
        lock.unlock();
        SendCancels(std::move(orders), std::move(targets));
        lock.lock();
        continue;
      }
      const SteadyClock::time_point now = SteadyClock::now();
      if (pending) {
        if (!pending->failure.empty()) {
          AbortPending(lock);
        } else if (pending->acknowledged_by_all()) {
          CompletePending(lock);
        } else if (now >= pending->deadline) {
          // Flink's CheckpointFailureReason.CHECKPOINT_EXPIRED.
          pending->failure = absl::StrCat("Checkpoint expired before completing: not acknowledged within "
                                          "execution.checkpointing.timeout (",
                                          settings().timeout_ms, " ms) by ", pending->MissingWorkers());
        } else {
          cv.wait_until(lock, pending->deadline);
        }
      } else if (queued_savepoint && attempt != 0 && !workers.empty()) {
        QueuedSavepoint savepoint = std::move(*queued_savepoint);
        queued_savepoint.reset();
        TriggerCheckpoint(lock, std::move(savepoint));
      } else if (discard_checkpoints) {
        discard_checkpoints = false;
        lock.unlock();
        DiscardCheckpoints();
        lock.lock();
      } else if (attempt != 0 && !workers.empty() && (settings().interval_ms > 0 || trigger_soon)) {
        if (trigger_soon || now >= next_trigger) {
          trigger_soon = false;
          TriggerCheckpoint(lock);
        } else {
          cv.wait_until(lock, next_trigger);
        }
      } else {
        cv.wait(lock);
      }
    }
  }

  // Triggers the next periodic checkpoint, or `savepoint`.
  void TriggerCheckpoint(std::unique_lock<std::mutex>& lock, std::optional<QueuedSavepoint> savepoint = std::nullopt) {
    Pending p;
    p.id = ++last_id;
    p.attempt = attempt;
    p.trigger_time_ms = options.clock->WallMs();
    const SteadyClock::time_point now = SteadyClock::now();
    p.deadline = now + std::chrono::milliseconds(settings().timeout_ms);
    p.workers = workers;
    p.num_partitions = num_partitions;
    if (savepoint) {
      // Flink does not count savepoint failures towards the tolerable
      // checkpoint failures, and a savepoint does not move the periodic
      // schedule.
      p.savepoint = true;
      p.stop = savepoint->stop;
      p.request_id = savepoint->request_id;
      p.dir = savepoint->dir;
      p.counts_towards_tolerable = false;
      if (v1::SavepointOperation* op = Operation(p.request_id)) {
        op->set_checkpoint_id(p.id);
        op->set_expected(static_cast<int32_t>(p.workers.size()));
      }
      spdlog::info("triggering {} {} of job {} (attempt {}, request {}) into {}",
                   p.stop ? "stop-with-savepoint" : "savepoint", p.id, options.job_id, p.attempt, p.request_id,
                   p.dir.string());
    } else {
      p.dir = job_dir / CheckpointDirName(p.id);
      next_trigger = now + std::chrono::milliseconds(settings().interval_ms);
    }
    const int64_t id = p.id;
    const int64_t attempt_id = p.attempt;
    const std::vector<v1::PeerEndpoint> targets = p.workers;
    v1::TriggerCheckpointRequest request;
    request.set_job_id(options.job_id);
    request.set_attempt(p.attempt);
    request.set_checkpoint_id(p.id);
    request.set_timestamp_ms(p.trigger_time_ms);
    request.set_target_dir(p.dir.string());
    request.set_exactly_once(settings().exactly_once);
    request.set_savepoint(p.savepoint);
    request.set_stop_after(p.stop);
    const fs::path dir = p.dir;
    pending = std::move(p);
    lock.unlock();

    spdlog::debug("triggering checkpoint {} of job {} (attempt {}) on {} workers", id, options.job_id, attempt_id,
                  targets.size());
    std::vector<std::string> errors;
    bool not_all_running = false;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      errors.push_back(absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
    } else {
      struct FanOut {
        std::mutex mu;
        std::condition_variable cv;
        size_t remaining = 0;
        std::vector<std::string> errors;
        // Errors that only say the worker's task is not (yet, or no longer)
        // running this attempt: FAILED_PRECONDITION.
        size_t not_running = 0;
      };
      auto fan = std::make_shared<FanOut>();
      fan->remaining = targets.size();
      for (const v1::PeerEndpoint& w : targets) {
        const std::string label = absl::StrCat("worker ", w.worker_id(), " (", Target(w), ")");
        StartRpc<v1::TriggerCheckpointRequest, v1::TriggerCheckpointResponse>(
            &rpcs, StubFor(Target(w)), request, settings().rpc_timeout_ms,
            &Stub::async_interface::TriggerCheckpoint, &Stub::TriggerCheckpoint,
            [fan, label](const grpc::Status& status) {
              std::lock_guard fan_lock(fan->mu);
              if (!status.ok()) {
                fan->errors.push_back(absl::StrCat(label, ": TriggerCheckpoint failed: ", status.error_message(),
                                                   " (gRPC code ", static_cast<int>(status.error_code()), ")"));
                if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) ++fan->not_running;
              }
              if (--fan->remaining == 0) fan->cv.notify_all();
            });
      }
      std::unique_lock fan_lock(fan->mu);
      fan->cv.wait(fan_lock, [&] { return fan->remaining == 0; });
      errors = fan->errors;
      not_all_running = !errors.empty() && fan->not_running == errors.size();
    }

    lock.lock();
    if (!errors.empty() && pending && pending->id == id && pending->failure.empty() &&
        !pending->acknowledged_by_all()) {
      pending->failure = absl::StrJoin(errors, "; ");
      // A task that has not started yet (just deployed, still restoring) or
      // already stopped: Flink's NOT_ALL_REQUIRED_TASKS_RUNNING, which does
      // not count towards the tolerable failures either. A worker that is
      // gone fails the attempt through its heartbeats.
      if (not_all_running) {
        pending->counts_towards_tolerable = false;
        pending->failure = "not all tasks are running: " + pending->failure;
      }
    }
  }

  void CompletePending(std::unique_lock<std::mutex>& lock) {
    const Pending& p = *pending;
    v1::CheckpointMetadata metadata;
    metadata.set_job_id(options.job_id);
    metadata.set_checkpoint_id(p.id);
    metadata.set_trigger_time_ms(p.trigger_time_ms);
    metadata.set_completion_time_ms(options.clock->WallMs());
    metadata.set_topic(options.topic);
    metadata.set_max_parallelism(options.max_parallelism);
    metadata.set_num_partitions(p.num_partitions);
    metadata.set_attempt(p.attempt);
    metadata.set_savepoint(p.savepoint);
    for (const v1::PeerEndpoint& w : p.workers) *metadata.add_workers() = p.acks.at(w.worker_id());
    const fs::path dir = p.dir;
    const std::vector<v1::PeerEndpoint> targets = p.workers;
    const bool savepoint = p.savepoint;
    const bool stop = p.stop;
    const std::string request_id = p.request_id;
    if (savepoint) {
      // A savepoint must be self-contained: every state path inside it.
      for (const v1::WorkerSnapshot& w : metadata.workers()) {
        if (!IsContainedRelativePath(w.state_path())) {
          pending->failure = absl::StrCat("worker ", w.worker_id(), " reported state path \"", w.state_path(),
                                          "\", which is not inside the savepoint directory");
          return;
        }
      }
    }
    // Nobody changes an acknowledged-by-all pending checkpoint but this
    // thread, so it can be finished without the lock.
    lock.unlock();

    google::protobuf::util::JsonPrintOptions json_options;
    json_options.add_whitespace = true;
    json_options.preserve_proto_field_names = true;
    json_options.always_print_primitive_fields = true;
    std::string json;
    absl::Status written;
    if (const auto status = google::protobuf::util::MessageToJsonString(metadata, &json, json_options); !status.ok()) {
      written = absl::InternalError(absl::StrCat("cannot encode the checkpoint metadata: ", status.ToString()));
    } else {
      written = WriteFileDurably(dir / kMetadataFile, json);
    }
    if (!written.ok()) {
      lock.lock();
      pending->failure = absl::StrCat("cannot write _metadata: ", written.message());
      return;
    }

    v1::CheckpointStats stats = StatsFromMetadata(metadata, dir.string());
    stats.set_checkpoint_type(CheckpointType(savepoint, stop));
    if (savepoint) {
      // Savepoints are the user's: not used for recovery, never retained or
      // deleted here, and not the "latest completed checkpoint".
      lock.lock();
      PushHistory(stats);
      ++completed_count;
      pending.reset();
      ScheduleAfterEnd();
      lock.unlock();
      spdlog::info("{} {} of job {} (attempt {}) completed in {} ms: {} bytes from {} workers, max alignment {} ms, "
                   "sync {} ms, async {} ms ({})",
                   stop ? "stop-with-savepoint" : "savepoint", stats.id(), options.job_id, metadata.attempt(),
                   stats.end_to_end_ms(), stats.state_bytes(), metadata.workers_size(), stats.alignment_ms(),
                   stats.sync_ms(), stats.async_ms(), dir.string());
      // The job ends before the operation reads COMPLETED, so a client that
      // sees COMPLETED sees the job FINISHED (unless it failed meanwhile).
      // Nothing is triggered in between: this thread is the one that would.
      if (stop && options.on_stopped) options.on_stopped(metadata.attempt(), dir.string());
      lock.lock();
      if (v1::SavepointOperation* op = Operation(request_id)) {
        op->set_status("COMPLETED");
        op->set_location(dir.string());
        op->set_end_time_ms(metadata.completion_time_ms());
        op->set_acknowledged(metadata.workers_size());
        op->set_state_bytes(stats.state_bytes());
      }
      lock.unlock();
    } else {
      // Completed from here on (it has a _metadata): recovery may use it
      // before older checkpoints are deleted.
      lock.lock();
      latest_completed = CompletedCheckpoint{metadata, dir.string()};
      if (!protected_path.empty() && metadata.attempt() >= protected_attempt) protected_path.clear();
      const fs::path keep = protected_path;
      lock.unlock();
      DeleteSubsumed(metadata.checkpoint_id(), keep);

      lock.lock();
      latest_completed_stats = stats;
      PushHistory(stats);
      ++completed_count;
      consecutive_failures = 0;
      pending.reset();
      ScheduleAfterEnd();
      lock.unlock();

      spdlog::info("checkpoint {} of job {} (attempt {}) completed in {} ms: {} bytes from {} workers, max alignment "
                   "{} ms, sync {} ms, async {} ms ({})",
                   stats.id(), options.job_id, metadata.attempt(), stats.end_to_end_ms(), stats.state_bytes(),
                   metadata.workers_size(), stats.alignment_ms(), stats.sync_ms(), stats.async_ms(), dir.string());
    }
    v1::CheckpointNotification note;
    note.set_job_id(options.job_id);
    note.set_attempt(metadata.attempt());
    note.set_checkpoint_id(metadata.checkpoint_id());
    for (const v1::PeerEndpoint& w : targets) {
      const std::string worker_id = w.worker_id();
      const int64_t id = metadata.checkpoint_id();
      StartRpc<v1::CheckpointNotification, v1::CheckpointNotificationResponse>(
          &rpcs, StubFor(Target(w)), note, settings().rpc_timeout_ms,
          &Stub::async_interface::NotifyCheckpointComplete, &Stub::NotifyCheckpointComplete,
          [worker_id, id](const grpc::Status& status) {
            if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
              spdlog::warn("worker {}: NotifyCheckpointComplete({}) failed: {}", worker_id, id,
                           status.error_message());
            }
          });
    }
    lock.lock();
  }

  // Keeps the newest `num_retained` completed checkpoints and deletes the
  // others, plus incomplete directories older than `completed_id` (aborted or
  // abandoned by an earlier coordinator run). `keep` (a restore source) stays.
  void DeleteSubsumed(int64_t completed_id, const fs::path& keep) {
    std::error_code ec;
    std::vector<std::pair<int64_t, fs::path>> completed;
    std::vector<fs::path> obsolete;
    for (const fs::directory_entry& entry : fs::directory_iterator(job_dir, ec)) {
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
      spdlog::warn("cannot list {} to delete old checkpoints: {}", job_dir.string(), ec.message());
      return;
    }
    std::sort(completed.begin(), completed.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t i = std::max(settings().num_retained, 1); i < completed.size(); ++i) {
      obsolete.push_back(completed[i].second);
    }
    for (const fs::path& path : obsolete) {
      if (!keep.empty() && SamePath(path, keep)) {
        spdlog::debug("keeping {}: the running attempt restored it", path.string());
        continue;
      }
      std::error_code remove_ec;
      fs::remove_all(path, remove_ec);
      if (remove_ec) spdlog::warn("cannot delete old checkpoint {}: {}", path.string(), remove_ec.message());
    }
  }

  void AbortPending(std::unique_lock<std::mutex>& lock) {
    Pending p = std::move(*pending);
    pending.reset();
    const int64_t now_ms = options.clock->WallMs();
    v1::CheckpointStats stats = p.Stats(now_ms);
    stats.set_status("FAILED");
    stats.set_failure_reason(p.failure);
    PushHistory(stats);
    ++failed_count;
    if (p.savepoint) FailOperation(p.request_id, p.failure);
    std::string job_failure;
    if (p.counts_towards_tolerable) {
      ++consecutive_failures;
      if (consecutive_failures > settings().tolerable_failed) {
        // Flink's CheckpointFailureManager message.
        job_failure = absl::StrCat("Exceeded checkpoint tolerable failure threshold "
                                   "(execution.checkpointing.tolerable-failed-checkpoints=",
                                   settings().tolerable_failed, "): checkpoint ", p.id, " failed: ", p.failure);
        consecutive_failures = 0;
        // The attempt is failing over: nothing more to trigger in it.
        if (attempt == p.attempt) {
          attempt = 0;
          workers.clear();
        }
      }
    }
    ScheduleAfterEnd();
    lock.unlock();

    spdlog::log(p.counts_towards_tolerable || p.savepoint ? spdlog::level::warn : spdlog::level::info,
                "{} {} of job {} (attempt {}) failed after {} ms ({} of {} workers acknowledged): {}",
                p.savepoint ? (p.stop ? "stop-with-savepoint" : "savepoint") : "checkpoint", p.id, options.job_id,
                p.attempt, stats.end_to_end_ms(), p.acks.size(), p.workers.size(), p.failure);
    v1::CheckpointNotification note;
    note.set_job_id(options.job_id);
    note.set_attempt(p.attempt);
    note.set_checkpoint_id(p.id);
    note.set_reason(p.failure);
    for (const v1::PeerEndpoint& w : p.workers) {
      StartRpc<v1::CheckpointNotification, v1::CheckpointNotificationResponse>(
          &rpcs, StubFor(Target(w)), note, settings().rpc_timeout_ms, &Stub::async_interface::AbortCheckpoint,
          &Stub::AbortCheckpoint, [](const grpc::Status&) {});  // best effort: the worker may be gone
    }
    std::error_code ec;
    fs::remove_all(p.dir, ec);
    if (ec) spdlog::warn("cannot delete aborted checkpoint {}: {}", p.dir.string(), ec.message());
    if (!job_failure.empty()) {
      spdlog::error("job {} attempt {}: {}", options.job_id, p.attempt, job_failure);
      if (options.on_failure) options.on_failure(p.attempt, job_failure);
    }
    lock.lock();
  }

  // DELETE_ON_CANCELLATION: every checkpoint directory of the job goes
  // (completed or not); savepoints live elsewhere and stay.
  void DiscardCheckpoints() {
    std::error_code ec;
    std::vector<fs::path> doomed;
    for (const fs::directory_entry& entry : fs::directory_iterator(job_dir, ec)) {
      if (ParseCheckpointDirName(entry.path().filename().string())) doomed.push_back(entry.path());
    }
    for (const fs::path& path : doomed) {
      std::error_code remove_ec;
      fs::remove_all(path, remove_ec);
      if (remove_ec) spdlog::warn("cannot delete checkpoint {}: {}", path.string(), remove_ec.message());
    }
    spdlog::info("job {} canceled with DELETE_ON_CANCELLATION: deleted {} checkpoint directories in {}",
                 options.job_id, doomed.size(), job_dir.string());
    std::lock_guard lock(mu);
    latest_completed.reset();
    latest_completed_stats.reset();
  }

  // Finds the checkpoints an earlier run left in the job directory.
  absl::Status Scan() {
    std::error_code ec;
    fs::create_directories(job_dir, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("state.checkpoints.dir: cannot create ", job_dir.string(), ": ", ec.message()));
    }
    for (const fs::directory_entry& entry : fs::directory_iterator(job_dir, ec)) {
      const std::optional<int64_t> id = ParseCheckpointDirName(entry.path().filename().string());
      std::error_code entry_ec;
      if (!id || !entry.is_directory(entry_ec)) continue;
      last_id = std::max(last_id, *id);
      if (latest_completed && latest_completed->metadata.checkpoint_id() > *id) continue;
      if (!fs::exists(entry.path() / kMetadataFile, entry_ec)) continue;
      absl::StatusOr<v1::CheckpointMetadata> metadata = ReadMetadata(entry.path() / kMetadataFile);
      if (!metadata.ok()) {
        spdlog::warn("ignoring checkpoint {}: {}", entry.path().string(), metadata.status().message());
        continue;
      }
      metadata->set_checkpoint_id(*id);  // the directory is the truth
      latest_completed = CompletedCheckpoint{*std::move(metadata), entry.path().string()};
    }
    if (ec) {
      return absl::InternalError(
          absl::StrCat("state.checkpoints.dir: cannot list ", job_dir.string(), ": ", ec.message()));
    }
    if (latest_completed) {
      latest_completed_stats = StatsFromMetadata(latest_completed->metadata, latest_completed->path);
      spdlog::info("checkpoints of job {} in {}: latest completed is {}; new checkpoints start at {}",
                   options.job_id, job_dir.string(), latest_completed->path, last_id + 1);
    } else if (last_id > 0) {
      spdlog::info("checkpoints of job {} in {}: none completed; new checkpoints start at {}", options.job_id,
                   job_dir.string(), last_id + 1);
    }
    return absl::OkStatus();
  }
};

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

v1::CheckpointStats CheckpointStatsFromMetadata(const v1::CheckpointMetadata& metadata, const std::string& path) {
  return StatsFromMetadata(metadata, path);
}

CheckpointCoordinator::CheckpointCoordinator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<CheckpointCoordinator>> CheckpointCoordinator::Start(
    CheckpointCoordinatorOptions options) {
  if (options.job_dir.empty()) return absl::InvalidArgumentError("state.checkpoints.dir: no job directory");
  auto impl = std::make_unique<Impl>();
  std::error_code ec;
  impl->job_dir = fs::absolute(options.job_dir, ec).lexically_normal();
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("state.checkpoints.dir: bad path ", options.job_dir, ": ", ec.message()));
  }
  impl->options = std::move(options);
  if (absl::Status s = impl->Scan(); !s.ok()) return s;
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->Run(); });
  return std::unique_ptr<CheckpointCoordinator>(new CheckpointCoordinator(std::move(impl)));
}

CheckpointCoordinator::~CheckpointCoordinator() { Stop(); }

void CheckpointCoordinator::OnAttemptDeployed(int64_t attempt, std::vector<v1::PeerEndpoint> workers,
                                              int num_partitions, std::string restored_path, int64_t restored_id) {
  std::lock_guard lock(impl_->mu);
  if (impl_->terminated) return;
  impl_->last_id = std::max(impl_->last_id, restored_id);
  if (impl_->queued_savepoint && impl_->queued_savepoint->attempt != attempt) {
    impl_->FailQueuedSavepoint(absl::StrCat("attempt ", impl_->queued_savepoint->attempt, " was replaced by attempt ",
                                            attempt, " before the savepoint started"));
  }
  if (!restored_path.empty()) {
    impl_->protected_path = fs::path(restored_path);
    impl_->protected_attempt = attempt;
  }
  if (impl_->pending && impl_->pending->failure.empty() && !impl_->pending->acknowledged_by_all()) {
    impl_->pending->failure = absl::StrCat("attempt ", impl_->pending->attempt, " was replaced by attempt ", attempt);
    impl_->pending->counts_towards_tolerable = false;
  }
  impl_->attempt = attempt;
  impl_->workers = std::move(workers);
  impl_->num_partitions = num_partitions;
  impl_->next_trigger = SteadyClock::now() + std::chrono::milliseconds(impl_->settings().interval_ms);
  impl_->cv.notify_all();
}

void CheckpointCoordinator::OnAttemptEnded(int64_t attempt, std::string_view cause) {
  std::lock_guard lock(impl_->mu);
  if (impl_->attempt == attempt) {
    impl_->OrderCancel(attempt, cause);
    impl_->trigger_soon = false;
    impl_->attempt = 0;
    impl_->workers.clear();
  }
  if (impl_->queued_savepoint && impl_->queued_savepoint->attempt == attempt) {
    impl_->FailQueuedSavepoint(absl::StrCat("attempt ", attempt, " ended before the savepoint started",
                                            cause.empty() ? "" : ": ", ToAbsl(cause)));
  }
  Pending* p = impl_->pending ? &*impl_->pending : nullptr;
  // Flink aborts pending checkpoints on failover (JOB_FAILOVER_REGION) and
  // does not count that towards the tolerable failures. A checkpoint every
  // worker acknowledged is complete already: it is still written.
  if (p != nullptr && p->attempt == attempt && p->failure.empty() && !p->acknowledged_by_all()) {
    p->failure = absl::StrCat("attempt ", attempt, " ended", cause.empty() ? "" : ": ", ToAbsl(cause));
    p->counts_towards_tolerable = false;
  }
  impl_->cv.notify_all();
}

absl::Status CheckpointCoordinator::Acknowledge(const v1::AcknowledgeCheckpointRequest& request) {
  std::lock_guard lock(impl_->mu);
  const v1::PeerEndpoint* worker = nullptr;
  if (absl::Status s = impl_->Validate(request.worker_id(), request.job_id(), request.attempt(),
                                       request.checkpoint_id(), &worker);
      !s.ok()) {
    return s;
  }
  v1::WorkerSnapshot snapshot = request.snapshot();
  if (snapshot.worker_id().empty()) snapshot.set_worker_id(request.worker_id());
  if (snapshot.worker_id() != request.worker_id()) {
    return absl::InvalidArgumentError(absl::StrCat("worker ", request.worker_id(), " acknowledged checkpoint ",
                                                   request.checkpoint_id(), " with the snapshot of worker ",
                                                   snapshot.worker_id()));
  }
  if (!snapshot.has_key_groups()) {
    *snapshot.mutable_key_groups() = worker->key_groups();
  } else if (snapshot.key_groups().first() != worker->key_groups().first() ||
             snapshot.key_groups().last() != worker->key_groups().last()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "worker ", request.worker_id(), " acknowledged checkpoint ", request.checkpoint_id(), " for key groups ",
        snapshot.key_groups().first(), "-", snapshot.key_groups().last(), " but owns ", worker->key_groups().first(),
        "-", worker->key_groups().last(), " in attempt ", request.attempt()));
  }
  Pending& p = *impl_->pending;
  if (!p.acks.emplace(request.worker_id(), std::move(snapshot)).second) return absl::OkStatus();  // a retry
  if (p.acknowledged_by_all()) impl_->cv.notify_all();
  return absl::OkStatus();
}

absl::Status CheckpointCoordinator::Decline(const v1::DeclineCheckpointRequest& request) {
  std::lock_guard lock(impl_->mu);
  const v1::PeerEndpoint* worker = nullptr;
  if (absl::Status s = impl_->Validate(request.worker_id(), request.job_id(), request.attempt(),
                                       request.checkpoint_id(), &worker);
      !s.ok()) {
    return s;
  }
  if (impl_->pending->acks.contains(request.worker_id())) {
    return absl::FailedPreconditionError(absl::StrCat("worker ", request.worker_id(),
                                                      " already acknowledged checkpoint ", request.checkpoint_id()));
  }
  impl_->pending->failure = absl::StrCat("worker ", request.worker_id(), " declined checkpoint ",
                                         request.checkpoint_id(), ": ", request.reason());
  impl_->cv.notify_all();
  return absl::OkStatus();
}

absl::StatusOr<v1::SavepointOperation> CheckpointCoordinator::TriggerSavepoint(std::string directory, bool stop) {
  std::lock_guard lock(impl_->mu);
  const std::string what = stop ? "stop-with-savepoint" : "savepoint";
  if (impl_->terminated || impl_->attempt == 0 || impl_->workers.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot take a ", what, " of job ", impl_->options.job_id, ": no attempt is running"));
  }
  std::string busy;
  if (impl_->queued_savepoint) busy = impl_->queued_savepoint->request_id;
  if (impl_->pending && impl_->pending->savepoint) busy = impl_->pending->request_id;
  if (!busy.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("a savepoint of job ", impl_->options.job_id,
                                                      " is already in progress (request ", busy,
                                                      "); wait for it to finish"));
  }
  v1::SavepointOperation op;
  op.set_request_id(RandomHex(32));
  op.set_job_id(impl_->options.job_id);
  op.set_status("IN_PROGRESS");
  op.set_trigger_time_ms(impl_->options.clock->WallMs());
  op.set_stop(stop);
  op.set_expected(static_cast<int32_t>(impl_->workers.size()));
  impl_->queued_savepoint = QueuedSavepoint{op.request_id(), fs::path(std::move(directory)), stop, impl_->attempt};
  impl_->operations[op.request_id()] = op;
  impl_->operation_order.push_back(op.request_id());
  while (impl_->operation_order.size() > kMaxSavepointOperations) {
    impl_->operations.erase(impl_->operation_order.front());
    impl_->operation_order.pop_front();
  }
  impl_->cv.notify_all();
  return op;
}

absl::StatusOr<v1::SavepointOperation> CheckpointCoordinator::GetSavepoint(std::string_view request_id) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->operations.find(std::string(request_id));
  if (it == impl_->operations.end()) {
    return absl::NotFoundError(absl::StrCat("no savepoint request ", ToAbsl(request_id), " for job ",
                                            impl_->options.job_id));
  }
  v1::SavepointOperation op = it->second;
  if (op.status() == "IN_PROGRESS" && impl_->pending && impl_->pending->request_id == op.request_id()) {
    op.set_acknowledged(static_cast<int32_t>(impl_->pending->acks.size()));
  }
  return op;
}

void CheckpointCoordinator::OnJobTerminated(std::string_view cause, bool delete_checkpoints) {
  std::lock_guard lock(impl_->mu);
  impl_->terminated = true;
  impl_->OrderCancel(impl_->attempt, cause);
  impl_->trigger_soon = false;
  impl_->attempt = 0;
  impl_->workers.clear();
  impl_->FailQueuedSavepoint(std::string(cause));
  Pending* p = impl_->pending ? &*impl_->pending : nullptr;
  if (p != nullptr && p->failure.empty() && !p->acknowledged_by_all()) {
    p->failure = std::string(cause);
    p->counts_towards_tolerable = false;
  }
  impl_->discard_checkpoints = delete_checkpoints;
  impl_->cv.notify_all();
}

bool CheckpointCoordinator::RequestCheckpoint(int64_t attempt) {
  std::lock_guard lock(impl_->mu);
  if (impl_->terminated || attempt == 0 || impl_->attempt != attempt || impl_->workers.empty()) return false;
  if (impl_->pending || impl_->queued_savepoint || impl_->trigger_soon) return true;
  impl_->trigger_soon = true;
  impl_->cv.notify_all();
  return true;
}

void CheckpointCoordinator::FillOverview(v1::CheckpointOverview* overview) const {
  std::lock_guard lock(impl_->mu);
  overview->set_completed(impl_->completed_count);
  overview->set_failed(impl_->failed_count);
  overview->set_in_progress(impl_->pending ? 1 : 0);
  if (impl_->latest_completed_stats) *overview->mutable_latest_completed() = *impl_->latest_completed_stats;
  if (impl_->pending) *overview->add_history() = impl_->pending->Stats(impl_->options.clock->WallMs());
  for (const v1::CheckpointStats& stats : impl_->history) {
    if (overview->history_size() >= static_cast<int>(kHistorySize)) break;
    *overview->add_history() = stats;
  }
}

std::optional<CompletedCheckpoint> CheckpointCoordinator::LatestCompleted() const {
  std::lock_guard lock(impl_->mu);
  return impl_->latest_completed;
}

void CheckpointCoordinator::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->rpcs.CancelAll();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->rpcs.WaitIdle();
  std::optional<Pending> abandoned;
  {
    std::lock_guard lock(impl_->mu);
    abandoned.swap(impl_->pending);
    impl_->attempt = 0;
  }
  {
    std::lock_guard lock(impl_->mu);
    impl_->FailQueuedSavepoint("the coordinator is stopping");
    if (abandoned && abandoned->savepoint) impl_->FailOperation(abandoned->request_id, "the coordinator is stopping");
  }
  if (abandoned) {
    spdlog::info("checkpoint {} of job {} abandoned: the coordinator is stopping", abandoned->id,
                 impl_->options.job_id);
    std::error_code ec;
    fs::remove_all(abandoned->dir, ec);
  }
}

}  // namespace slipstream
