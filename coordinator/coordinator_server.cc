#include "coordinator/coordinator_server.h"

#include <grpcpp/grpcpp.h>

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
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kUnavailable:
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(s.message()));
    case absl::StatusCode::kFailedPrecondition:
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, std::string(s.message()));
    default:
      return grpc::Status(grpc::StatusCode::INTERNAL, std::string(s.message()));
  }
}

struct WorkerEntry {
  std::string id;
  v1::RegisterWorkerRequest registration;
  v1::Assignment assignment;
  v1::WorkerCounters counters;
  int64_t last_heartbeat_ms = 0;
};

class CoordinatorService final : public v1::Coordinator::Service {
 public:
  explicit CoordinatorService(CoordinatorOptions options) : options_(std::move(options)), start_time_ms_(NowMs()) {}

  grpc::Status RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest* request,
                              v1::RegisterWorkerResponse* response) override {
    std::lock_guard lock(mu_);
    if (!workers_.empty()) {
      const WorkerEntry& owner = workers_.begin()->second;
      return grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          absl::StrCat("job ", options_.job_id, " already has worker ", owner.id, " (", owner.registration.host(),
                       ", pid ", owner.registration.pid(),
                       ") owning all partitions and key groups; this release runs one worker per job "
                       "(several workers come with scale-out)"));
    }
    if (num_partitions_ <= 0) {
      absl::StatusOr<int> count = options_.partition_count();
      if (!count.ok()) {
        return ToGrpc(absl::UnavailableError(absl::StrCat("waiting for the input topic: ", count.status().message())));
      }
      num_partitions_ = *count;
      spdlog::info("topic {} has {} partitions", options_.topic, num_partitions_);
    }
    const std::vector<WorkerAssignment> plan = ComputeAssignment(num_partitions_, options_.max_parallelism, 1);
    WorkerEntry entry;
    entry.id = absl::StrCat(request->host(), "-", RandomSuffix());
    entry.registration = *request;
    entry.last_heartbeat_ms = NowMs();
    ++attempt_;
    v1::Assignment& a = entry.assignment;
    a.set_job_id(options_.job_id);
    a.set_attempt(attempt_);
    a.set_topic(options_.topic);
    a.set_max_parallelism(options_.max_parallelism);
    for (int p : plan[0].partitions) a.add_partitions(p);
    v1::KeyGroupRange* range = a.add_key_groups();
    range->set_first(plan[0].key_groups.first);
    range->set_last(plan[0].key_groups.last);
    response->set_worker_id(entry.id);
    *response->mutable_assignment() = a;
    spdlog::info("worker {} registered (pid {}): partitions 0-{} and key groups {} of job {}, attempt {}", entry.id,
                 request->pid(), num_partitions_ - 1, plan[0].key_groups.ToString(), options_.job_id, attempt_);
    workers_.emplace(entry.id, std::move(entry));
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override {
    std::lock_guard lock(mu_);
    auto it = workers_.find(request->worker_id());
    if (it == workers_.end()) {
      response->set_known(false);
      return grpc::Status::OK;
    }
    it->second.last_heartbeat_ms = NowMs();
    it->second.counters = request->counters();
    response->set_known(true);
    return grpc::Status::OK;
  }

  grpc::Status DeregisterWorker(grpc::ServerContext*, const v1::DeregisterWorkerRequest* request,
                                v1::DeregisterWorkerResponse*) override {
    std::lock_guard lock(mu_);
    if (workers_.erase(request->worker_id()) > 0) {
      spdlog::info("worker {} left: {} records in, {} features written", request->worker_id(),
                   request->counters().records_in(), request->counters().redis_features_written());
    }
    return grpc::Status::OK;
  }

  grpc::Status GetJob(grpc::ServerContext*, const v1::GetJobRequest*, v1::JobStatus* response) override {
    std::lock_guard lock(mu_);
    const int64_t now = NowMs();
    response->set_job_id(options_.job_id);
    response->set_state(workers_.empty() ? "CREATED" : "RUNNING");
    response->set_start_time_ms(start_time_ms_);
    response->set_topic(options_.topic);
    response->set_num_partitions(num_partitions_);
    response->set_max_parallelism(options_.max_parallelism);
    for (const auto& [id, w] : workers_) {
      v1::WorkerStatus* s = response->add_workers();
      s->set_worker_id(id);
      s->set_host(w.registration.host());
      s->set_data_port(w.registration.data_port());
      s->set_heartbeat_age_ms(now - w.last_heartbeat_ms);
      *s->mutable_assignment() = w.assignment;
      *s->mutable_counters() = w.counters;
    }
    return grpc::Status::OK;
  }

  void ExpireWorkers() {
    std::lock_guard lock(mu_);
    const int64_t now = NowMs();
    for (auto it = workers_.begin(); it != workers_.end();) {
      const int64_t age = now - it->second.last_heartbeat_ms;
      if (age > options_.heartbeat_timeout_ms) {
        spdlog::warn("worker {} lost: no heartbeat for {} ms (heartbeat.timeout {} ms); its partitions and key "
                     "groups are free for a new worker",
                     it->first, age, options_.heartbeat_timeout_ms);
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
  }

 private:
  const CoordinatorOptions options_;
  const int64_t start_time_ms_;
  std::mutex mu_;
  std::map<std::string, WorkerEntry> workers_;
  int num_partitions_ = 0;
  int64_t attempt_ = 0;
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
  impl->service = std::make_unique<CoordinatorService>(std::move(options));
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
    const auto period = std::chrono::milliseconds(std::max<int64_t>(50, timeout_ms / 10));
    while (!raw->cv.wait_for(lock, period, [raw] { return raw->stopping; })) raw->service->ExpireWorkers();
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
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

void CoordinatorServer::Wait() { impl_->server->Wait(); }

}  // namespace slipstream
