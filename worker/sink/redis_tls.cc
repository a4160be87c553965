#include "worker/sink/redis_tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "absl/strings/str_cat.h"

namespace slipstream::redis {

std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no detail from OpenSSL" : out;
}

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::Create(const TlsOptions& o) {
  if (o.cert_file.empty() != o.key_file.empty()) {
    return absl::InvalidArgumentError(
        "redis.ssl.cert and redis.ssl.key: mutual TLS needs both the client certificate and its key");
  }
  SSL_CTX* raw = SSL_CTX_new(TLS_client_method());
  if (raw == nullptr) return absl::InternalError(absl::StrCat("redis.ssl: ", OpenSslErrors()));
  // Owned from here on, also on the error paths below.
  auto context = std::make_shared<const TlsContext>(PassKey(), raw, o);
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  if (o.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(raw) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("redis.ssl.ca: empty, and the system's trust store cannot be loaded: ", OpenSslErrors()));
    }
  } else if (SSL_CTX_load_verify_locations(raw, o.ca_file.c_str(), nullptr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis.ssl.ca: cannot load CA certificates from '", o.ca_file, "': ", OpenSslErrors()));
  }
  if (!o.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(raw, o.cert_file.c_str()) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("redis.ssl.cert: cannot load the client certificate '", o.cert_file, "': ", OpenSslErrors()));
    }
    if (SSL_CTX_use_PrivateKey_file(raw, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("redis.ssl.key: cannot load the private key '", o.key_file, "': ", OpenSslErrors()));
    }
    if (SSL_CTX_check_private_key(raw) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("redis.ssl.key: '", o.key_file,
                                                     "' is not the key of the certificate in redis.ssl.cert: ",
                                                     OpenSslErrors()));
    }
  }
  return context;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

}  // namespace slipstream::redis
