#include "common/grpc_security.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/support/client_interceptor.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <string_view>
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

// The C core's metadata processor, running a CallGate: gRPC calls it with a
// call's initial metadata (":path" included) before the call reaches the
// server, and ends the call with the status it reports.
void RunCallGate(void* state, grpc_auth_context* /*context*/, const grpc_metadata* metadata, size_t count,
                 grpc_process_auth_metadata_done_cb done, void* call) {
  auto view = [](const grpc_slice& slice) {
    return std::string_view(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(slice)), GRPC_SLICE_LENGTH(slice));
  };
  std::string_view method;
  std::optional<std::string_view> authorization;  // the first one, as ServerContext::client_metadata().find
  for (size_t i = 0; i < count; ++i) {
    const std::string_view key = view(metadata[i].key);
    if (key == ":path") method = view(metadata[i].value);
    if (key == "authorization" && !authorization) authorization = view(metadata[i].value);
  }
  const absl::Status verdict = (*static_cast<const CallGate*>(state))(method, authorization.value_or(""));
  // absl and gRPC status codes are the same numbers (google.rpc.Code).
  const std::string message(verdict.message());
  done(call, nullptr, 0, nullptr, 0, static_cast<grpc_status_code>(verdict.code()),
       verdict.ok() ? nullptr : message.c_str());
}

// Server credentials built on the C core's, so that a metadata processor runs
// on plaintext ports too: grpc::InsecureServerCredentials() refuses one (it
// asserts), and the tokens must work without TLS.
class CoreServerCredentials final : public grpc::ServerCredentials {
 public:
  // core_ is made after the base class has initialized gRPC.
  CoreServerCredentials(const TlsSettings& tls, CallGate gate) : core_(CreateCore(tls)) {
    if (!gate) return;
    // The core owns the gate from here and destroys it with the credentials
    // (the C API's ownership contract, hence release and the deleter below).
    auto owned = std::make_unique<CallGate>(std::move(gate));
    grpc_server_credentials_set_auth_metadata_processor(
        core_, grpc_auth_metadata_processor{
                   &RunCallGate, [](void* state) { std::unique_ptr<CallGate> owner(static_cast<CallGate*>(state)); },
                   owned.release()});
  }
  ~CoreServerCredentials() override { grpc_server_credentials_release(core_); }
  CoreServerCredentials(const CoreServerCredentials&) = delete;
  CoreServerCredentials& operator=(const CoreServerCredentials&) = delete;

  // Gates are given to GrpcSecurity::ServerCredentials; a processor set here
  // would silently replace one, so this is a programming error.
  void SetAuthMetadataProcessor(const std::shared_ptr<grpc::AuthMetadataProcessor>&) override {
    std::fprintf(stderr, "GrpcSecurity: pass a CallGate to ServerCredentials() instead of a processor\n");
    std::abort();
  }

 private:
  static grpc_server_credentials* CreateCore(const TlsSettings& tls) {
    if (!tls.enabled) return grpc_insecure_server_credentials_create();
    grpc_ssl_pem_key_cert_pair pair{tls.key_pem.c_str(), tls.cert_pem.c_str()};
    return grpc_ssl_server_credentials_create_ex(tls.ca_pem.empty() ? nullptr : tls.ca_pem.c_str(), &pair, 1,
                                                 tls.client_auth
                                                     ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                                     : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
                                                 nullptr);
  }

  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    return grpc_server_add_http2_port(server, addr.c_str(), core_);
  }

  grpc_server_credentials* const core_;
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

std::shared_ptr<grpc::ServerCredentials> GrpcSecurity::ServerCredentials(CallGate gate) const {
  return std::make_shared<CoreServerCredentials>(tls_, std::move(gate));
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

}  // namespace slipstream
