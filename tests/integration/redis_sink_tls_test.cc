// RedisSink over TLS against a real redis-server started with --tls-port
// only (no plain port), with certificates this test makes with the openssl
// tool: TLS with the right CA writes, a plain connection gets nothing, an
// untrusted certificate or a wrong name fails the sink's start naming the
// key, and mutual TLS plus an ACL user (AUTH user password) work together.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/free_port.h"
#include "tests/support/test_certs.h"
#include "worker/sink/redis_connection.h"
#include "worker/sink/redis_sink.h"

namespace slipstream {
namespace {

namespace fs = std::filesystem;

// Runs a shell command; its standard output.
std::string Shell(const std::string& command, int* status = nullptr) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  const int rc = pclose(p);
  if (status != nullptr) *status = rc;
  return out;
}

// A CA with a server and a client certificate (for localhost / 127.0.0.1),
// and a second CA that signed nothing.
struct Certificates {
  fs::path dir;
  std::string ca, other_ca;
  test_support::CertPaths server, client;

  static Certificates Make() {
    Certificates c;
    c.dir = fs::temp_directory_path() / ("slipstream-redis-tls-test-" + std::to_string(getpid()));
    absl::StatusOr<test_support::TestCertificates> ca = test_support::TestCertificates::Create(c.dir, "ca");
    absl::StatusOr<test_support::TestCertificates> other = test_support::TestCertificates::Create(c.dir, "other-ca");
    EXPECT_TRUE(ca.ok() && other.ok()) << "openssl could not make the test certificates (run ./scripts/setup.sh)";
    if (!ca.ok() || !other.ok()) return c;
    c.ca = ca->ca_path();
    c.other_ca = other->ca_path();
    absl::StatusOr<test_support::CertPaths> server = ca->Issue("server");
    absl::StatusOr<test_support::CertPaths> client = ca->Issue("client");
    EXPECT_TRUE(server.ok() && client.ok());
    if (server.ok()) c.server = *server;
    if (client.ok()) c.client = *client;
    return c;
  }
};

// redis-server with a TLS port and no plain one.
class TlsRedis {
 public:
  TlsRedis(const Certificates& certs, std::vector<std::string> extra) : certs_(certs), port_(test_support::FreeTcpPort()) {
    std::vector<std::string> args = {"redis-server",
                                     "--port", "0",
                                     "--tls-port", std::to_string(port_),
                                     "--bind", "127.0.0.1",
                                     "--tls-cert-file", certs.server.cert,
                                     "--tls-key-file", certs.server.key,
                                     "--tls-ca-cert-file", certs.ca,
                                     "--tls-auth-clients", "no",
                                     "--save", "",
                                     "--appendonly", "no",
                                     "--loglevel", "warning"};
    args.insert(args.end(), extra.begin(), extra.end());  // later arguments win
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp("redis-server", argv.data());
      _exit(127);
    }
    for (int i = 0; i < 100 && !Accepts(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_TRUE(Accepts()) << "redis-server did not start on port " << port_ << " (its log is above)";
  }
  ~TlsRedis() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  int port() const { return port_; }

  // redis-cli over TLS (with the client certificate, and `auth` when set).
  std::string Cli(const std::string& command, const std::string& auth = "") const {
    std::string cli = "redis-cli --tls --cacert " + certs_.ca + " --cert " + certs_.client.cert + " --key " +
                      certs_.client.key + " -h 127.0.0.1 -p " + std::to_string(port_);
    if (!auth.empty()) cli += " " + auth;
    return Shell(cli + " " + command + " 2>/dev/null");
  }

 private:
  bool Accepts() const {
    timeval tv{0, 200000};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    const bool ok = c != nullptr && c->err == 0;
    if (c != nullptr) redisFree(c);
    return ok;
  }

  const Certificates& certs_;
  int port_;
  pid_t pid_ = -1;
};

class RedisSinkTls : public testing::Test {
 protected:
  static void SetUpTestSuite() { certs_ = Certificates::Make(); }
  static void TearDownTestSuite() {
    std::error_code ignored;
    fs::remove_all(certs_->dir, ignored);
    certs_.reset();
  }

  RedisSinkOptions TlsOptions(const TlsRedis& redis) const {
    RedisSinkOptions o;
    o.host = "127.0.0.1";
    o.port = redis.port();
    o.timeout_ms = 2000;
    o.tls.enabled = true;
    o.tls.ca_file = certs_->ca;
    return o;
  }

  static std::vector<FeatureWrite> Features(int n) {
    std::vector<FeatureWrite> out;
    for (int i = 0; i < n; ++i) {
      FeatureWrite f;
      f.key = "user_features:" + std::to_string(i);
      f.fields = {"user_id", std::to_string(i), "view_count_1h", std::to_string(i % 7)};
      f.ttl_seconds = 7200;
      out.push_back(std::move(f));
    }
    return out;
  }

  static inline std::optional<Certificates> certs_;
};

TEST_F(RedisSinkTls, WritesOverTlsAndAPlainConnectionGetsNothing) {
  TlsRedis redis(*certs_, {});
  ASSERT_FALSE(HasFailure());
  absl::StatusOr<std::unique_ptr<RedisSink>> sink = RedisSink::Start(TlsOptions(redis));
  ASSERT_TRUE(sink.ok()) << sink.status();
  std::vector<FeatureWrite> features = Features(500);
  (*sink)->Write(&features);
  (*sink)->Flush();
  EXPECT_EQ((*sink)->stats().features_written, 500);
  sink->reset();
  // 500 feature keys and the sink's own slipstream:writers.
  EXPECT_EQ(redis.Cli("DBSIZE"), "501\n");
  EXPECT_EQ(redis.Cli("HGET user_features:42 view_count_1h"), "0\n");

  // The same port without TLS: no reply to a plain PING.
  timeval tv{1, 0};
  redisContext* plain = redisConnectWithTimeout("127.0.0.1", redis.port(), tv);
  ASSERT_NE(plain, nullptr);
  auto* reply = static_cast<redisReply*>(redisCommand(plain, "PING"));
  EXPECT_TRUE(reply == nullptr || reply->type == REDIS_REPLY_ERROR) << "a plain PING was answered";
  if (reply != nullptr) freeReplyObject(reply);
  redisFree(plain);

  // And the sink without redis.ssl writes nothing (it keeps retrying).
  RedisSinkOptions no_tls = TlsOptions(redis);
  no_tls.tls = {};
  absl::StatusOr<std::unique_ptr<RedisSink>> plain_sink = RedisSink::Start(no_tls);
  ASSERT_TRUE(plain_sink.ok()) << plain_sink.status();
  std::vector<FeatureWrite> more = Features(10);
  (*plain_sink)->Write(&more);
  EXPECT_FALSE((*plain_sink)->WaitUntilAcked((*plain_sink)->Enqueued(), 1500));
  EXPECT_GT((*plain_sink)->stats().connection_errors, 0);
  (*plain_sink)->Discard();
}

TEST_F(RedisSinkTls, AnUntrustedOrMisnamedCertificateFailsTheStartNamingTheKey) {
  TlsRedis redis(*certs_, {});
  ASSERT_FALSE(HasFailure());
  RedisSinkOptions wrong_ca = TlsOptions(redis);
  wrong_ca.tls.ca_file = certs_->other_ca;
  absl::StatusOr<std::unique_ptr<RedisSink>> sink = RedisSink::Start(wrong_ca);
  ASSERT_FALSE(sink.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(sink.status())) << sink.status();
  EXPECT_NE(sink.status().message().find("redis.ssl.ca"), std::string::npos) << sink.status();
  EXPECT_NE(sink.status().message().find("not trusted"), std::string::npos) << sink.status();

  RedisSinkOptions wrong_name = TlsOptions(redis);
  wrong_name.tls.server_name = "redis.example.com";
  sink = RedisSink::Start(wrong_name);
  ASSERT_FALSE(sink.ok());
  EXPECT_NE(sink.status().message().find("redis.ssl.server-name"), std::string::npos) << sink.status();

  // The name in the certificate is accepted when the host is an address.
  RedisSinkOptions right_name = TlsOptions(redis);
  right_name.tls.server_name = "localhost";
  sink = RedisSink::Start(right_name);
  EXPECT_TRUE(sink.ok()) << sink.status();
  sink = absl::UnavailableError("closed");

  RedisSinkOptions missing_ca = TlsOptions(redis);
  missing_ca.tls.ca_file = (certs_->dir / "no-such-ca.crt").string();
  sink = RedisSink::Start(missing_ca);
  ASSERT_FALSE(sink.ok());
  EXPECT_NE(sink.status().message().find("redis.ssl.ca: cannot load"), std::string::npos) << sink.status();
}

TEST_F(RedisSinkTls, MutualTlsWithAnAclUser) {
  // One argument per word: redis-server quotes an argument with spaces.
  TlsRedis redis(*certs_, {"--tls-auth-clients", "yes", "--user", "default", "off", "--user", "feature-writer", "on",
                           ">s3cret", "~*", "&*", "+@all"});
  ASSERT_FALSE(HasFailure());
  RedisSinkOptions o = TlsOptions(redis);
  o.tls.cert_file = certs_->client.cert;
  o.tls.key_file = certs_->client.key;
  o.user = "feature-writer";
  o.password = "s3cret";
  absl::StatusOr<std::unique_ptr<RedisSink>> sink = RedisSink::Start(o);
  ASSERT_TRUE(sink.ok()) << sink.status();
  std::vector<FeatureWrite> features = Features(100);
  (*sink)->Write(&features);
  (*sink)->Flush();
  sink->reset();
  EXPECT_EQ(redis.Cli("DBSIZE", "--user feature-writer --pass s3cret"), "101\n");

  RedisSinkOptions wrong_password = o;
  wrong_password.password = "wrong";
  sink = RedisSink::Start(wrong_password);
  ASSERT_FALSE(sink.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(sink.status())) << sink.status();
  EXPECT_NE(sink.status().message().find("redis.user/redis.password"), std::string::npos) << sink.status();

  // Without a client certificate the server ends the session: nothing is
  // written, and the sink keeps retrying.
  RedisSinkOptions no_cert = o;
  no_cert.tls.cert_file.clear();
  no_cert.tls.key_file.clear();
  absl::StatusOr<std::unique_ptr<RedisSink>> anonymous = RedisSink::Start(no_cert);
  ASSERT_TRUE(anonymous.ok()) << anonymous.status();
  std::vector<FeatureWrite> more = Features(10);
  (*anonymous)->Write(&more);
  EXPECT_FALSE((*anonymous)->WaitUntilAcked((*anonymous)->Enqueued(), 1500));
  (*anonymous)->Discard();
}

TEST(RedisTlsContext, UnreadableFilesNameTheirKeys) {
  redis::TlsOptions o;
  o.enabled = true;
  o.cert_file = "/nonexistent/client.crt";
  absl::StatusOr<std::shared_ptr<const redis::TlsContext>> c = redis::TlsContext::Create(o);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("redis.ssl.cert and redis.ssl.key"), std::string::npos) << c.status();
  o.key_file = "/nonexistent/client.key";
  c = redis::TlsContext::Create(o);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("redis.ssl.cert: cannot load"), std::string::npos) << c.status();
}

}  // namespace
}  // namespace slipstream
