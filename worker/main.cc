// slipstream-worker: the TaskManager process. Serves its data endpoint
// (shuffle + TaskControl), registers with the coordinator, then loops: wait
// for an assignment, restore its key groups and offsets from the checkpoint
// the assignment names (if any), run the feature task until the coordinator
// cancels the attempt (a failure elsewhere), the task fails (reported in the
// next heartbeat), or SIGTERM/SIGINT. Heartbeats run on their own thread for
// the life of the process.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/absl_compat.h"
#include "common/command_line.h"
#include "common/access_control.h"
#include "common/config.h"
#include "common/grpc_security.h"
#include "common/http_endpoint.h"
#include "common/kafka_admin.h"
#include "common/logging.h"
#include "common/prometheus.h"
#include "proto/slipstream.grpc.pb.h"
#include "spdlog/spdlog.h"
#include "worker/exchange/data_plane.h"
#include "worker/metrics/worker_metrics.h"
#include "worker/pipeline/feature_task.h"
#include "worker/pipeline/state_releaser.h"
#include "worker/sink/dead_letter_producer.h"
#include "worker/sink/redis_sink.h"
#include "worker/source/kafka_source.h"
#include "worker/state/state_dir_lock.h"
#include "worker/state/state_store.h"

namespace slipstream {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void OnSignal(int) { g_stop.store(true); }

int Fail(absl::string_view message) {
  std::cerr << "slipstream-worker: " << message << "\n";
  return 1;
}

void FillCounters(const TaskCounters& c, v1::WorkerCounters* out) {
  out->set_records_in(c.records_in);
  out->set_events_valid(c.events_valid);
  out->set_records_invalid(c.records_invalid);
  out->set_records_late(c.records_late);
  out->set_dlq_delivery_failures(c.dlq_delivery_failures);
  out->set_features_emitted(c.features_emitted);
  out->set_redis_features_written(c.redis_features_written);
  out->set_redis_errors(c.redis_errors);
  out->set_redis_pending_features(c.redis_pending_features);
  out->set_redis_features_rejected(c.redis_features_rejected);
  out->set_redis_features_kept_newer(c.redis_features_kept_newer);
  out->set_redis_features_guarded(c.redis_features_guarded);
  out->set_redis_last_error(c.redis_last_error);
  out->set_redis_last_error_ms(c.redis_last_error_ms);
  out->set_watermark_ms(c.watermark_ms);
  out->set_sliding_windows_fired(c.sliding_windows_fired);
  out->set_sessions_fired(c.sessions_fired);
  for (const v1::ChannelStatus& channel : c.channels) *out->add_channels() = channel;
  out->set_gate_queued_bytes(c.gate_queued_bytes);
  out->set_records_shuffled_out(c.records_shuffled_out);
  out->set_records_shuffled_in(c.records_shuffled_in);
  v1::LatencyHistogramSnapshot* latency = out->mutable_redis_write_latency();
  for (double bound : LatencyHistogram::kBoundsMs) latency->add_bounds_ms(bound);
  for (int64_t n : c.redis_batch_latency.bucket_counts) latency->add_bucket_counts(n);
  latency->set_count(c.redis_batch_latency.count);
  latency->set_sum_ms(c.redis_batch_latency.sum_ms);
  // Resident memory from /proc/self/status (kB).
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    int64_t kb = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %" SCNd64, &kb) == 1) out->set_rss_bytes(kb * 1024);
    if (std::sscanf(line.c_str(), "VmHWM: %" SCNd64, &kb) == 1) out->set_peak_rss_bytes(kb * 1024);
  }
  for (const PartitionSnapshot& p : c.partitions) {
    v1::PartitionProgress* pp = out->add_partitions();
    pp->set_partition(p.partition);
    pp->set_next_offset(p.next_offset);
    pp->set_high_watermark(p.high_watermark);
    pp->set_watermark_ms(p.watermark_ms);
    pp->set_idle(p.idle);
  }
}

// What the heartbeat thread and the attempt loop share.
struct WorkerState {
  std::mutex mu;
  std::condition_variable cv;
  std::string worker_id;          // "" until registered
  bool need_register = true;      // at start, and when the coordinator forgot us
  v1::Assignment assignment;      // latest from the coordinator (attempt 0: none)
  std::string cancel_reason;      // why the coordinator has no assignment for us
  int64_t running_attempt = 0;    // attempt whose task runs or restores (0: idle)
  FeatureTask* task = nullptr;    // the running task (for counters)
  int64_t failed_attempt = 0;     // a failure to report, with its cause
  std::string failure_cause;
  std::atomic<bool> task_stop{false};  // stops the running task
  bool stopping = false;          // process shutting down
  int64_t restores = 0;           // tasks started from a checkpoint or savepoint
  bool heartbeat_now = false;     // CancelTask arrived: ask the coordinator at once
  int64_t cancelled_attempt = 0;  // the attempt whose cancellation was logged
};

int64_t ResidentBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    int64_t kb = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %" SCNd64, &kb) == 1) return kb * 1024;
  }
  return 0;
}

int RunWorker(int argc, char** argv) {
  LoadedCommandLine command_line = LoadCommandLine(
      argc, argv, "slipstream-worker",
      "slipstream-worker: a Slipstream TaskManager. Registers with the coordinator "
      "(jobmanager.rpc.address:jobmanager.rpc.port), reads its Kafka partitions, computes the "
      "window features of its key groups in RocksDB and writes them to Redis.");
  if (!command_line.config) return command_line.exit_code;
  const Config& config = *command_line.config;
  SettingsReader settings(config);
  const std::string log_level = settings.String("log.level");
  const std::string coordinator_address =
      absl::StrCat(settings.String("jobmanager.rpc.address"), ":", settings.Int("jobmanager.rpc.port"));
  const std::string dlq_topic = settings.String("kafka.dlq.topic");
  const std::string starting_offsets_text = settings.String("kafka.starting-offsets");
  const std::string state_dir = settings.String("state.dir");
  const int64_t idle_timeout_ms = settings.DurationMs("source.idle-timeout");
  const int64_t max_event_time_skew_ms = settings.DurationMs("source.max-event-time-skew");
  const int64_t heartbeat_interval_ms = settings.DurationMs("heartbeat.interval");
  const int64_t heartbeat_timeout_ms = settings.DurationMs("heartbeat.timeout");
  std::string advertised_host = settings.String("taskmanager.host");
  const int64_t data_port = settings.Int("taskmanager.data.port");
  const std::string checkpointing_mode = settings.String("execution.checkpointing.mode");
  RedisSinkOptions redis;
  redis.host = settings.String("redis.host");
  redis.port = static_cast<int>(settings.Int("redis.port"));
  redis.password = settings.String("redis.password");
  redis.db = static_cast<int>(settings.Int("redis.db"));
  redis.batch_size = static_cast<int>(settings.Int("redis.batch-size"));
  redis.timeout_ms = settings.DurationMs("redis.timeout");
  const bool redis_ssl = settings.Bool("redis.ssl");
  if (!settings.status().ok()) return Fail(settings.status().message());
  // Said plainly rather than connecting in clear text to a server the user
  // expects to reach over TLS.
  if (redis_ssl) {
    return Fail("redis.ssl=true is not supported: this build's hiredis (Debian's 0.14) has no TLS; reach a TLS-only "
                "Redis through a local TLS tunnel (e.g. stunnel) and point redis.host/redis.port at it");
  }
  absl::StatusOr<AccessControl> access = AccessControl::FromConfig(config);
  if (!access.ok()) return Fail(access.status().message());
  absl::StatusOr<TlsSettings> tls = LoadTlsSettings(config);
  if (!tls.ok()) return Fail(tls.status().message());
  // Every call this worker makes (to the coordinator, to peers) carries the
  // internal token; its own servers require it (security.internal-token).
  const GrpcSecurity security(*tls, access->tokens().internal);
  absl::StatusOr<StartingOffsets> starting_offsets = ParseStartingOffsets(starting_offsets_text);
  if (!starting_offsets.ok()) return Fail(starting_offsets.status().message());
  if (advertised_host.empty()) advertised_host = "127.0.0.1";
  if (absl::Status s = SetUpLogging("worker", log_level); !s.ok()) return Fail(s.message());
  const auto kafka_properties = config.KafkaClientProperties();

  // Local state that no live worker holds (a worker killed with SIGKILL
  // leaves its RocksDB, hard-linked into checkpoint files) goes first.
  if (absl::StatusOr<int> removed = RemoveAbandonedStateDirs(state_dir); !removed.ok()) {
    spdlog::warn("state.dir: cannot clean up {}: {}", state_dir, removed.status().message());
  } else if (*removed > 0) {
    spdlog::info("state.dir: removed {} state director{} no live worker holds (left by killed workers)", *removed,
                 *removed == 1 ? "y" : "ies");
  }

  // The data endpoint first: its port goes into the registration.
  // Before the data plane: its CancelTask listener refers to it.
  WorkerState w;
  absl::StatusOr<std::unique_ptr<DataPlaneServer>> data_plane =
      DataPlaneServer::Start(static_cast<int>(data_port), security, *access);
  if (!data_plane.ok()) return Fail(data_plane.status().message());

  auto channel = security.Channel(coordinator_address);
  auto stub = v1::Coordinator::NewStub(channel);
  v1::RegisterWorkerRequest register_request;
  register_request.set_host(advertised_host);
  register_request.set_data_port((*data_plane)->port());
  register_request.set_pid(getpid());
  register_request.set_version("0.3.0");

  // Registers (the coordinator may start after us, or have restarted), retrying.
  auto register_worker = [&](v1::RegisterWorkerResponse* registration) -> absl::Status {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    for (int attempt = 0;; ++attempt) {
      if (g_stop.load()) return absl::CancelledError("stopping");
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      grpc::Status status = stub->RegisterWorker(&ctx, register_request, registration);
      if (status.ok()) return absl::OkStatus();
      if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
        return absl::UnauthenticatedError(absl::StrCat("security.internal-token: the coordinator at ",
                                                       coordinator_address, " refused this worker: ",
                                                       status.error_message()));
      }
      if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
          status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
        return absl::FailedPreconditionError(absl::StrCat("the coordinator at ", coordinator_address,
                                                          " refused this worker: ", status.error_message()));
      }
      if (std::chrono::steady_clock::now() > deadline) {
        return absl::UnavailableError(absl::StrCat("jobmanager.rpc.address: no coordinator reachable at ",
                                                   coordinator_address, " after 5 min: ", status.error_message()));
      }
      if (attempt % 10 == 0) {
        spdlog::info("waiting for the coordinator at {}: {}", coordinator_address, status.error_message());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  };

  // Prometheus metrics (GET /metrics), when metrics.port is set.
  std::unique_ptr<HttpEndpoint> metrics_endpoint;
  if (const int64_t metrics_port = settings.Int("metrics.port"); metrics_port != 0) {
    absl::StatusOr<std::unique_ptr<HttpEndpoint>> endpoint = HttpEndpoint::Start(
        "0.0.0.0", static_cast<int>(metrics_port), [&w, &access](const HttpRequest& request) {
          HttpResponse response;
          // Metrics are reads: with security.read-token they need it, as the coordinator's.
          if (absl::Status s = access->Check(Access::kRead, request.authorization); !s.ok()) {
            response.status = 401;
            response.body = absl::StrCat(s.message(), "\n");
            response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"slipstream\"");
            return response;
          }
          if (request.method != "GET" || request.path != "/metrics") {
            response.status = 404;
            response.body = "not found: GET /metrics serves this worker's metrics\n";
            return response;
          }
          WorkerMetricsInput input;
          {
            std::lock_guard lock(w.mu);
            input.worker_id = w.worker_id;
            input.attempt = w.running_attempt;
            input.restores = w.restores;
            if (w.task != nullptr) input.task = w.task->counters();
          }
          input.now_ms = absl::ToUnixMillis(absl::Now());
          input.rss_bytes = ResidentBytes();
          response.body = RenderWorkerMetrics(input);
          return response;
        });
    if (!endpoint.ok()) return Fail(absl::StrCat("metrics.port: ", endpoint.status().message()));
    metrics_endpoint = std::move(*endpoint);
    spdlog::info("metrics on http://0.0.0.0:{}/metrics", metrics_endpoint->port());
  }
  // Heartbeats on their own thread for the life of the process, so a busy
  // task never looks dead: counters of the running task (or attempt 0 when
  // idle), a failure to report, and back the current assignment. Faster
  // while idle, so a deployment starts promptly.
  std::atomic<bool> deregistered{false};  // leaving on purpose (SIGTERM): see `deregister`
  std::thread heartbeats([&] {
    int64_t failures = 0;
    // The coordinator gives a worker up after heartbeat.timeout without a
    // heartbeat, and deploys its work elsewhere. A worker that has not
    // reached it for that long cancels its task by itself (as Flink's
    // TaskManager does), so two tasks do not go on writing the same keys
    // (the Redis fence stops whatever is still in flight: RedisSink).
    auto last_answered = std::chrono::steady_clock::now();
    std::unique_lock lock(w.mu);
    while (!w.stopping) {
      const bool idle = w.running_attempt == 0;
      w.cv.wait_for(lock,
                    std::chrono::milliseconds(idle ? std::min<int64_t>(100, heartbeat_interval_ms)
                                                   : heartbeat_interval_ms),
                    [&] { return w.stopping || w.heartbeat_now; });
      w.heartbeat_now = false;
      if (w.stopping) break;
      if (w.need_register || w.worker_id.empty() || deregistered.load()) continue;
      v1::HeartbeatRequest request;
      request.set_worker_id(w.worker_id);
      if (w.task != nullptr) FillCounters(w.task->counters(), request.mutable_counters());
      request.mutable_counters()->set_attempt(w.running_attempt);
      // A failure is reported by an idle worker (the coordinator takes the
      // report as "idle"); once a newer attempt runs here, the old one's
      // failure no longer matters (that attempt is over).
      if (w.failed_attempt != 0 && w.running_attempt != 0) w.failed_attempt = 0;
      const int64_t reporting_failure = w.failed_attempt;
      if (reporting_failure != 0) {
        request.mutable_counters()->set_attempt(reporting_failure);
        request.set_failure_cause(w.failure_cause);
      }
      lock.unlock();
      v1::HeartbeatResponse response;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(std::max<int64_t>(heartbeat_interval_ms, 1000)));
      grpc::Status status = stub->Heartbeat(&ctx, request, &response);
      lock.lock();
      if (!status.ok()) {
        if (failures++ % 10 == 0) spdlog::warn("heartbeat to {} failed: {}", coordinator_address, status.error_message());
        const int64_t silent_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - last_answered)
                                      .count();
        if (w.running_attempt != 0 && silent_ms >= heartbeat_timeout_ms && w.cancelled_attempt != w.running_attempt) {
          spdlog::error("no heartbeat answered by {} for {} ms (heartbeat.timeout {} ms): the coordinator has given "
                        "this worker up; cancelling attempt {} and registering again once it answers",
                        coordinator_address, silent_ms, heartbeat_timeout_ms, w.running_attempt);
          w.cancelled_attempt = w.running_attempt;
          w.need_register = true;
          w.assignment.Clear();
          w.task_stop.store(true);
          if (w.task != nullptr) w.task->Cancel();
          w.cv.notify_all();
        }
        continue;
      }
      last_answered = std::chrono::steady_clock::now();
      if (failures > 0) spdlog::info("heartbeats to {} are back", coordinator_address);
      failures = 0;
      if (reporting_failure != 0 && w.failed_attempt == reporting_failure) w.failed_attempt = 0;
      if (!response.known()) {
        // The coordinator restarted or timed us out: stop the task and
        // register again (a new worker id).
        spdlog::warn("the coordinator does not know worker {} ({}); registering again", w.worker_id, response.reason());
        w.need_register = true;
        w.assignment.Clear();
        w.task_stop.store(true);
        if (w.task != nullptr) w.task->Cancel();
      } else {
        w.assignment = response.assignment();
        w.cancel_reason = response.reason();
        if (w.running_attempt != 0 && w.assignment.attempt() != w.running_attempt) {
          if (w.cancelled_attempt != w.running_attempt) {
            w.cancelled_attempt = w.running_attempt;
            spdlog::warn("attempt {} was cancelled by the coordinator: {}", w.running_attempt,
                         response.reason().empty() ? std::string("another attempt is deployed") : response.reason());
          }
          w.task_stop.store(true);
          if (w.task != nullptr) w.task->Cancel();
        }
      }
      w.cv.notify_all();
    }
  });
  // The coordinator's CancelTask only makes the next heartbeat happen now:
  // its answer (no assignment for this attempt) cancels the task, so a
  // delayed CancelTask can never stop a newer attempt.
  (*data_plane)->SetCancelListener([&w](const v1::CancelTaskRequest& request) {
    std::lock_guard lock(w.mu);
    if (w.running_attempt == 0 || request.attempt() != w.running_attempt) return;
    spdlog::info("the coordinator cancels attempt {}: {}", request.attempt(), request.reason());
    w.heartbeat_now = true;
    w.cv.notify_all();
  });
  // Leaving on purpose (SIGTERM) is two calls. First, while the task still
  // runs, DeregisterWorker naming its attempt: the coordinator ends the
  // attempt as "left" (not a failure) before this worker's data endpoint
  // stops taking its peers' records, which they would report as a broken
  // channel (a failure), and it waits for this worker's task before it
  // deploys the next attempt. Then the task is cancelled (the next attempt
  // replays from the checkpoint, as after any cancel) and the second call,
  // naming no attempt, says it has stopped. Heartbeats stop after the first.
  auto deregister = [&](const TaskCounters& counters, int64_t running_attempt) {
    std::string worker_id;
    {
      std::lock_guard lock(w.mu);
      worker_id = w.worker_id;
    }
    if (worker_id.empty()) return;
    deregistered.store(true);
    v1::DeregisterWorkerRequest request;
    request.set_worker_id(worker_id);
    FillCounters(counters, request.mutable_counters());
    request.mutable_counters()->set_attempt(running_attempt);
    v1::DeregisterWorkerResponse response;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::Status status = stub->DeregisterWorker(&ctx, request, &response);
    if (!status.ok()) spdlog::warn("could not deregister from {}: {}", coordinator_address, status.error_message());
  };
  // A signal only sets g_stop: deregister (naming the running attempt), then
  // cancel the running task.
  std::thread stop_relay([&] {
    while (!g_stop.load()) {
      std::unique_lock lock(w.mu);
      if (w.stopping) return;
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    TaskCounters counters;
    int64_t running_attempt = 0;
    {
      std::lock_guard lock(w.mu);
      if (w.task != nullptr) {
        counters = w.task->counters();
        running_attempt = w.running_attempt;
      }
    }
    if (running_attempt != 0) deregister(counters, running_attempt);
    w.task_stop.store(true);
    std::lock_guard lock(w.mu);
    if (running_attempt != 0 && w.task != nullptr) w.task->Cancel();
    w.cv.notify_all();
  });

  StateReleaser releaser;
  absl::Status fatal;
  int64_t last_attempt = 0;
  TaskCounters last_counters;
  while (!g_stop.load()) {
    bool need_register;
    {
      std::lock_guard lock(w.mu);
      need_register = w.need_register;
    }
    if (need_register) {
      v1::RegisterWorkerResponse registration;
      if (absl::Status s = register_worker(&registration); !s.ok()) {
        if (!g_stop.load()) fatal = s;
        break;
      }
      std::lock_guard lock(w.mu);
      w.worker_id = registration.worker_id();
      w.need_register = false;
      last_attempt = 0;  // attempt numbers restart with a restarted coordinator
      w.assignment = registration.assignment();
      spdlog::info("registered as {} (data endpoint {}:{})", w.worker_id, advertised_host, (*data_plane)->port());
    }
    // Wait for an assignment of a new attempt (a standby, or a worker whose
    // attempt failed, waits here).
    v1::Assignment assignment;
    std::string worker_id;
    {
      std::unique_lock lock(w.mu);
      w.cv.wait_for(lock, std::chrono::milliseconds(200), [&] {
        return g_stop.load() || w.need_register ||
               (w.assignment.attempt() != 0 && w.assignment.attempt() != last_attempt);
      });
      if (g_stop.load() || w.need_register || w.assignment.attempt() == 0 || w.assignment.attempt() == last_attempt) {
        continue;
      }
      assignment = w.assignment;
      worker_id = w.worker_id;
      w.task_stop.store(false);
      // Reported from now on, while the state is restored too: a restoring
      // worker is never taken for an idle one.
      w.running_attempt = assignment.attempt();
    }
    last_attempt = assignment.attempt();
    bool failure_recorded = false;  // the task failed and its report is queued
    absl::Status run_status = [&]() -> absl::Status {
      if (assignment.key_groups_size() != 1 || assignment.workers_size() == 0 || assignment.worker_index() < 0 ||
          assignment.worker_index() >= assignment.workers_size()) {
        return absl::InvalidArgumentError("the coordinator sent an assignment without this worker's key groups");
      }
      const KeyGroupRange owned{assignment.key_groups(0).first(), assignment.key_groups(0).last()};
      std::vector<int> partitions(assignment.partitions().begin(), assignment.partitions().end());
      std::string partition_text;
      for (int p : partitions) absl::StrAppend(&partition_text, partition_text.empty() ? "" : ",", p);
      const v1::RestoreInfo& restore = assignment.restore();
      spdlog::info("attempt {} of job {}: worker {} of {}: topic {} partitions [{}], key groups {} of {}{}",
                   assignment.attempt(), assignment.job_id(), assignment.worker_index(), assignment.workers_size(),
                   assignment.topic(), partition_text, owned.ToString(), assignment.max_parallelism(),
                   restore.checkpoint_path().empty() ? std::string(", empty state")
                                                     : absl::StrCat(", restoring ", restore.checkpoint_path()));

      // Local state of this attempt: fresh, then filled from the checkpoint.
      // One directory per attempt: the previous attempt's may still be being
      // freed (StateReleaser), which then deletes it.
      const std::string worker_state_dir = (std::filesystem::path(state_dir) / assignment.job_id() / worker_id /
                                            absl::StrCat("attempt-", assignment.attempt()))
                                               .string();
      // The previous attempt's state is freed once this one has restored
      // its own (StateReleaser), also when it fails before that.
      absl::Cleanup free_previous_state = [&releaser] { releaser.Resume(); };
      bool state_handed_over = false;
      const absl::Cleanup remove_state_dir = [&] {
        if (state_handed_over) return;
        std::error_code ignored;
        std::filesystem::remove_all(worker_state_dir, ignored);
      };
      StateStoreOptions store_options;
      store_options.lock_root = state_dir;  // held while the directory is in use
      absl::StatusOr<std::unique_ptr<StateStore>> state = StateStore::Open(worker_state_dir, store_options);
      if (!state.ok()) return state.status();
      std::map<int, int64_t> restored_offsets;
      std::map<int, FeatureTaskOptions::RestoredPartition> restored_partitions;
      std::optional<int64_t> restored_operator_watermark;
      bool restored_watermark_known = true;
      if (!restore.checkpoint_path().empty()) {
        std::vector<std::string> snapshot_files;
        for (const v1::WorkerSnapshot& snapshot : restore.snapshots()) {
          const KeyGroupRange range{snapshot.key_groups().first(), snapshot.key_groups().last()};
          if (std::max(range.first, owned.first) <= std::min(range.last, owned.last)) {
            snapshot_files.push_back((std::filesystem::path(restore.checkpoint_path()) / snapshot.state_path()).string());
          }
        }
        const auto begin = std::chrono::steady_clock::now();
        absl::StatusOr<IngestedSnapshots> ingested = (*state)->IngestKeyGroups(snapshot_files, owned);
        if (!ingested.ok()) return ingested.status();
        for (const v1::PartitionOffset& o : restore.offsets()) {
          restored_offsets[o.partition()] = o.next_offset();
          if (o.has_watermark_ms()) restored_partitions[o.partition()] = {o.watermark_ms(), o.idle()};
        }
        // Aligned barriers give every operator the same watermark; the
        // minimum is the safe choice should they differ (unaligned mode).
        for (const v1::WorkerSnapshot& snapshot : restore.snapshots()) {
          const KeyGroupRange range{snapshot.key_groups().first(), snapshot.key_groups().last()};
          if (std::max(range.first, owned.first) > std::min(range.last, owned.last)) continue;
          if (!snapshot.has_operator_watermark_ms()) {
            restored_watermark_known = false;
            continue;
          }
          restored_operator_watermark = std::min(restored_operator_watermark.value_or(INT64_MAX),
                                                 snapshot.operator_watermark_ms());
        }
        if (!restored_watermark_known) restored_operator_watermark.reset();
        {
          std::lock_guard lock(w.mu);
          ++w.restores;
        }
        spdlog::info("ingested {} snapshot file(s) of checkpoint {} ({} bytes, {} copied, the rest linked) for key "
                     "groups {} in {} ms",
                     ingested->files, restore.checkpoint_id(), ingested->bytes, ingested->copied, owned.ToString(),
                     std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - begin)
                         .count());
      }
      // The coordinator creates the dead-letter topic; without it every
      // invalid record would wait in the producer, so wait for it (briefly).
      // First of the task's Kafka calls: it says at once when the broker
      // refuses our credentials (kafka.sasl.*).
      for (int attempt = 0;; ++attempt) {
        absl::StatusOr<int> dlq = FetchPartitionCount(kafka_properties, dlq_topic, 10000);
        if (dlq.ok()) break;
        // Refused credentials do not get better by waiting.
        if (absl::IsPermissionDenied(dlq.status())) return dlq.status();
        if (attempt == 60 || w.task_stop.load()) {
          return absl::UnavailableError(absl::StrCat("kafka.dlq.topic: ", dlq.status().message()));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
      absl::StatusOr<std::unique_ptr<KafkaSource>> source = KafkaSource::Create(
          kafka_properties, assignment.topic(), partitions, *starting_offsets, restored_offsets,
          std::vector<int>(assignment.earliest_partitions().begin(), assignment.earliest_partitions().end()));
      if (!source.ok()) return source.status();
      absl::StatusOr<std::unique_ptr<DeadLetterProducer>> dead_letters =
          DeadLetterProducer::Create(kafka_properties, dlq_topic);
      if (!dead_letters.ok()) return dead_letters.status();
      RedisSinkOptions sink_options = redis;
      sink_options.job_id = assignment.job_id();
      sink_options.attempt = assignment.attempt();
      sink_options.writer_index = assignment.worker_index();
      // Runs on the sink's thread; the task destroys the sink before the
      // dead-letter producer.
      DeadLetterProducer* rejected_to = dead_letters->get();
      sink_options.on_rejected = [rejected_to](const FeatureWrite& feature, std::string_view error) {
        rejected_to->SendRejectedFeature(feature.key, feature.fields, error);
      };
      absl::StatusOr<std::unique_ptr<RedisSink>> sink = RedisSink::Start(sink_options);
      if (!sink.ok()) return sink.status();

      FeatureTaskOptions task_options;
      task_options.max_parallelism = assignment.max_parallelism();
      task_options.idle_timeout_ms = idle_timeout_ms;
      task_options.max_event_time_skew_ms = max_event_time_skew_ms;
      task_options.job_id = assignment.job_id();
      task_options.peer_security = security;
      task_options.attempt = assignment.attempt();
      task_options.worker_index = assignment.worker_index();
      for (const v1::PeerEndpoint& peer : assignment.workers()) {
        task_options.workers.push_back(TaskPeer{peer.worker_id(), absl::StrCat(peer.host(), ":", peer.data_port()),
                                                KeyGroupRange{peer.key_groups().first(), peer.key_groups().last()}});
      }
      task_options.exactly_once = checkpointing_mode == "EXACTLY_ONCE";
      task_options.restore_state = !restore.checkpoint_path().empty();
      task_options.restored_operator_watermark = restored_operator_watermark;
      task_options.restored_partitions = restored_partitions;
      task_options.acknowledge = [&stub](const v1::AcknowledgeCheckpointRequest& request) -> absl::Status {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        v1::AcknowledgeCheckpointResponse response;
        grpc::Status status = stub->AcknowledgeCheckpoint(&ctx, request, &response);
        if (!status.ok()) return absl::UnavailableError(status.error_message());
        return absl::OkStatus();
      };
      task_options.decline = [&stub](const v1::DeclineCheckpointRequest& request) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        v1::DeclineCheckpointResponse response;
        (void)stub->DeclineCheckpoint(&ctx, request, &response);
      };
      absl::StatusOr<std::unique_ptr<FeatureTask>> task =
          FeatureTask::Create(task_options, std::move(*source), std::move(*dead_letters), std::move(*sink),
                              std::move(*state), data_plane->get());
      std::move(free_previous_state).Invoke();
      if (!task.ok()) return task.status();
      {
        std::lock_guard lock(w.mu);
        w.task = task->get();
        w.running_attempt = assignment.attempt();
      }
      absl::Status status = (*task)->Run(w.task_stop);
      const auto run_ended = std::chrono::steady_clock::now();
      last_counters = (*task)->counters();
      {
        std::lock_guard lock(w.mu);
        w.task = nullptr;  // heartbeats stop reading its counters
      }
      // Every thread has joined and nothing of this attempt reaches Redis or
      // a peer any more; the window state is freed in the background, and
      // the Kafka clients and the sink are closed here.
      std::unique_ptr<TaskState> task_state = (*task)->TakeState();
      task->reset();
      {
        std::lock_guard lock(w.mu);
        // The failure goes out with the "idle" report that follows at once.
        if (!status.ok() && !g_stop.load()) {
          w.failed_attempt = assignment.attempt();
          w.failure_cause = std::string(status.message());
          failure_recorded = true;
        }
        w.running_attempt = 0;
        w.heartbeat_now = true;  // report "idle" at once: the next deployment waits for it
        w.cv.notify_all();
      }
      releaser.Release(std::move(task_state), worker_state_dir, absl::StrCat("attempt ", assignment.attempt()));
      state_handed_over = true;
      spdlog::info("attempt {} stopped: {} records in, {} invalid, {} late, {} features written (task closed in {} "
                   "ms; its state is freed in the background)",
                   assignment.attempt(), last_counters.records_in, last_counters.records_invalid,
                   last_counters.records_late, last_counters.redis_features_written,
                   std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - run_ended)
                       .count());
      return status;
    }();
    {
      std::lock_guard lock(w.mu);
      if (w.running_attempt != 0) {  // ended before its task ran
        w.running_attempt = 0;
        w.heartbeat_now = true;
        w.cv.notify_all();
      }
    }
    if (!run_status.ok() && !g_stop.load()) {
      spdlog::error("attempt {} failed: {}", assignment.attempt(), std::string(run_status.message()));
      std::lock_guard lock(w.mu);
      if (!failure_recorded) {  // failed before its task ran
        w.failed_attempt = assignment.attempt();
        w.failure_cause = std::string(run_status.message());
        w.cv.notify_all();
      }
    }
  }

  {
    std::lock_guard lock(w.mu);
    w.stopping = true;
    w.cv.notify_all();
  }
  heartbeats.join();
  stop_relay.join();
  if (fatal.ok()) deregister(last_counters, /*running_attempt=*/0);
  if (!fatal.ok()) return Fail(fatal.message());
  spdlog::info("stopped");
  return 0;
}

}  // namespace
}  // namespace slipstream

int main(int argc, char** argv) {
  std::signal(SIGTERM, slipstream::OnSignal);
  std::signal(SIGINT, slipstream::OnSignal);
  return slipstream::RunWorker(argc, argv);
}
