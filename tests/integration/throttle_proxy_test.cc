// ThrottleProxy against an echo server this test runs on a local thread (no
// services needed). Timings use generous margins around the expected values
// so that a loaded machine does not make them flaky, while a limit that is not
// applied (or applied per connection instead of in aggregate) still fails.
#include "tests/integration/throttle_proxy.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace slipstream::it {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Owns a socket fd.
class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() { Close(); }
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&& other) noexcept {
    if (this != &other) {
      Close();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// False on EOF, error or the socket's receive timeout.
bool RecvExactly(int fd, char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::recv(fd, data, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// True when the peer closes (EOF or reset) within `timeout_ms`; other bytes
// that arrive meanwhile are discarded.
bool WaitForPeerClose(int fd, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[4096];
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    const int left_ms =
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (::poll(&p, 1, std::max(1, left_ms)) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0 && errno != EAGAIN && errno != EINTR) return true;
  }
  return false;
}

// True when nothing arrives on `fd` within `timeout_ms`.
bool NothingArrives(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 0;
}

bool WaitUntil(const std::function<bool()>& condition, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

void SetTimeouts(int fd) {
  timeval tv{};
  tv.tv_sec = 10;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// A blocking client socket connected to 127.0.0.1:port, with 10 s send and
// receive timeouts so a broken proxy fails the test instead of hanging it.
Socket ConnectTo(int port) {
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return s;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) return Socket();
  SetTimeouts(s.get());
  const int one = 1;
  ::setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return s;
}

// Writes `greeting_bytes` bytes of 'g' to each new connection, then echoes
// everything it receives until the peer closes.
class EchoServer {
 public:
  explicit EchoServer(size_t greeting_bytes = 0) : greeting_bytes_(greeting_bytes) {
    listener_ = Socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (!listener_.valid() || ::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listener_.get(), 64) != 0 ||
        ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "echo server cannot listen: " << std::strerror(errno);
      return;
    }
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~EchoServer() {
    stop_.store(true);
    if (acceptor_.joinable()) acceptor_.join();
    CloseAll();
    std::vector<std::thread> handlers;
    {
      std::lock_guard<std::mutex> lock(mu_);
      handlers.swap(handlers_);
    }
    for (auto& t : handlers) t.join();
  }

  int port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  // Connections that ended because the peer (the proxy) closed or reset them.
  int closed_by_peer() const { return closed_by_peer_.load(); }

  // Closes every open connection from the server's side.
  void CloseAll() {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    closing_ = true;
  }

 private:
  void AcceptLoop() {
    while (!stop_.load()) {
      pollfd p{listener_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      SetTimeouts(fd);
      accepted_.fetch_add(1);
      std::lock_guard<std::mutex> lock(mu_);
      open_.insert(fd);
      handlers_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  void Serve(int fd) {
    bool ok = true;
    if (greeting_bytes_ > 0) {
      const std::string greeting(greeting_bytes_, 'g');
      ok = SendAll(fd, greeting.data(), greeting.size());
    }
    std::vector<char> buf(16384);
    bool timed_out = false;
    while (ok) {
      const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        timed_out = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        break;
      }
      ok = SendAll(fd, buf.data(), static_cast<size_t>(n));
    }
    // Under the lock, so CloseAll() never shuts down a reused fd number.
    std::lock_guard<std::mutex> lock(mu_);
    // EOF, or a reset when the proxy closed with unread bytes: the peer closed.
    if (!closing_ && !timed_out) closed_by_peer_.fetch_add(1);
    open_.erase(fd);
    ::close(fd);
  }

  const size_t greeting_bytes_;
  Socket listener_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> closed_by_peer_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::set<int> open_;                // guarded by mu_
  std::vector<std::thread> handlers_;  // guarded by mu_
  bool closing_ = false;              // guarded by mu_
};

std::string Pattern(size_t size, uint32_t seed) {
  std::string s(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < size; ++i) {
    x = x * 1664525u + 1013904223u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

struct RoundTrip {
  bool ok = false;
  double seconds = 0;
};

// Sends `size` pattern bytes on `fd` from a second thread while reading the
// echo here; ok when every byte came back unchanged. `seconds` runs until the
// last echoed byte arrived.
RoundTrip EchoRoundTrip(int fd, size_t size, uint32_t seed) {
  const std::string payload = Pattern(size, seed);
  std::string echoed(size, '\0');
  const auto start = Clock::now();
  bool sent = false;
  std::thread writer([&] { sent = SendAll(fd, payload.data(), payload.size()); });
  const bool received = RecvExactly(fd, echoed.data(), echoed.size());
  RoundTrip result;
  result.seconds = SecondsSince(start);
  writer.join();
  result.ok = sent && received && echoed == payload;
  return result;
}

std::unique_ptr<ThrottleProxy> StartProxy(int target_port) {
  auto proxy = ThrottleProxy::Start("127.0.0.1", target_port);
  EXPECT_TRUE(proxy.ok()) << proxy.status();
  return proxy.ok() ? std::move(*proxy) : nullptr;
}

TEST(ThrottleProxy, ForwardsBothWaysToTheTarget) {
  EchoServer echo;
  auto proxy = StartProxy(echo.port());
  ASSERT_NE(proxy, nullptr);
  ASSERT_GT(proxy->port(), 0);
  EXPECT_NE(proxy->port(), echo.port());

  Socket client = ConnectTo(proxy->port());
  ASSERT_TRUE(client.valid());
  const std::string ping = "PING\r\n";
  ASSERT_TRUE(SendAll(client.get(), ping.data(), ping.size()));
  std::string reply(ping.size(), '\0');
  ASSERT_TRUE(RecvExactly(client.get(), reply.data(), reply.size()));
  EXPECT_EQ(reply, ping);

  const RoundTrip big = EchoRoundTrip(client.get(), 1 << 20, 1);
  EXPECT_TRUE(big.ok);
  EXPECT_EQ(proxy->bytes_forwarded_to_target(), static_cast<int64_t>(ping.size() + (1 << 20)));
  EXPECT_EQ(proxy->connections(), 1);
  EXPECT_EQ(proxy->accepted_connections(), 1);
  EXPECT_EQ(echo.accepted(), 1);
}

TEST(ThrottleProxy, RateLimitSlowsTheClientToTargetDirection) {
  EchoServer echo;
  auto proxy = StartProxy(echo.port());
  ASSERT_NE(proxy, nullptr);
  Socket client = ConnectTo(proxy->port());
  ASSERT_TRUE(client.valid());

  // Unlimited: 400 KB is a few milliseconds on loopback.
  const RoundTrip fast = EchoRoundTrip(client.get(), 400'000, 2);
  EXPECT_TRUE(fast.ok);
  EXPECT_LT(fast.seconds, 0.5);

  // 200 KB/s: one 10 KB burst, then 390 KB at 200 KB/s = 1.95 s.
  proxy->SetRateLimit(200'000);
  const RoundTrip slow = EchoRoundTrip(client.get(), 400'000, 3);
  EXPECT_TRUE(slow.ok);
  EXPECT_GE(slow.seconds, 1.6);
  EXPECT_LT(slow.seconds, 3.5);
  std::cout << "[throttle_proxy_test] 400 KB unlimited " << fast.seconds << " s, at 200 KB/s " << slow.seconds
            << " s" << std::endl;
}

TEST(ThrottleProxy, RaisingTheLimitMidTransferSpeedsItUp) {
  EchoServer echo;
  auto proxy = StartProxy(echo.port());
  ASSERT_NE(proxy, nullptr);
  proxy->SetRateLimit(100'000);  // 400 KB would take about 4 s
  Socket client = ConnectTo(proxy->port());
  ASSERT_TRUE(client.valid());

  RoundTrip result;
  std::thread transfer([&] { result = EchoRoundTrip(client.get(), 400'000, 4); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const int64_t forwarded_at_half_second = proxy->bytes_forwarded_to_target();
  proxy->SetRateLimit(2'000'000);
  transfer.join();

  // 0.5 s at 100 KB/s plus one 5 KB burst = 55 KB.
  EXPECT_GE(forwarded_at_half_second, 30'000);
  EXPECT_LE(forwarded_at_half_second, 80'000);
  EXPECT_TRUE(result.ok);
  // Expected: 0.5 s + 345 KB at 2 MB/s = 0.67 s.
  EXPECT_LT(result.seconds, 1.5);
  std::cout << "[throttle_proxy_test] forwarded " << forwarded_at_half_second << " B in the first 0.5 s, total "
            << result.seconds << " s" << std::endl;
}

TEST(ThrottleProxy, LimitIsSharedByAllConnections) {
  EchoServer echo;
  auto proxy = StartProxy(echo.port());
  ASSERT_NE(proxy, nullptr);
  proxy->SetRateLimit(200'000);
  constexpr int kConnections = 4;
  std::vector<Socket> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(ConnectTo(proxy->port()));
    ASSERT_TRUE(clients.back().valid());
  }
  std::vector<RoundTrip> results(kConnections);
  const auto start = Clock::now();
  std::vector<std::thread> transfers;
  for (int i = 0; i < kConnections; ++i) {
    transfers.emplace_back([&, i] { results[i] = EchoRoundTrip(clients[i].get(), 50'000, 10 + i); });
  }
  for (auto& t : transfers) t.join();
  const double seconds = SecondsSince(start);

  for (int i = 0; i < kConnections; ++i) EXPECT_TRUE(results[i].ok) << "connection " << i;
  // 200 KB in total at 200 KB/s: about 0.95 s; a per-connection limit would take 0.25 s.
  EXPECT_GE(seconds, 0.75);
  EXPECT_LT(seconds, 2.5);
  std::cout << "[throttle_proxy_test] 4 x 50 KB at 200 KB/s aggregate: " << seconds << " s" << std::endl;
}

TEST(ThrottleProxy, TargetToClientIsNeverThrottled) {
  EchoServer greeter(/*greeting_bytes=*/1 << 20);
  auto proxy = StartProxy(greeter.port());
  ASSERT_NE(proxy, nullptr);
  proxy->SetRateLimit(1000);
  Socket client = ConnectTo(proxy->port());
  ASSERT_TRUE(client.valid());
  const auto start = Clock::now();
  std::string greeting(1 << 20, '\0');
  ASSERT_TRUE(RecvExactly(client.get(), greeting.data(), greeting.size()));
  EXPECT_LT(SecondsSince(start), 0.5);
  EXPECT_EQ(greeting, std::string(1 << 20, 'g'));
}

TEST(ThrottleProxy, ServesManyConcurrentConnections) {
  EchoServer echo;
  auto proxy = StartProxy(echo.port());
  ASSERT_NE(proxy, nullptr);
  constexpr int kConnections = 8;
  std::vector<Socket> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(ConnectTo(proxy->port()));
    ASSERT_TRUE(clients.back().valid());
  }
  EXPECT_TRUE(WaitUntil([&] { return proxy->connections() == kConnections; }, 2000)) << proxy->connections();

  std::vector<RoundTrip> results(kConnections);
  std::vector<std::thread> transfers;
  for (int i = 0; i < kConnections; ++i) {
    transfers.emplace_back([&, i] { results[i] = EchoRoundTrip(clients[i].get(), 300'000, 100 + i); });
  }
  for (auto& t : transfers) t.join();
  for (int i = 0; i < kConnections; ++i) EXPECT_TRUE(results[i].ok) << "connection " << i;
  EXPECT_EQ(proxy->bytes_forwarded_to_target(), int64_t{kConnections} * 300'000);
  EXPECT_EQ(echo.accepted(), kConnections);

  clients.clear();
  EXPECT_TRUE(WaitUntil([&] { return proxy->connections() == 0; }, 2000)) << proxy->connections();
  EXPECT_TRUE(WaitUntil([&] { return echo.closed_by_peer() == kConnections; }, 2000)) << echo.closed_by_peer();
}

TEST(ThrottleProxy, ClosingTheClientClosesTheTargetConnection) {
  EchoServer echo;
  auto proxy = StartProxy(echo.port());
  ASSERT_NE(proxy, nullptr);
  Socket client = ConnectTo(proxy->port());
  ASSERT_TRUE(client.valid());
  char byte = 'x';
  ASSERT_TRUE(SendAll(client.get(), &byte, 1));
  ASSERT_TRUE(RecvExactly(client.get(), &byte, 1));
  ASSERT_EQ(echo.closed_by_peer(), 0);

  client.Close();
  EXPECT_TRUE(WaitUntil([&] { return echo.closed_by_peer() == 1; }, 2000));
  EXPECT_TRUE(WaitUntil([&] { return proxy->connections() == 0; }, 2000)) << proxy->connections();
}

TEST(ThrottleProxy, ClosingTheTargetClosesTheClient) {
  EchoServer echo;
  auto proxy = StartProxy(echo.port());
  ASSERT_NE(proxy, nullptr);
  Socket client = ConnectTo(proxy->port());
  ASSERT_TRUE(client.valid());
  ASSERT_TRUE(WaitUntil([&] { return echo.accepted() == 1; }, 2000));

  echo.CloseAll();
  EXPECT_TRUE(WaitForPeerClose(client.get(), 2000));
  EXPECT_TRUE(WaitUntil([&] { return proxy->connections() == 0; }, 2000)) << proxy->connections();
}

TEST(ThrottleProxy, PauseHoldsClientBytesUntilResumed) {
  EchoServer echo;
  auto proxy = StartProxy(echo.port());
  ASSERT_NE(proxy, nullptr);
  Socket client = ConnectTo(proxy->port());
  ASSERT_TRUE(client.valid());

  proxy->Pause(true);
  const std::string message = "HSET k f v\r\n";
  ASSERT_TRUE(SendAll(client.get(), message.data(), message.size()));
  EXPECT_TRUE(NothingArrives(client.get(), 200));
  EXPECT_EQ(proxy->bytes_forwarded_to_target(), 0);

  proxy->Pause(false);
  std::string reply(message.size(), '\0');
  ASSERT_TRUE(RecvExactly(client.get(), reply.data(), reply.size()));
  EXPECT_EQ(reply, message);
  EXPECT_EQ(proxy->bytes_forwarded_to_target(), static_cast<int64_t>(message.size()));
}

TEST(ThrottleProxy, UnreachableTargetClosesTheClient) {
  int closed_port = 0;
  {
    // A port that was just free: nothing listens there.
    Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    ASSERT_EQ(::bind(s.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
    closed_port = ntohs(addr.sin_port);
  }
  auto proxy = StartProxy(closed_port);
  ASSERT_NE(proxy, nullptr);
  Socket client = ConnectTo(proxy->port());
  ASSERT_TRUE(client.valid());
  EXPECT_TRUE(WaitForPeerClose(client.get(), 2000));
  EXPECT_TRUE(WaitUntil([&] { return proxy->connections() == 0; }, 2000)) << proxy->connections();
  EXPECT_EQ(proxy->accepted_connections(), 1);
}

TEST(ThrottleProxy, StartRejectsAnInvalidTarget) {
  EXPECT_FALSE(ThrottleProxy::Start("127.0.0.1", 0).ok());
  EXPECT_FALSE(ThrottleProxy::Start("127.0.0.1", 70000).ok());
  const auto bad_host = ThrottleProxy::Start("not a host name", 6379);
  EXPECT_FALSE(bad_host.ok());
}

TEST(ThrottleProxy, StopClosesBusyConnectionsWithoutHanging) {
  EchoServer echo;
  auto proxy = StartProxy(echo.port());
  ASSERT_NE(proxy, nullptr);
  proxy->SetRateLimit(1000);
  std::vector<Socket> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(ConnectTo(proxy->port()));
    ASSERT_TRUE(clients.back().valid());
    const std::string data = Pattern(60'000, i);
    // Fills the proxy's buffer and the kernel's; does not block on loopback's large buffers.
    ASSERT_TRUE(SendAll(clients.back().get(), data.data(), data.size()));
  }
  ASSERT_TRUE(WaitUntil([&] { return proxy->connections() == 3; }, 2000));

  const auto start = Clock::now();
  proxy->Stop();
  EXPECT_LT(SecondsSince(start), 1.0);
  EXPECT_EQ(proxy->connections(), 0);
  for (auto& c : clients) EXPECT_TRUE(WaitForPeerClose(c.get(), 2000));
  EXPECT_TRUE(WaitUntil([&] { return echo.closed_by_peer() == 3; }, 2000)) << echo.closed_by_peer();
  proxy->Stop();  // idempotent
  proxy.reset();
}

}  // namespace
}  // namespace slipstream::it
