// slipstream-worker: the TaskManager process. Registers with the coordinator,
// receives its Kafka partitions and key-group range, and runs the feature
// task until SIGTERM/SIGINT, reporting progress in heartbeats.
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

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "common/config.h"
#include "common/command_line.h"
#include "common/kafka_admin.h"
#include "common/logging.h"
#include "proto/slipstream.grpc.pb.h"
#include "spdlog/spdlog.h"
#include "worker/exchange/data_plane.h"
#include "worker/pipeline/feature_task.h"
#include "worker/sink/dead_letter_producer.h"
#include "worker/sink/redis_sink.h"
#include "worker/source/kafka_source.h"
#include "worker/state/state_store.h"

namespace slipstream {
namespace {

std::atomic<bool> g_stop{false};
// Set when the coordinator disowned this worker: exit non-zero so a
// supervisor (Kubernetes, systemd) starts a fresh attempt.
std::atomic<bool> g_disowned{false};
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
  out->set_watermark_ms(c.watermark_ms);
  out->set_sliding_windows_fired(c.sliding_windows_fired);
  out->set_sessions_fired(c.sessions_fired);
  for (const v1::ChannelStatus& channel : c.channels) *out->add_channels() = channel;
  out->set_gate_queued_bytes(c.gate_queued_bytes);
  out->set_records_shuffled_out(c.records_shuffled_out);
  out->set_records_shuffled_in(c.records_shuffled_in);
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
  const std::string topic = settings.String("kafka.topic");
  const std::string dlq_topic = settings.String("kafka.dlq.topic");
  const std::string starting_offsets_text = settings.String("kafka.starting-offsets");
  const std::string state_dir = settings.String("state.dir");
  const int64_t idle_timeout_ms = settings.DurationMs("source.idle-timeout");
  const int64_t heartbeat_interval_ms = settings.DurationMs("heartbeat.interval");
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
  if (!settings.status().ok()) return Fail(settings.status().message());
  absl::StatusOr<StartingOffsets> starting_offsets = ParseStartingOffsets(starting_offsets_text);
  if (!starting_offsets.ok()) return Fail(starting_offsets.status().message());
  if (advertised_host.empty()) advertised_host = "127.0.0.1";
  if (absl::Status s = SetUpLogging("worker", log_level); !s.ok()) return Fail(s.message());

  // The data endpoint first: its port goes into the registration.
  absl::StatusOr<std::unique_ptr<DataPlaneServer>> data_plane = DataPlaneServer::Start(static_cast<int>(data_port));
  if (!data_plane.ok()) return Fail(data_plane.status().message());

  // Register with the coordinator; it may start after us, so retry.
  auto channel = grpc::CreateChannel(coordinator_address, grpc::InsecureChannelCredentials());
  auto stub = v1::Coordinator::NewStub(channel);
  v1::RegisterWorkerRequest register_request;
  register_request.set_host(advertised_host);
  register_request.set_data_port((*data_plane)->port());
  register_request.set_pid(getpid());
  register_request.set_version("0.2.0");
  v1::RegisterWorkerResponse registration;
  const auto register_deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  for (int attempt = 0;; ++attempt) {
    if (g_stop.load()) return 0;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Status status = stub->RegisterWorker(&ctx, register_request, &registration);
    if (status.ok()) break;
    if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
        status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      return Fail(absl::StrCat("the coordinator at ", coordinator_address, " refused this worker: ",
                               status.error_message()));
    }
    if (std::chrono::steady_clock::now() > register_deadline) {
      return Fail(absl::StrCat("jobmanager.rpc.address: no coordinator reachable at ", coordinator_address,
                               " after 5 min: ", status.error_message()));
    }
    if (attempt % 10 == 0) {
      spdlog::info("waiting for the coordinator at {}: {}", coordinator_address, status.error_message());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  const std::string worker_id = registration.worker_id();
  spdlog::info("registered as {} (data endpoint {}:{})", worker_id, advertised_host, (*data_plane)->port());

  // The assignment comes with the deployment: at once, or in a heartbeat
  // answer once the coordinator has enough workers (a standby waits here).
  v1::Assignment assignment = registration.assignment();
  for (int64_t polls = 0; assignment.attempt() == 0; ++polls) {
    if (g_stop.load()) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    v1::HeartbeatRequest request;
    request.set_worker_id(worker_id);
    v1::HeartbeatResponse response;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::Status status = stub->Heartbeat(&ctx, request, &response);
    if (!status.ok()) {
      if (polls % 50 == 0) spdlog::warn("heartbeat to {} failed: {}", coordinator_address, status.error_message());
      continue;
    }
    if (!response.known()) {
      return Fail(absl::StrCat("the coordinator no longer knows worker ", worker_id, ": ", response.reason()));
    }
    assignment = response.assignment();
    if (polls % 100 == 99) spdlog::info("waiting for the coordinator to deploy the job (standby or waiting for workers)");
  }
  if (assignment.key_groups_size() != 1) return Fail("the coordinator sent an assignment without one key-group range");
  if (assignment.workers_size() == 0 || assignment.worker_index() < 0 ||
      assignment.worker_index() >= assignment.workers_size()) {
    return Fail("the coordinator sent an assignment without this worker's index among its workers");
  }
  const KeyGroupRange owned{assignment.key_groups(0).first(), assignment.key_groups(0).last()};
  std::vector<int> partitions(assignment.partitions().begin(), assignment.partitions().end());
  std::string partition_text;
  for (int p : partitions) absl::StrAppend(&partition_text, partition_text.empty() ? "" : ",", p);
  spdlog::info("attempt {} of job {}: worker {} of {}: topic {} partitions [{}], key groups {} of {}",
               assignment.attempt(), assignment.job_id(), assignment.worker_index(), assignment.workers_size(),
               assignment.topic(), partition_text, owned.ToString(), assignment.max_parallelism());

  // State is local to this attempt until checkpoints exist: start empty.
  const std::string worker_state_dir =
      (std::filesystem::path(state_dir) / assignment.job_id() / worker_id).string();
  absl::StatusOr<std::unique_ptr<StateStore>> state = StateStore::Open(worker_state_dir, StateStoreOptions{});
  if (!state.ok()) return Fail(state.status().message());
  const auto kafka_properties = config.KafkaClientProperties();
  absl::StatusOr<std::unique_ptr<KafkaSource>> source =
      KafkaSource::Create(kafka_properties, assignment.topic(), partitions, *starting_offsets);
  if (!source.ok()) return Fail(source.status().message());
  // The coordinator creates the dead-letter topic; without it every invalid
  // record would wait in the producer, so wait for it (briefly) or refuse to
  // start.
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<int> dlq = FetchPartitionCount(kafka_properties, dlq_topic, 10000);
    if (dlq.ok()) break;
    if (attempt == 60 || g_stop.load()) {
      return Fail(absl::StrCat("kafka.dlq.topic: ", dlq.status().message()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  absl::StatusOr<std::unique_ptr<DeadLetterProducer>> dead_letters =
      DeadLetterProducer::Create(kafka_properties, dlq_topic);
  if (!dead_letters.ok()) return Fail(dead_letters.status().message());
  absl::StatusOr<std::unique_ptr<RedisSink>> sink = RedisSink::Start(redis);
  if (!sink.ok()) return Fail(sink.status().message());
  spdlog::info("writing features to redis {}:{} db {}; dead letters to {}", redis.host, redis.port, redis.db,
               dlq_topic);

  FeatureTaskOptions task_options;
  task_options.max_parallelism = assignment.max_parallelism();
  task_options.idle_timeout_ms = idle_timeout_ms;
  task_options.job_id = assignment.job_id();
  task_options.attempt = assignment.attempt();
  task_options.worker_index = assignment.worker_index();
  for (const v1::PeerEndpoint& peer : assignment.workers()) {
    task_options.workers.push_back(TaskPeer{peer.worker_id(), absl::StrCat(peer.host(), ":", peer.data_port()),
                                            KeyGroupRange{peer.key_groups().first(), peer.key_groups().last()}});
  }
  task_options.exactly_once = checkpointing_mode == "EXACTLY_ONCE";
  task_options.local_snapshot_dir = worker_state_dir + ".snapshots";
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
  if (!task.ok()) return Fail(task.status().message());

  // Heartbeats on their own thread so a busy task never looks dead.
  std::mutex disowned_mu;
  std::string disowned_reason;
  std::mutex heartbeat_mu;
  std::condition_variable heartbeat_cv;
  bool heartbeat_stop = false;
  std::thread heartbeats([&] {
    int64_t failures = 0;
    std::unique_lock lock(heartbeat_mu);
    while (!heartbeat_cv.wait_for(lock, std::chrono::milliseconds(heartbeat_interval_ms),
                                  [&] { return heartbeat_stop; })) {
      lock.unlock();
      v1::HeartbeatRequest request;
      request.set_worker_id(worker_id);
      FillCounters((*task)->counters(), request.mutable_counters());
      request.mutable_counters()->set_attempt(assignment.attempt());
      v1::HeartbeatResponse response;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(heartbeat_interval_ms));
      grpc::Status status = stub->Heartbeat(&ctx, request, &response);
      if (!status.ok()) {
        if (failures++ % 10 == 0) spdlog::warn("heartbeat to {} failed: {}", coordinator_address, status.error_message());
      } else if ((!response.known() || response.assignment().attempt() != assignment.attempt()) &&
                 !g_stop.load()) {
        // The coordinator lost track of us (restart or timeout) or ended the
        // attempt; stop so the process supervisor starts a fresh worker
        // that registers again.
        {
          std::lock_guard reason_lock(disowned_mu);
          disowned_reason = response.known() ? "the coordinator moved on to another attempt" : response.reason();
        }
        spdlog::error("the coordinator no longer runs worker {} in attempt {}: {}; stopping", worker_id,
                      assignment.attempt(), response.reason());
        g_disowned.store(true);
        g_stop.store(true);
      } else {
        if (failures > 0) spdlog::info("heartbeats to {} are back", coordinator_address);
        failures = 0;
      }
      lock.lock();
    }
  });

  absl::Status run_status = (*task)->Run(g_stop);
  {
    std::lock_guard lock(heartbeat_mu);
    heartbeat_stop = true;
  }
  heartbeat_cv.notify_all();
  heartbeats.join();
  const TaskCounters final_counters = (*task)->counters();
  {
    v1::DeregisterWorkerRequest request;
    request.set_worker_id(worker_id);
    FillCounters(final_counters, request.mutable_counters());
    request.mutable_counters()->set_attempt(assignment.attempt());
    if (!run_status.ok()) request.set_failure_cause(std::string(run_status.message()));
    v1::DeregisterWorkerResponse response;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::Status status = stub->DeregisterWorker(&ctx, request, &response);
    if (!status.ok()) spdlog::warn("could not deregister from {}: {}", coordinator_address, status.error_message());
  }
  spdlog::info("stopped: {} records in, {} invalid, {} late, {} features written", final_counters.records_in,
               final_counters.records_invalid, final_counters.records_late, final_counters.redis_features_written);
  if (!run_status.ok()) return Fail(run_status.message());
  if (g_disowned.load()) {
    std::lock_guard reason_lock(disowned_mu);
    return Fail(absl::StrCat("the coordinator at ", coordinator_address, " no longer runs worker ", worker_id,
                             " (", disowned_reason, "); exiting so a fresh worker can register"));
  }
  return 0;
}

}  // namespace
}  // namespace slipstream

int main(int argc, char** argv) {
  std::signal(SIGTERM, slipstream::OnSignal);
  std::signal(SIGINT, slipstream::OnSignal);
  return slipstream::RunWorker(argc, argv);
}
