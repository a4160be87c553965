#include "worker/sink/redis_sink.h"

#include <hiredis/hiredis.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "spdlog/spdlog.h"

namespace slipstream {

namespace {

struct RedisContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using RedisContextPtr = std::unique_ptr<redisContext, RedisContextDeleter>;
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

absl::StatusOr<RedisContextPtr> Connect(const RedisSinkOptions& o) {
  timeval tv{o.timeout_ms / 1000, static_cast<suseconds_t>((o.timeout_ms % 1000) * 1000)};
  RedisContextPtr ctx(redisConnectWithTimeout(o.host.c_str(), o.port, tv));
  if (!ctx) return absl::UnavailableError("redis: out of memory creating a connection");
  if (ctx->err) {
    return absl::UnavailableError(
        absl::StrCat("redis.host/redis.port: cannot connect to ", o.host, ":", o.port, ": ", ctx->errstr));
  }
  redisSetTimeout(ctx.get(), tv);
  auto command = [&](std::vector<std::string> args) -> absl::Status {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) argv.push_back(a.data()), lens.push_back(a.size());
    ReplyPtr reply(static_cast<redisReply*>(redisCommandArgv(ctx.get(), argv.size(), argv.data(), lens.data())));
    if (!reply) return absl::UnavailableError(absl::StrCat("redis: ", ctx->errstr));
    if (reply->type == REDIS_REPLY_ERROR) return absl::InvalidArgumentError(std::string(reply->str, reply->len));
    return absl::OkStatus();
  };
  if (!o.password.empty()) {
    if (absl::Status s = command({"AUTH", o.password}); !s.ok()) {
      return absl::PermissionDeniedError(absl::StrCat("redis.password: AUTH failed: ", s.message()));
    }
  } else if (absl::Status s = command({"PING"}); !s.ok()) {
    // A server with requirepass answers every command with NOAUTH: say so
    // at start, naming the key, instead of as rejected writes later.
    if (absl::StartsWith(s.message(), "NOAUTH")) {
      return absl::PermissionDeniedError(
          absl::StrCat("redis.password: the Redis server requires a password (", s.message(), ")"));
    }
    if (absl::IsUnavailable(s)) return s;
  }
  if (o.db != 0) {
    if (absl::Status s = command({"SELECT", absl::StrCat(o.db)}); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("redis.db: SELECT ", o.db, " failed: ", s.message()));
    }
  }
  return ctx;
}

void AppendRespArrayHeader(size_t n, std::string* out) { absl::StrAppend(out, "*", n, "\r\n"); }

void AppendRespBulk(std::string_view arg, std::string* out) {
  absl::StrAppend(out, "$", arg.size(), "\r\n");
  out->append(arg);
  out->append("\r\n");
}

}  // namespace

struct RedisSink::Impl {
  RedisSinkOptions options;
  RedisContextPtr connection;

  mutable std::mutex mu;
  std::condition_variable not_full;
  std::condition_variable not_empty;
  std::condition_variable progressed;
  std::deque<FeatureWrite> queue;
  uint64_t enqueued = 0;  // total features ever queued
  uint64_t acked = 0;     // total features acknowledged by Redis
  LatencyHistogram batch_latency;  // per batch, guarded by mu
  bool stopping = false;
  bool discarding = false;  // DropQueued(): no retries, nothing more sent
  size_t dropped = 0;       // features dropped since

  std::atomic<int64_t> command_errors{0};
  std::atomic<int64_t> connection_errors{0};
  std::thread writer;

  void Run();
  // Formats and writes one batch (no reply read); false on a connection error.
  bool Send(const std::vector<FeatureWrite>& batch);
  // Reads the 2 replies per feature of the oldest batch; false on a connection error.
  bool ReadReplies(const std::vector<FeatureWrite>& batch);
  // Reconnects with backoff and resends every batch in flight; false only
  // when stopping and Redis stays away.
  bool Recover();
  void GiveUp();

  // Writer thread only.
  static constexpr size_t kMaxInFlight = kMaxBatchesInFlight;
  std::deque<std::vector<FeatureWrite>> in_flight;  // sent, replies not read
  // When each batch in flight was first sent: write latency (send to the
  // last reply, resends after a reconnect included).
  std::deque<std::chrono::steady_clock::time_point> sent_at;
  std::string resp;
};

bool RedisSink::Impl::Send(const std::vector<FeatureWrite>& batch) {
  // One RESP buffer for the whole batch, formatted by hand: hiredis's
  // generic formatter was half of this thread's time.
  resp.clear();
  for (const FeatureWrite& f : batch) {
    AppendRespArrayHeader(2 + f.fields.size(), &resp);
    AppendRespBulk("HSET", &resp);
    AppendRespBulk(f.key, &resp);
    for (const std::string& field : f.fields) AppendRespBulk(field, &resp);
    AppendRespArrayHeader(3, &resp);
    AppendRespBulk("EXPIRE", &resp);
    AppendRespBulk(f.key, &resp);
    AppendRespBulk(absl::StrCat(f.ttl_seconds), &resp);
  }
  redisContext* ctx = connection.get();
  if (redisAppendFormattedCommand(ctx, resp.data(), resp.size()) != REDIS_OK) return false;
  int done = 0;
  while (!done) {
    if (redisBufferWrite(ctx, &done) != REDIS_OK) return false;
  }
  return true;
}

bool RedisSink::Impl::ReadReplies(const std::vector<FeatureWrite>& batch) {
  redisContext* ctx = connection.get();
  for (size_t i = 0; i < batch.size() * 2; ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx, &raw) != REDIS_OK || raw == nullptr) return false;
    ReplyPtr reply(static_cast<redisReply*>(raw));
    if (reply->type == REDIS_REPLY_ERROR) {
      command_errors.fetch_add(1);
      spdlog::error("redis sink: command for key {} rejected: {}", batch[i / 2].key,
                    std::string(reply->str, reply->len));
    }
  }
  return true;
}

bool RedisSink::Impl::Recover() {
  if (connection) {
    connection_errors.fetch_add(1);
    spdlog::warn("redis sink: connection lost ({}); resending {} unacknowledged batches", connection->errstr,
                 in_flight.size());
    connection.reset();
  }
  int64_t backoff_ms = 100;
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<RedisContextPtr> c = Connect(options);
    if (c.ok()) {
      connection = std::move(*c);
      bool sent = true;
      for (const auto& batch : in_flight) {
        if (!Send(batch)) {
          sent = false;
          break;
        }
      }
      if (sent) {
        if (attempt > 0) spdlog::info("redis sink: reconnected to {}:{}", options.host, options.port);
        return true;
      }
      connection.reset();
    } else {
      connection_errors.fetch_add(1);
      spdlog::warn("redis sink: {} (retrying in {} ms)", c.status().message(), backoff_ms);
    }
    {
      std::unique_lock lock(mu);
      // Give up only when stopping and Redis stays away for long, or at
      // once when discarding.
      if ((stopping && attempt > 20) || discarding) return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms = std::min<int64_t>(backoff_ms * 2, 5000);
  }
}

void RedisSink::Impl::Run() {
  for (;;) {
    // Keep up to kMaxInFlight batches sent ahead of their replies, so Redis
    // works on one batch while we format the next and read replies.
    while (in_flight.size() < kMaxInFlight) {
      std::vector<FeatureWrite> batch;
      {
        std::unique_lock lock(mu);
        if (in_flight.empty()) not_empty.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) {
          if (in_flight.empty() && stopping) return;
          break;
        }
        const size_t n = std::min<size_t>(queue.size(), options.batch_size);
        batch.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      not_full.notify_all();
      in_flight.push_back(std::move(batch));
      sent_at.push_back(std::chrono::steady_clock::now());
      if (!connection || !Send(in_flight.back())) {
        if (!Recover()) return GiveUp();
      }
    }
    if (in_flight.empty()) continue;
    if (!ReadReplies(in_flight.front())) {
      if (!Recover()) return GiveUp();
      continue;
    }
    const double latency_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sent_at.front()).count();
    {
      std::lock_guard lock(mu);
      acked += in_flight.front().size();
      batch_latency.Observe(latency_ms);
    }
    in_flight.pop_front();
    sent_at.pop_front();
    progressed.notify_all();
  }
}

void RedisSink::Impl::GiveUp() {
  size_t lost = 0;
  for (const auto& batch : in_flight) lost += batch.size();
  bool discarded;
  {
    std::lock_guard lock(mu);
    discarded = discarding;
  }
  if (discarded) {
    spdlog::info("redis sink: {} features of a cancelled attempt not acknowledged (its successor replays them)", lost);
  } else {
    spdlog::error("redis sink: stopping with {} features not written: Redis unreachable", lost);
  }
}

RedisSink::RedisSink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<RedisSink>> RedisSink::Start(const RedisSinkOptions& options) {
  // hiredis writes with write(2), which raises SIGPIPE when Redis has gone
  // away; the sink handles EPIPE as a lost connection, so the signal must
  // not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  absl::StatusOr<RedisContextPtr> c = Connect(options);
  if (c.ok()) {
    impl->connection = std::move(*c);
  } else if (absl::IsUnavailable(c.status())) {
    // Redis may come up after us: the writer keeps retrying and holds the
    // pipeline back meanwhile, exactly as after a connection loss.
    spdlog::warn("redis sink: {}; retrying in the background", c.status().message());
  } else {
    return c.status();  // AUTH or SELECT refused: a configuration error
  }
  Impl* raw = impl.get();
  impl->writer = std::thread([raw] { raw->Run(); });
  return std::unique_ptr<RedisSink>(new RedisSink(std::move(impl)));
}

RedisSink::~RedisSink() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->not_empty.notify_all();
  if (impl_->writer.joinable()) impl_->writer.join();
}

void RedisSink::Write(std::vector<FeatureWrite>* features) {
  if (features->empty()) return;
  {
    std::unique_lock lock(impl_->mu);
    for (FeatureWrite& f : *features) {
      if (impl_->queue.size() >= impl_->options.max_queued) {
        impl_->not_empty.notify_one();  // the writer may be asleep on an empty queue
        impl_->not_full.wait(lock,
                             [&] { return impl_->queue.size() < impl_->options.max_queued || impl_->discarding; });
      }
      if (impl_->discarding) {
        ++impl_->dropped;
        continue;
      }
      impl_->queue.push_back(std::move(f));
      ++impl_->enqueued;
    }
  }
  features->clear();
  impl_->not_empty.notify_one();
}

void RedisSink::Flush() {
  std::unique_lock lock(impl_->mu);
  const uint64_t target = impl_->enqueued;
  impl_->progressed.wait(lock, [&] { return impl_->acked >= target || impl_->discarding; });
}

void RedisSink::DropQueued() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->dropped += impl_->queue.size();
    impl_->queue.clear();
    impl_->discarding = true;
  }
  impl_->not_full.notify_all();
  impl_->progressed.notify_all();
}

size_t RedisSink::Discard() {
  DropQueued();
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->not_empty.notify_all();
  if (impl_->writer.joinable()) impl_->writer.join();
  std::lock_guard lock(impl_->mu);
  return impl_->dropped;
}

uint64_t RedisSink::Enqueued() const {
  std::lock_guard lock(impl_->mu);
  return impl_->enqueued;
}

bool RedisSink::WaitUntilAcked(uint64_t mark, int64_t timeout_ms) {
  std::unique_lock lock(impl_->mu);
  return impl_->progressed.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                    [&] { return impl_->acked >= mark; });
}

RedisSinkStats RedisSink::stats() const {
  RedisSinkStats s;
  std::lock_guard lock(impl_->mu);
  s.features_written = static_cast<int64_t>(impl_->acked);
  s.queued = static_cast<int64_t>(impl_->queue.size());
  s.pending = static_cast<int64_t>(impl_->enqueued - impl_->acked);
  s.command_errors = impl_->command_errors.load();
  s.connection_errors = impl_->connection_errors.load();
  s.batch_latency = impl_->batch_latency;
  return s;
}

}  // namespace slipstream
