// RPC authorization on a gRPC server's listening port (grpc_authorization.h):
// the table lookup and its verdicts, then end to end on a real server, in
// plaintext and over TLS: a refused call reaches the client with
// UNAUTHENTICATED and AccessControl's own message, and its handler never
// runs; an RPC missing from the table is refused whatever the tokens.
#include "common/grpc_authorization.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/access_control.h"
#include "common/grpc_security.h"
#include "proto/slipstream.grpc.pb.h"
#include "tests/support/test_certs.h"

namespace slipstream {
namespace {

constexpr char kTaskControl[] = "slipstream.v1.TaskControl";

TEST(FullMethodName, IsTheCallPathGrpcUses) {
  EXPECT_EQ(FullMethodName("slipstream.v1.Coordinator", "GetJob"), "/slipstream.v1.Coordinator/GetJob");
  EXPECT_EQ(FullMethodName(v1::TaskControl::service_full_name(), "CancelTask"),
            "/slipstream.v1.TaskControl/CancelTask");
}

TEST(MethodAccess, FindsWhatWasAddedAndNothingElse) {
  MethodAccess methods;
  EXPECT_TRUE(methods.Add(kTaskControl, {"TriggerCheckpoint", "CancelTask"}, Access::kInternal));
  EXPECT_TRUE(methods.Add("/other.Service/Read", Access::kRead));
  EXPECT_EQ(methods.size(), 3u);
  EXPECT_EQ(methods.Find("/slipstream.v1.TaskControl/CancelTask"), Access::kInternal);
  EXPECT_EQ(methods.Find("/other.Service/Read"), Access::kRead);
  EXPECT_EQ(methods.Find("/slipstream.v1.TaskControl/AbortCheckpoint"), std::nullopt);
  EXPECT_EQ(methods.Find("CancelTask"), std::nullopt);  // only full names
  EXPECT_EQ(methods.Find(""), std::nullopt);
}

TEST(MethodAccess, AnRpcGivenTwiceKeepsItsFirstEntry) {
  MethodAccess methods;
  EXPECT_TRUE(methods.Add("/s.S/M", Access::kRead));
  EXPECT_FALSE(methods.Add("/s.S/M", Access::kAdmin));
  EXPECT_FALSE(methods.Add("s.S", {"N", "M"}, Access::kAdmin));
  EXPECT_EQ(methods.Find("/s.S/M"), Access::kRead);
  EXPECT_EQ(methods.Find("/s.S/N"), Access::kAdmin);
}

TEST(AuthorizeCall, SaysWhatAccessControlSaysForTheRpcsAccess) {
  MethodAccess methods;
  methods.Add("s.S", {"Read"}, Access::kRead);
  methods.Add("s.S", {"Change"}, Access::kAdmin);
  methods.Add("s.S", {"Internal"}, Access::kInternal);
  const AccessControl access(AccessTokens{"adm", "rd", "int"});
  for (const std::string token : {"", "Bearer adm", "Bearer rd", "Bearer int", "Bearer nope", "Basic adm"}) {
    EXPECT_EQ(AuthorizeCall(methods, access, "/s.S/Read", token), access.Check(Access::kRead, token)) << token;
    EXPECT_EQ(AuthorizeCall(methods, access, "/s.S/Change", token), access.Check(Access::kAdmin, token)) << token;
    EXPECT_EQ(AuthorizeCall(methods, access, "/s.S/Internal", token), access.Check(Access::kInternal, token))
        << token;
  }
  // Spot checks, so the equalities above cannot all pass by being all OK.
  EXPECT_TRUE(AuthorizeCall(methods, access, "/s.S/Change", "Bearer adm").ok());
  EXPECT_EQ(AuthorizeCall(methods, access, "/s.S/Change", "Bearer rd").code(), absl::StatusCode::kUnauthenticated);
}

TEST(AuthorizeCall, RefusesAnRpcMissingFromTheTableEvenWhenEverythingIsOpen) {
  MethodAccess methods;
  methods.Add("s.S", {"Known"}, Access::kRead);
  const AccessControl open;
  EXPECT_TRUE(AuthorizeCall(methods, open, "/s.S/Known", "").ok());
  const absl::Status missing = AuthorizeCall(methods, open, "/s.S/Unknown", "");
  EXPECT_EQ(missing.code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(missing.message().find("/s.S/Unknown"), absl::string_view::npos) << missing;
  EXPECT_EQ(AuthorizeCall(methods, open, "", "").code(), absl::StatusCode::kUnimplemented);
}

// A TaskControl service that only counts the calls its handlers see.
class CountingTaskControl final : public v1::TaskControl::Service {
 public:
  grpc::Status TriggerCheckpoint(grpc::ServerContext*, const v1::TriggerCheckpointRequest*,
                                 v1::TriggerCheckpointResponse*) override {
    ++calls;
    return grpc::Status::OK;
  }
  grpc::Status CancelTask(grpc::ServerContext*, const v1::CancelTaskRequest*, v1::CancelTaskResponse*) override {
    ++calls;
    return grpc::Status::OK;
  }
  std::atomic<int> calls{0};
};

class AuthorizedServerTest : public ::testing::Test {
 protected:
  // TriggerCheckpoint needs the internal token; CancelTask has no entry.
  void Start(const GrpcSecurity& security) {
    MethodAccess methods;
    methods.Add(kTaskControl, {"TriggerCheckpoint"}, Access::kInternal);
    grpc::ServerBuilder builder;
    AddAuthorizedListeningPort(builder, "127.0.0.1:0", security, access_, std::move(methods), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_TRUE(server_ != nullptr && port_ != 0);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }

  grpc::Status Trigger(const GrpcSecurity& client) {
    auto stub = v1::TaskControl::NewStub(client.Channel(absl::StrCat("127.0.0.1:", port_)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::TriggerCheckpointResponse response;
    return stub->TriggerCheckpoint(&ctx, v1::TriggerCheckpointRequest(), &response);
  }
  grpc::Status Cancel(const GrpcSecurity& client) {
    auto stub = v1::TaskControl::NewStub(client.Channel(absl::StrCat("127.0.0.1:", port_)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::CancelTaskResponse response;
    return stub->CancelTask(&ctx, v1::CancelTaskRequest(), &response);
  }

  // What a refused caller must read: AccessControl's own message.
  std::string Expected(const std::string& token) const {
    return std::string(access_.Check(Access::kInternal, token.empty() ? "" : BearerHeader(token)).message());
  }

  void ExpectRefusedThenServed(const GrpcSecurity& client) {
    for (const std::string token : {"", "wrong", "adm"}) {
      const grpc::Status refused = Trigger(client.WithToken(token));
      EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED) << token << ": " << refused.error_message();
      EXPECT_EQ(refused.error_message(), Expected(token)) << token;
    }
    EXPECT_EQ(service_.calls.load(), 0) << "a refused call reached its handler";
    const grpc::Status served = Trigger(client.WithToken("int"));
    EXPECT_TRUE(served.ok()) << served.error_message();
    EXPECT_EQ(service_.calls.load(), 1);
    // No entry: refused even with the token, before the handler.
    EXPECT_EQ(Cancel(client.WithToken("int")).error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_EQ(service_.calls.load(), 1);
  }

  const AccessControl access_{AccessTokens{"adm", "", "int"}};
  CountingTaskControl service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(AuthorizedServerTest, PlaintextCallsAreRefusedWithAccessControlsMessageBeforeTheirHandler) {
  ASSERT_NO_FATAL_FAILURE(Start(GrpcSecurity()));
  ExpectRefusedThenServed(GrpcSecurity());
}

TEST_F(AuthorizedServerTest, TlsCallsAreRefusedWithAccessControlsMessageBeforeTheirHandler) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / absl::StrCat("slipstream-authz-", ::getpid());
  absl::StatusOr<test_support::TestCertificates> ca = test_support::TestCertificates::Create(dir, "ca");
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<test_support::CertPaths> cert = ca->Issue("server");
  ASSERT_TRUE(cert.ok()) << cert.status();
  TlsSettings server;
  server.enabled = true;
  server.client_auth = true;  // mTLS: the processor runs after the client's certificate was verified
  server.ca_pem = test_support::TestCertificates::Read(ca->ca_path());
  server.cert_pem = test_support::TestCertificates::Read(cert->cert);
  server.key_pem = test_support::TestCertificates::Read(cert->key);
  ASSERT_NO_FATAL_FAILURE(Start(GrpcSecurity(server, "")));
  ExpectRefusedThenServed(GrpcSecurity(server, ""));
  std::filesystem::remove_all(dir);
}

TEST_F(AuthorizedServerTest, WithoutTokensTheTableStillRefusesRpcsItDoesNotName) {
  MethodAccess methods;
  methods.Add(kTaskControl, {"TriggerCheckpoint"}, Access::kInternal);
  grpc::ServerBuilder builder;
  AddAuthorizedListeningPort(builder, "127.0.0.1:0", GrpcSecurity(), AccessControl(), std::move(methods), &port_);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  ASSERT_TRUE(server_ != nullptr);
  EXPECT_TRUE(Trigger(GrpcSecurity()).ok());
  const grpc::Status missing = Cancel(GrpcSecurity());
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNIMPLEMENTED) << missing.error_message();
  EXPECT_EQ(service_.calls.load(), 1);
}

}  // namespace
}  // namespace slipstream
