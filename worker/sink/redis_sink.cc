#include "worker/sink/redis_sink.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/absl_compat.h"
#include "spdlog/spdlog.h"
#include "worker/sink/redis_write_guard.h"
#include "common/clock.h"

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


// One blocking command on a fresh connection (the handshake).
absl::StatusOr<ReplyPtr> Command(redisContext* ctx, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) argv.push_back(a.data()), lens.push_back(a.size());
  ReplyPtr reply(
      static_cast<redisReply*>(redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data())));
  if (!reply) return absl::UnavailableError(absl::StrCat("redis: ", ctx->errstr));
  if (reply->type == REDIS_REPLY_ERROR) return absl::InvalidArgumentError(std::string(reply->str, reply->len));
  return reply;
}

std::string ReplyText(const redisReply& r) { return std::string(r.str == nullptr ? "" : r.str, r.len); }

void AppendRespArrayHeader(size_t n, std::string* out) { absl::StrAppend(out, "*", n, "\r\n"); }

void AppendRespBulk(std::string_view arg, std::string* out) {
  absl::StrAppend(out, "$", arg.size(), "\r\n");
  out->append(arg);
  out->append("\r\n");
}

int GuardCount(const FeatureWrite& f) {
  int n = 0;
  for (int index : f.guard_fields) n += index >= 0 ? 1 : 0;
  return n;
}

}  // namespace

struct RedisSink::Impl {
  RedisSinkOptions options;
  RedisContextPtr connection;
  std::string client_name;
  std::string guarded_sha;
  std::string fence_sha;
  // Features whose order is at most this may meet a newer version written
  // by an earlier attempt: they go through the guarded script. Read from
  // the high-water marks at the first connection; max() until then (and
  // when the marks cannot be read).
  int64_t guard_up_to = std::numeric_limits<int64_t>::max();
  bool marks_read = false;
  // Our own mark: never below the marks read at the start, nor below any
  // order we sent (it only grows).
  int64_t high_water = std::numeric_limits<int64_t>::min();
  int64_t fenced_by = 0;  // the fence the handshake found above our attempt

  mutable std::mutex mu;
  std::condition_variable not_full;
  std::condition_variable not_empty;
  std::condition_variable progressed;
  std::deque<FeatureWrite> queue;
  uint64_t enqueued = 0;  // total features ever queued
  uint64_t acked = 0;     // total features acknowledged by Redis (in order)
  LatencyHistogram batch_latency;  // per batch, guarded by mu
  bool stopping = false;
  bool discarding = false;  // DropQueued(): no retries, nothing more sent
  size_t dropped = 0;       // features dropped since
  std::optional<int64_t> superseded_by;
  std::string last_error;
  int64_t last_error_ms = 0;

  std::atomic<int64_t> error_replies{0};
  std::atomic<int64_t> connection_errors{0};
  std::atomic<int64_t> kept_newer{0};
  std::atomic<int64_t> rejected{0};
  std::atomic<int64_t> guarded{0};
  std::thread writer;

  // Writer thread only.
  struct Batch {
    std::vector<FeatureWrite> features;
    bool guarded = false;
    bool retry = false;  // features already counted in `settled`
    std::chrono::steady_clock::time_point first_sent;
  };
  std::deque<Batch> in_flight;  // sent, replies not read
  // Features that met a transient error reply, to resend (guarded) after a
  // backoff; nothing newer is acknowledged meanwhile.
  std::vector<FeatureWrite> retry;
  int64_t retry_backoff_ms = 0;
  int retry_rounds = 0;  // resends of the current `retry` so far
  bool reconnect_before_retry = false;
  uint64_t settled = 0;  // features done whose acknowledgement waits for `retry`
  std::string resp;
  int64_t errors_since_log = 0;
  int64_t next_error_log_ms = 0;

  void Run();
  absl::StatusOr<RedisContextPtr> Connect();
  absl::Status Handshake(redisContext* ctx);
  bool Send(Batch& batch);
  enum class ReadResult { kDone, kConnectionLost, kScriptMissing };
  ReadResult ReadReplies(Batch& batch);
  void Settle(const FeatureWrite& f, const redisReply* hset, const redisReply* expire, std::vector<FeatureWrite>* again);
  void SettleScriptReply(const FeatureWrite& f, const redisReply& r, std::vector<FeatureWrite>* again);
  void NoteError(const std::string& text, const char* action);
  // Reconnects with backoff and resends every batch in flight (guarded);
  // false when stopping and Redis stays away, when discarding, or when
  // fenced out.
  bool Recover();
  bool Discarding() {
    std::lock_guard lock(mu);
    return discarding;
  }
  // Sleeps `ms` unless discarding; false when discarding.
  bool Pause(int64_t ms);
  void GiveUp();
};

absl::StatusOr<RedisContextPtr> RedisSink::Impl::Connect() {
  const RedisSinkOptions& o = options;
  timeval tv{o.timeout_ms / 1000, static_cast<suseconds_t>((o.timeout_ms % 1000) * 1000)};
  RedisContextPtr ctx(redisConnectWithTimeout(o.host.c_str(), o.port, tv));
  if (!ctx) return absl::UnavailableError("redis: out of memory creating a connection");
  if (ctx->err) {
    return absl::UnavailableError(
        absl::StrCat("redis.host/redis.port: cannot connect to ", o.host, ":", o.port, ": ", ctx->errstr));
  }
  redisSetTimeout(ctx.get(), tv);
  if (!o.password.empty()) {
    if (absl::StatusOr<ReplyPtr> r = Command(ctx.get(), {"AUTH", o.password}); !r.ok()) {
      if (absl::IsUnavailable(r.status())) return r.status();
      return absl::PermissionDeniedError(absl::StrCat("redis.password: AUTH failed: ", r.status().message()));
    }
  } else if (absl::StatusOr<ReplyPtr> r = Command(ctx.get(), {"PING"}); !r.ok()) {
    // A server with requirepass answers every command with NOAUTH: say so
    // at start, naming the key, instead of as rejected writes later.
    if (absl::StartsWith(r.status().message(), "NOAUTH")) {
      return absl::PermissionDeniedError(
          absl::StrCat("redis.password: the Redis server requires a password (", r.status().message(), ")"));
    }
    if (absl::IsUnavailable(r.status())) return r.status();
  }
  if (o.db != 0) {
    if (absl::StatusOr<ReplyPtr> r = Command(ctx.get(), {"SELECT", absl::StrCat(o.db)}); !r.ok()) {
      if (absl::IsUnavailable(r.status())) return r.status();
      return absl::InvalidArgumentError(absl::StrCat("redis.db: SELECT ", o.db, " failed: ", r.status().message()));
    }
  }
  if (absl::Status s = Handshake(ctx.get()); !s.ok()) return s;
  return ctx;
}

// Names the connection, loads the scripts, raises the fence and cuts older
// attempts off, and (once) reads the high-water marks. FailedPrecondition:
// this attempt is fenced out.
absl::Status RedisSink::Impl::Handshake(redisContext* ctx) {
  auto transient = [](const absl::Status& s) {
    // A Redis that is loading or refusing writes comes back: Unavailable
    // makes the caller retry the connection.
    return absl::UnavailableError(absl::StrCat("redis: ", s.message()));
  };
  if (absl::StatusOr<ReplyPtr> r = Command(ctx, {"CLIENT", "SETNAME", client_name}); !r.ok()) {
    if (absl::IsUnavailable(r.status())) return r.status();
    spdlog::warn("redis sink: CLIENT SETNAME refused ({}): older attempts cannot be cut off", r.status().message());
  }
  for (auto [script, sha] : {std::pair{kGuardedWriteScript, &guarded_sha}, std::pair{kFenceScript, &fence_sha}}) {
    absl::StatusOr<ReplyPtr> r = Command(ctx, {"SCRIPT", "LOAD", script});
    if (!r.ok()) return absl::IsUnavailable(r.status()) ? r.status() : transient(r.status());
    *sha = ReplyText(**r);
  }
  absl::StatusOr<ReplyPtr> fence =
      Command(ctx, {"EVALSHA", fence_sha, "1", std::string(kWritersKey), options.job_id,
                    absl::StrCat(options.attempt), absl::StrCat(kWritersKeyTtlSeconds)});
  if (!fence.ok()) return absl::IsUnavailable(fence.status()) ? fence.status() : transient(fence.status());
  if ((*fence)->type == REDIS_REPLY_INTEGER && (*fence)->integer > options.attempt) {
    fenced_by = (*fence)->integer;
    return absl::FailedPreconditionError(absl::StrCat("attempt ", (*fence)->integer, " of job ", options.job_id,
                                                      " writes to Redis now (this is attempt ", options.attempt,
                                                      ")"));
  }
  // Cut off the older attempts' connections: whatever they still send is
  // dropped with them, and they find the fence when they reconnect.
  if (absl::StatusOr<ReplyPtr> list = Command(ctx, {"CLIENT", "LIST", "TYPE", "normal"}); list.ok()) {
    const std::string clients = ReplyText(**list);
    for (absl::string_view line : absl::StrSplit(clients, '\n')) {
      absl::string_view id, name;
      for (absl::string_view field : absl::StrSplit(line, ' ')) {
        if (absl::StartsWith(field, "id=")) id = field.substr(3);
        if (absl::StartsWith(field, "name=")) name = field.substr(5);
      }
      const int64_t attempt = AttemptOfWriterClient(ToStd(name), options.job_id);
      if (attempt < 0 || attempt >= options.attempt || id.empty()) continue;
      if (Command(ctx, {"CLIENT", "KILL", "ID", std::string(id)}).ok()) {
        spdlog::info("redis sink: closed the connection of attempt {} ({})", attempt, name);
      }
    }
  } else if (absl::IsUnavailable(list.status())) {
    return list.status();
  } else {
    spdlog::warn("redis sink: CLIENT LIST refused ({}): older attempts are fenced when they reconnect only",
                 list.status().message());
  }
  if (!marks_read) {
    absl::StatusOr<ReplyPtr> marks = Command(ctx, {"HGETALL", std::string(kWritersKey)});
    if (absl::IsUnavailable(marks.status())) return marks.status();
    if (marks.ok() && (*marks)->type == REDIS_REPLY_ARRAY) {
      int64_t highest = std::numeric_limits<int64_t>::min();
      for (size_t i = 0; i + 1 < (*marks)->elements; i += 2) {
        const std::string field = ReplyText(*(*marks)->element[i]);
        int64_t value = 0;
        if (absl::StartsWith(field, ToAbsl(kHighWaterPrefix)) && absl::SimpleAtoi(ReplyText(*(*marks)->element[i + 1]), &value)) {
          highest = std::max(highest, value);
        }
      }
      guard_up_to = highest;
      // Our own mark starts there: a replay's batches are older than what
      // an earlier attempt of this writer index marked, and lowering that
      // field would let the attempt after us write plain over newer data.
      high_water = std::max(high_water, highest);
      spdlog::info("redis sink: {}", highest == std::numeric_limits<int64_t>::min()
                                         ? std::string("no earlier writes recorded: every write is plain")
                                         : absl::StrCat("writes up to order ", highest,
                                                        " are guarded against newer stored versions"));
    } else {
      spdlog::warn("redis sink: cannot read the high-water marks in {} ({}): every write is guarded", kWritersKey,
                   marks.ok() ? "not a hash" : std::string(marks.status().message()));
    }
    marks_read = true;
  }
  return absl::OkStatus();
}

bool RedisSink::Impl::Send(Batch& batch) {
  // One RESP buffer for the whole batch, formatted by hand: hiredis's
  // generic formatter was half of this thread's time.
  resp.clear();
  int64_t order = high_water;
  for (const FeatureWrite& f : batch.features) order = std::max(order, f.order);
  high_water = order;
  const std::string mark_field = HighWaterField(options.job_id, options.writer_index);
  const std::string mark_value = absl::StrCat(order);
  const std::string writers_ttl = absl::StrCat(kWritersKeyTtlSeconds);
  if (batch.guarded) {
    size_t args = 3;
    for (const FeatureWrite& f : batch.features) args += 3 + 2 * GuardCount(f) + f.fields.size();
    AppendRespArrayHeader(3 + 1 + batch.features.size() + args, &resp);
    AppendRespBulk("EVALSHA", &resp);
    AppendRespBulk(guarded_sha, &resp);
    AppendRespBulk(absl::StrCat(1 + batch.features.size()), &resp);
    AppendRespBulk(kWritersKey, &resp);
    for (const FeatureWrite& f : batch.features) AppendRespBulk(f.key, &resp);
    AppendRespBulk(mark_field, &resp);
    AppendRespBulk(mark_value, &resp);
    AppendRespBulk(writers_ttl, &resp);
    for (const FeatureWrite& f : batch.features) {
      AppendRespBulk(absl::StrCat(f.ttl_seconds), &resp);
      AppendRespBulk(absl::StrCat(GuardCount(f)), &resp);
      for (int index : f.guard_fields) {
        if (index < 0) continue;
        AppendRespBulk(f.fields[index], &resp);
        AppendRespBulk(f.fields[index + 1], &resp);
      }
      AppendRespBulk(absl::StrCat(f.fields.size()), &resp);
      for (const std::string& field : f.fields) AppendRespBulk(field, &resp);
    }
    guarded.fetch_add(static_cast<int64_t>(batch.features.size()));
  } else {
    // The mark goes first in the pipeline: Redis never holds a version
    // newer than the marks say.
    AppendRespArrayHeader(4, &resp);
    AppendRespBulk("HSET", &resp);
    AppendRespBulk(kWritersKey, &resp);
    AppendRespBulk(mark_field, &resp);
    AppendRespBulk(mark_value, &resp);
    AppendRespArrayHeader(3, &resp);
    AppendRespBulk("EXPIRE", &resp);
    AppendRespBulk(kWritersKey, &resp);
    AppendRespBulk(writers_ttl, &resp);
    for (const FeatureWrite& f : batch.features) {
      AppendRespArrayHeader(2 + f.fields.size(), &resp);
      AppendRespBulk("HSET", &resp);
      AppendRespBulk(f.key, &resp);
      for (const std::string& field : f.fields) AppendRespBulk(field, &resp);
      AppendRespArrayHeader(3, &resp);
      AppendRespBulk("EXPIRE", &resp);
      AppendRespBulk(f.key, &resp);
      AppendRespBulk(absl::StrCat(f.ttl_seconds), &resp);
    }
  }
  redisContext* ctx = connection.get();
  if (redisAppendFormattedCommand(ctx, resp.data(), resp.size()) != REDIS_OK) return false;
  int done = 0;
  while (!done) {
    if (redisBufferWrite(ctx, &done) != REDIS_OK) return false;
  }
  return true;
}

void RedisSink::Impl::NoteError(const std::string& text, const char* action) {
  const int64_t now = Clock::Real().WallMs();
  {
    std::lock_guard lock(mu);
    last_error = text;
    last_error_ms = now;
  }
  ++errors_since_log;
  if (now >= next_error_log_ms) {
    spdlog::warn("redis sink: {} error repl{} since the last report; the latest: {} ({})", errors_since_log,
                 errors_since_log == 1 ? "y" : "ies", text, action);
    errors_since_log = 0;
    next_error_log_ms = now + 10000;
  }
}

// One feature of a plain batch: its HSET and EXPIRE replies.
void RedisSink::Impl::Settle(const FeatureWrite& f, const redisReply* hset, const redisReply* expire,
                             std::vector<FeatureWrite>* again) {
  for (const redisReply* r : {hset, expire}) {
    if (r->type != REDIS_REPLY_ERROR) continue;
    error_replies.fetch_add(1);
    const std::string text = ReplyText(*r);
    const RedisErrorKind kind = ClassifyRedisError(text);
    if (kind == RedisErrorKind::kPermanent && r == hset) {
      NoteError(text, "to the dead-letter topic");
      rejected.fetch_add(1);
      if (options.on_rejected) options.on_rejected(f, text);
      return;
    }
    // Transient, or a refused EXPIRE: both go again, together.
    NoteError(text, "retrying");
    if (kind == RedisErrorKind::kTransientReconnect) reconnect_before_retry = true;
    again->push_back(f);
    return;
  }
}

// One feature of a guarded batch: the script's reply for it.
void RedisSink::Impl::SettleScriptReply(const FeatureWrite& f, const redisReply& r, std::vector<FeatureWrite>* again) {
  if (r.type == REDIS_REPLY_INTEGER) {
    if (r.integer == 0) kept_newer.fetch_add(1);
    return;
  }
  const std::string text = ReplyText(r);
  error_replies.fetch_add(1);
  if (ClassifyRedisError(text) == RedisErrorKind::kPermanent) {
    NoteError(text, "to the dead-letter topic");
    rejected.fetch_add(1);
    if (options.on_rejected) options.on_rejected(f, text);
    return;
  }
  NoteError(text, "retrying");
  again->push_back(f);
}

RedisSink::Impl::ReadResult RedisSink::Impl::ReadReplies(Batch& batch) {
  redisContext* ctx = connection.get();
  auto next = [ctx]() -> ReplyPtr {
    void* raw = nullptr;
    if (redisGetReply(ctx, &raw) != REDIS_OK) return nullptr;
    return ReplyPtr(static_cast<redisReply*>(raw));
  };
  std::vector<FeatureWrite> again;
  if (batch.guarded) {
    ReplyPtr r = next();
    if (!r) return ReadResult::kConnectionLost;
    if (r->type == REDIS_REPLY_ERROR) {
      // The whole script was refused (OOM, READONLY, NOSCRIPT, ...).
      const std::string text = ReplyText(*r);
      error_replies.fetch_add(1);
      const RedisErrorKind kind = ClassifyRedisError(text);
      if (kind == RedisErrorKind::kScriptMissing) {
        NoteError(text, "loading the script again");
        return ReadResult::kScriptMissing;
      }
      if (kind == RedisErrorKind::kPermanent) {
        // Not about one key (a script error): every feature is affected.
        NoteError(text, "to the dead-letter topic");
        for (const FeatureWrite& f : batch.features) {
          rejected.fetch_add(1);
          if (options.on_rejected) options.on_rejected(f, text);
        }
      } else {
        NoteError(text, "retrying");
        if (kind == RedisErrorKind::kTransientReconnect) reconnect_before_retry = true;
        again = std::move(batch.features);
      }
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != batch.features.size()) {
      NoteError(absl::StrCat("unexpected reply to the write script (type ", r->type, ")"), "retrying");
      again = std::move(batch.features);
    } else {
      for (size_t i = 0; i < batch.features.size(); ++i) SettleScriptReply(batch.features[i], *r->element[i], &again);
    }
  } else {
    ReplyPtr mark = next();
    ReplyPtr mark_ttl = next();
    if (!mark || !mark_ttl) return ReadResult::kConnectionLost;
    // Without its mark a plain write could be newer than the marks say:
    // resend the batch through the guard (harmless for what did land).
    const bool unmarked = mark->type == REDIS_REPLY_ERROR;
    if (unmarked) {
      error_replies.fetch_add(1);
      NoteError(ReplyText(*mark), "retrying");
      if (ClassifyRedisError(ReplyText(*mark)) == RedisErrorKind::kTransientReconnect) reconnect_before_retry = true;
    }
    for (const FeatureWrite& f : batch.features) {
      ReplyPtr hset = next();
      ReplyPtr expire = hset ? next() : nullptr;
      if (!hset || !expire) return ReadResult::kConnectionLost;
      if (unmarked) {
        if (hset->type == REDIS_REPLY_ERROR) error_replies.fetch_add(1);
        again.push_back(f);
        continue;
      }
      Settle(f, hset.get(), expire.get(), &again);
    }
  }
  const double latency_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - batch.first_sent).count();
  if (!batch.retry) settled += batch.features.size();
  if (batch.retry) retry.clear();
  for (FeatureWrite& f : again) retry.push_back(std::move(f));
  if (retry.empty()) {
    retry_backoff_ms = 0;
    retry_rounds = 0;
  }
  {
    std::lock_guard lock(mu);
    batch_latency.Observe(latency_ms);
    if (retry.empty()) {
      acked += settled;
      settled = 0;
    }
  }
  progressed.notify_all();
  return ReadResult::kDone;
}

bool RedisSink::Impl::Pause(int64_t ms) {
  std::unique_lock lock(mu);
  return !not_full.wait_for(lock, std::chrono::milliseconds(ms), [&] { return discarding; });
}

bool RedisSink::Impl::Recover() {
  if (connection) {
    connection_errors.fetch_add(1);
    const std::string problem = connection->err != 0 ? std::string(connection->errstr) : "reconnecting";
    spdlog::warn("redis sink: connection lost ({}); resending {} unacknowledged batches", problem, in_flight.size());
    {
      std::lock_guard lock(mu);
      last_error = absl::StrCat("connection lost: ", problem);
      last_error_ms = Clock::Real().WallMs();
    }
    connection.reset();
  }
  int64_t backoff_ms = 100;
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<RedisContextPtr> c = Connect();
    if (c.ok()) {
      connection = std::move(*c);
      bool sent = true;
      for (Batch& batch : in_flight) {
        // Some of it may have landed, and newer writes after it: only the
        // guard may put it there again.
        batch.guarded = true;
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
    } else if (absl::IsFailedPrecondition(c.status())) {
      spdlog::error("redis sink: fenced out: {}; this attempt writes nothing more", c.status().message());
      {
        std::lock_guard lock(mu);
        superseded_by = fenced_by;
        discarding = true;
        dropped += queue.size();
        queue.clear();
      }
      not_full.notify_all();
      progressed.notify_all();
      return false;
    } else {
      connection_errors.fetch_add(1);
      {
        std::lock_guard lock(mu);
        last_error = std::string(c.status().message());
        last_error_ms = Clock::Real().WallMs();
      }
      spdlog::warn("redis sink: {} (retrying in {} ms)", c.status().message(), backoff_ms);
    }
    {
      std::unique_lock lock(mu);
      // Give up only when stopping and Redis stays away for long, or at
      // once when discarding.
      if ((stopping && attempt > 20) || discarding) return false;
    }
    if (!Pause(backoff_ms)) return false;
    backoff_ms = std::min<int64_t>(backoff_ms * 2, 5000);
  }
}

void RedisSink::Impl::Run() {
  for (;;) {
    if (!connection && in_flight.empty()) {
      {
        std::unique_lock lock(mu);
        // Connect lazily, but before anything is sent: the handshake fences
        // older attempts and reads the marks first.
        not_empty.wait(lock, [&] { return stopping || discarding || !queue.empty() || !retry.empty(); });
        if (discarding || (stopping && queue.empty() && retry.empty())) return;
      }
      if (!Recover()) return GiveUp();
      continue;
    }
    if (!retry.empty()) {
      if (in_flight.empty()) {
        // Redis said "not now": wait, then resend what it refused, guarded.
        {
          std::lock_guard lock(mu);
          // Stopping (not cancelled): give up after about a minute of refusals.
          if (stopping && ++retry_rounds > 30) return GiveUp();
        }
        retry_backoff_ms = retry_backoff_ms == 0 ? 50 : std::min<int64_t>(retry_backoff_ms * 2, 2000);
        if (!Pause(retry_backoff_ms)) return GiveUp();
        if (reconnect_before_retry) {
          reconnect_before_retry = false;
          if (!Recover()) return GiveUp();
        }
        Batch batch;
        batch.features = retry;  // kept in `retry` until the replies are read
        batch.guarded = true;
        batch.retry = true;
        batch.first_sent = std::chrono::steady_clock::now();
        in_flight.push_back(std::move(batch));
        if (!Send(in_flight.back()) && !Recover()) return GiveUp();
      }
    } else {
      // Keep up to kMaxInFlight batches sent ahead of their replies, so Redis
      // works on one batch while we format the next and read replies.
      while (in_flight.size() < kMaxBatchesInFlight) {
        Batch batch;
        {
          std::unique_lock lock(mu);
          if (in_flight.empty()) not_empty.wait(lock, [&] { return stopping || discarding || !queue.empty(); });
          if (discarding && in_flight.empty()) return;
          if (queue.empty() || discarding) {
            if (in_flight.empty() && stopping) return;
            break;
          }
          const size_t n = std::min<size_t>(queue.size(), options.batch_size);
          batch.features.reserve(n);
          for (size_t i = 0; i < n; ++i) {
            batch.guarded = batch.guarded || queue.front().order <= guard_up_to;
            batch.features.push_back(std::move(queue.front()));
            queue.pop_front();
          }
        }
        not_full.notify_all();
        batch.first_sent = std::chrono::steady_clock::now();
        in_flight.push_back(std::move(batch));
        if (!Send(in_flight.back())) {
          if (!Recover()) return GiveUp();
        }
      }
    }
    if (in_flight.empty()) continue;
    switch (ReadReplies(in_flight.front())) {
      case ReadResult::kDone:
        in_flight.pop_front();
        break;
      case ReadResult::kConnectionLost:
        if (!Recover()) return GiveUp();
        break;
      case ReadResult::kScriptMissing:
        // Redis lost its script cache (a restart, SCRIPT FLUSH): reconnect,
        // which loads the scripts again and resends.
        if (!Recover()) return GiveUp();
        break;
    }
  }
}

void RedisSink::Impl::GiveUp() {
  size_t lost = retry.size();
  for (const Batch& batch : in_flight) lost += batch.retry ? 0 : batch.features.size();
  bool discarded;
  {
    std::lock_guard lock(mu);
    discarded = discarding;
  }
  if (discarded) {
    spdlog::info("redis sink: {} features of a cancelled or superseded attempt not acknowledged (its successor "
                 "replays them)",
                 lost);
  } else {
    spdlog::error("redis sink: stopping with {} features not written: Redis unreachable or refusing writes", lost);
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
  impl->client_name = WriterClientName(options.job_id, options.attempt, options.writer_index);
  absl::StatusOr<RedisContextPtr> c = impl->Connect();
  if (c.ok()) {
    impl->connection = std::move(*c);
  } else if (absl::IsUnavailable(c.status())) {
    // Redis may come up after us: the writer keeps retrying and holds the
    // pipeline back meanwhile, exactly as after a connection loss.
    spdlog::warn("redis sink: {}; retrying in the background", c.status().message());
  } else {
    // AUTH or SELECT refused (a configuration error), or fenced out.
    return c.status();
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
  impl_->not_empty.notify_all();
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

std::optional<int64_t> RedisSink::Superseded() const {
  std::lock_guard lock(impl_->mu);
  return impl_->superseded_by;
}

RedisSinkStats RedisSink::stats() const {
  RedisSinkStats s;
  std::lock_guard lock(impl_->mu);
  s.features_written = static_cast<int64_t>(impl_->acked);
  s.queued = static_cast<int64_t>(impl_->queue.size());
  s.pending = static_cast<int64_t>(impl_->enqueued - impl_->acked);
  s.features_kept_newer = impl_->kept_newer.load();
  s.features_rejected = impl_->rejected.load();
  s.features_guarded = impl_->guarded.load();
  s.error_replies = impl_->error_replies.load();
  s.connection_errors = impl_->connection_errors.load();
  s.last_error = impl_->last_error;
  s.last_error_ms = impl_->last_error_ms;
  s.batch_latency = impl_->batch_latency;
  return s;
}

}  // namespace slipstream
