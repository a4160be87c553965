// Access control and TLS with the real binaries (coordinator, workers, CLI)
// against the Kafka and Redis of scripts/test.sh:
//
//  SecurityEndToEnd.CliNeedsTheAdminTokenAndWorkersTheInternalToken
//    security.admin-token and security.internal-token set: a worker with a
//    wrong internal token is refused and exits naming the key; one with the
//    right token runs the job; the CLI without a token or with a wrong one
//    exits 4 with one line and changes nothing; reads stay open; with the
//    token (--token, or SLIPSTREAM_TOKEN) savepoint and cancel work.
//  SecurityEndToEnd.TwoWorkersOverMutualTlsMatchTheModel
//    every gRPC connection over mutual TLS (certificates made by openssl for
//    the test), all three tokens set, REST over HTTPS: two workers shuffle
//    over TLS, checkpoints complete, Redis ends up equal to the reference
//    model; the CLI needs the CA, its certificate and a token; plaintext and
//    certificate-less clients are refused.
//  SecurityEndToEnd.RedisSslWithAnUnreadableCaFailsAtStartNamingTheKey
//    redis.ssl=true with an unreadable redis.ssl.ca: the worker exits at once naming the key.
//  SecurityEndToEnd.KafkaSaslPlainLogsInThroughThePassThroughOrFailsClearly
//    the test broker's SASL_PLAINTEXT listener (PLAIN; scripts/test.sh):
//    with a wrong password the worker's task fails at once with an error
//    naming the kafka.* keys (the job ends FAILED, no hang); with the right
//    one the job consumes every record through that listener.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/grpc_security.h"
#include "tests/integration/e2e_fixture.h"
#include "tests/integration/feature_checks.h"
#include "tests/integration/kafka_client.h"
#include "tests/integration/workload.h"
#include "tests/support/test_certs.h"

namespace slipstream::it {
namespace {

namespace fs = std::filesystem;

// Redis databases no other test uses.
constexpr int kRedisDbTokens = 5;
constexpr int kRedisDbTls = 4;
constexpr int kPartitions = 4;
constexpr char kAdminToken[] = "it-admin-7f3a";
constexpr char kReadToken[] = "it-read-91c2";
constexpr char kInternalToken[] = "it-internal-5d0e";

struct CliResult {
  int exit_status = -1;
  std::string out;
  std::string err;
};

std::ostream& operator<<(std::ostream& os, const CliResult& r) {
  return os << "exit " << r.exit_status << "\n--- stdout:\n" << r.out << "--- stderr:\n" << r.err;
}

class SecurityEndToEnd : public PipelineEndToEnd {
 protected:
  // Runs the CLI with `args`; `token_env` is put into SLIPSTREAM_TOKEN of
  // the child (the child inherits this process's environment at fork).
  CliResult Cli(const std::vector<std::string>& args, const std::string& token_env = "") {
    std::vector<std::string> argv = {BinaryPath(env_, "slipstream")};
    argv.insert(argv.end(), args.begin(), args.end());
    if (token_env.empty()) {
      ::unsetenv("SLIPSTREAM_TOKEN");
    } else {
      ::setenv("SLIPSTREAM_TOKEN", token_env.c_str(), 1);
    }
    Process p(absl::StrCat("cli-", ++cli_runs_), argv, tmp_->path());
    ::unsetenv("SLIPSTREAM_TOKEN");
    CliResult r;
    if (std::optional<int> status = p.WaitForExit(60000)) {
      r.exit_status = *status;
    } else {
      ADD_FAILURE() << p.CommandLine() << " still runs after 60 s";
      p.Stop(1000);
    }
    r.out = p.ReadStdout();
    r.err = p.ReadStderr();
    clock_.Log(absl::StrCat("slipstream ", absl::StrJoin(args, " "), " -> exit ", r.exit_status));
    return r;
  }

  // Polls GetJob until `done` (60 s), failing when a process exits.
  v1::JobStatus WaitJob(CoordinatorClient& client, const std::string& what,
                        const std::function<bool(const v1::JobStatus&)>& done, int64_t timeout_ms = 60000) {
    const int64_t deadline = SteadyNowMs() + timeout_ms;
    std::string last = "no answer";
    while (SteadyNowMs() < deadline) {
      if (std::optional<std::string> exited = ExitedProcess()) {
        ADD_FAILURE() << *exited << " while waiting for " << what;
        return v1::JobStatus();
      }
      absl::StatusOr<v1::JobStatus> job = client.GetJob();
      if (job.ok()) {
        if (done(*job)) return *job;
        last = absl::StrCat(job->state(), " attempt ", job->attempt(), " workers ", job->workers_size());
      } else {
        last = std::string(job.status().message());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "timed out waiting for " << what << "; last: " << last;
    return v1::JobStatus();
  }

  static void ExpectOneErrorLine(const CliResult& r, const std::string& needle) {
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "expected \"" << needle << "\" in:\n" << r;
  }

  int cli_runs_ = 0;
};

TEST_F(SecurityEndToEnd, CliNeedsTheAdminTokenAndWorkersTheInternalToken) {
  ASSERT_TRUE(env_ok_);
  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, kPartitions).ok());
  const std::vector<std::string> tokens = {absl::StrCat("-Dsecurity.admin-token=", kAdminToken),
                                           absl::StrCat("-Dsecurity.internal-token=", kInternalToken)};
  CoordinatorClient reader(CoordinatorAddress());  // reads are open: no token
  std::vector<std::string> coordinator_args = tokens;
  coordinator_args.push_back("-Dcluster.stabilization-timeout=300 ms");
  coordinator_args.push_back("-Dexecution.checkpointing.interval=1 h");
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(reader, kRedisDbTokens, coordinator_args));

  // A worker with the wrong internal token is refused at registration and
  // exits at once, saying which key is wrong (not after minutes of retries).
  Process& impostor = Start("worker-impostor", "slipstream-worker", kRedisDbTokens,
                            {absl::StrCat("-Dsecurity.admin-token=", kAdminToken),
                             "-Dsecurity.internal-token=not-the-token"});
  const std::optional<int> impostor_exit = impostor.WaitForExit(20000);
  ASSERT_TRUE(impostor_exit.has_value()) << "a worker with a wrong internal token keeps running";
  EXPECT_NE(*impostor_exit, 0);
  EXPECT_NE(impostor.ReadStderr().find("security.internal-token"), std::string::npos) << impostor.Tail(20);
  absl::StatusOr<v1::JobStatus> after_impostor = reader.GetJob();
  ASSERT_TRUE(after_impostor.ok());
  EXPECT_EQ(after_impostor->workers_size(), 0);
  processes_.erase(std::find_if(processes_.begin(), processes_.end(),
                                [&](const auto& p) { return p.get() == &impostor; }));

  Start("worker-1", "slipstream-worker", kRedisDbTokens, tokens);
  const v1::JobStatus running =
      WaitJob(reader, "the job running on the worker", [](const v1::JobStatus& j) { return JobCounters(j, 1).ok(); });
  ASSERT_FALSE(HasFailure());
  const std::string job = running.job_id();
  const std::vector<std::string> at = {"--coordinator", CoordinatorAddress()};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), at.begin(), at.end());
    return args;
  };

  // Reads need no token.
  CliResult r = Cli(with({"list"}));
  EXPECT_EQ(r.exit_status, 0) << r;
  EXPECT_NE(r.out.find(job), std::string::npos) << r;

  // Changes without the token, or with a wrong one: exit 4, one line, nothing done.
  r = Cli(with({"savepoint", job}));
  EXPECT_EQ(r.exit_status, 4) << r;
  ExpectOneErrorLine(r, "security.admin-token");
  EXPECT_NE(r.err.find("--token"), std::string::npos) << r;
  r = Cli(with({"--token", "wrong", "cancel", job}));
  EXPECT_EQ(r.exit_status, 4) << r;
  ExpectOneErrorLine(r, "wrong token");
  r = Cli(with({"stop", job}), /*token_env=*/"also-wrong");
  EXPECT_EQ(r.exit_status, 4) << r;
  r = Cli(with({"savepoint", "--dispose", tmp_->path() + "/savepoints/x"}));
  EXPECT_EQ(r.exit_status, 4) << r;
  absl::StatusOr<v1::JobStatus> unchanged = reader.GetJob();
  ASSERT_TRUE(unchanged.ok());
  EXPECT_EQ(unchanged->state(), "RUNNING");
  EXPECT_EQ(unchanged->checkpoints().history_size(), 0);
  EXPECT_FALSE(fs::exists(tmp_->path() + "/savepoints"));

  // With the token from the environment: a savepoint (the coordinator's
  // trigger reaches the worker with the internal token, the worker's
  // acknowledgement reaches the coordinator with it).
  // (A worker reports its attempt while it still restores: a savepoint that
  // reaches it before its task runs fails, as in Flink, and is tried again.)
  r = Cli(with({"savepoint", job}), kAdminToken);
  for (int tries = 1; tries < 5 && r.exit_status != 0 && (r.out + r.err).find("no task is running") != std::string::npos;
       ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    r = Cli(with({"savepoint", job}), kAdminToken);
  }
  EXPECT_EQ(r.exit_status, 0) << r;
  EXPECT_NE(r.out.find("Savepoint completed. Path: "), std::string::npos) << r;
  // With --token: cancel.
  r = Cli(with({"--token", kAdminToken, "cancel", job}));
  EXPECT_EQ(r.exit_status, 0) << r;
  WaitJob(reader, "CANCELED", [](const v1::JobStatus& j) { return j.state() == "CANCELED"; });
}

TEST_F(SecurityEndToEnd, TwoWorkersOverMutualTlsMatchTheModel) {
  ASSERT_TRUE(env_ok_);
  absl::StatusOr<test_support::TestCertificates> ca =
      test_support::TestCertificates::Create(fs::path(tmp_->path()) / "pki");
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<test_support::CertPaths> node = ca->Issue("node");
  absl::StatusOr<test_support::CertPaths> operator_cert = ca->Issue("operator");
  ASSERT_TRUE(node.ok() && operator_cert.ok());

  absl::StatusOr<std::unique_ptr<RedisClient>> redis;
  absl::StatusOr<std::unique_ptr<RedisMonitor>> monitor;
  ASSERT_NO_FATAL_FAILURE(OpenRecordedRedisDb(kRedisDbTls, &redis, &monitor));
  WorkloadOptions options;
  options.users = 200;
  options.valid_events = 20000;
  Workload w = GenerateWorkload(options);
  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, kPartitions).ok());
  absl::StatusOr<std::unique_ptr<TestProducer>> producer = TestProducer::Create(env_.kafka);
  ASSERT_TRUE(producer.ok()) << producer.status();
  for (const RecordSpec& r : w.records) (*producer)->Produce(topic_, r.key, r.value, -1);
  // Far-future events on every partition push the watermark past every window.
  const char* const kWatermarkUser = "__watermark__";
  const int64_t future_ms = EpochMs(9999, 12, 31, 23, 59, 59, 999);
  for (int32_t p = 0; p < kPartitions; ++p) {
    (*producer)->Produce(topic_, std::string(kWatermarkUser),
                         CanonicalEventJson(kWatermarkUser, future_ms, EventKind::kView, 100), p);
  }
  ASSERT_TRUE((*producer)->Flush(60000).ok());
  const int64_t final_watermark = future_ms - 10 * kSecondMs - 1;
  const ReferenceModel model(w.valid);

  const std::vector<std::string> security = {
      "-Dsecurity.ssl.enabled=true",
      "-Dsecurity.ssl.client-auth=true",
      "-Dsecurity.ssl.cert=" + node->cert,
      "-Dsecurity.ssl.key=" + node->key,
      "-Dsecurity.ssl.ca=" + ca->ca_path(),
      "-Dsecurity.ssl.rest.enabled=true",
      absl::StrCat("-Dsecurity.admin-token=", kAdminToken),
      absl::StrCat("-Dsecurity.read-token=", kReadToken),
      absl::StrCat("-Dsecurity.internal-token=", kInternalToken),
      "-Dtaskmanager.host=127.0.0.1",
  };
  TlsSettings client_tls;
  client_tls.enabled = true;
  client_tls.ca_pem = test_support::TestCertificates::Read(ca->ca_path());
  client_tls.cert_pem = test_support::TestCertificates::Read(operator_cert->cert);
  client_tls.key_pem = test_support::TestCertificates::Read(operator_cert->key);
  CoordinatorClient reader(CoordinatorAddress(), GrpcSecurity(client_tls, kReadToken));
  std::vector<std::string> coordinator_args = security;
  coordinator_args.push_back("-Dcluster.min-workers=2");
  coordinator_args.push_back("-Dcluster.stabilization-timeout=300 ms");
  coordinator_args.push_back("-Dexecution.checkpointing.interval=500 ms");
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(reader, kRedisDbTls, coordinator_args));
  Start("worker-1", "slipstream-worker", kRedisDbTls, security);
  Start("worker-2", "slipstream-worker", kRedisDbTls, security);

  const int64_t expected_keys = static_cast<int64_t>(model.user_features().size() + model.sessions().size());
  WaitJob(
      reader, "every feature in Redis and a completed checkpoint",
      [&](const v1::JobStatus& j) {
        absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, 2);
        if (!c.ok() || c->watermark_ms() < final_watermark || c->features_emitted() != c->redis_features_written() ||
            j.checkpoints().completed() < 1) {
          return false;
        }
        absl::StatusOr<int64_t> size = (*redis)->FeatureKeyCount();
        return size.ok() && *size == expected_keys;
      },
      120000);
  ASSERT_FALSE(HasFailure());
  ASSERT_NO_FATAL_FAILURE(CheckFinalRedisState(**redis, model));
  absl::StatusOr<std::vector<RedisMonitor::Command>> commands = (*monitor)->Finish(**redis, 30000);
  ASSERT_TRUE(commands.ok()) << commands.status();
  CheckFeatureWrites(model, *commands);

  // The CLI: CA, certificate and read token → served; no certificate or
  // plaintext → no connection (exit 3); no token → exit 4.
  const std::vector<std::string> tls_flags = {"--coordinator", CoordinatorAddress(), "--ca", ca->ca_path(),
                                              "--cert",        operator_cert->cert,  "--key", operator_cert->key};
  auto with = [](std::vector<std::string> base, const std::vector<std::string>& more) {
    base.insert(base.end(), more.begin(), more.end());
    return base;
  };
  CliResult r = Cli(with(tls_flags, {"--token", kReadToken, "workers"}));
  EXPECT_EQ(r.exit_status, 0) << r;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3) << "a header and two workers: " << r;
  r = Cli(with(tls_flags, {"list"}));
  EXPECT_EQ(r.exit_status, 4) << r;
  r = Cli({"--coordinator", CoordinatorAddress(), "--ca", ca->ca_path(), "--token", kReadToken, "--timeout", "2",
           "list"});
  EXPECT_EQ(r.exit_status, 3) << r;
  r = Cli({"--coordinator", CoordinatorAddress(), "--token", kReadToken, "--timeout", "2", "list"});
  EXPECT_EQ(r.exit_status, 3) << r;

  // REST over HTTPS, with the read token.
  httplib::SSLClient https("localhost", rest_port_);
  https.set_ca_cert_path(ca->ca_path().c_str());
  https.enable_server_certificate_verification(true);
  httplib::Result jobs = https.Get("/jobs", {{"Authorization", std::string("Bearer ") + kReadToken}});
  ASSERT_TRUE(jobs) << httplib::to_string(jobs.error());
  EXPECT_EQ(jobs->status, 200) << jobs->body;
  EXPECT_NE(jobs->body.find("RUNNING"), std::string::npos) << jobs->body;
  httplib::Result anonymous = https.Get("/jobs");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
  if (!HasFailure()) (void)(*redis)->FlushDb();
}


// The SASL listener scripts/test.sh gives the test broker.
struct SaslEnv {
  std::string bootstrap, user, password;
};

bool LoadSaslEnv(SaslEnv* sasl) {
  for (auto [name, field] : {std::pair{"SLIPSTREAM_TEST_KAFKA_SASL", &sasl->bootstrap},
                             std::pair{"SLIPSTREAM_TEST_KAFKA_SASL_USER", &sasl->user},
                             std::pair{"SLIPSTREAM_TEST_KAFKA_SASL_PASSWORD", &sasl->password}}) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') {
      ADD_FAILURE() << name << " is not set: run the integration tests through ./scripts/test.sh, which starts "
                    << "Kafka with a SASL_PLAINTEXT listener";
      return false;
    }
    *field = value;
  }
  return true;
}

TEST_F(SecurityEndToEnd, KafkaSaslPlainLogsInThroughThePassThroughOrFailsClearly) {
  ASSERT_TRUE(env_ok_);
  SaslEnv sasl;
  ASSERT_TRUE(LoadSaslEnv(&sasl));
  // Topic and records through the plaintext listener; the job reads them
  // through the SASL one.
  constexpr int kRecords = 300;
  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, 2).ok());
  absl::StatusOr<std::unique_ptr<TestProducer>> producer = TestProducer::Create(env_.kafka);
  ASSERT_TRUE(producer.ok()) << producer.status();
  const int64_t start_ms = EpochMs(2024, 3, 10, 12, 0, 0, 0);
  for (int i = 0; i < kRecords; ++i) {
    const std::string user = absl::StrCat("u", i % 17);
    (*producer)->Produce(topic_, user, CanonicalEventJson(user, start_ms + i * 1000, EventKind::kView, 1999));
  }
  ASSERT_TRUE((*producer)->Flush(30000).ok());

  auto kafka_sasl = [&](const std::string& password) {
    return std::vector<std::string>{"-Dkafka.bootstrap.servers=" + sasl.bootstrap,
                                    "-Dkafka.security.protocol=SASL_PLAINTEXT",
                                    "-Dkafka.sasl.mechanism=PLAIN",
                                    "-Dkafka.sasl.username=" + sasl.user,
                                    "-Dkafka.sasl.password=" + password,
                                    "-Drestart-strategy.type=none",
                                    "-Dcluster.stabilization-timeout=300 ms",
                                    "-Dexecution.checkpointing.interval=1 h"};
  };
  CoordinatorClient client(CoordinatorAddress());

  // A wrong password: the worker's task fails within seconds, its cause
  // names the keys to fix, and the job ends FAILED (restart-strategy none).
  {
    std::vector<std::string> args = kafka_sasl(sasl.password);
    args.push_back("-Dstate.checkpoints.dir=file://" + tmp_->path() + "/checkpoints-wrong");
    ASSERT_NO_FATAL_FAILURE(StartCoordinator(client, kRedisDbTokens, args));
    std::vector<std::string> worker_args = kafka_sasl("not-the-password");
    Start("worker-wrong-password", "slipstream-worker", kRedisDbTokens, worker_args);
    const int64_t begin = SteadyNowMs();
    const v1::JobStatus failed =
        WaitJob(client, "the job to fail", [](const v1::JobStatus& j) { return j.state() == "FAILED"; }, 45000);
    ASSERT_EQ(failed.state(), "FAILED");
    clock_.Log(absl::StrCat("failed after ", SteadyNowMs() - begin, " ms: ", failed.failure_cause()));
    EXPECT_NE(failed.failure_cause().find("kafka.sasl"), std::string::npos) << failed.failure_cause();
    EXPECT_NE(failed.failure_cause().find("uthentication"), std::string::npos) << failed.failure_cause();
    EXPECT_EQ(failed.workers_size(), 1);
    if (failed.workers_size() == 1) {
      EXPECT_EQ(failed.workers(0).counters().records_in(), 0);
    }
    // Stop this cluster (each process must still exit cleanly).
    for (const bool coordinators : {false, true}) {
      for (const auto& p : processes_) {
        if ((p->name().rfind("coordinator", 0) == 0) == coordinators) {
          EXPECT_EQ(p->Stop(), 0) << p->name();
        }
      }
    }
    processes_.clear();
  }

  // The right password: every record is read through the SASL listener.
  std::vector<std::string> args = kafka_sasl(sasl.password);
  args.push_back("-Dstate.checkpoints.dir=file://" + tmp_->path() + "/checkpoints-right");
  CoordinatorClient again(CoordinatorAddress());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(again, kRedisDbTokens, args, "coordinator-right"));
  Start("worker-right-password", "slipstream-worker", kRedisDbTokens, kafka_sasl(sasl.password));
  const v1::JobStatus consumed = WaitJob(again, "every record consumed", [&](const v1::JobStatus& j) {
    absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, 1);
    return c.ok() && c->records_in() == kRecords;
  });
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(consumed.state(), "RUNNING");
}


// A TLS setting that cannot work fails the worker at start, naming the key,
// instead of its first task (tests/integration/redis_sink_tls_test.cc has
// the sink over TLS against a real TLS Redis).
TEST_F(SecurityEndToEnd, RedisSslWithAnUnreadableCaFailsAtStartNamingTheKey) {
  ASSERT_TRUE(env_ok_);
  Process& worker = Start("worker-redis-ssl", "slipstream-worker", kRedisDbTokens,
                          {"-Dredis.ssl=true", "-Dredis.ssl.ca=/nonexistent/redis-ca.pem"});
  const std::optional<int> status = worker.WaitForExit(10000);
  ASSERT_TRUE(status.has_value()) << "a worker with an unreadable redis.ssl.ca keeps running";
  EXPECT_NE(*status, 0);
  const std::string err = worker.ReadStderr();
  EXPECT_NE(err.find("redis.ssl.ca"), std::string::npos) << err;
  EXPECT_NE(err.find("/nonexistent/redis-ca.pem"), std::string::npos) << err;
}

}  // namespace
}  // namespace slipstream::it
