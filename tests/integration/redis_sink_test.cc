// RedisSink against a real redis-server that this test starts, stops, pauses
// and restarts itself: features written while Redis is away are retried and
// none is lost; a full queue blocks the writer (backpressure).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "worker/sink/redis_sink.h"

namespace slipstream {
namespace {

using std::chrono::milliseconds;

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// A redis-server child process on a private port, without persistence.
class RedisProcess {
 public:
  // `password` non-empty: the server is started with --requirepass.
  explicit RedisProcess(int port, std::string password = "") : port_(port), password_(std::move(password)) {}
  ~RedisProcess() { Stop(); }

  void Start() {
    pid_ = fork();
    if (pid_ == 0) {
      const std::string port = std::to_string(port_);
      if (!password_.empty()) {
        execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--loglevel", "warning", "--requirepass", password_.c_str(),
               static_cast<char*>(nullptr));
      }
      execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--loglevel", "warning", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      if (Ping()) return;
      std::this_thread::sleep_for(milliseconds(50));
    }
    FAIL() << "redis-server did not start on port " << port_ << " (is it installed? run ./scripts/setup.sh)";
  }
  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGCONT);
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  void Pause() { kill(pid_, SIGSTOP); }
  void Resume() { kill(pid_, SIGCONT); }

  bool Ping() const {
    timeval tv{0, 200000};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    bool ok = c != nullptr && c->err == 0;
    if (ok && !password_.empty()) {
      auto* reply = static_cast<redisReply*>(redisCommand(c, "AUTH %s", password_.c_str()));
      ok = reply != nullptr && reply->type == REDIS_REPLY_STATUS;
      if (reply) freeReplyObject(reply);
    }
    if (ok) {
      auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
      ok = reply != nullptr && reply->type == REDIS_REPLY_STATUS;
      if (reply) freeReplyObject(reply);
    }
    if (c) redisFree(c);
    return ok;
  }

  // HGETALL as a flat vector plus the key's TTL.
  std::vector<std::string> HGetAll(const std::string& key, long long* ttl) const {
    redisContext* c = Connect();
    std::vector<std::string> out;
    auto* reply = static_cast<redisReply*>(redisCommand(c, "HGETALL %b", key.data(), key.size()));
    for (size_t i = 0; reply && i < reply->elements; ++i) out.emplace_back(reply->element[i]->str, reply->element[i]->len);
    if (reply) freeReplyObject(reply);
    reply = static_cast<redisReply*>(redisCommand(c, "TTL %b", key.data(), key.size()));
    *ttl = reply ? reply->integer : -3;
    if (reply) freeReplyObject(reply);
    redisFree(c);
    return out;
  }

  long long DbSize() const {
    redisContext* c = Connect();
    auto* reply = static_cast<redisReply*>(redisCommand(c, "DBSIZE"));
    const long long n = reply ? reply->integer : -1;
    if (reply) freeReplyObject(reply);
    redisFree(c);
    return n;
  }

 private:
  // A connection, authenticated when the server wants a password.
  redisContext* Connect() const {
    redisContext* c = redisConnect("127.0.0.1", port_);
    if (!password_.empty()) {
      auto* reply = static_cast<redisReply*>(redisCommand(c, "AUTH %s", password_.c_str()));
      if (reply) freeReplyObject(reply);
    }
    return c;
  }

  int port_;
  std::string password_;
  pid_t pid_ = -1;
};

FeatureWrite MakeFeature(int i) {
  FeatureWrite f;
  f.key = "user_features:" + std::to_string(i);
  f.fields = {"user_id", std::to_string(i), "view_count_1h", std::to_string(i % 7)};
  f.ttl_seconds = 7200;
  return f;
}

RedisSinkOptions LocalOptions(int port) {
  RedisSinkOptions options;
  options.host = "127.0.0.1";
  options.port = port;
  return options;
}

TEST(RedisSink, WritesEveryFeatureWithItsTtl) {
  const int port = FreePort();
  RedisProcess redis(port);
  redis.Start();
  RedisSinkOptions options = LocalOptions(port);
  auto sink = RedisSink::Start(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  std::vector<FeatureWrite> batch;
  for (int i = 0; i < 5000; ++i) batch.push_back(MakeFeature(i));
  (*sink)->Write(&batch);
  (*sink)->Flush();
  EXPECT_EQ(redis.DbSize(), 5000);
  long long ttl = 0;
  EXPECT_EQ(redis.HGetAll("user_features:42", &ttl),
            (std::vector<std::string>{"user_id", "42", "view_count_1h", "0"}));
  EXPECT_GT(ttl, 7100);
  EXPECT_LE(ttl, 7200);
  EXPECT_EQ((*sink)->stats().features_written, 5000);
}

// redis.password against a server started with --requirepass: the right
// password gets every feature written; a wrong one, or none, is refused at
// start with an error naming the key (a configuration error, not a retry).
TEST(RedisSink, WritesWithTheRightPasswordAndNamesTheKeyWhenItIsWrong) {
  const int port = FreePort();
  RedisProcess redis(port, "s3cret-pass");
  redis.Start();
  RedisSinkOptions options = LocalOptions(port);
  options.password = "wrong-pass";
  auto refused = RedisSink::Start(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("redis.password"), absl::string_view::npos) << refused.status();
  EXPECT_EQ(refused.status().message().find("wrong-pass"), absl::string_view::npos) << "the password leaked";
  options.password = "";
  auto anonymous = RedisSink::Start(options);
  ASSERT_FALSE(anonymous.ok());
  EXPECT_NE(anonymous.status().message().find("redis.password"), absl::string_view::npos) << anonymous.status();

  options.password = "s3cret-pass";
  auto sink = RedisSink::Start(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  std::vector<FeatureWrite> batch;
  for (int i = 0; i < 500; ++i) batch.push_back(MakeFeature(i));
  (*sink)->Write(&batch);
  (*sink)->Flush();
  EXPECT_EQ(redis.DbSize(), 500);
  long long ttl = 0;
  EXPECT_EQ(redis.HGetAll("user_features:7", &ttl), (std::vector<std::string>{"user_id", "7", "view_count_1h", "0"}));
  EXPECT_EQ((*sink)->stats().features_written, 500);
}

TEST(RedisSink, LosesNothingWhenRedisStartsLateOrRestarts) {
  const int port = FreePort();
  RedisProcess redis(port);
  RedisSinkOptions options = LocalOptions(port);
  options.batch_size = 100;
  // Redis is not there yet: the sink must start anyway and retry.
  auto sink = RedisSink::Start(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  std::vector<FeatureWrite> batch;
  for (int i = 0; i < 3000; ++i) batch.push_back(MakeFeature(i));
  (*sink)->Write(&batch);
  std::this_thread::sleep_for(milliseconds(700));
  EXPECT_EQ((*sink)->stats().features_written, 0);
  redis.Start();
  (*sink)->Flush();
  EXPECT_EQ(redis.DbSize(), 3000);
  EXPECT_GT((*sink)->stats().connection_errors, 0);

  // Now lose the server with writes in flight, bring a new one up, and write
  // again: everything queued after the restart arrives.
  redis.Stop();
  for (int i = 3000; i < 6000; ++i) batch.push_back(MakeFeature(i));
  (*sink)->Write(&batch);
  std::this_thread::sleep_for(milliseconds(300));
  redis.Start();
  (*sink)->Flush();
  for (int i : {3000, 4500, 5999}) {
    long long ttl = 0;
    EXPECT_EQ(redis.HGetAll("user_features:" + std::to_string(i), &ttl).size(), 4u) << i;
  }
  EXPECT_EQ(redis.DbSize(), 3000);  // the restarted server holds the 3000 written after it came back
}

TEST(RedisSink, FullQueueBlocksTheWriterUntilRedisDrainsIt) {
  const int port = FreePort();
  RedisProcess redis(port);
  redis.Start();
  RedisSinkOptions options = LocalOptions(port);
  options.batch_size = 10;
  options.max_queued = 50;
  options.timeout_ms = 200;
  auto sink = RedisSink::Start(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  redis.Pause();  // a Redis that does not answer
  std::atomic<bool> done{false};
  std::thread producer([&] {
    std::vector<FeatureWrite> batch;
    for (int i = 0; i < 500; ++i) batch.push_back(MakeFeature(i));
    (*sink)->Write(&batch);
    done = true;
  });
  std::this_thread::sleep_for(milliseconds(1000));
  EXPECT_FALSE(done.load()) << "Write() returned although the queue was full and Redis was not answering";
  EXPECT_LE((*sink)->stats().queued, 50);
  redis.Resume();
  producer.join();
  (*sink)->Flush();
  EXPECT_EQ(redis.DbSize(), 500);
}

TEST(RedisSink, DiscardDropsWhatWasNotSentAndWaitsForWhatRedisHas) {
  // A cancelled attempt's sink: what Redis already has must be answered
  // before the next attempt may write (or it could land after, and older
  // values overwrite newer ones); what is only queued is dropped, and a
  // writer blocked on the full queue is let go at once.
  const int port = FreePort();
  RedisProcess redis(port);
  redis.Start();
  RedisSinkOptions options = LocalOptions(port);
  options.batch_size = 100;
  options.max_queued = 1000;
  options.timeout_ms = 10000;
  auto sink = RedisSink::Start(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  redis.Pause();
  std::atomic<bool> written_all{false};
  std::thread producer([&] {
    std::vector<FeatureWrite> batch;
    for (int i = 0; i < 20000; ++i) batch.push_back(MakeFeature(i));
    (*sink)->Write(&batch);  // blocks: the queue holds 1000 and Redis does not answer
    written_all = true;
  });
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_FALSE(written_all.load());
  std::atomic<bool> discarded{false};
  size_t dropped = 0;
  std::thread discard([&] {
    dropped = (*sink)->Discard();
    discarded = true;
  });
  producer.join();  // let go by the discard, with Redis still paused
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_FALSE(discarded.load()) << "Discard() returned while Redis still held unanswered batches";
  redis.Resume();
  discard.join();
  const int64_t written = (*sink)->stats().features_written;
  EXPECT_GT(written, 0);
  EXPECT_LE(written, 200) << "more than the batches in flight (2 of 100) were written";
  EXPECT_EQ(static_cast<int64_t>(dropped) + written, 20000);
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(redis.DbSize(), written) << "a dropped feature reached Redis";
}

}  // namespace
}  // namespace slipstream
