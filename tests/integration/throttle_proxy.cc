#include "tests/integration/throttle_proxy.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace slipstream::it {

namespace {

using Clock = std::chrono::steady_clock;

// Per connection and direction: bytes read from one side, not yet written to
// the other. Reading stops while it is full, which back-pressures the sender.
constexpr size_t kBufferBytes = 64 * 1024;
// The bucket holds at most 1/kBurstDivisor s worth of bytes.
constexpr double kBurstDivisor = 20.0;

std::string ErrnoText(int err) {
  char buf[256];
  // GNU strerror_r (glibc with _GNU_SOURCE, which g++ defines) returns the text.
  return strerror_r(err, buf, sizeof(buf));
}

// Owns one file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

class Buffer {
 public:
  Buffer() : data_(kBufferBytes) {}
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  bool full() const { return size() == data_.size(); }
  const char* data() const { return data_.data() + begin_; }

  // One recv() into the free space (call only when !full()): bytes read, 0 on
  // EOF, -1 with errno set.
  ssize_t ReadFrom(int fd) {
    if (end_ == data_.size()) {
      std::memmove(data_.data(), data_.data() + begin_, size());
      end_ -= begin_;
      begin_ = 0;
    }
    const ssize_t n = ::recv(fd, data_.data() + end_, data_.size() - end_, 0);
    if (n > 0) end_ += static_cast<size_t>(n);
    return n;
  }
  void Consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }

 private:
  std::vector<char> data_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

// One proxied connection. All fields belong to the loop thread.
struct Conn {
  Fd client;
  Fd target;
  bool connecting = true;   // non-blocking connect() to the target in progress
  bool client_eof = false;  // the client will send nothing more
  bool target_eof = false;  // the target will send nothing more
  bool failed = false;      // a socket error: close now, drop buffered bytes
  Buffer to_target;
  Buffer to_client;

  bool Done() const {
    if (failed) return true;
    if (client_eof && !connecting && to_target.empty()) return true;
    if (target_eof && to_client.empty()) return true;
    return false;
  }
};

// The aggregate client -> target limit. Only the loop thread touches it.
class TokenBucket {
 public:
  // Applies `rate` (<= 0: unlimited) and adds the tokens earned since the last call.
  void Update(int64_t rate, Clock::time_point now) {
    if (rate <= 0) rate = 0;
    if (rate != rate_) {
      const bool was_unlimited = unlimited();
      rate_ = rate;
      // From unlimited, start with one burst; between limits, keep what fits.
      tokens_ = was_unlimited ? Burst() : std::min(tokens_, Burst());
    } else if (!unlimited()) {
      const double seconds = std::chrono::duration<double>(now - last_).count();
      tokens_ = std::min(Burst(), tokens_ + seconds * static_cast<double>(rate_));
    }
    last_ = now;
  }

  bool unlimited() const { return rate_ == 0; }

  // Bytes that may be sent now to a connection with `pending` bytes waiting:
  // 0 until the bucket holds min(pending, burst) tokens, so a slow limit sends
  // chunks of one burst instead of dribbling out a few bytes per wake-up.
  size_t Allowance(size_t pending) const {
    if (unlimited()) return pending;
    if (tokens_ < Wanted(pending)) return 0;
    return std::min(pending, static_cast<size_t>(tokens_));
  }
  void Take(size_t bytes) {
    if (!unlimited()) tokens_ -= static_cast<double>(bytes);
  }
  // Milliseconds until Allowance(pending) > 0 (at least 1).
  int WaitMs(size_t pending) const {
    if (unlimited()) return 0;
    const double ms = (Wanted(pending) - tokens_) * 1000.0 / static_cast<double>(rate_);
    return static_cast<int>(std::clamp(std::ceil(ms), 1.0, 1000.0));
  }

 private:
  double Burst() const { return std::max(1.0, static_cast<double>(rate_) / kBurstDivisor); }
  double Wanted(size_t pending) const { return std::min(static_cast<double>(pending), Burst()); }

  int64_t rate_ = 0;
  double tokens_ = 0;
  Clock::time_point last_ = Clock::now();
};

bool WouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

void SetNoDelay(int fd) {
  const int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace

struct ThrottleProxy::State {
  std::string target_name;  // host:port, for messages
  sockaddr_storage target_addr{};
  socklen_t target_addr_len = 0;
  Fd listener;
  Fd wake;  // eventfd: makes poll() return after a setting changed or Stop()
  int port = 0;

  std::atomic<int64_t> rate{0};
  std::atomic<bool> paused{false};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> forwarded_to_target{0};
  std::atomic<int> open_connections{0};
  std::atomic<int64_t> accepted{0};

  std::mutex stop_mu;  // serialises Stop() callers
  std::thread thread;

  void Wake() {
    const uint64_t one = 1;
    // Only fails when the counter would overflow, and then poll() wakes anyway.
    (void)!::write(wake.get(), &one, sizeof(one));
  }

  void Run();
  void AcceptAll(std::vector<std::unique_ptr<Conn>>& conns);
  void HandleEvents(Conn& c, short client_events, short target_events, short client_revents, short target_revents);
  void FlushToClient(Conn& c);
  void FlushToTarget(Conn& c, TokenBucket& bucket);
};

void ThrottleProxy::State::Run() {
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<pollfd> fds;
  TokenBucket bucket;
  size_t first_writer = 0;  // rotates, so a shared limit is shared fairly

  while (!stop.load()) {
    bucket.Update(rate.load(), Clock::now());
    const bool is_paused = paused.load();
    int timeout_ms = -1;

    fds.clear();
    fds.push_back({wake.get(), POLLIN, 0});
    fds.push_back({listener.get(), POLLIN, 0});
    for (const auto& c : conns) {
      short client_events = 0;
      short target_events = 0;
      if (!c->client_eof && !c->to_target.full()) client_events |= POLLIN;
      if (!c->to_client.empty()) client_events |= POLLOUT;
      if (c->connecting) {
        target_events |= POLLOUT;
      } else {
        if (!c->target_eof && !c->to_client.full()) target_events |= POLLIN;
        if (!c->to_target.empty() && !is_paused) {
          if (bucket.Allowance(c->to_target.size()) > 0) {
            target_events |= POLLOUT;
          } else {
            const int wait_ms = bucket.WaitMs(c->to_target.size());
            timeout_ms = timeout_ms < 0 ? wait_ms : std::min(timeout_ms, wait_ms);
          }
        }
      }
      fds.push_back({c->client.get(), client_events, 0});
      fds.push_back({c->target.get(), target_events, 0});
    }

    if (::poll(fds.data(), fds.size(), timeout_ms) < 0) {
      if (errno == EINTR) continue;
      std::cerr << "[throttle_proxy] poll failed: " << ErrnoText(errno) << "; closing all connections" << std::endl;
      break;
    }
    if (fds[0].revents != 0) {
      uint64_t count = 0;
      (void)!::read(wake.get(), &count, sizeof(count));
    }

    for (size_t i = 0; i < conns.size(); ++i) {
      const pollfd& client = fds[2 + 2 * i];
      const pollfd& target = fds[3 + 2 * i];
      HandleEvents(*conns[i], client.events, target.events, client.revents, target.revents);
    }
    if (!paused.load() && !conns.empty()) {
      bucket.Update(rate.load(), Clock::now());
      for (size_t k = 0; k < conns.size(); ++k) FlushToTarget(*conns[(first_writer + k) % conns.size()], bucket);
      ++first_writer;
    }
    if (fds[1].revents != 0) AcceptAll(conns);

    std::erase_if(conns, [](const std::unique_ptr<Conn>& c) { return c->Done(); });
    open_connections.store(static_cast<int>(conns.size()));
  }
  conns.clear();  // closes every socket
  open_connections.store(0);
}

void ThrottleProxy::State::AcceptAll(std::vector<std::unique_ptr<Conn>>& conns) {
  while (true) {
    Fd client(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!client.valid()) {
      const int err = errno;
      if (err == ECONNABORTED || err == EINTR) continue;
      if (!WouldBlock(err)) std::cerr << "[throttle_proxy] accept failed: " << ErrnoText(err) << std::endl;
      return;
    }
    accepted.fetch_add(1);
    auto conn = std::make_unique<Conn>();
    conn->client = std::move(client);
    conn->target = Fd(::socket(target_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!conn->target.valid()) {
      std::cerr << "[throttle_proxy] socket() failed: " << ErrnoText(errno) << "; closing the client" << std::endl;
      continue;
    }
    SetNoDelay(conn->client.get());
    SetNoDelay(conn->target.get());
    if (::connect(conn->target.get(), reinterpret_cast<const sockaddr*>(&target_addr), target_addr_len) == 0) {
      conn->connecting = false;
    } else if (errno != EINPROGRESS) {
      std::cerr << "[throttle_proxy] connect to " << target_name << " failed: " << ErrnoText(errno)
                << "; closing the client" << std::endl;
      continue;
    }
    conns.push_back(std::move(conn));
  }
}

void ThrottleProxy::State::HandleEvents(Conn& c, short client_events, short target_events, short client_revents,
                                        short target_revents) {
  if (c.connecting) {
    if (target_revents == 0) return;
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(c.target.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      std::cerr << "[throttle_proxy] connect to " << target_name << " failed: " << ErrnoText(err)
                << "; closing the client" << std::endl;
      c.failed = true;
      return;
    }
    c.connecting = false;
    target_revents = 0;  // the POLLOUT was for connect()
  }

  // POLLHUP / POLLERR on a socket we are not reading would make poll() return
  // at once forever: treat it as the connection failing.
  if (client_revents & POLLERR) c.failed = true;
  if (target_revents & POLLERR) c.failed = true;
  if ((client_revents & POLLHUP) && !(client_events & POLLIN)) c.failed = true;
  if ((target_revents & POLLHUP) && !(target_events & POLLIN)) c.failed = true;
  if (c.failed) return;

  if ((client_events & POLLIN) && (client_revents & (POLLIN | POLLHUP))) {
    const ssize_t n = c.to_target.ReadFrom(c.client.get());
    if (n == 0) {
      c.client_eof = true;
    } else if (n < 0 && !WouldBlock(errno)) {
      c.failed = true;
      return;
    }
  }
  if ((target_events & POLLIN) && (target_revents & (POLLIN | POLLHUP))) {
    const ssize_t n = c.to_client.ReadFrom(c.target.get());
    if (n == 0) {
      c.target_eof = true;
    } else if (n < 0 && !WouldBlock(errno)) {
      c.failed = true;
      return;
    }
  }
  FlushToClient(c);
}

void ThrottleProxy::State::FlushToClient(Conn& c) {
  if (c.failed || c.to_client.empty()) return;
  const ssize_t n = ::send(c.client.get(), c.to_client.data(), c.to_client.size(), MSG_NOSIGNAL);
  if (n > 0) {
    c.to_client.Consume(static_cast<size_t>(n));
  } else if (n < 0 && !WouldBlock(errno)) {
    c.failed = true;
  }
}

void ThrottleProxy::State::FlushToTarget(Conn& c, TokenBucket& bucket) {
  if (c.failed || c.connecting || c.to_target.empty()) return;
  const size_t allowed = bucket.Allowance(c.to_target.size());
  if (allowed == 0) return;
  const ssize_t n = ::send(c.target.get(), c.to_target.data(), allowed, MSG_NOSIGNAL);
  if (n > 0) {
    c.to_target.Consume(static_cast<size_t>(n));
    bucket.Take(static_cast<size_t>(n));
    forwarded_to_target.fetch_add(n);
  } else if (n < 0 && !WouldBlock(errno)) {
    c.failed = true;
  }
}

absl::StatusOr<std::unique_ptr<ThrottleProxy>> ThrottleProxy::Start(std::string target_host, int target_port) {
  const std::string target_name = absl::StrCat(target_host, ":", target_port);
  if (target_port <= 0 || target_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("throttle proxy: target port ", target_port, " is not in 1..65535"));
  }
  auto state = std::make_unique<State>();
  state->target_name = target_name;

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(target_port);
  const int gai = ::getaddrinfo(target_host.c_str(), port_text.c_str(), &hints, &found);
  if (gai != 0 || found == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("throttle proxy: cannot resolve target ", target_name, ": ", ::gai_strerror(gai)));
  }
  const addrinfo* chosen = found;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      chosen = a;
      break;
    }
  }
  std::memcpy(&state->target_addr, chosen->ai_addr, chosen->ai_addrlen);
  state->target_addr_len = chosen->ai_addrlen;
  ::freeaddrinfo(found);

  state->listener = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!state->listener.valid()) {
    return absl::InternalError(absl::StrCat("throttle proxy: socket(): ", ErrnoText(errno)));
  }
  const int one = 1;
  (void)::setsockopt(state->listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(state->listener.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(state->listener.get(), SOMAXCONN) != 0) {
    return absl::InternalError(absl::StrCat("throttle proxy: cannot listen on 127.0.0.1: ", ErrnoText(errno)));
  }
  socklen_t len = sizeof(addr);
  if (::getsockname(state->listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::InternalError(absl::StrCat("throttle proxy: getsockname(): ", ErrnoText(errno)));
  }
  state->port = ntohs(addr.sin_port);

  state->wake = Fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!state->wake.valid()) {
    return absl::InternalError(absl::StrCat("throttle proxy: eventfd(): ", ErrnoText(errno)));
  }

  State* raw = state.get();
  try {
    state->thread = std::thread([raw] { raw->Run(); });
  } catch (const std::system_error& e) {
    return absl::InternalError(absl::StrCat("throttle proxy: cannot start its thread: ", e.what()));
  }
  return std::unique_ptr<ThrottleProxy>(new ThrottleProxy(std::move(state)));
}

ThrottleProxy::ThrottleProxy(std::unique_ptr<State> state) : state_(std::move(state)) {}

ThrottleProxy::~ThrottleProxy() { Stop(); }

int ThrottleProxy::port() const { return state_->port; }

void ThrottleProxy::SetRateLimit(int64_t bytes_per_second) {
  state_->rate.store(std::max<int64_t>(0, bytes_per_second));
  state_->Wake();
}

void ThrottleProxy::Pause(bool paused) {
  state_->paused.store(paused);
  state_->Wake();
}

int64_t ThrottleProxy::bytes_forwarded_to_target() const { return state_->forwarded_to_target.load(); }

int ThrottleProxy::connections() const { return state_->open_connections.load(); }

int64_t ThrottleProxy::accepted_connections() const { return state_->accepted.load(); }

void ThrottleProxy::Stop() {
  std::lock_guard<std::mutex> lock(state_->stop_mu);
  state_->stop.store(true);
  state_->Wake();
  if (state_->thread.joinable()) state_->thread.join();
  state_->listener.Reset();
}

}  // namespace slipstream::it
