#include "tests/integration/redis_client.h"

#include <algorithm>

#include <hiredis/hiredis.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"

namespace slipstream::it {

redisReply* CommandArgv(redisContext* ctx, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return static_cast<redisReply*>(redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data()));
}

namespace {
struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r) freeReplyObject(r);
  }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

absl::StatusOr<ReplyPtr> RunCommand(redisContext* ctx, const std::vector<std::string>& args) {
  ReplyPtr reply(CommandArgv(ctx, args));
  if (!reply) return absl::UnavailableError(absl::StrCat("redis: ", ctx->errstr));
  if (reply->type == REDIS_REPLY_ERROR) {
    return absl::InternalError(absl::StrCat("redis ", args[0], ": ", std::string(reply->str, reply->len)));
  }
  return reply;
}

absl::StatusOr<std::map<std::string, std::string>> HashFromReply(const redisReply* reply) {
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0) {
    return absl::InternalError("redis HGETALL: unexpected reply type");
  }
  std::map<std::string, std::string> out;
  for (size_t i = 0; i + 1 < reply->elements; i += 2) {
    out[std::string(reply->element[i]->str, reply->element[i]->len)] =
        std::string(reply->element[i + 1]->str, reply->element[i + 1]->len);
  }
  return out;
}
}  // namespace

absl::StatusOr<std::unique_ptr<RedisClient>> RedisClient::Connect(const std::string& host, int port, int db) {
  timeval tv{10, 0};
  redisContext* ctx = redisConnectWithTimeout(host.c_str(), port, tv);
  if (ctx == nullptr) return absl::UnavailableError("redis: out of memory");
  if (ctx->err) {
    std::string err = ctx->errstr;
    redisFree(ctx);
    return absl::UnavailableError(absl::StrCat("redis: cannot connect to ", host, ":", port, ": ", err));
  }
  redisSetTimeout(ctx, tv);
  std::unique_ptr<RedisClient> client(new RedisClient(ctx));
  absl::StatusOr<ReplyPtr> r = RunCommand(ctx, {"SELECT", absl::StrCat(db)});
  if (!r.ok()) return r.status();
  return client;
}

RedisClient::~RedisClient() { redisFree(ctx_); }

absl::StatusOr<std::string> RedisClient::Command(const std::vector<std::string>& args) {
  absl::StatusOr<ReplyPtr> r = RunCommand(ctx_, args);
  if (!r.ok()) return r.status();
  if ((*r)->type == REDIS_REPLY_INTEGER) return absl::StrCat((*r)->integer);
  return (*r)->str == nullptr ? std::string() : std::string((*r)->str, (*r)->len);
}

absl::Status RedisClient::FlushDb() { return RunCommand(ctx_, {"FLUSHDB"}).status(); }

absl::StatusOr<int64_t> RedisClient::FeatureKeyCount() {
  absl::StatusOr<ReplyPtr> size = RunCommand(ctx_, {"DBSIZE"});
  if (!size.ok()) return size.status();
  // slipstream:writers, or on a cluster master slipstream:writers:{<tag>}.
  absl::StatusOr<std::vector<std::string>> bookkeeping = Keys("slipstream:writers*");
  if (!bookkeeping.ok()) return bookkeeping.status();
  return (*size)->integer - static_cast<int64_t>(bookkeeping->size());
}

absl::StatusOr<std::vector<std::string>> RedisClient::FeatureKeys() {
  absl::StatusOr<std::vector<std::string>> keys = Keys("*");
  if (keys.ok()) {
    keys->erase(std::remove_if(keys->begin(), keys->end(),
                               [](const std::string& k) { return k.rfind("slipstream:writers", 0) == 0; }),
                keys->end());
  }
  return keys;
}

absl::StatusOr<std::vector<std::string>> RedisClient::Keys(const std::string& pattern) {
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    absl::StatusOr<ReplyPtr> r = RunCommand(ctx_, {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    if (!r.ok()) return r.status();
    const redisReply* reply = r->get();
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) return absl::InternalError("redis SCAN: bad reply");
    cursor.assign(reply->element[0]->str, reply->element[0]->len);
    const redisReply* batch = reply->element[1];
    for (size_t i = 0; i < batch->elements; ++i) keys.emplace_back(batch->element[i]->str, batch->element[i]->len);
  } while (cursor != "0");
  return keys;
}

absl::StatusOr<std::map<std::string, std::string>> RedisClient::HGetAll(const std::string& key) {
  absl::StatusOr<ReplyPtr> r = RunCommand(ctx_, {"HGETALL", key});
  if (!r.ok()) return r.status();
  return HashFromReply(r->get());
}

absl::StatusOr<int64_t> RedisClient::Ttl(const std::string& key) {
  absl::StatusOr<ReplyPtr> r = RunCommand(ctx_, {"TTL", key});
  if (!r.ok()) return r.status();
  return (*r)->integer;
}

absl::Status RedisClient::Echo(const std::string& text) { return RunCommand(ctx_, {"ECHO", text}).status(); }

absl::Status RedisClient::HGetAllMany(const std::vector<std::string>& keys,
                                      std::vector<std::map<std::string, std::string>>* hashes,
                                      std::vector<int64_t>* ttls) {
  hashes->clear();
  ttls->clear();
  constexpr size_t kChunk = 500;
  for (size_t begin = 0; begin < keys.size(); begin += kChunk) {
    const size_t end = std::min(keys.size(), begin + kChunk);
    for (size_t i = begin; i < end; ++i) {
      const char* hgetall[] = {"HGETALL", keys[i].data()};
      const size_t hgetall_lens[] = {7, keys[i].size()};
      redisAppendCommandArgv(ctx_, 2, hgetall, hgetall_lens);
      const char* ttl[] = {"TTL", keys[i].data()};
      const size_t ttl_lens[] = {3, keys[i].size()};
      redisAppendCommandArgv(ctx_, 2, ttl, ttl_lens);
    }
    for (size_t i = begin; i < end; ++i) {
      void* raw = nullptr;
      if (redisGetReply(ctx_, &raw) != REDIS_OK) return absl::UnavailableError(absl::StrCat("redis: ", ctx_->errstr));
      ReplyPtr hash(static_cast<redisReply*>(raw));
      if (redisGetReply(ctx_, &raw) != REDIS_OK) return absl::UnavailableError(absl::StrCat("redis: ", ctx_->errstr));
      ReplyPtr ttl(static_cast<redisReply*>(raw));
      absl::StatusOr<std::map<std::string, std::string>> h = HashFromReply(hash.get());
      if (!h.ok()) return h.status();
      hashes->push_back(std::move(*h));
      ttls->push_back(ttl->type == REDIS_REPLY_INTEGER ? ttl->integer : -3);
    }
  }
  return absl::OkStatus();
}

bool ParseMonitorLine(const std::string& line, int* db, std::vector<std::string>* args) {
  args->clear();
  const size_t open = line.find('[');
  if (open == std::string::npos) return false;
  size_t pos = open + 1;
  int value = 0;
  bool digits = false;
  while (pos < line.size() && line[pos] >= '0' && line[pos] <= '9') {
    value = value * 10 + (line[pos++] - '0');
    digits = true;
  }
  if (!digits) return false;
  *db = value;
  const size_t close = line.find("] ", pos);
  if (close == std::string::npos) return false;
  pos = close + 2;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  while (pos < line.size()) {
    if (line[pos] == ' ') {
      ++pos;
      continue;
    }
    if (line[pos] != '"') return false;
    ++pos;
    std::string arg;
    bool closed = false;
    while (pos < line.size()) {
      const char c = line[pos++];
      if (c == '"') {
        closed = true;
        break;
      }
      if (c != '\\') {
        arg += c;
        continue;
      }
      if (pos >= line.size()) return false;
      const char e = line[pos++];
      switch (e) {
        case 'n': arg += '\n'; break;
        case 'r': arg += '\r'; break;
        case 't': arg += '\t'; break;
        case 'a': arg += '\a'; break;
        case 'b': arg += '\b'; break;
        case 'x': {
          if (pos + 1 >= line.size() || hex(line[pos]) < 0 || hex(line[pos + 1]) < 0) return false;
          arg += static_cast<char>(hex(line[pos]) * 16 + hex(line[pos + 1]));
          pos += 2;
          break;
        }
        default: arg += e; break;  // \\ and \"
      }
    }
    if (!closed) return false;
    args->push_back(std::move(arg));
  }
  return !args->empty();
}

struct RedisMonitor::State {
  redisContext* ctx = nullptr;
  int db = 0;
  std::string marker;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Command> commands;  // guarded by mu
  bool marker_seen = false;       // guarded by mu
  std::string error;              // guarded by mu; set when the reader stops early
  bool stopped = false;           // guarded by mu
  std::thread reader;

  void Read() {
    for (;;) {
      void* raw = nullptr;
      if (redisGetReply(ctx, &raw) != REDIS_OK || raw == nullptr) {
        std::lock_guard lock(mu);
        if (!marker_seen) error = std::string("MONITOR connection: ") + ctx->errstr;
        stopped = true;
        cv.notify_all();
        return;
      }
      ReplyPtr reply(static_cast<redisReply*>(raw));
      if (reply->type != REDIS_REPLY_STATUS) continue;
      const std::string line(reply->str, reply->len);
      int line_db = -1;
      Command command;
      if (!ParseMonitorLine(line, &line_db, &command.args) || line_db != db) continue;
      command.origin = line.substr(0, std::min(line.find(']'), line.size()) + 1);
      std::lock_guard lock(mu);
      if (marker_seen) continue;
      if (command.args.size() == 2 && command.args[1] == marker) {
        marker_seen = true;
        cv.notify_all();
        continue;
      }
      commands.push_back(std::move(command));
    }
  }
};

RedisMonitor::RedisMonitor(std::unique_ptr<State> state) : state_(std::move(state)) {}

absl::StatusOr<std::unique_ptr<RedisMonitor>> RedisMonitor::Start(const std::string& host, int port, int db) {
  auto state = std::make_unique<State>();
  timeval tv{10, 0};
  state->ctx = redisConnectWithTimeout(host.c_str(), port, tv);
  if (state->ctx == nullptr || state->ctx->err) {
    std::string err = state->ctx ? state->ctx->errstr : "out of memory";
    if (state->ctx) redisFree(state->ctx);
    return absl::UnavailableError(absl::StrCat("redis MONITOR: cannot connect to ", host, ":", port, ": ", err));
  }
  state->db = db;
  std::random_device rd;
  state->marker = absl::StrCat("slipstream-it-monitor-end-", rd(), "-", rd());
  absl::StatusOr<ReplyPtr> ok = RunCommand(state->ctx, {"MONITOR"});
  if (!ok.ok()) {
    redisFree(state->ctx);
    return ok.status();
  }
  // Blocking reads without a timeout: the destructor unblocks the reader by
  // shutting the socket down.
  redisSetTimeout(state->ctx, timeval{0, 0});
  State* raw = state.get();
  state->reader = std::thread([raw] { raw->Read(); });
  return std::unique_ptr<RedisMonitor>(new RedisMonitor(std::move(state)));
}

RedisMonitor::~RedisMonitor() {
  shutdown(state_->ctx->fd, SHUT_RDWR);
  if (state_->reader.joinable()) state_->reader.join();
  redisFree(state_->ctx);
}

absl::StatusOr<std::vector<RedisMonitor::Command>> RedisMonitor::Finish(RedisClient& client, int timeout_ms) {
  if (absl::Status s = client.Echo(state_->marker); !s.ok()) return s;
  std::unique_lock lock(state_->mu);
  if (!state_->cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                           [&] { return state_->marker_seen || state_->stopped; })) {
    return absl::DeadlineExceededError("redis MONITOR: the end marker did not arrive");
  }
  if (!state_->marker_seen) return absl::UnavailableError(state_->error);
  return std::move(state_->commands);
}

absl::StatusOr<std::vector<RedisMonitor::Command>> RedisMonitor::FinishAfterServerDied(int timeout_ms) {
  std::unique_lock lock(state_->mu);
  if (!state_->cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return state_->stopped; })) {
    return absl::FailedPreconditionError("redis MONITOR: the connection is still open (the server runs)");
  }
  return std::move(state_->commands);
}

int64_t MonitorTimeUs(const std::string& origin) {
  // "1700000000.123456 [0 127.0.0.1:50000]": Redis prints the microseconds
  // with six digits.
  const size_t dot = origin.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 7 > origin.size()) return -1;
  int64_t seconds = 0;
  for (size_t i = 0; i < dot; ++i) {
    if (origin[i] < '0' || origin[i] > '9') return -1;
    seconds = seconds * 10 + (origin[i] - '0');
  }
  int64_t micros = 0;
  for (size_t i = dot + 1; i < dot + 7; ++i) {
    if (origin[i] < '0' || origin[i] > '9') return -1;
    micros = micros * 10 + (origin[i] - '0');
  }
  return seconds * 1000000 + micros;
}

std::string MonitorClient(const std::string& origin) {
  const size_t open = origin.find('[');
  const size_t space = origin.find(' ', open == std::string::npos ? 0 : open);
  const size_t close = origin.find(']', space == std::string::npos ? 0 : space);
  if (open == std::string::npos || space == std::string::npos || close == std::string::npos) return "";
  return origin.substr(space + 1, close - space - 1);
}

}  // namespace slipstream::it
