// RedisSink against a real redis-server that this test starts, stops, pauses,
// restarts and reconfigures itself: features written while Redis is away or
// refusing writes are retried and none is lost; a full queue blocks the
// writer (backpressure); a key of the wrong type is handed to on_rejected;
// a replay never puts an older window over a newer one; a starting attempt
// fences the older one out.
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
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/free_port.h"
#include "worker/sink/redis_sink.h"

namespace slipstream {
namespace {

using std::chrono::milliseconds;

using test_support::FreeTcpPort;

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

  // Keys other than the sink's own bookkeeping (slipstream:writers).
  long long FeatureKeyCount() const {
    return Integer({"DBSIZE"}) - Integer({"EXISTS", "slipstream:writers"});
  }

  // One command: its integer reply (-1 for other replies), or its text.
  long long Integer(const std::vector<std::string>& args) const {
    redisReply* reply = Run(args);
    const long long n = reply != nullptr && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    if (reply) freeReplyObject(reply);
    return n;
  }
  std::string Text(const std::vector<std::string>& args) const {
    redisReply* reply = Run(args);
    std::string text = reply != nullptr && reply->str != nullptr ? std::string(reply->str, reply->len) : "";
    if (reply) freeReplyObject(reply);
    return text;
  }

 private:
  redisReply* Run(const std::vector<std::string>& args) const {
    redisContext* c = Connect();
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : args) argv.push_back(a.data()), lens.push_back(a.size());
    auto* reply =
        static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    redisFree(c);
    return reply;
  }

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
  const int port = FreeTcpPort();
  RedisProcess redis(port);
  redis.Start();
  RedisSinkOptions options = LocalOptions(port);
  auto sink = RedisSink::Start(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  std::vector<FeatureWrite> batch;
  for (int i = 0; i < 5000; ++i) batch.push_back(MakeFeature(i));
  (*sink)->Write(&batch);
  (*sink)->Flush();
  EXPECT_EQ(redis.FeatureKeyCount(), 5000);
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
  const int port = FreeTcpPort();
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
  EXPECT_EQ(redis.FeatureKeyCount(), 500);
  long long ttl = 0;
  EXPECT_EQ(redis.HGetAll("user_features:7", &ttl), (std::vector<std::string>{"user_id", "7", "view_count_1h", "0"}));
  EXPECT_EQ((*sink)->stats().features_written, 500);
}

TEST(RedisSink, LosesNothingWhenRedisStartsLateOrRestarts) {
  const int port = FreeTcpPort();
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
  EXPECT_EQ(redis.FeatureKeyCount(), 3000);
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
  EXPECT_EQ(redis.FeatureKeyCount(), 3000);  // the restarted server holds the 3000 written after it came back
}

TEST(RedisSink, FullQueueBlocksTheWriterUntilRedisDrainsIt) {
  const int port = FreeTcpPort();
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
  EXPECT_EQ(redis.FeatureKeyCount(), 500);
}

TEST(RedisSink, DiscardDropsWhatWasNotSentAndWaitsForWhatRedisHas) {
  // A cancelled attempt's sink: what Redis already has must be answered
  // before the next attempt may write (or it could land after, and older
  // values overwrite newer ones); what is only queued is dropped, and a
  // writer blocked on the full queue is let go at once.
  const int port = FreeTcpPort();
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
  EXPECT_EQ(redis.FeatureKeyCount(), written) << "a dropped feature reached Redis";
}

// A user_features write of window [end - 1 h, end), guarded on window_end
// as the window engine makes it.
FeatureWrite MakeWindowFeature(const std::string& user, int64_t window_end_ms, int views) {
  FeatureWrite f;
  f.key = "user_features:" + user;
  f.fields = {"user_id", user, "view_count_1h", std::to_string(views), "window_end", std::to_string(window_end_ms)};
  f.guard_fields = {4, -1};
  f.order = window_end_ms;
  f.ttl_seconds = 7200;
  return f;
}

// Waits (bounded) until `done`; false on timeout.
bool WaitFor(const std::function<bool()>& done, int64_t timeout_ms = 20000) {
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(timeout_ms);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

// maxmemory 1 with noeviction: Redis answers every HSET with -OOM. Those
// features are not acknowledged (a checkpoint would wait) but retried until
// Redis takes them again; then every one is there, with its TTL.
TEST(RedisSink, ErrorRepliesAreRetriedUntilRedisAcceptsTheWrites) {
  const int port = FreeTcpPort();
  RedisProcess redis(port);
  redis.Start();
  RedisSinkOptions options = LocalOptions(port);
  options.batch_size = 100;
  std::vector<std::string> rejected;
  options.on_rejected = [&](const FeatureWrite& f, std::string_view) { rejected.push_back(f.key); };
  auto sink = RedisSink::Start(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_EQ(redis.Text({"CONFIG", "SET", "maxmemory-policy", "noeviction"}), "OK");
  ASSERT_EQ(redis.Text({"CONFIG", "SET", "maxmemory", "1"}), "OK");
  std::vector<FeatureWrite> batch;
  for (int i = 0; i < 3000; ++i) batch.push_back(MakeFeature(i));
  (*sink)->Write(&batch);
  ASSERT_TRUE(WaitFor([&] { return (*sink)->stats().error_replies >= 3; })) << "Redis refused nothing?";
  EXPECT_FALSE((*sink)->WaitUntilAcked(1, 0)) << "a refused feature counted as written";
  EXPECT_EQ(redis.FeatureKeyCount(), 0);
  const RedisSinkStats refusing = (*sink)->stats();
  EXPECT_EQ(refusing.last_error.rfind("OOM", 0), 0u) << refusing.last_error;
  EXPECT_GT(refusing.last_error_ms, 0);
  EXPECT_EQ(refusing.pending, 3000);
  ASSERT_EQ(redis.Text({"CONFIG", "SET", "maxmemory", "0"}), "OK");
  (*sink)->Flush();
  EXPECT_EQ(redis.FeatureKeyCount(), 3000);
  for (int i : {0, 1499, 2999}) {
    long long ttl = 0;
    EXPECT_EQ(redis.HGetAll("user_features:" + std::to_string(i), &ttl).size(), 4u) << i;
    EXPECT_GT(ttl, 7000) << i;
  }
  const RedisSinkStats done = (*sink)->stats();
  EXPECT_EQ(done.features_written, 3000);
  EXPECT_EQ(done.features_rejected, 0);
  EXPECT_TRUE(rejected.empty());
  EXPECT_GT(done.features_guarded, 0) << "the resends go through the guard";
}

// Someone else owns user_features:5 (a string): that feature is refused for
// good and handed to on_rejected with Redis' error; the others are written
// and the job goes on.
TEST(RedisSink, AKeyOfTheWrongTypeIsRejectedAndTheRestWritten) {
  const int port = FreeTcpPort();
  RedisProcess redis(port);
  redis.Start();
  RedisSinkOptions options = LocalOptions(port);
  std::vector<std::pair<std::string, std::string>> rejected;
  options.on_rejected = [&](const FeatureWrite& f, std::string_view error) {
    rejected.emplace_back(f.key, std::string(error));
  };
  ASSERT_EQ(redis.Text({"SET", "user_features:5", "not a hash"}), "OK");
  auto sink = RedisSink::Start(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  std::vector<FeatureWrite> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(MakeFeature(i));
  (*sink)->Write(&batch);
  (*sink)->Flush();
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0].first, "user_features:5");
  EXPECT_EQ(rejected[0].second.rfind("WRONGTYPE", 0), 0u) << rejected[0].second;
  EXPECT_EQ(redis.Text({"GET", "user_features:5"}), "not a hash");
  EXPECT_EQ(redis.FeatureKeyCount(), 10);
  const RedisSinkStats stats = (*sink)->stats();
  EXPECT_EQ(stats.features_written, 10);  // acknowledged: 9 written, 1 rejected
  EXPECT_EQ(stats.features_rejected, 1);
}

// Attempt 1 wrote windows up to 03:00; attempt 2 replays from an older
// checkpoint: its older windows must not replace the stored newer ones,
// while its newer windows are written.
TEST(RedisSink, AReplayNeverPutsAnOlderWindowOverANewerOne) {
  const int port = FreeTcpPort();
  RedisProcess redis(port);
  redis.Start();
  RedisSinkOptions first = LocalOptions(port);
  first.job_id = "j";
  first.attempt = 1;
  {
    auto sink = RedisSink::Start(first);
    ASSERT_TRUE(sink.ok()) << sink.status();
    std::vector<FeatureWrite> batch = {MakeWindowFeature("a", 3 * 3600000, 30), MakeWindowFeature("b", 2 * 3600000, 20)};
    (*sink)->Write(&batch);
    (*sink)->Flush();
    EXPECT_EQ((*sink)->stats().features_guarded, 0) << "nothing was written before: no guard needed";
  }
  RedisSinkOptions second = first;
  second.attempt = 2;
  auto sink = RedisSink::Start(second);
  ASSERT_TRUE(sink.ok()) << sink.status();
  std::vector<FeatureWrite> replay = {MakeWindowFeature("a", 2 * 3600000, 20), MakeWindowFeature("b", 2 * 3600000, 21),
                                      MakeWindowFeature("a", 3 * 3600000, 30)};
  (*sink)->Write(&replay);
  (*sink)->Flush();
  long long ttl = 0;
  EXPECT_EQ(redis.HGetAll("user_features:a", &ttl)[3], "30");
  EXPECT_EQ(redis.HGetAll("user_features:b", &ttl)[3], "21") << "an equal window_end is written (same window)";
  RedisSinkStats stats = (*sink)->stats();
  EXPECT_EQ(stats.features_kept_newer, 1);
  EXPECT_EQ(stats.features_guarded, 3);
  // Past what attempt 1 wrote: plain writes again.
  std::vector<FeatureWrite> later = {MakeWindowFeature("a", 4 * 3600000, 40)};
  (*sink)->Write(&later);
  (*sink)->Flush();
  EXPECT_EQ(redis.HGetAll("user_features:a", &ttl)[3], "40");
  EXPECT_EQ((*sink)->stats().features_guarded, 3);
}

// Attempt 2 replays from a checkpoint older than what attempt 1 wrote, and
// fails; attempt 3 replays again. The marks attempt 2 left must still cover
// attempt 1's writes, or attempt 3 would write plain over newer windows.
TEST(RedisSink, MarksNeverGoDownSoTheNextReplayIsGuardedToo) {
  const int port = FreeTcpPort();
  RedisProcess redis(port);
  redis.Start();
  RedisSinkOptions options = LocalOptions(port);
  options.job_id = "j";
  for (const auto& [attempt, window_end_ms] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 3 * 3600000}, {2, 2 * 3600000}, {3, 2 * 3600000 + 1800000}}) {
    options.attempt = attempt;
    auto sink = RedisSink::Start(options);
    ASSERT_TRUE(sink.ok()) << sink.status();
    std::vector<FeatureWrite> batch = {MakeWindowFeature("a", window_end_ms, static_cast<int>(attempt))};
    (*sink)->Write(&batch);
    (*sink)->Flush();
  }
  long long ttl = 0;
  EXPECT_EQ(redis.HGetAll("user_features:a", &ttl)[3], "1") << "attempt 1's newest window was replaced";
}

// A replay's batch goes through the guarded script; Redis refuses the whole
// script for now (-OOM from its first write). Once Redis takes the batch
// again, every feature of it counts as acknowledged, so a checkpoint that
// waits for them completes.
TEST(RedisSink, AGuardedBatchRefusedAsAWholeIsAcknowledgedOnceWritten) {
  const int port = FreeTcpPort();
  RedisProcess redis(port);
  redis.Start();
  RedisSinkOptions options = LocalOptions(port);
  options.job_id = "j";
  options.attempt = 1;
  {
    auto sink = RedisSink::Start(options);
    ASSERT_TRUE(sink.ok()) << sink.status();
    std::vector<FeatureWrite> batch = {MakeWindowFeature("a", 3 * 3600000, 30)};
    (*sink)->Write(&batch);
    (*sink)->Flush();
  }
  options.attempt = 2;
  auto sink = RedisSink::Start(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_EQ(redis.Text({"CONFIG", "SET", "maxmemory-policy", "noeviction"}), "OK");
  ASSERT_EQ(redis.Text({"CONFIG", "SET", "maxmemory", "1"}), "OK");
  std::vector<FeatureWrite> replay = {MakeWindowFeature("a", 2 * 3600000, 20), MakeWindowFeature("b", 2 * 3600000, 21)};
  (*sink)->Write(&replay);
  ASSERT_TRUE(WaitFor([&] { return (*sink)->stats().error_replies >= 1; })) << "Redis refused nothing?";
  EXPECT_FALSE((*sink)->WaitUntilAcked(1, 0)) << "a refused feature counted as written";
  ASSERT_EQ(redis.Text({"CONFIG", "SET", "maxmemory", "0"}), "OK");
  EXPECT_TRUE((*sink)->WaitUntilAcked((*sink)->Enqueued(), 20000)) << "written, but never acknowledged";
  long long ttl = 0;
  EXPECT_EQ(redis.HGetAll("user_features:a", &ttl)[3], "30");
  EXPECT_EQ(redis.HGetAll("user_features:b", &ttl)[3], "21");
  const RedisSinkStats stats = (*sink)->stats();
  EXPECT_EQ(stats.features_written, 2);
  EXPECT_EQ(stats.pending, 0);
}

// Attempt 2 starts while attempt 1 still writes (a worker cut off from the
// coordinator): attempt 1's connection is closed at once, it finds the
// fence when it reconnects, stops, and none of its later writes lands.
TEST(RedisSink, AStartingAttemptFencesTheOlderOneOut) {
  const int port = FreeTcpPort();
  RedisProcess redis(port);
  redis.Start();
  RedisSinkOptions old_options = LocalOptions(port);
  old_options.job_id = "j";
  old_options.attempt = 1;
  auto old_sink = RedisSink::Start(old_options);
  ASSERT_TRUE(old_sink.ok()) << old_sink.status();
  std::vector<FeatureWrite> batch = {MakeWindowFeature("a", 3600000, 1)};
  (*old_sink)->Write(&batch);
  (*old_sink)->Flush();

  RedisSinkOptions new_options = old_options;
  new_options.attempt = 2;
  auto new_sink = RedisSink::Start(new_options);
  ASSERT_TRUE(new_sink.ok()) << new_sink.status();
  EXPECT_EQ(redis.Text({"HGET", "slipstream:writers", "fence:j"}), "2");
  batch = {MakeWindowFeature("b", 3600000, 2)};
  (*new_sink)->Write(&batch);
  (*new_sink)->Flush();

  batch = {MakeWindowFeature("a", 2 * 3600000, 99), MakeWindowFeature("c", 3600000, 99)};
  (*old_sink)->Write(&batch);
  ASSERT_TRUE(WaitFor([&] { return (*old_sink)->Superseded().has_value(); })) << "the old attempt was not fenced";
  EXPECT_EQ(*(*old_sink)->Superseded(), 2);
  (*old_sink)->Write(&batch);  // returns at once: nothing more is taken
  old_sink->reset();
  long long ttl = 0;
  EXPECT_EQ(redis.HGetAll("user_features:a", &ttl)[3], "1");
  EXPECT_TRUE(redis.HGetAll("user_features:c", &ttl).empty());
  // A superseded attempt cannot even start.
  auto late = RedisSink::Start(old_options);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition) << late.status();
}

}  // namespace
}  // namespace slipstream
