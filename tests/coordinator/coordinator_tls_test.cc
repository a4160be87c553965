// TLS on the coordinator's gRPC port (security.ssl.*) and on its REST port
// (security.ssl.rest.enabled), with certificates made by openssl for the
// test: a TLS client that trusts the CA is served, a plaintext client and a
// client trusting another CA are not; with client-auth (mTLS) a client
// without a certificate, or with one from another CA, is refused and one
// with a certificate from the CA is served.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/grpc_security.h"
#include "common/http_endpoint.h"
#include "tests/coordinator/coordinator_fixture.h"
#include "tests/support/test_certs.h"

namespace slipstream {
namespace {

namespace fs = std::filesystem;
using test_support::CertPaths;
using test_support::TestCertificates;

class CoordinatorTlsTest : public test_support::CoordinatorFixture {
 protected:
  void SetUp() override {
    CoordinatorFixture::SetUp();
    absl::StatusOr<TestCertificates> ca = TestCertificates::Create(checkpoints_root_ / "pki", "ca");
    ASSERT_TRUE(ca.ok()) << ca.status();
    absl::StatusOr<TestCertificates> other = TestCertificates::Create(checkpoints_root_ / "pki-other", "other");
    ASSERT_TRUE(other.ok()) << other.status();
    ca_ = std::make_unique<TestCertificates>(*std::move(ca));
    other_ca_ = std::make_unique<TestCertificates>(*std::move(other));
    absl::StatusOr<CertPaths> server = ca_->Issue("coordinator");
    absl::StatusOr<CertPaths> client = ca_->Issue("operator");
    absl::StatusOr<CertPaths> rogue = other_ca_->Issue("rogue");
    ASSERT_TRUE(server.ok() && client.ok() && rogue.ok());
    server_cert_ = *server;
    client_cert_ = *client;
    rogue_cert_ = *rogue;
  }

  TlsSettings Tls(const std::string& ca_path, const CertPaths* cert, bool client_auth = false) const {
    TlsSettings tls;
    tls.enabled = true;
    tls.client_auth = client_auth;
    tls.ca_pem = TestCertificates::Read(ca_path);
    if (cert != nullptr) {
      tls.cert_pem = TestCertificates::Read(cert->cert);
      tls.key_pem = TestCertificates::Read(cert->key);
    }
    return tls;
  }

  // GetJob through `channel`, with a short deadline (a refused handshake
  // would otherwise be retried until the default deadline).
  static grpc::Status Probe(const std::shared_ptr<grpc::Channel>& channel) {
    auto stub = v1::Coordinator::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    v1::JobStatus job;
    return stub->GetJob(&ctx, v1::GetJobRequest(), &job);
  }

  std::string Target() const { return absl::StrCat("127.0.0.1:", server_->port()); }

  std::unique_ptr<TestCertificates> ca_;
  std::unique_ptr<TestCertificates> other_ca_;
  CertPaths server_cert_, client_cert_, rogue_cert_;
};

TEST_F(CoordinatorTlsTest, TlsClientIsServedAndPlaintextClientIsNot) {
  security_ = GrpcSecurity(Tls(ca_->ca_path(), &server_cert_), "");
  ASSERT_NO_FATAL_FAILURE(StartServer());
  // A client that only trusts the CA (no certificate of its own).
  const grpc::Status tls = Probe(GrpcSecurity(Tls(ca_->ca_path(), nullptr), "").Channel(Target()));
  EXPECT_TRUE(tls.ok()) << tls.error_message();
  const grpc::Status plain = Probe(GrpcSecurity().Channel(Target()));
  EXPECT_EQ(plain.error_code(), grpc::StatusCode::UNAVAILABLE) << plain.error_message();
  // A client that trusts another CA does not accept the server.
  const grpc::Status untrusted = Probe(GrpcSecurity(Tls(other_ca_->ca_path(), nullptr), "").Channel(Target()));
  EXPECT_EQ(untrusted.error_code(), grpc::StatusCode::UNAVAILABLE) << untrusted.error_message();
}

TEST_F(CoordinatorTlsTest, WithClientAuthOnlyClientsWithACertificateFromTheCaAreServed) {
  security_ = GrpcSecurity(Tls(ca_->ca_path(), &server_cert_, /*client_auth=*/true), "");
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const grpc::Status with_cert = Probe(GrpcSecurity(Tls(ca_->ca_path(), &client_cert_), "").Channel(Target()));
  EXPECT_TRUE(with_cert.ok()) << with_cert.error_message();
  const grpc::Status without_cert = Probe(GrpcSecurity(Tls(ca_->ca_path(), nullptr), "").Channel(Target()));
  EXPECT_EQ(without_cert.error_code(), grpc::StatusCode::UNAVAILABLE) << without_cert.error_message();
  const grpc::Status rogue = Probe(GrpcSecurity(Tls(ca_->ca_path(), &rogue_cert_), "").Channel(Target()));
  EXPECT_EQ(rogue.error_code(), grpc::StatusCode::UNAVAILABLE) << rogue.error_message();
  const grpc::Status plain = Probe(GrpcSecurity().Channel(Target()));
  EXPECT_EQ(plain.error_code(), grpc::StatusCode::UNAVAILABLE) << plain.error_message();
}

TEST_F(CoordinatorTlsTest, TokensTravelOverTls) {
  security_ = GrpcSecurity(Tls(ca_->ca_path(), &server_cert_), "");
  access_ = AccessControl(AccessTokens{"adm", "rd", ""});
  stub_token_ = "adm";
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const TlsSettings client = Tls(ca_->ca_path(), nullptr);
  EXPECT_TRUE(Probe(GrpcSecurity(client, "rd").Channel(Target())).ok());
  EXPECT_EQ(Probe(GrpcSecurity(client, "").Channel(Target())).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(CoordinatorTlsTest, RestOverHttpsServesHttpsClientsOnly) {
  const HttpTls files{server_cert_.cert, server_cert_.key};
  absl::StatusOr<std::unique_ptr<HttpEndpoint>> endpoint = HttpEndpoint::Start(
      "127.0.0.1", 0, [](const HttpRequest&) { return HttpResponse{200, "text/plain", "hello over tls"}; }, &files);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();

  httplib::SSLClient https("localhost", port);
  https.set_ca_cert_path(ca_->ca_path().c_str());
  https.enable_server_certificate_verification(true);
  https.set_connection_timeout(3);
  httplib::Result ok = https.Get("/metrics");
  ASSERT_TRUE(ok) << httplib::to_string(ok.error());
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "hello over tls");

  // A client that trusts another CA refuses the server.
  httplib::SSLClient untrusted("localhost", port);
  untrusted.set_ca_cert_path(other_ca_->ca_path().c_str());
  untrusted.enable_server_certificate_verification(true);
  untrusted.set_connection_timeout(3);
  EXPECT_FALSE(untrusted.Get("/metrics"));

  // Plain HTTP gets no answer from an HTTPS port.
  httplib::Client plain("127.0.0.1", port);
  plain.set_connection_timeout(3);
  plain.set_read_timeout(3);
  httplib::Result refused = plain.Get("/metrics");
  EXPECT_TRUE(!refused || refused->status != 200);
}

TEST_F(CoordinatorTlsTest, HttpsWithUnusableCertificateFailsToStartNamingTheFiles) {
  const HttpTls files{"/nonexistent/cert.pem", server_cert_.key};
  absl::StatusOr<std::unique_ptr<HttpEndpoint>> endpoint = HttpEndpoint::Start(
      "127.0.0.1", 0, [](const HttpRequest&) { return HttpResponse{}; }, &files);
  ASSERT_FALSE(endpoint.ok());
  EXPECT_NE(endpoint.status().message().find("/nonexistent/cert.pem"), absl::string_view::npos);
}


TEST_F(CoordinatorTlsTest, SettingsNameTheKeyOfAMissingOrInvalidFile) {
  auto load = [](std::map<std::string, std::string> values) -> absl::Status {
    absl::StatusOr<Config> config = Config::FromMap(std::move(values));
    if (!config.ok()) return config.status();
    return LoadTlsSettings(*config).status();
  };
  const absl::Status missing = load({{"security.ssl.enabled", "true"},
                                     {"security.ssl.cert", "/nonexistent/node.pem"},
                                     {"security.ssl.key", server_cert_.key},
                                     {"security.ssl.ca", ca_->ca_path()}});
  EXPECT_NE(missing.message().find("security.ssl.cert"), absl::string_view::npos) << missing;
  const absl::Status unset = load({{"security.ssl.enabled", "true"},
                                   {"security.ssl.cert", server_cert_.cert},
                                   {"security.ssl.key", server_cert_.key}});
  EXPECT_NE(unset.message().find("security.ssl.ca"), absl::string_view::npos) << unset;
  const std::string text_file = (checkpoints_root_ / "not-a-certificate.txt").string();
  std::ofstream(text_file) << "hello\n";
  const absl::Status not_pem = load({{"security.ssl.enabled", "true"},
                                     {"security.ssl.cert", server_cert_.cert},
                                     {"security.ssl.key", server_cert_.key},
                                     {"security.ssl.ca", text_file}});
  EXPECT_NE(not_pem.message().find("not a PEM file"), absl::string_view::npos) << not_pem;
  const absl::Status mtls_without_tls = load({{"security.ssl.client-auth", "true"}});
  EXPECT_NE(mtls_without_tls.message().find("security.ssl.enabled"), absl::string_view::npos) << mtls_without_tls;
  EXPECT_TRUE(load({{"security.ssl.enabled", "true"},
                    {"security.ssl.cert", server_cert_.cert},
                    {"security.ssl.key", server_cert_.key},
                    {"security.ssl.ca", ca_->ca_path()}})
                  .ok());
}

}  // namespace
}  // namespace slipstream
