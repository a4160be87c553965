#include "coordinator/coordinator_server.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/grpc_security.h"
#include "coordinator/coordinator_service.h"
#include "coordinator/rpc_access.h"

namespace slipstream {

struct CoordinatorServer::Impl {
  std::unique_ptr<CoordinatorService> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread reaper;
  std::thread prober;  // CoordinatorService::ProbeWorkers, when enabled
  std::thread discoverer;  // CoordinatorService::DiscoverPartitions, when enabled
};

CoordinatorServer::CoordinatorServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(CoordinatorOptions options) {
  auto impl = std::make_unique<Impl>();
  const std::string address = options.listen_address;
  const int64_t timeout_ms = options.heartbeat_timeout_ms;
  const bool probe_workers = options.probe_workers;
  const bool background_ticks = options.background_ticks;
  const int64_t discovery_interval_ms = options.partition_discovery_interval_ms;
  CheckpointCoordinatorOptions checkpoint_options;
  checkpoint_options.settings = options.checkpoints;
  checkpoint_options.clock = options.clock;
  // Without background ticks the caller drives checkpoints too (Tick).
  checkpoint_options.background_thread = options.background_ticks;
  checkpoint_options.job_dir = options.job_dir;
  checkpoint_options.job_id = options.job_id;
  checkpoint_options.topic = options.topic;
  checkpoint_options.max_parallelism = options.max_parallelism;
  const FeatureDefinition& features = options.features ? *options.features : DefaultFeatureDefinition();
  checkpoint_options.feature_definition = features.text;
  checkpoint_options.feature_fingerprint = features.fingerprint;
  checkpoint_options.make_stub = options.task_control_stub;
  if (!checkpoint_options.make_stub) {
    // Calls to workers' TaskControl are internal: TLS as configured, and the
    // internal token the workers require.
    const GrpcSecurity to_workers = options.security.WithToken(options.access.tokens().internal);
    checkpoint_options.make_stub = [to_workers](const std::string& target) {
      return std::unique_ptr<v1::TaskControl::StubInterface>(v1::TaskControl::NewStub(to_workers.Channel(target)));
    };
  }
  const GrpcSecurity security = options.security;
  const AccessControl access = options.access;
  // Flink's BATCH mode takes no checkpoints: a failed attempt starts over.
  const bool checkpointing = !options.job_dir.empty() && !options.bounded;
  std::optional<CompletedCheckpoint> savepoint;
  if (!options.savepoint_path.empty()) {
    absl::StatusOr<CompletedCheckpoint> read = ReadCompletedCheckpoint(options.savepoint_path);
    if (!read.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("execution.savepoint.path: cannot restore from \"",
                                                     options.savepoint_path, "\": ", read.status().message()));
    }
    savepoint = *std::move(read);
  }
  impl->service = std::make_unique<CoordinatorService>(std::move(options));
  if (savepoint) impl->service->SetSavepoint(*std::move(savepoint));
  if (checkpointing) {
    CoordinatorService* service = impl->service.get();
    checkpoint_options.on_failure = [service](int64_t attempt, const std::string& cause) {
      service->FailAttemptForCheckpoints(attempt, cause);
    };
    checkpoint_options.on_stopped = [service](int64_t attempt, const std::string& path) {
      service->FinishJob(attempt, path);
    };
    absl::StatusOr<std::unique_ptr<CheckpointCoordinator>> checkpoints =
        CheckpointCoordinator::Start(std::move(checkpoint_options));
    if (!checkpoints.ok()) return checkpoints.status();
    impl->service->SetCheckpoints(*std::move(checkpoints));
  }
  impl->service->LogRestoreSource();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which would let a second coordinator
  // bind the same port and split the workers between the two.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  AddCoordinatorListeningPort(builder, address, security, access, &impl->port);
  builder.RegisterService(impl->service.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return absl::UnavailableError(absl::StrCat("jobmanager.rpc.port: cannot listen on ", address,
                                               " (in use, or not a local address)"));
  }
  Impl* raw = impl.get();
  if (background_ticks) {
    impl->reaper = std::thread([raw, timeout_ms] {
      std::unique_lock lock(raw->mu);
      const auto period = std::chrono::milliseconds(std::clamp<int64_t>(timeout_ms / 10, 20, 100));
      while (!raw->cv.wait_for(lock, period, [raw] { return raw->stopping; })) raw->service->Tick();
    });
  }
  // A thread calling `work` every `period_ms` until Shutdown, outside the
  // server's lock (the work may wait on the network).
  auto every = [raw](int64_t period_ms, void (CoordinatorService::*work)()) {
    return std::thread([raw, period_ms, work] {
      std::unique_lock lock(raw->mu);
      while (!raw->cv.wait_for(lock, std::chrono::milliseconds(period_ms), [raw] { return raw->stopping; })) {
        lock.unlock();
        (raw->service.get()->*work)();
        lock.lock();
      }
    });
  };
  if (probe_workers) impl->prober = every(200, &CoordinatorService::ProbeWorkers);
  if (discovery_interval_ms > 0) impl->discoverer = every(discovery_interval_ms, &CoordinatorService::DiscoverPartitions);
  return std::unique_ptr<CoordinatorServer>(new CoordinatorServer(std::move(impl)));
}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

int CoordinatorServer::port() const { return impl_->port; }

void CoordinatorServer::Tick() {
  impl_->service->Tick();
  // Outside the service's lock: the checkpoint coordinator calls back into
  // the service (a failed attempt, a finished stop-with-savepoint).
  if (CheckpointCoordinator* checkpoints = impl_->service->checkpoints()) checkpoints->Tick();
}

JobState CoordinatorServer::state() const { return impl_->service->state(); }

void CoordinatorServer::Shutdown() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->reaper.joinable()) impl_->reaper.join();
  if (impl_->prober.joinable()) impl_->prober.join();
  if (impl_->discoverer.joinable()) impl_->discoverer.join();
  // Before the service goes: its thread may call back into the service.
  if (impl_->service->checkpoints() != nullptr) impl_->service->checkpoints()->Stop();
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

void CoordinatorServer::Wait() { impl_->server->Wait(); }

}  // namespace slipstream
