// A TCP proxy for the integration tests that slows down or stops one
// direction of traffic: point a worker's Redis address at port() instead of
// Redis' port, and SetRateLimit() / Pause() throttle what the worker writes
// (client -> target) while the replies (target -> client) always flow at full
// speed.
//
// One background thread runs a poll() loop over the listening socket and every
// proxied connection and owns all their sockets; the public methods are
// thread-safe and never wait for traffic (Stop() joins the thread).
//
// The rate limit is one token bucket shared by all connections (an aggregate
// limit), with a burst of 1/20 s worth of bytes. Bytes the proxy has read from
// a client but not yet sent are at most 64 KiB per connection; beyond that the
// client is back-pressured by TCP, as it would be by a slow Redis.
//
// When either side of a connection closes, the bytes already read from it are
// still delivered to the other side (client -> target bytes subject to the
// limit and the pause), then both sockets are closed. A socket error closes
// both at once. A client whose target connection fails is closed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace slipstream::it {

class ThrottleProxy {
 public:
  // Listens on 127.0.0.1 on an ephemeral port and forwards every accepted
  // connection to target_host:target_port (resolved once, here; IPv4 preferred).
  // Starts unlimited and not paused.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ThrottleProxy>> Start(std::string target_host,
                                                                            int target_port);
  // Stop().
  ~ThrottleProxy();
  ThrottleProxy(const ThrottleProxy&) = delete;
  ThrottleProxy& operator=(const ThrottleProxy&) = delete;

  // The port clients connect to (on 127.0.0.1).
  int port() const;

  // Limits client -> target bytes per second over all connections together;
  // 0 (or negative) = unlimited. Takes effect at once, also mid-transfer.
  void SetRateLimit(int64_t bytes_per_second);
  // While paused, nothing is sent client -> target (clients are still accepted
  // and replies still flow).
  void Pause(bool paused);

  // Bytes sent to the target over all connections, ever.
  int64_t bytes_forwarded_to_target() const;
  // Proxied connections open right now.
  int connections() const;
  // Client connections accepted, ever.
  int64_t accepted_connections() const;

  // Closes the listener and every connection (buffered bytes are dropped) and
  // joins the thread. Idempotent.
  void Stop();

 private:
  struct State;
  explicit ThrottleProxy(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace slipstream::it
