#include "common/grpc_security.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/support/client_interceptor.h>

#include <fstream>
#include <iterator>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/config.h"

namespace slipstream {
namespace {

absl::StatusOr<std::string> ReadPem(const Config& config, const char* key) {
  absl::StatusOr<std::string> path = config.GetString(key);
  if (!path.ok()) return path.status();
  if (path->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": needed with security.ssl.enabled=true (a PEM file)"));
  }
  return ReadPemFile(key, *path);
}

// Adds "authorization: Bearer <token>" to the initial metadata of every call.
class TokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(std::string header) : header_(std::move(header)) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", header_});
    }
    methods->Proceed();
  }

 private:
  // A copy: a call may outlive the stub and channel it was started from.
  const std::string header_;
};

class TokenInterceptorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(std::string header) : header_(std::move(header)) {}
  // gRPC takes ownership of the interceptor it asks for (its API's contract).
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo*) override {
    return new TokenInterceptor(header_);
  }

 private:
  std::string header_;
};

}  // namespace

absl::StatusOr<std::string> ReadPemFile(const std::string& what, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(what, ": cannot read \"", path, "\""));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": \"", path, "\" is not a PEM file"));
  }
  return text;
}

absl::StatusOr<TlsSettings> LoadTlsSettings(const Config& config) {
  TlsSettings tls;
  absl::StatusOr<bool> enabled = config.GetBool("security.ssl.enabled");
  if (!enabled.ok()) return enabled.status();
  absl::StatusOr<bool> client_auth = config.GetBool("security.ssl.client-auth");
  if (!client_auth.ok()) return client_auth.status();
  if (!*enabled) {
    if (*client_auth) {
      return absl::InvalidArgumentError("security.ssl.client-auth: needs security.ssl.enabled=true");
    }
    return tls;
  }
  tls.enabled = true;
  tls.client_auth = *client_auth;
  for (auto [key, field] : {std::pair{"security.ssl.cert", &tls.cert_pem}, std::pair{"security.ssl.key", &tls.key_pem},
                            std::pair{"security.ssl.ca", &tls.ca_pem}}) {
    absl::StatusOr<std::string> pem = ReadPem(config, key);
    if (!pem.ok()) return pem.status();
    *field = *std::move(pem);
  }
  return tls;
}

std::shared_ptr<grpc::ServerCredentials> GrpcSecurity::ServerCredentials() const {
  if (!tls_.enabled) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(tls_.client_auth
                                                ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                                : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_root_certs = tls_.ca_pem;
  options.pem_key_cert_pairs.push_back({tls_.key_pem, tls_.cert_pem});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::Channel> GrpcSecurity::Channel(const std::string& target) const {
  return Channel(target, grpc::ChannelArguments());
}

std::shared_ptr<grpc::Channel> GrpcSecurity::Channel(const std::string& target, grpc::ChannelArguments args,
                                                     const std::string& server_name) const {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (tls_.enabled) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = tls_.ca_pem;
    // Presenting a certificate to a server that does not ask for one is
    // harmless; sending it whenever there is one means client-auth needs no
    // switch on the client side (the CLI may have only the CA).
    if (!tls_.cert_pem.empty()) {
      options.pem_private_key = tls_.key_pem;
      options.pem_cert_chain = tls_.cert_pem;
    }
    credentials = grpc::SslCredentials(options);
    if (!server_name.empty()) args.SetSslTargetNameOverride(server_name);
  }
  if (token_.empty()) return grpc::CreateCustomChannel(target, credentials, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<TokenInterceptorFactory>(BearerHeader(token_)));
  return grpc::experimental::CreateCustomChannelWithInterceptors(target, credentials, args, std::move(interceptors));
}

std::string AuthorizationOf(const grpc::ServerContext& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

}  // namespace slipstream
