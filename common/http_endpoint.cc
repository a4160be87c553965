#include "common/http_endpoint.h"

#include <httplib.h>

#include <thread>

#include "absl/strings/str_cat.h"

namespace slipstream {

struct HttpEndpoint::Impl {
  std::unique_ptr<httplib::Server> server;  // an httplib::SSLServer with TLS
  std::thread thread;
  int port = 0;
};

HttpEndpoint::HttpEndpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpEndpoint::~HttpEndpoint() {
  impl_->server->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int HttpEndpoint::port() const { return impl_->port; }

absl::StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(const std::string& host, int port,
                                                                  Handler handler, const HttpTls* tls) {
  auto impl = std::make_unique<Impl>();
  if (tls == nullptr) {
    impl->server = std::make_unique<httplib::Server>();
  } else {
    auto https = std::make_unique<httplib::SSLServer>(tls->cert_path.c_str(), tls->key_path.c_str());
    // cpp-httplib only says the context could not be made: name the files.
    if (!https->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat("cannot use certificate \"", tls->cert_path, "\" with key \"",
                                                     tls->key_path, "\" for HTTPS (unreadable, not PEM, or not a pair)"));
    }
    impl->server = std::move(https);
  }
  auto serve = [handler](const httplib::Request& req, httplib::Response& res) {
    HttpRequest request;
    request.method = req.method;
    request.path = req.path;
    const size_t q = req.target.find('?');
    if (q != std::string::npos) request.query = req.target.substr(q + 1);
    request.body = req.body;
    request.authorization = req.get_header_value("Authorization");
    HttpResponse response = handler(request);
    res.status = response.status;
    for (const auto& [name, value] : response.headers) res.set_header(name.c_str(), value);
    res.set_content(response.body, response.content_type.c_str());
  };
  // One catch-all route per method: routing is the handler's.
  impl->server->Get(".*", serve);
  impl->server->Post(".*", serve);
  impl->server->Patch(".*", serve);
  impl->server->Put(".*", serve);
  impl->server->Delete(".*", serve);
  impl->server->set_keep_alive_max_count(100);
  if (port == 0) {
    impl->port = impl->server->bind_to_any_port(host.c_str());
    if (impl->port <= 0) return absl::UnavailableError(absl::StrCat("cannot listen on ", host, ":0"));
  } else {
    if (!impl->server->bind_to_port(host.c_str(), port)) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", host, ":", port, " (in use?)"));
    }
    impl->port = port;
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->server->listen_after_bind(); });
  return std::unique_ptr<HttpEndpoint>(new HttpEndpoint(std::move(impl)));
}

}  // namespace slipstream
