// The coordinator's gRPC service in process on a free port, reached through
// a real gRPC client, with fake workers: plain registrations and heartbeats,
// or FakeTaskControl endpoints as data ports that acknowledge checkpoints
// through the coordinator's API. Every option of CoordinatorOptions a test
// may change is a member set before StartServer.
#pragma once

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grpc_security.h"
#include "coordinator/coordinator_server.h"
#include "proto/slipstream.grpc.pb.h"
#include "tests/coordinator/fake_task_control.h"

namespace slipstream::test_support {

class CoordinatorFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    checkpoints_root_ = std::filesystem::temp_directory_path() /
                        absl::StrCat("slipstream-coordinator-test-", ::getpid(), "-", info->test_suite_name(), "-",
                                     info->name());
    std::filesystem::remove_all(checkpoints_root_);
    std::filesystem::create_directories(checkpoints_root_);
    restart_.fixed_delay_ms = 0;
  }

  void TearDown() override {
    for (auto& w : fakes_) w->Shutdown();
    server_.reset();
    std::filesystem::remove_all(checkpoints_root_);
  }

  // Checkpointing for the next StartServer, in a fresh temporary job directory.
  void EnableCheckpoints(int64_t interval_ms, int64_t timeout_ms, int64_t tolerable) {
    job_dir_ = (checkpoints_root_ / "0123456789abcdef0123456789abcdef").string();
    checkpoints_.interval_ms = interval_ms;
    checkpoints_.timeout_ms = timeout_ms;
    checkpoints_.tolerable_failed = tolerable;
    checkpoints_.num_retained = 1;
    checkpoints_.rpc_timeout_ms = 3000;
  }

  // A fake worker whose data port is a TaskControl server; it registers and
  // answers triggers through the coordinator's gRPC API (silent until it
  // knows its worker id).
  FakeTaskControl& AddFakeWorker() {
    auto fake = std::make_unique<FakeTaskControl>("", 0, 0);
    fake->omit_key_groups();
    fake->set_reply(FakeTaskControl::Reply::kSilent);
    fake->set_sink(
        [this](const v1::AcknowledgeCheckpointRequest& ack) {
          grpc::ClientContext ctx;
          v1::AcknowledgeCheckpointResponse response;
          RecordSinkStatus(stub_->AcknowledgeCheckpoint(&ctx, ack, &response));
        },
        [this](const v1::DeclineCheckpointRequest& decline) {
          grpc::ClientContext ctx;
          v1::DeclineCheckpointResponse response;
          RecordSinkStatus(stub_->DeclineCheckpoint(&ctx, decline, &response));
        });
    FakeTaskControl& w = *fake;
    fakes_.push_back(std::move(fake));
    w.set_worker_id(MustRegister(w.port()));
    return w;
  }

  void RecordSinkStatus(const grpc::Status& status) {
    std::lock_guard lock(sink_mu_);
    sink_statuses_.push_back(status);
  }

  void StartServer(int64_t heartbeat_timeout_ms = 10000, absl::StatusOr<int> partitions = 4, int min_workers = 1,
                   int64_t stabilization_ms = 0) {
    const absl::Status started = TryStartServer(heartbeat_timeout_ms, partitions, min_workers, stabilization_ms);
    ASSERT_TRUE(started.ok()) << started;
  }

  absl::Status TryStartServer(int64_t heartbeat_timeout_ms = 10000, absl::StatusOr<int> partitions = 4,
                              int min_workers = 1, int64_t stabilization_ms = 0) {
    CoordinatorOptions options;
    options.listen_address = "127.0.0.1:0";
    options.job_id = "0123456789abcdef0123456789abcdef";
    options.topic = "events";
    options.heartbeat_timeout_ms = heartbeat_timeout_ms;
    options.min_workers = min_workers;
    options.stabilization_ms = stabilization_ms;
    options.partition_count = [partitions, now = topic_partitions_]() -> absl::StatusOr<int> {
      if (now != nullptr && *now != 0) return *now > 0 ? absl::StatusOr<int>(now->load()) : absl::NotFoundError("gone");
      return partitions;
    };
    options.partition_discovery_interval_ms = partition_discovery_interval_ms_;
    if (manual_clock_ != nullptr) {
      options.clock = manual_clock_.get();
      options.background_ticks = false;
    }
    options.job_dir = job_dir_;
    options.checkpoints = checkpoints_;
    options.max_parallelism = max_parallelism_;
    options.restart = restart_;
    options.cancellation_timeout_ms = cancellation_timeout_ms_;
    options.savepoint_path = savepoint_path_;
    options.savepoints_dir = savepoints_dir_;
    options.delete_checkpoints_on_cancel = delete_checkpoints_on_cancel_;
    options.probe_workers = probe_workers_;
    options.access = access_;
    options.security = security_;
    options.rescale_on_join = rescale_on_join_;
    if (customize_) customize_(options);
    auto server = CoordinatorServer::Start(options);
    if (!server.ok()) return server.status();
    server_ = std::move(*server);
    stub_ = StubWithToken(stub_token_);
    return absl::OkStatus();
  }

  // A client of the running server with the fixture's TLS settings and
  // `token` ("" for none) on every call.
  std::unique_ptr<v1::Coordinator::Stub> StubWithToken(const std::string& token) const {
    return v1::Coordinator::NewStub(
        security_.WithToken(token).Channel(absl::StrCat("127.0.0.1:", server_->port())));
  }

  grpc::Status Register(v1::RegisterWorkerResponse* response, int data_port = 7000) {
    grpc::ClientContext ctx;
    v1::RegisterWorkerRequest request;
    request.set_host("127.0.0.1");
    request.set_data_port(data_port);
    request.set_pid(42);
    return stub_->RegisterWorker(&ctx, request, response);
  }

  std::string MustRegister(int data_port) {
    v1::RegisterWorkerResponse response;
    const grpc::Status status = Register(&response, data_port);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.worker_id();
  }

  v1::HeartbeatResponse Beat(const std::string& worker_id) {
    grpc::ClientContext ctx;
    v1::HeartbeatRequest request;
    request.set_worker_id(worker_id);
    request.mutable_counters()->set_records_in(7);
    v1::HeartbeatResponse response;
    EXPECT_TRUE(stub_->Heartbeat(&ctx, request, &response).ok());
    return response;
  }
  bool Heartbeat(const std::string& worker_id) { return Beat(worker_id).known(); }

  // A heartbeat saying the worker runs attempt `attempt` (0: idle), with the
  // failure of that attempt's task when `failure_cause` is set.
  v1::HeartbeatResponse BeatAs(const std::string& worker_id, int64_t attempt, const std::string& failure_cause = "") {
    grpc::ClientContext ctx;
    v1::HeartbeatRequest request;
    request.set_worker_id(worker_id);
    request.mutable_counters()->set_attempt(attempt);
    request.set_failure_cause(failure_cause);
    v1::HeartbeatResponse response;
    EXPECT_TRUE(stub_->Heartbeat(&ctx, request, &response).ok());
    return response;
  }

  // Writes <dir>/_metadata as the checkpoint coordinator does (protobuf JSON).
  static void WriteMetadata(const std::filesystem::path& dir, const v1::CheckpointMetadata& metadata) {
    std::filesystem::create_directories(dir);
    std::string json;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(metadata, &json, options).ok());
    std::ofstream(dir / "_metadata") << json;
  }

  // `running_attempt` != 0: a worker leaving on purpose while its task of
  // that attempt still stops (it deregisters again, with 0, once stopped).
  void Deregister(const std::string& worker_id, const std::string& failure_cause = "", int64_t running_attempt = 0) {
    grpc::ClientContext ctx;
    v1::DeregisterWorkerRequest bye;
    bye.set_worker_id(worker_id);
    bye.set_failure_cause(failure_cause);
    bye.mutable_counters()->set_attempt(running_attempt);
    v1::DeregisterWorkerResponse ack;
    ASSERT_TRUE(stub_->DeregisterWorker(&ctx, bye, &ack).ok());
  }

  v1::JobStatus GetJob() {
    grpc::ClientContext ctx;
    v1::JobStatus job;
    EXPECT_TRUE(stub_->GetJob(&ctx, v1::GetJobRequest(), &job).ok());
    return job;
  }

  // Polls GetJob until `done` or `timeout`.
  v1::JobStatus WaitForJob(const std::function<bool(const v1::JobStatus&)>& done,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    v1::JobStatus job = GetJob();
    while (!done(job) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      job = GetJob();
    }
    return job;
  }

  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  std::filesystem::path checkpoints_root_;
  std::string job_dir_;  // empty: checkpointing disabled
  CheckpointSettings checkpoints_;
  int max_parallelism_ = 128;
  RestartStrategySettings restart_;  // fixed-delay without delay unless a test says otherwise
  int64_t cancellation_timeout_ms_ = 180000;
  std::string savepoint_path_;
  std::string savepoints_dir_;                 // state.savepoints.dir
  bool delete_checkpoints_on_cancel_ = false;  // DELETE_ON_CANCELLATION
  bool probe_workers_ = false;  // CoordinatorOptions::probe_workers
  AccessControl access_;         // CoordinatorOptions::access (open)
  GrpcSecurity security_;        // server and stub_ credentials (plaintext)
  std::string stub_token_;       // sent by stub_ (the fake workers' calls go through it)
  bool rescale_on_join_ = false;  // CoordinatorOptions::rescale_on_join
  // Any other CoordinatorOptions a test sets (bounded jobs, hooks).
  std::function<void(CoordinatorOptions&)> customize_;
  // Time the test drives: set before StartServer, the lifecycle reads only
  // this clock and moves only on Tick (no background thread, no sleeps).
  // What still runs by itself: the CheckpointCoordinator's timer (on the
  // steady clock; it takes only its timestamps from this clock), and, when
  // a test turns them on, the worker prober and partition discovery threads
  // (on wall-clock periods; the prober reads silences on this clock).
  void UseManualClock() { manual_clock_ = std::make_unique<ManualClock>(); }
  void AdvanceClock(int64_t ms) { manual_clock_->AdvanceMs(ms); }
  void Tick() { server_->Tick(); }
  void AdvanceAndTick(int64_t ms) {
    AdvanceClock(ms);
    Tick();
  }
  // Advances the manual clock `step_ms` at a time, ticking (the lifecycle
  // and the checkpoint coordinator) after each step, until the job matches.
  v1::JobStatus TickUntil(const std::function<bool(const v1::JobStatus&)>& done, int64_t step_ms,
                          int max_steps = 1000) {
    v1::JobStatus job = GetJob();
    for (int i = 0; i < max_steps && !done(job); ++i) {
      AdvanceAndTick(step_ms);
      job = GetJob();
    }
    return job;
  }
  std::unique_ptr<ManualClock> manual_clock_;

  // Partition discovery (off unless a test turns it on) and the topic's
  // partition count it reads once set (0: the count StartServer got; -1: the
  // topic is gone).
  int64_t partition_discovery_interval_ms_ = 0;
  std::shared_ptr<std::atomic<int>> topic_partitions_ = std::make_shared<std::atomic<int>>(0);
  std::vector<std::unique_ptr<FakeTaskControl>> fakes_;
  std::mutex sink_mu_;
  std::vector<grpc::Status> sink_statuses_;
};

}  // namespace slipstream::test_support
