// A small HTTP server on its own thread (cpp-httplib) for the /metrics
// endpoints, and the base the coordinator's REST API is served from.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace slipstream {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; version=0.0.4; charset=utf-8";
  std::string body;
  // Extra response headers (e.g. WWW-Authenticate on a 401).
  std::vector<std::pair<std::string, std::string>> headers = {};
};

struct HttpRequest {
  std::string method;  // GET, POST, PATCH, ...
  std::string path;    // without the query
  std::string query;   // raw, without '?'
  std::string body;
  std::string authorization;  // the Authorization header ("" when absent)
};

// HTTPS instead of HTTP: PEM files of the certificate chain and its key.
struct HttpTls {
  std::string cert_path;
  std::string key_path;
};

class HttpEndpoint {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // Serves every request through `handler` on host:port (port 0: any free
  // port), over TLS when `tls` is given. Returns once the socket is listening.
  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Start(const std::string& host, int port, Handler handler,
                                                             const HttpTls* tls = nullptr);
  ~HttpEndpoint();  // stops and joins
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  int port() const;

 private:
  struct Impl;
  explicit HttpEndpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
