#include "worker/sink/redis_connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace slipstream::redis {

void ReplyDeleter::operator()(redisReply* r) const { freeReplyObject(r); }

std::string ReplyText(const redisReply& r) { return std::string(r.str == nullptr ? "" : r.str, r.len); }

void AppendCommand(const std::vector<std::string>& args, std::string* resp) {
  absl::StrAppend(resp, "*", args.size(), "\r\n");
  for (const std::string& a : args) {
    absl::StrAppend(resp, "$", a.size(), "\r\n");
    resp->append(a);
    resp->append("\r\n");
  }
}

namespace {

constexpr size_t kReadChunk = 64 * 1024;

// Why a TLS read or write failed: a timeout, OpenSSL's reason, or the
// socket's (a reset or a closed pipe leaves OpenSSL's queue empty).
std::string TlsFailure(int saved_errno) {
  if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK) return "timed out";
  if (ERR_peek_error() != 0) return OpenSslErrors();
  return saved_errno != 0 ? std::strerror(saved_errno) : "the peer closed the connection";
}

// Connects one address within the timeout (non-blocking connect + poll),
// then leaves the socket blocking with the timeout on reads and writes.
int ConnectAddress(const addrinfo& ai, int64_t timeout_ms, std::string* error) {
  int fd = socket(ai.ai_family, ai.ai_socktype | SOCK_CLOEXEC, ai.ai_protocol);
  if (fd < 0) {
    *error = std::strerror(errno);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  int rc = connect(fd, ai.ai_addr, ai.ai_addrlen);
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    rc = poll(&p, 1, static_cast<int>(timeout_ms));
    if (rc == 0) {
      *error = "connect timed out";
      close(fd);
      return -1;
    }
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
    rc = so_error == 0 ? 0 : -1;
    errno = so_error;
  }
  if (rc != 0) {
    *error = std::strerror(errno);
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  timeval tv{static_cast<time_t>(timeout_ms / 1000), static_cast<suseconds_t>((timeout_ms % 1000) * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  return fd;
}

bool IsIpAddress(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// The TLS handshake on a connected socket, with SNI and the name check.
absl::Status StartTls(const TlsContext& tls, const std::string& host, const std::string& address, int fd,
                      ssl_st** out) {
  SSL* ssl = SSL_new(tls.native());
  if (ssl == nullptr) return absl::InternalError(absl::StrCat("redis.ssl: ", OpenSslErrors()));
  *out = ssl;  // freed with the connection
  SSL_set_fd(ssl, fd);
  const std::string& name = tls.options().server_name.empty() ? host : tls.options().server_name;
  if (IsIpAddress(name)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, name.c_str());
    SSL_set1_host(ssl, name.c_str());
  }
  ERR_clear_error();
  if (SSL_connect(ssl) == 1) return absl::OkStatus();
  const long verify = SSL_get_verify_result(ssl);
  if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis.ssl.server-name: the certificate of ", address, " is not for '", name,
                     "' (set redis.ssl.server-name to the name in the server's certificate)"));
  }
  if (verify != X509_V_OK) {
    return absl::InvalidArgumentError(absl::StrCat(
        "redis.ssl.ca: the certificate of ", address, " is not trusted (",
        X509_verify_cert_error_string(verify), "); redis.ssl.ca=",
        tls.options().ca_file.empty() ? "(empty: the system's trust store)" : tls.options().ca_file));
  }
  return absl::UnavailableError(absl::StrCat("redis: TLS handshake with ", address, " failed: ", OpenSslErrors(),
                                             " (is it a TLS port? redis.ssl)"));
}

}  // namespace

Connection::Connection(PassKey, int fd, std::string address)
    : fd_(fd), address_(std::move(address)), reader_(redisReaderCreate(), &redisReaderFree) {}

Connection::~Connection() {
  if (ssl_ != nullptr) SSL_free(ssl_);  // no close_notify: the peer may be gone
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& host, int port, int64_t timeout_ms,
                                                             const TlsContext* tls) {
  const std::string address = absl::StrCat(host, ":", port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = absl::StrCat(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(absl::StrCat("redis: cannot resolve ", host, ": ", gai_strerror(rc)));
  }
  std::string error = "no address";
  int fd = -1;
  for (addrinfo* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) fd = ConnectAddress(*ai, timeout_ms, &error);
  freeaddrinfo(found);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("redis: cannot connect to ", address, ": ", error));
  auto c = std::make_unique<Connection>(PassKey(), fd, address);
  if (tls != nullptr) {
    if (absl::Status s = StartTls(*tls, host, address, fd, &c->ssl_); !s.ok()) return s;
  }
  return c;
}

bool Connection::Fail(std::string what) {
  if (error_.empty()) error_ = std::move(what);
  return false;
}

bool Connection::Send(std::string_view resp) {
  if (!error_.empty()) return false;
  while (!resp.empty()) {
    if (ssl_ != nullptr) {
      ERR_clear_error();
      errno = 0;
      const int n = SSL_write(ssl_, resp.data(), static_cast<int>(std::min<size_t>(resp.size(), 1 << 30)));
      if (n <= 0) return Fail(absl::StrCat("TLS write to ", address_, " failed: ", TlsFailure(errno)));
      resp.remove_prefix(static_cast<size_t>(n));
    } else {
      const ssize_t n = send(fd_, resp.data(), resp.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        return Fail(absl::StrCat("write to ", address_, " failed: ",
                                 errno == EAGAIN ? "timed out" : std::strerror(errno)));
      }
      resp.remove_prefix(static_cast<size_t>(n));
    }
  }
  return true;
}

bool Connection::Fill() {
  char buf[kReadChunk];
  for (;;) {
    ssize_t n = 0;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      errno = 0;
      n = SSL_read(ssl_, buf, sizeof(buf));
      if (n <= 0) {
        const int e = SSL_get_error(ssl_, static_cast<int>(n));
        if (e == SSL_ERROR_ZERO_RETURN) return Fail(absl::StrCat(address_, " closed the connection"));
        return Fail(absl::StrCat("TLS read from ", address_, " failed: ", TlsFailure(errno)));
      }
    } else {
      n = recv(fd_, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) return Fail(absl::StrCat(address_, " closed the connection"));
      if (n < 0) {
        return Fail(absl::StrCat("read from ", address_, " failed: ",
                                 errno == EAGAIN ? "timed out" : std::strerror(errno)));
      }
    }
    if (redisReaderFeed(reader_.get(), buf, static_cast<size_t>(n)) != REDIS_OK) {
      return Fail(absl::StrCat("reply from ", address_, " unreadable: ", reader_->errstr));
    }
    return true;
  }
}

ReplyPtr Connection::NextReply() {
  if (!error_.empty()) return nullptr;
  for (;;) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
      Fail(absl::StrCat("reply from ", address_, " unreadable: ", reader_->errstr));
      return nullptr;
    }
    if (raw != nullptr) return ReplyPtr(static_cast<redisReply*>(raw));
    if (!Fill()) return nullptr;
  }
}

absl::StatusOr<ReplyPtr> Connection::Command(const std::vector<std::string>& args) {
  std::string resp;
  AppendCommand(args, &resp);
  ReplyPtr reply = Send(resp) ? NextReply() : nullptr;
  if (!reply) return absl::UnavailableError(absl::StrCat("redis: ", error_));
  if (reply->type == REDIS_REPLY_ERROR) return absl::InvalidArgumentError(ReplyText(*reply));
  return reply;
}

std::string Connection::Problem() const { return error_.empty() ? std::string("reconnecting") : error_; }

absl::StatusOr<std::unique_ptr<Connection>> Connect(const RedisSinkOptions& o, const std::string& host, int port,
                                                    const TlsContext* tls) {
  absl::StatusOr<std::unique_ptr<Connection>> c = Connection::Open(host, port, o.timeout_ms, tls);
  if (!c.ok()) return c;
  Connection& conn = **c;
  if (!o.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!o.user.empty()) auth.push_back(o.user);
    auth.push_back(o.password);
    if (absl::StatusOr<ReplyPtr> r = conn.Command(auth); !r.ok()) {
      if (absl::IsUnavailable(r.status())) return r.status();
      return absl::PermissionDeniedError(absl::StrCat(o.user.empty() ? "redis.password" : "redis.user/redis.password",
                                                      ": AUTH failed: ", r.status().message()));
    }
  } else if (!o.user.empty()) {
    return absl::InvalidArgumentError("redis.user is set without redis.password: ACL users log in with both");
  } else if (absl::StatusOr<ReplyPtr> r = conn.Command({"PING"}); !r.ok()) {
    // A server with requirepass answers every command with NOAUTH: say so
    // at start, naming the key, instead of as rejected writes later.
    if (absl::StartsWith(r.status().message(), "NOAUTH")) {
      return absl::PermissionDeniedError(
          absl::StrCat("redis.password: the Redis server requires a password (", r.status().message(), ")"));
    }
    if (absl::IsUnavailable(r.status())) return r.status();
  }
  if (o.db != 0 && o.cluster_nodes.empty()) {
    if (absl::StatusOr<ReplyPtr> r = conn.Command({"SELECT", absl::StrCat(o.db)}); !r.ok()) {
      if (absl::IsUnavailable(r.status())) return r.status();
      return absl::InvalidArgumentError(absl::StrCat("redis.db: SELECT ", o.db, " failed: ", r.status().message()));
    }
  }
  return c;
}

}  // namespace slipstream::redis
