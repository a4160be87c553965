#include "coordinator/coordinator_server.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "coordinator/assignment.h"
#include "proto/slipstream.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace slipstream {

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string RandomSuffix() {
  static std::mt19937_64 rng(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 6; ++i) s.push_back(kHex[rng() & 15]);
  return s;
}

grpc::Status ToGrpc(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return grpc::Status::OK;
    case absl::StatusCode::kUnavailable:
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(s.message()));
    case absl::StatusCode::kNotFound:
      return grpc::Status(grpc::StatusCode::NOT_FOUND, std::string(s.message()));
    case absl::StatusCode::kInvalidArgument:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(s.message()));
    case absl::StatusCode::kFailedPrecondition:
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, std::string(s.message()));
    default:
      return grpc::Status(grpc::StatusCode::INTERNAL, std::string(s.message()));
  }
}

struct WorkerEntry {
  std::string id;
  int64_t sequence = 0;  // registration order: stable worker indices
  v1::RegisterWorkerRequest registration;
  v1::Assignment assignment;  // empty (attempt 0) for a standby
  v1::WorkerCounters counters;
  int64_t registered_at_ms = 0;
  int64_t last_heartbeat_ms = 0;
  bool in_attempt() const { return assignment.attempt() != 0; }
};

std::string JoinInts(const google::protobuf::RepeatedField<int32_t>& values) {
  std::string out;
  for (int v : values) absl::StrAppend(&out, out.empty() ? "" : ",", v);
  return out;
}

class CoordinatorService final : public v1::Coordinator::Service {
 public:
  explicit CoordinatorService(CoordinatorOptions options) : options_(std::move(options)), start_time_ms_(NowMs()) {}

  // Set once before the service is served (null: checkpointing disabled).
  void SetCheckpoints(std::unique_ptr<CheckpointCoordinator> checkpoints) { checkpoints_ = std::move(checkpoints); }
  CheckpointCoordinator* checkpoints() { return checkpoints_.get(); }

  // The checkpoint coordinator gave up on `attempt` (too many failed
  // checkpoints in a row): fail it like a lost worker, unless it is over.
  void FailAttemptForCheckpoints(int64_t attempt, const std::string& cause) {
    std::lock_guard lock(mu_);
    if (state_ != "RUNNING" || attempt_ != attempt) return;
    FailAttempt(cause);
  }

  grpc::Status RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest* request,
                              v1::RegisterWorkerResponse* response) override {
    if (request->host().empty() || request->data_port() <= 0 || request->data_port() > 65535) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("a worker must register with its host and data port (got host \"",
                                       request->host(), "\", data port ", request->data_port(), ")"));
    }
    std::lock_guard lock(mu_);
    if (num_partitions_ <= 0) {
      absl::StatusOr<int> count = options_.partition_count();
      if (!count.ok()) {
        return ToGrpc(absl::UnavailableError(absl::StrCat("waiting for the input topic: ", count.status().message())));
      }
      num_partitions_ = *count;
      spdlog::info("topic {} has {} partitions", options_.topic, num_partitions_);
    }
    const int64_t now = NowMs();
    WorkerEntry entry;
    entry.id = absl::StrCat(request->host(), ":", request->data_port(), "-", RandomSuffix());
    entry.sequence = ++registrations_;
    entry.registration = *request;
    entry.registered_at_ms = now;
    entry.last_heartbeat_ms = now;
    const std::string id = entry.id;
    workers_.emplace(id, std::move(entry));
    last_registration_ms_ = now;
    if (state_ == "RUNNING") {
      spdlog::info("worker {} registered (pid {}, data {}:{}) as a standby: attempt {} of job {} is running on {} "
                   "workers (rescaling a running job comes with savepoints)",
                   id, request->pid(), request->host(), request->data_port(), attempt_, options_.job_id,
                   AttemptWorkerCount());
    } else {
      spdlog::info("worker {} registered (pid {}, data {}:{}); {} of cluster.min-workers={} registered", id,
                   request->pid(), request->host(), request->data_port(), workers_.size(), options_.min_workers);
      MaybeDeploy(now);
    }
    response->set_worker_id(id);
    const WorkerEntry& registered = workers_.at(id);
    if (registered.in_attempt()) *response->mutable_assignment() = registered.assignment;
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override {
    std::lock_guard lock(mu_);
    auto it = workers_.find(request->worker_id());
    if (it == workers_.end()) {
      response->set_known(false);
      auto reason = forgotten_.find(request->worker_id());
      response->set_reason(reason != forgotten_.end()
                               ? reason->second
                               : "unknown worker (the coordinator restarted or timed it out)");
      return grpc::Status::OK;
    }
    WorkerEntry& w = it->second;
    w.last_heartbeat_ms = NowMs();
    ReportChannelChanges(w, request->counters());
    w.counters = request->counters();
    response->set_known(true);
    if (w.in_attempt()) *response->mutable_assignment() = w.assignment;
    return grpc::Status::OK;
  }

  grpc::Status DeregisterWorker(grpc::ServerContext*, const v1::DeregisterWorkerRequest* request,
                                v1::DeregisterWorkerResponse*) override {
    std::lock_guard lock(mu_);
    auto it = workers_.find(request->worker_id());
    if (it == workers_.end()) return grpc::Status::OK;
    const bool in_attempt = it->second.in_attempt();
    if (request->failure_cause().empty()) {
      spdlog::info("worker {} left: {} records in, {} features written", request->worker_id(),
                   request->counters().records_in(), request->counters().redis_features_written());
    } else {
      spdlog::error("worker {} failed: {}", request->worker_id(), request->failure_cause());
    }
    workers_.erase(it);
    if (in_attempt && state_ == "RUNNING") {
      const bool failed = !request->failure_cause().empty();
      FailAttempt(failed ? absl::StrCat("worker ", request->worker_id(), " failed: ", request->failure_cause())
                         : absl::StrCat("worker ", request->worker_id(), " left the running attempt"),
                  failed);
    }
    return grpc::Status::OK;
  }

  grpc::Status GetJob(grpc::ServerContext*, const v1::GetJobRequest*, v1::JobStatus* response) override {
    std::lock_guard lock(mu_);
    const int64_t now = NowMs();
    response->set_job_id(options_.job_id);
    response->set_state(state_);
    response->set_start_time_ms(start_time_ms_);
    response->set_topic(options_.topic);
    response->set_num_partitions(num_partitions_);
    response->set_max_parallelism(options_.max_parallelism);
    response->set_attempt(attempt_);
    response->set_min_workers(options_.min_workers);
    response->set_failure_cause(failure_cause_);
    response->set_failures(failures_);
    if (checkpoints_) checkpoints_->FillOverview(response->mutable_checkpoints());
    for (const WorkerEntry* w : WorkersInOrder()) {
      v1::WorkerStatus* s = response->add_workers();
      s->set_worker_id(w->id);
      s->set_host(w->registration.host());
      s->set_data_port(w->registration.data_port());
      s->set_heartbeat_age_ms(now - w->last_heartbeat_ms);
      s->set_registered_at_ms(w->registered_at_ms);
      s->set_standby(!w->in_attempt());
      if (w->in_attempt()) *s->mutable_assignment() = w->assignment;
      *s->mutable_counters() = w->counters;
    }
    return grpc::Status::OK;
  }

  // Checkpoint acknowledgements go straight to the checkpoint coordinator,
  // which knows the attempt and workers of its pending checkpoint.
  grpc::Status AcknowledgeCheckpoint(grpc::ServerContext*, const v1::AcknowledgeCheckpointRequest* request,
                                     v1::AcknowledgeCheckpointResponse*) override {
    if (!checkpoints_) return CheckpointingDisabled();
    return ToGrpc(checkpoints_->Acknowledge(*request));
  }

  grpc::Status DeclineCheckpoint(grpc::ServerContext*, const v1::DeclineCheckpointRequest* request,
                                 v1::DeclineCheckpointResponse*) override {
    if (!checkpoints_) return CheckpointingDisabled();
    return ToGrpc(checkpoints_->Decline(*request));
  }

  // Reaper tick: expires silent workers and deploys when it is time.
  void Tick() {
    std::lock_guard lock(mu_);
    const int64_t now = NowMs();
    for (auto it = workers_.begin(); it != workers_.end();) {
      const int64_t age = now - it->second.last_heartbeat_ms;
      if (age <= options_.heartbeat_timeout_ms) {
        ++it;
        continue;
      }
      const bool in_attempt = it->second.in_attempt();
      const std::string id = it->first;
      spdlog::warn("worker {} lost: no heartbeat for {} ms (heartbeat.timeout {} ms)", id, age,
                   options_.heartbeat_timeout_ms);
      it = workers_.erase(it);
      if (in_attempt && state_ == "RUNNING") {
        FailAttempt(absl::StrCat("worker ", id, " lost: no heartbeat for ", age, " ms (heartbeat.timeout ",
                                 options_.heartbeat_timeout_ms, " ms)"));
        it = workers_.begin();  // FailAttempt erased entries
      }
    }
    if (state_ != "RUNNING") MaybeDeploy(now);
  }

 private:
  static grpc::Status CheckpointingDisabled() {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "checkpointing is disabled on this coordinator (no state.checkpoints.dir job directory)");
  }

  int AttemptWorkerCount() const {
    int n = 0;
    for (const auto& [id, w] : workers_) n += w.in_attempt() ? 1 : 0;
    return n;
  }

  // Attempt workers by index, then standbys by registration order.
  std::vector<const WorkerEntry*> WorkersInOrder() const {
    std::vector<const WorkerEntry*> out;
    for (const auto& [id, w] : workers_) out.push_back(&w);
    std::sort(out.begin(), out.end(), [](const WorkerEntry* a, const WorkerEntry* b) {
      if (a->in_attempt() != b->in_attempt()) return a->in_attempt();
      if (a->in_attempt()) return a->assignment.worker_index() < b->assignment.worker_index();
      return a->sequence < b->sequence;
    });
    return out;
  }

  void MaybeDeploy(int64_t now) {
    if (static_cast<int>(workers_.size()) < options_.min_workers) return;
    if (now - last_registration_ms_ < options_.stabilization_ms) return;
    Deploy();
  }

  // Deploys the next attempt over every registered worker, in registration
  // order (so indices, and with them partitions and key-group ranges, are
  // stable for workers that stay).
  void Deploy() {
    std::vector<WorkerEntry*> ordered;
    for (auto& [id, w] : workers_) ordered.push_back(&w);
    std::sort(ordered.begin(), ordered.end(),
              [](const WorkerEntry* a, const WorkerEntry* b) { return a->sequence < b->sequence; });
    // More workers than key groups would leave some without keys: those stay
    // standbys.
    if (static_cast<int>(ordered.size()) > options_.max_parallelism) ordered.resize(options_.max_parallelism);
    const int n = static_cast<int>(ordered.size());
    const std::vector<WorkerAssignment> plan = ComputeAssignment(num_partitions_, options_.max_parallelism, n);
    ++attempt_;
    std::vector<v1::PeerEndpoint> peers(n);
    for (int i = 0; i < n; ++i) {
      peers[i].set_index(i);
      peers[i].set_worker_id(ordered[i]->id);
      peers[i].set_host(ordered[i]->registration.host());
      peers[i].set_data_port(ordered[i]->registration.data_port());
      peers[i].mutable_key_groups()->set_first(plan[i].key_groups.first);
      peers[i].mutable_key_groups()->set_last(plan[i].key_groups.last);
    }
    for (int i = 0; i < n; ++i) {
      v1::Assignment& a = ordered[i]->assignment;
      a.Clear();
      a.set_job_id(options_.job_id);
      a.set_attempt(attempt_);
      a.set_topic(options_.topic);
      a.set_max_parallelism(options_.max_parallelism);
      for (int p : plan[i].partitions) a.add_partitions(p);
      *a.add_key_groups() = peers[i].key_groups();
      a.set_worker_index(i);
      for (const v1::PeerEndpoint& peer : peers) *a.add_workers() = peer;
    }
    state_ = "RUNNING";
    if (checkpoints_) checkpoints_->OnAttemptDeployed(attempt_, peers, num_partitions_);
    spdlog::info("deploying attempt {} of job {} on {} workers ({} partitions, {} key groups)", attempt_,
                 options_.job_id, n, num_partitions_, options_.max_parallelism);
    for (int i = 0; i < n; ++i) {
      const v1::Assignment& a = ordered[i]->assignment;
      spdlog::info("  worker {} {} (data {}:{}): partitions [{}], key groups {}", i, ordered[i]->id,
                   ordered[i]->registration.host(), ordered[i]->registration.data_port(), JoinInts(a.partitions()),
                   plan[i].key_groups.ToString());
    }
  }

  // Ends the running attempt: its workers are forgotten (they stop when their
  // next heartbeat is answered with known=false and `cause`); standbys stay
  // registered for the next attempt.
  void FailAttempt(const std::string& cause, bool failed = true) {
    if (failed) ++failures_;
    failure_cause_ = cause;
    state_ = "RESTARTING";
    // A worker leaving on purpose (SIGTERM, e.g. the whole cluster stopping)
    // is expected; a lost or failing one is an error.
    spdlog::log(failed ? spdlog::level::err : spdlog::level::warn,
                "attempt {} of job {} ended: {}; its workers are told to stop. Restoring state from the latest "
                "checkpoint is not in this release: the next attempt starts from the starting offsets once "
                "cluster.min-workers={} workers are registered",
                attempt_, options_.job_id, cause, options_.min_workers);
    if (checkpoints_) checkpoints_->OnAttemptEnded(attempt_, cause);
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (it->second.in_attempt()) {
        forgotten_[it->first] = absl::StrCat("attempt ", attempt_, " of job ", options_.job_id, " failed: ", cause);
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
    last_registration_ms_ = NowMs();
  }

  // Logs when a worker starts or stops having trouble with a data channel.
  void ReportChannelChanges(const WorkerEntry& w, const v1::WorkerCounters& now) {
    std::map<std::pair<std::string, bool>, std::string> before;
    for (const v1::ChannelStatus& c : w.counters.channels()) before[{c.peer_worker_id(), c.outbound()}] = c.error();
    for (const v1::ChannelStatus& c : now.channels()) {
      const std::string& old = before[{c.peer_worker_id(), c.outbound()}];
      if (c.error() == old) continue;
      if (c.error().empty()) {
        spdlog::info("worker {}: channel {} peer {} works again", w.id, c.outbound() ? "to" : "from",
                     c.peer_worker_id());
      } else {
        spdlog::warn("worker {}: channel {} peer {}: {}", w.id, c.outbound() ? "to" : "from", c.peer_worker_id(),
                     c.error());
      }
    }
  }

  const CoordinatorOptions options_;
  const int64_t start_time_ms_;
  std::mutex mu_;
  std::map<std::string, WorkerEntry> workers_;
  std::map<std::string, std::string> forgotten_;  // worker id -> why it was dropped
  std::string state_ = "CREATED";
  std::string failure_cause_;
  int64_t failures_ = 0;
  int64_t registrations_ = 0;
  int64_t last_registration_ms_ = 0;
  int num_partitions_ = 0;
  int64_t attempt_ = 0;
  std::unique_ptr<CheckpointCoordinator> checkpoints_;
};

}  // namespace

struct CoordinatorServer::Impl {
  std::unique_ptr<CoordinatorService> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread reaper;
};

CoordinatorServer::CoordinatorServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(CoordinatorOptions options) {
  auto impl = std::make_unique<Impl>();
  const std::string address = options.listen_address;
  const int64_t timeout_ms = options.heartbeat_timeout_ms;
  CheckpointCoordinatorOptions checkpoint_options;
  checkpoint_options.settings = options.checkpoints;
  checkpoint_options.job_dir = options.job_dir;
  checkpoint_options.job_id = options.job_id;
  checkpoint_options.topic = options.topic;
  checkpoint_options.max_parallelism = options.max_parallelism;
  checkpoint_options.make_stub = options.task_control_stub;
  const bool checkpointing = !options.job_dir.empty();
  impl->service = std::make_unique<CoordinatorService>(std::move(options));
  if (checkpointing) {
    CoordinatorService* service = impl->service.get();
    checkpoint_options.on_failure = [service](int64_t attempt, const std::string& cause) {
      service->FailAttemptForCheckpoints(attempt, cause);
    };
    absl::StatusOr<std::unique_ptr<CheckpointCoordinator>> checkpoints =
        CheckpointCoordinator::Start(std::move(checkpoint_options));
    if (!checkpoints.ok()) return checkpoints.status();
    impl->service->SetCheckpoints(*std::move(checkpoints));
  }
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which would let a second coordinator
  // bind the same port and split the workers between the two.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &impl->port);
  builder.RegisterService(impl->service.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return absl::UnavailableError(absl::StrCat("jobmanager.rpc.port: cannot listen on ", address,
                                               " (in use, or not a local address)"));
  }
  Impl* raw = impl.get();
  impl->reaper = std::thread([raw, timeout_ms] {
    std::unique_lock lock(raw->mu);
    const auto period = std::chrono::milliseconds(std::clamp<int64_t>(timeout_ms / 10, 20, 100));
    while (!raw->cv.wait_for(lock, period, [raw] { return raw->stopping; })) raw->service->Tick();
  });
  return std::unique_ptr<CoordinatorServer>(new CoordinatorServer(std::move(impl)));
}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

int CoordinatorServer::port() const { return impl_->port; }

void CoordinatorServer::Shutdown() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->reaper.joinable()) impl_->reaper.join();
  // Before the service goes: its thread may call back into the service.
  if (impl_->service->checkpoints() != nullptr) impl_->service->checkpoints()->Stop();
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

void CoordinatorServer::Wait() { impl_->server->Wait(); }

}  // namespace slipstream
