// Access control on the coordinator (security.admin-token, read-token,
// internal-token) through real gRPC and real HTTP: every call that changes
// the job is refused without the admin token and changes nothing, reads are
// open unless a read token is set, workers' calls need the internal token,
// and the REST API answers 401 with Flink's errors body and
// WWW-Authenticate while the web UI page stays reachable.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/access_control.h"
#include "common/http_endpoint.h"
#include "coordinator/rest_api.h"
#include "tests/coordinator/coordinator_fixture.h"
#include "tests/coordinator/fake_task_control.h"

namespace slipstream {
namespace {

namespace fs = std::filesystem;
using test_support::Eventually;
using test_support::FakeTaskControl;

constexpr char kJobId[] = "0123456789abcdef0123456789abcdef";
constexpr char kAdmin[] = "admin-Token-1";
constexpr char kRead[] = "read-Token-2";
constexpr char kInternal[] = "internal-Token-3";

class CoordinatorAccessTest : public test_support::CoordinatorFixture {
 protected:
  void SetUpJob(AccessTokens tokens, int workers = 1) {
    access_ = AccessControl(tokens);
    stub_token_ = tokens.internal;  // the fake workers' calls
    EnableCheckpoints(/*interval_ms=*/600000, /*timeout_ms=*/20000, /*tolerable=*/0);
    savepoints_dir_ = (checkpoints_root_ / "savepoints").string();
    StartServer(10000, 4, workers);
    for (int i = 0; i < workers; ++i) AddFakeWorker().set_reply(FakeTaskControl::Reply::kAck);
    ASSERT_EQ(Job(tokens.admin).state(), "RUNNING");
  }

  v1::JobStatus Job(const std::string& token) {
    grpc::ClientContext ctx;
    v1::JobStatus job;
    const grpc::Status status = StubWithToken(token)->GetJob(&ctx, v1::GetJobRequest(), &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return job;
  }

  // Every call that changes the job, with `token`; their statuses.
  struct Changes {
    grpc::Status savepoint, stop, cancel, dispose;
  };
  Changes TryEveryChange(const std::string& token, const std::string& dispose_path) {
    auto stub = StubWithToken(token);
    Changes out;
    {
      grpc::ClientContext ctx;
      v1::TriggerSavepointRequest request;
      request.set_job_id(kJobId);
      v1::SavepointOperation op;
      out.savepoint = stub->TriggerSavepoint(&ctx, request, &op);
    }
    {
      grpc::ClientContext ctx;
      v1::StopWithSavepointRequest request;
      request.set_job_id(kJobId);
      v1::SavepointOperation op;
      out.stop = stub->StopWithSavepoint(&ctx, request, &op);
    }
    {
      grpc::ClientContext ctx;
      v1::CancelJobRequest request;
      request.set_job_id(kJobId);
      v1::CancelJobResponse response;
      out.cancel = stub->CancelJob(&ctx, request, &response);
    }
    {
      grpc::ClientContext ctx;
      v1::DisposeSavepointRequest request;
      request.set_path(dispose_path);
      v1::DisposeSavepointResponse response;
      out.dispose = stub->DisposeSavepoint(&ctx, request, &response);
    }
    return out;
  }

  // Every read, with `token`; their statuses.
  std::vector<grpc::Status> TryEveryRead(const std::string& token) {
    auto stub = StubWithToken(token);
    std::vector<grpc::Status> out;
    {
      grpc::ClientContext ctx;
      v1::JobStatus job;
      out.push_back(stub->GetJob(&ctx, v1::GetJobRequest(), &job));
    }
    {
      grpc::ClientContext ctx;
      v1::ListJobsResponse jobs;
      out.push_back(stub->ListJobs(&ctx, v1::ListJobsRequest(), &jobs));
    }
    {
      grpc::ClientContext ctx;
      v1::GetCheckpointsRequest request;
      request.set_job_id(kJobId);
      v1::CheckpointOverview overview;
      out.push_back(stub->GetCheckpoints(&ctx, request, &overview));
    }
    {
      grpc::ClientContext ctx;
      v1::ListWorkersResponse workers;
      out.push_back(stub->ListWorkers(&ctx, v1::ListWorkersRequest(), &workers));
    }
    {
      // An unknown request id: NOT_FOUND once past the token check.
      grpc::ClientContext ctx;
      v1::GetSavepointRequest request;
      request.set_job_id(kJobId);
      request.set_request_id("00000000000000000000000000000000");
      v1::SavepointOperation op;
      const grpc::Status s = stub->GetSavepoint(&ctx, request, &op);
      out.push_back(s.error_code() == grpc::StatusCode::NOT_FOUND ? grpc::Status::OK : s);
    }
    return out;
  }

  // A savepoint taken with the admin token, for dispose.
  std::string TakeSavepoint() {
    auto stub = StubWithToken(kAdmin);
    grpc::ClientContext ctx;
    v1::TriggerSavepointRequest request;
    request.set_job_id(kJobId);
    v1::SavepointOperation op;
    const grpc::Status status = stub->TriggerSavepoint(&ctx, request, &op);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(Eventually([&] {
      grpc::ClientContext get_ctx;
      v1::GetSavepointRequest get;
      get.set_job_id(kJobId);
      get.set_request_id(op.request_id());
      EXPECT_TRUE(stub->GetSavepoint(&get_ctx, get, &op).ok());
      return op.status() != "IN_PROGRESS";
    }));
    EXPECT_EQ(op.status(), "COMPLETED") << op.failure_cause();
    return op.location();
  }

  static void ExpectUnauthenticated(const grpc::Status& s, const std::string& what) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << what << ": " << s.error_message();
  }
};

TEST_F(CoordinatorAccessTest, ChangesWithoutTheAdminTokenAreRefusedAndChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob({kAdmin, "", ""}));
  const std::string savepoint = TakeSavepoint();
  ASSERT_TRUE(fs::exists(fs::path(savepoint) / "_metadata"));
  const v1::JobStatus before = Job("");
  for (const std::string& token : {std::string(), std::string("wrong"), std::string(kAdmin) + "x",
                                  std::string(kAdmin).substr(1)}) {
    const Changes c = TryEveryChange(token, savepoint);
    ExpectUnauthenticated(c.savepoint, "savepoint with \"" + token + "\"");
    ExpectUnauthenticated(c.stop, "stop with \"" + token + "\"");
    ExpectUnauthenticated(c.cancel, "cancel with \"" + token + "\"");
    ExpectUnauthenticated(c.dispose, "dispose with \"" + token + "\"");
  }
  // Nothing changed: still RUNNING, no new checkpoint or savepoint, the
  // savepoint still on disk, exactly one savepoint directory.
  const v1::JobStatus after = Job("");
  EXPECT_EQ(after.state(), "RUNNING");
  EXPECT_EQ(after.attempt(), before.attempt());
  EXPECT_EQ(after.checkpoints().completed(), before.checkpoints().completed());
  EXPECT_EQ(after.checkpoints().history_size(), before.checkpoints().history_size());
  EXPECT_EQ(after.checkpoints().in_progress(), 0);
  EXPECT_TRUE(fs::exists(fs::path(savepoint) / "_metadata"));
  EXPECT_EQ(std::distance(fs::directory_iterator(savepoints_dir_), fs::directory_iterator()), 1);
  for (const auto& fake : fakes_) EXPECT_EQ(fake->triggers().size(), 1u);  // the admin's savepoint only

  // Reads stay open without a read token.
  for (const grpc::Status& s : TryEveryRead("")) EXPECT_TRUE(s.ok()) << s.error_message();
}

TEST_F(CoordinatorAccessTest, TheAdminTokenIsAcceptedOnEveryChange) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob({kAdmin, "", ""}));
  const std::string savepoint = TakeSavepoint();  // TriggerSavepoint accepted
  auto admin = StubWithToken(kAdmin);
  {
    grpc::ClientContext ctx;
    v1::DisposeSavepointRequest request;
    request.set_path(savepoint);
    v1::DisposeSavepointResponse response;
    const grpc::Status s = admin->DisposeSavepoint(&ctx, request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_FALSE(fs::exists(savepoint));
  }
  {
    grpc::ClientContext ctx;
    v1::StopWithSavepointRequest request;
    request.set_job_id(kJobId);
    v1::SavepointOperation op;
    const grpc::Status s = admin->StopWithSavepoint(&ctx, request, &op);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(WaitForJob([](const v1::JobStatus& j) { return j.state() == "FINISHED"; }).state(), "FINISHED");
  }
}

TEST_F(CoordinatorAccessTest, CancelWithTheAdminTokenCancels) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob({kAdmin, "", ""}));
  auto admin = StubWithToken(kAdmin);
  grpc::ClientContext ctx;
  v1::CancelJobRequest request;
  request.set_job_id(kJobId);
  v1::CancelJobResponse response;
  const grpc::Status s = admin->CancelJob(&ctx, request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Job("").state(), "CANCELED");
}

TEST_F(CoordinatorAccessTest, WithAReadTokenReadsNeedTheReadOrTheAdminToken) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob({kAdmin, kRead, ""}));
  for (const std::string& token : {std::string(), std::string("wrong"), std::string(kRead) + "!"}) {
    for (const grpc::Status& s : TryEveryRead(token)) ExpectUnauthenticated(s, "read with \"" + token + "\"");
  }
  for (const grpc::Status& s : TryEveryRead(kRead)) EXPECT_TRUE(s.ok()) << s.error_message();
  for (const grpc::Status& s : TryEveryRead(kAdmin)) EXPECT_TRUE(s.ok()) << s.error_message();
  // The read token changes nothing.
  const Changes c = TryEveryChange(kRead, "/nonexistent");
  ExpectUnauthenticated(c.savepoint, "savepoint with the read token");
  ExpectUnauthenticated(c.stop, "stop with the read token");
  ExpectUnauthenticated(c.cancel, "cancel with the read token");
  ExpectUnauthenticated(c.dispose, "dispose with the read token");
  EXPECT_EQ(Job(kRead).state(), "RUNNING");
}

TEST_F(CoordinatorAccessTest, WorkersCallsNeedTheInternalToken) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob({kAdmin, "", kInternal}));
  const std::string worker_id = fakes_[0]->worker_id();
  for (const std::string& token : {std::string(), std::string(kAdmin), std::string("wrong")}) {
    auto stub = StubWithToken(token);
    {
      grpc::ClientContext ctx;
      v1::RegisterWorkerRequest request;
      request.set_host("127.0.0.1");
      request.set_data_port(7001);
      v1::RegisterWorkerResponse response;
      ExpectUnauthenticated(stub->RegisterWorker(&ctx, request, &response), "register with \"" + token + "\"");
    }
    {
      // A heartbeat reporting a failure would end the attempt if accepted.
      grpc::ClientContext ctx;
      v1::HeartbeatRequest request;
      request.set_worker_id(worker_id);
      request.mutable_counters()->set_attempt(1);
      request.set_failure_cause("forged");
      v1::HeartbeatResponse response;
      ExpectUnauthenticated(stub->Heartbeat(&ctx, request, &response), "heartbeat with \"" + token + "\"");
    }
    {
      grpc::ClientContext ctx;
      v1::DeregisterWorkerRequest request;
      request.set_worker_id(worker_id);
      v1::DeregisterWorkerResponse response;
      ExpectUnauthenticated(stub->DeregisterWorker(&ctx, request, &response), "deregister with \"" + token + "\"");
    }
    {
      grpc::ClientContext ctx;
      v1::AcknowledgeCheckpointRequest request;
      request.set_worker_id(worker_id);
      v1::AcknowledgeCheckpointResponse response;
      ExpectUnauthenticated(stub->AcknowledgeCheckpoint(&ctx, request, &response), "ack with \"" + token + "\"");
    }
    {
      grpc::ClientContext ctx;
      v1::DeclineCheckpointRequest request;
      request.set_worker_id(worker_id);
      v1::DeclineCheckpointResponse response;
      ExpectUnauthenticated(stub->DeclineCheckpoint(&ctx, request, &response), "decline with \"" + token + "\"");
    }
  }
  const v1::JobStatus job = Job("");
  EXPECT_EQ(job.state(), "RUNNING");
  EXPECT_EQ(job.failures(), 0);
  ASSERT_EQ(job.workers_size(), 1);
  // With the internal token (the fixture's stub_, which the fake worker
  // used to register) the worker's acknowledgements get a savepoint done.
  EXPECT_FALSE(TakeSavepoint().empty());
}

// --- REST -------------------------------------------------------------------

class RestAccessTest : public CoordinatorAccessTest {
 protected:
  void StartRest() {
    RestApiOptions options;
    options.job_name = "test";
    options.checkpoints = checkpoints_;
    options.access = access_;
    // As the coordinator's main: a client of its own gRPC port, no token.
    rest_api_ = std::make_shared<RestApi>(StubWithToken(""), options);
    auto api = rest_api_;
    absl::StatusOr<std::unique_ptr<HttpEndpoint>> endpoint =
        HttpEndpoint::Start("127.0.0.1", 0, [api](const HttpRequest& r) { return api->Handle(r); });
    ASSERT_TRUE(endpoint.ok()) << endpoint.status();
    rest_ = std::move(*endpoint);
    http_ = std::make_unique<httplib::Client>("127.0.0.1", rest_->port());
  }

  httplib::Headers Bearer(const std::string& token) const {
    if (token.empty()) return {};
    return {{"Authorization", "Bearer " + token}};
  }

  void TearDown() override {
    http_.reset();
    rest_.reset();
    CoordinatorAccessTest::TearDown();
  }

  static void ExpectRefused(const httplib::Result& r, const std::string& what) {
    ASSERT_TRUE(r) << what << ": no answer";
    EXPECT_EQ(r->status, 401) << what << ": " << r->body;
    EXPECT_NE(r->body.find("\"errors\""), std::string::npos) << what << ": " << r->body;
    EXPECT_EQ(r->get_header_value("WWW-Authenticate").rfind("Bearer", 0), 0u) << what;
  }

  std::shared_ptr<RestApi> rest_api_;
  std::unique_ptr<HttpEndpoint> rest_;
  std::unique_ptr<httplib::Client> http_;
};

TEST_F(RestAccessTest, EveryChangeNeedsTheAdminTokenAndReadsStayOpen) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob({kAdmin, "", ""}));
  ASSERT_NO_FATAL_FAILURE(StartRest());
  const std::string savepoints = absl::StrCat("/jobs/", kJobId, "/savepoints");
  const std::string stop = absl::StrCat("/jobs/", kJobId, "/stop");
  const std::string cancel = absl::StrCat("/jobs/", kJobId, "?mode=cancel");
  for (const std::string& token : {std::string(), std::string("wrong"), std::string(kAdmin) + "x"}) {
    ExpectRefused(http_->Post(savepoints.c_str(), Bearer(token), "{}", "application/json"), "savepoint " + token);
    ExpectRefused(http_->Post(stop.c_str(), Bearer(token), "{}", "application/json"), "stop " + token);
    ExpectRefused(http_->Patch(cancel.c_str(), Bearer(token), "", "application/json"), "cancel " + token);
  }
  httplib::Headers basic = {{"Authorization", std::string("Basic ") + kAdmin}};
  ExpectRefused(http_->Post(savepoints.c_str(), basic, "{}", "application/json"), "savepoint with Basic");
  // Nothing happened.
  const v1::JobStatus job = Job("");
  EXPECT_EQ(job.state(), "RUNNING");
  EXPECT_EQ(job.checkpoints().history_size(), 0);
  EXPECT_FALSE(fs::exists(savepoints_dir_));
  for (const auto& fake : fakes_) EXPECT_TRUE(fake->triggers().empty());

  // Reads and the UI need nothing.
  for (const char* path : {"/", "/overview", "/jobs", "/jobs/overview", "/taskmanagers", "/metrics"}) {
    httplib::Result r = http_->Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path << ": " << r->body;
  }

  // With the token: a savepoint (202 + request id, then COMPLETED), then cancel.
  httplib::Result triggered = http_->Post(savepoints.c_str(), Bearer(kAdmin), "{}", "application/json");
  ASSERT_TRUE(triggered);
  ASSERT_EQ(triggered->status, 202) << triggered->body;
  const std::string request_id = nlohmann::json::parse(triggered->body).at("request-id").get<std::string>();
  EXPECT_TRUE(Eventually([&] {
    httplib::Result r = http_->Get((savepoints + "/" + request_id).c_str());
    return r && r->status == 200 && r->body.find("\"location\"") != std::string::npos;
  }));
  httplib::Result cancelled = http_->Patch(cancel.c_str(), Bearer(kAdmin), "", "application/json");
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->status, 202) << cancelled->body;
  EXPECT_EQ(Job("").state(), "CANCELED");
}

TEST_F(RestAccessTest, StopWithTheAdminTokenStops) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob({kAdmin, "", ""}));
  ASSERT_NO_FATAL_FAILURE(StartRest());
  httplib::Result r =
      http_->Post(absl::StrCat("/jobs/", kJobId, "/stop").c_str(), Bearer(kAdmin), "{}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202) << r->body;
  EXPECT_EQ(WaitForJob([](const v1::JobStatus& j) { return j.state() == "FINISHED"; }).state(), "FINISHED");
}

TEST_F(RestAccessTest, WithAReadTokenReadsNeedItButTheUiPageLoads) {
  ASSERT_NO_FATAL_FAILURE(SetUpJob({kAdmin, kRead, ""}));
  ASSERT_NO_FATAL_FAILURE(StartRest());
  const std::vector<std::string> reads = {"/overview",
                                          "/jobs",
                                          "/jobs/overview",
                                          absl::StrCat("/jobs/", kJobId),
                                          absl::StrCat("/jobs/", kJobId, "/checkpoints"),
                                          absl::StrCat("/jobs/", kJobId, "/checkpoints/config"),
                                          "/taskmanagers",
                                          "/config",
                                          "/metrics",
                                          "/no/such/path"};
  for (const std::string& path : reads) {
    for (const std::string& token : {std::string(), std::string("wrong"), std::string(kInternal)}) {
      ExpectRefused(http_->Get(path.c_str(), Bearer(token)), "GET " + path + " with \"" + token + "\"");
    }
    for (const char* token : {kRead, kAdmin}) {
      httplib::Result r = http_->Get(path.c_str(), Bearer(token));
      ASSERT_TRUE(r) << path;
      EXPECT_EQ(r->status, path == "/no/such/path" ? 404 : 200) << path << ": " << r->body;
    }
  }
  httplib::Result page = http_->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("<html"), std::string::npos);
  // The read token is no admin token.
  ExpectRefused(http_->Post(absl::StrCat("/jobs/", kJobId, "/savepoints").c_str(), Bearer(kRead), "{}",
                            "application/json"),
                "savepoint with the read token");
  EXPECT_TRUE(fakes_[0]->triggers().empty());
}

}  // namespace
}  // namespace slipstream
