// The worker's gRPC server (data plane and TaskControl) with
// security.internal-token set: calls without the token, or with another one,
// are refused as UNAUTHENTICATED before anything else happens; calls with it
// get through (here to "no task is running", FAILED_PRECONDITION).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/access_control.h"
#include "common/grpc_security.h"
#include "proto/slipstream.grpc.pb.h"
#include "worker/exchange/data_plane.h"

namespace slipstream {
namespace {

constexpr char kInternal[] = "internal-secret";

class DataPlaneAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<DataPlaneServer>> server =
        DataPlaneServer::Start(0, GrpcSecurity(), AccessControl(AccessTokens{"admin", "", kInternal}));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    target_ = absl::StrCat("127.0.0.1:", server_->port());
  }

  grpc::Status Trigger(const std::string& token) {
    auto stub = v1::TaskControl::NewStub(GrpcSecurity().WithToken(token).Channel(target_));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::TriggerCheckpointRequest request;
    request.set_checkpoint_id(1);
    v1::TriggerCheckpointResponse response;
    return stub->TriggerCheckpoint(&ctx, request, &response);
  }

  grpc::Status Notify(const std::string& token, bool abort) {
    auto stub = v1::TaskControl::NewStub(GrpcSecurity().WithToken(token).Channel(target_));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::CheckpointNotification request;
    request.set_checkpoint_id(1);
    v1::CheckpointNotificationResponse response;
    return abort ? stub->AbortCheckpoint(&ctx, request, &response)
                 : stub->NotifyCheckpointComplete(&ctx, request, &response);
  }

  // Opens an Exchange stream with `token` and returns how it ended.
  grpc::Status Exchange(const std::string& token) {
    auto stub = v1::DataPlane::NewStub(GrpcSecurity().WithToken(token).Channel(target_));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    auto stream = stub->Exchange(&ctx);
    v1::ChannelMessage open;
    open.mutable_open()->set_job_id("job");
    open.mutable_open()->set_attempt(1);
    stream->Write(open);
    stream->WritesDone();
    v1::ChannelCredit credit;
    while (stream->Read(&credit)) {
    }
    return stream->Finish();
  }

  std::unique_ptr<DataPlaneServer> server_;
  std::string target_;
};

TEST_F(DataPlaneAccessTest, TaskControlNeedsTheInternalToken) {
  for (const std::string& token : {std::string(), std::string("admin"), std::string("wrong")}) {
    EXPECT_EQ(Trigger(token).error_code(), grpc::StatusCode::UNAUTHENTICATED) << "\"" << token << "\"";
    EXPECT_EQ(Notify(token, false).error_code(), grpc::StatusCode::UNAUTHENTICATED) << "\"" << token << "\"";
    EXPECT_EQ(Notify(token, true).error_code(), grpc::StatusCode::UNAUTHENTICATED) << "\"" << token << "\"";
  }
  const grpc::Status accepted = Trigger(kInternal);
  EXPECT_EQ(accepted.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << accepted.error_message();
  EXPECT_TRUE(Notify(kInternal, false).ok());
  EXPECT_TRUE(Notify(kInternal, true).ok());
}

TEST_F(DataPlaneAccessTest, CancelTaskNeedsTheInternalTokenAndSaysWhichOne) {
  auto cancel = [&](const std::string& token) {
    auto stub = v1::TaskControl::NewStub(GrpcSecurity().WithToken(token).Channel(target_));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::CancelTaskResponse response;
    return stub->CancelTask(&ctx, v1::CancelTaskRequest(), &response);
  };
  const grpc::Status refused = cancel("wrong");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(refused.error_message(), "wrong token: this operation needs security.internal-token");
  EXPECT_EQ(cancel("").error_message(), "no token given: this operation needs security.internal-token");
  // With the token the call reaches the server, which has no cancel listener.
  const grpc::Status accepted = cancel(kInternal);
  EXPECT_EQ(accepted.error_code(), grpc::StatusCode::UNAVAILABLE) << accepted.error_message();
}

TEST_F(DataPlaneAccessTest, DataStreamsNeedTheInternalToken) {
  for (const std::string& token : {std::string(), std::string("admin"), std::string("wrong")}) {
    const grpc::Status refused = Exchange(token);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED) << "\"" << token << "\": "
                                                                       << refused.error_message();
  }
}

}  // namespace
}  // namespace slipstream
