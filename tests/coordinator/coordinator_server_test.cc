// The coordinator's gRPC service, in process on a free port, through a real
// gRPC client: registration, refusal of a second worker, heartbeats,
// deregistration and expiry of silent workers.
#include "coordinator/coordinator_server.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "proto/slipstream.grpc.pb.h"

namespace slipstream {
namespace {

class CoordinatorServerTest : public ::testing::Test {
 protected:
  void StartServer(int64_t heartbeat_timeout_ms = 10000, absl::StatusOr<int> partitions = 4) {
    CoordinatorOptions options;
    options.listen_address = "127.0.0.1:0";
    options.job_id = "0123456789abcdef0123456789abcdef";
    options.topic = "events";
    options.max_parallelism = 128;
    options.heartbeat_timeout_ms = heartbeat_timeout_ms;
    options.partition_count = [partitions] { return partitions; };
    auto server = CoordinatorServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::Coordinator::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                                         grpc::InsecureChannelCredentials()));
  }

  grpc::Status Register(v1::RegisterWorkerResponse* response) {
    grpc::ClientContext ctx;
    v1::RegisterWorkerRequest request;
    request.set_host("127.0.0.1");
    request.set_pid(42);
    return stub_->RegisterWorker(&ctx, request, response);
  }

  bool Heartbeat(const std::string& worker_id) {
    grpc::ClientContext ctx;
    v1::HeartbeatRequest request;
    request.set_worker_id(worker_id);
    request.mutable_counters()->set_records_in(7);
    v1::HeartbeatResponse response;
    EXPECT_TRUE(stub_->Heartbeat(&ctx, request, &response).ok());
    return response.known();
  }

  v1::JobStatus GetJob() {
    grpc::ClientContext ctx;
    v1::JobStatus job;
    EXPECT_TRUE(stub_->GetJob(&ctx, v1::GetJobRequest(), &job).ok());
    return job;
  }

  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

TEST_F(CoordinatorServerTest, FirstWorkerGetsEveryPartitionAndKeyGroup) {
  StartServer();
  v1::RegisterWorkerResponse response;
  ASSERT_TRUE(Register(&response).ok());
  const v1::Assignment& a = response.assignment();
  EXPECT_EQ(a.job_id(), "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(a.topic(), "events");
  EXPECT_EQ(std::vector<int>(a.partitions().begin(), a.partitions().end()), (std::vector<int>{0, 1, 2, 3}));
  ASSERT_EQ(a.key_groups_size(), 1);
  EXPECT_EQ(a.key_groups(0).first(), 0);
  EXPECT_EQ(a.key_groups(0).last(), 127);
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "RUNNING");
  ASSERT_EQ(job.workers_size(), 1);
  EXPECT_EQ(job.workers(0).worker_id(), response.worker_id());
}

TEST_F(CoordinatorServerTest, SecondWorkerIsRefusedUntilTheFirstLeaves) {
  StartServer();
  v1::RegisterWorkerResponse first;
  ASSERT_TRUE(Register(&first).ok());
  v1::RegisterWorkerResponse second;
  const grpc::Status refused = Register(&second);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("one worker per job"), std::string::npos) << refused.error_message();

  grpc::ClientContext ctx;
  v1::DeregisterWorkerRequest bye;
  bye.set_worker_id(first.worker_id());
  v1::DeregisterWorkerResponse ack;
  ASSERT_TRUE(stub_->DeregisterWorker(&ctx, bye, &ack).ok());
  EXPECT_EQ(GetJob().state(), "CREATED");
  EXPECT_TRUE(Register(&second).ok());
  EXPECT_GT(second.assignment().attempt(), first.assignment().attempt());
}

TEST_F(CoordinatorServerTest, HeartbeatsCarryCountersAndUnknownWorkersAreToldSo) {
  StartServer();
  v1::RegisterWorkerResponse response;
  ASSERT_TRUE(Register(&response).ok());
  EXPECT_TRUE(Heartbeat(response.worker_id()));
  EXPECT_EQ(GetJob().workers(0).counters().records_in(), 7);
  EXPECT_FALSE(Heartbeat("somebody-else"));
}

TEST_F(CoordinatorServerTest, SilentWorkerIsForgottenAfterHeartbeatTimeout) {
  StartServer(/*heartbeat_timeout_ms=*/300);
  v1::RegisterWorkerResponse response;
  ASSERT_TRUE(Register(&response).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (GetJob().workers_size() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(GetJob().workers_size(), 0);
  EXPECT_FALSE(Heartbeat(response.worker_id()));
}

TEST_F(CoordinatorServerTest, RegistrationWaitsWhileTheTopicIsMissing) {
  StartServer(10000, absl::NotFoundError("topic events does not exist"));
  v1::RegisterWorkerResponse response;
  const grpc::Status status = Register(&response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(status.error_message().find("does not exist"), std::string::npos) << status.error_message();
}

TEST_F(CoordinatorServerTest, SecondCoordinatorCannotShareThePort) {
  StartServer();
  CoordinatorOptions options;
  options.listen_address = absl::StrCat("127.0.0.1:", server_->port());
  options.partition_count = [] { return absl::StatusOr<int>(1); };
  auto second = CoordinatorServer::Start(options);
  EXPECT_FALSE(second.ok());
}

}  // namespace
}  // namespace slipstream
