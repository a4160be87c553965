// The Redis sink's batch format and how its replies settle each feature,
// against canned replies from a local socket (no Redis): the RESP of plain
// and guarded batches and of WAIT; a transient error (MOVED) sends a feature
// again, a permanent one (WRONGTYPE) rejects it, and a WAIT that fewer
// replicas answered than asked sends every feature Redis took again.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "worker/sink/batch_reply_reader.h"
#include "worker/sink/redis_batch_encoding.h"
#include "worker/sink/redis_connection.h"
#include "worker/sink/redis_sink_probe.h"

namespace slipstream {
namespace {

FeatureWrite Feature(const std::string& key, int window_end) {
  FeatureWrite f;
  f.key = key;
  f.fields = {"window_end", std::to_string(window_end), "n", "7"};
  f.ttl_seconds = 60;
  f.guard_fields = {0, -1};
  f.order = window_end;
  return f;
}

TEST(RedisBatchEncoding, PlainBatchIsTheMarkThenHsetAndExpirePerFeature) {
  std::string resp;
  const std::vector<FeatureWrite> features = {Feature("k", 5)};
  EncodePlainBatch(features, HighWaterMark{"w", "hw", "5"}, &resp);
  EXPECT_EQ(resp,
            "*4\r\n$4\r\nHSET\r\n$1\r\nw\r\n$2\r\nhw\r\n$1\r\n5\r\n"
            "*3\r\n$6\r\nEXPIRE\r\n$1\r\nw\r\n$5\r\n86400\r\n"
            "*6\r\n$4\r\nHSET\r\n$1\r\nk\r\n$10\r\nwindow_end\r\n$1\r\n5\r\n$1\r\nn\r\n$1\r\n7\r\n"
            "*3\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$2\r\n60\r\n");
}

TEST(RedisBatchEncoding, GuardedBatchIsOneScriptCallPerFeatureWithOneKey) {
  std::string resp;
  const std::vector<FeatureWrite> features = {Feature("k", 5)};
  EncodeGuardedBatch(features, "sha", HighWaterMark{"w", "hw", "5"}, &resp);
  // EVALSHA sha 1 key ttl, the guard count and its (field, value), the
  // field count and the fields.
  const std::string call =
      "*13\r\n$7\r\nEVALSHA\r\n$3\r\nsha\r\n$1\r\n1\r\n$1\r\nk\r\n$2\r\n60\r\n$1\r\n1\r\n"
      "$10\r\nwindow_end\r\n$1\r\n5\r\n$1\r\n4\r\n$10\r\nwindow_end\r\n$1\r\n5\r\n$1\r\nn\r\n$1\r\n7\r\n";
  ASSERT_GE(resp.size(), call.size());
  EXPECT_EQ(resp.substr(resp.size() - call.size()), call) << resp;
  std::string wait;
  EncodeWaitForReplicas(1, 2500, &wait);
  EXPECT_EQ(wait, "*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$4\r\n2500\r\n");
}

// Accepts one connection and sends `replies` on it.
class CannedRedis {
 public:
  explicit CannedRedis(std::string replies) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(listener_, 1);
    server_ = std::thread([this, replies = std::move(replies)] {
      const int fd = accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      (void)!write(fd, replies.data(), replies.size());
      shutdown(fd, SHUT_WR);  // then the client sees the end of the stream
      char buf[256];
      while (read(fd, buf, sizeof(buf)) > 0) {
      }
      close(fd);
    });
  }
  ~CannedRedis() {
    shutdown(listener_, SHUT_RDWR);
    close(listener_);
    server_.join();
  }
  int port() const { return port_; }

 private:
  int listener_ = -1;
  int port_ = 0;
  std::thread server_;
};

struct ReadResult {
  BatchReplyReader::Outcome outcome;
  std::vector<std::string> rejected;
};

ReadResult ReadCanned(const std::string& replies, std::vector<FeatureWrite> features, bool guarded, int acks) {
  CannedRedis server(replies);
  absl::StatusOr<std::unique_ptr<redis::Connection>> conn =
      redis::Connection::Open("127.0.0.1", server.port(), 2000, nullptr);
  EXPECT_TRUE(conn.ok()) << conn.status();
  ReadResult result;
  RedisSinkProbe probe;
  BatchReplyReader reader(probe, [&](const FeatureWrite& f, std::string_view) { result.rejected.push_back(f.key); });
  result.outcome = reader.Read(**conn, &features, guarded, acks);
  (*conn).reset();
  return result;
}

std::vector<std::string> Keys(const std::vector<FeatureWrite>& features) {
  std::vector<std::string> keys;
  for (const FeatureWrite& f : features) keys.push_back(f.key);
  return keys;
}

TEST(BatchReplyReader, AMovedKeyGoesAgainAndAWrongTypeIsRejected) {
  const std::string replies =
      ":1\r\n:1\r\n"                                 // the mark
      ":1\r\n:1\r\n"                                 // a
      "-MOVED 3999 127.0.0.1:7001\r\n:0\r\n"         // b
      "-WRONGTYPE Operation against a key\r\n:1\r\n";  // c
  ReadResult r = ReadCanned(replies, {Feature("a", 1), Feature("b", 1), Feature("c", 1)}, false, 0);
  EXPECT_EQ(r.outcome.kind, BatchReplyReader::Outcome::Kind::kRead);
  EXPECT_EQ(Keys(r.outcome.again), std::vector<std::string>{"b"});
  EXPECT_TRUE(r.outcome.reconnect_before_retry) << "MOVED must read the slot map again";
  EXPECT_EQ(r.rejected, std::vector<std::string>{"c"});
}

TEST(BatchReplyReader, AShortWaitSendsEveryFeatureRedisTookAgain) {
  const std::string replies =
      ":1\r\n:1\r\n"                          // the mark
      ":1\r\n"                                // a: written
      ":0\r\n"                                // b: a newer version kept
      "-WRONGTYPE Operation against a key\r\n"  // c
      ":0\r\n";                               // WAIT 1: no replica has them
  ReadResult r = ReadCanned(replies, {Feature("a", 1), Feature("b", 1), Feature("c", 1)}, true, 1);
  EXPECT_EQ(Keys(r.outcome.again), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(r.outcome.reconnect_before_retry);
  EXPECT_EQ(r.rejected, std::vector<std::string>{"c"});

  const std::string enough = ":1\r\n:1\r\n:1\r\n:1\r\n";  // mark, a, WAIT 1 answered by one
  ReadResult ok = ReadCanned(enough, {Feature("a", 2)}, true, 1);
  EXPECT_TRUE(ok.outcome.again.empty());
  EXPECT_FALSE(ok.outcome.reconnect_before_retry);
}

TEST(BatchReplyReader, AConnectionClosedMidBatchIsALostConnection) {
  ReadResult r = ReadCanned(":1\r\n:1\r\n:1\r\n", {Feature("a", 1), Feature("b", 1)}, true, 0);
  EXPECT_EQ(r.outcome.kind, BatchReplyReader::Outcome::Kind::kConnectionLost);
}

}  // namespace
}  // namespace slipstream
