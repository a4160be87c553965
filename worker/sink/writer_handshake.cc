#include "worker/sink/writer_handshake.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/absl_compat.h"
#include "spdlog/spdlog.h"
#include "worker/sink/redis_write_guard.h"

namespace slipstream {

namespace {

// A Redis that is loading or refusing writes comes back: Unavailable makes
// the caller retry the connection.
absl::Status Transient(const absl::Status& s) {
  if (absl::IsUnavailable(s)) return s;
  return absl::UnavailableError(absl::StrCat("redis: ", s.message()));
}

}  // namespace

WriterHandshake::WriterHandshake(const RedisSinkOptions& options)
    : job_id_(options.job_id),
      attempt_(options.attempt),
      client_name_(WriterClientName(options.job_id, options.attempt, options.writer_index)) {}

absl::Status WriterHandshake::Run(redis::Connection& conn, std::string_view writers_key) {
  const std::string key(writers_key);
  for (auto step : {&WriterHandshake::NameConnection, &WriterHandshake::LoadScripts, &WriterHandshake::RaiseFence,
                    &WriterHandshake::CloseOlderAttempts, &WriterHandshake::ReadHighWaterMarks}) {
    if (absl::Status s = (this->*step)(conn, key); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status WriterHandshake::NameConnection(redis::Connection& conn, const std::string& writers_key) {
  if (absl::StatusOr<redis::ReplyPtr> r = conn.Command({"CLIENT", "SETNAME", client_name_}); !r.ok()) {
    if (absl::IsUnavailable(r.status())) return r.status();
    spdlog::warn("redis sink: CLIENT SETNAME refused ({}): older attempts cannot be cut off", r.status().message());
  }
  return absl::OkStatus();
}

absl::Status WriterHandshake::LoadScripts(redis::Connection& conn, const std::string& writers_key) {
  for (auto [script, sha] : {std::pair{kGuardedWriteScript, &guarded_sha_}, std::pair{kFenceScript, &fence_sha_}}) {
    absl::StatusOr<redis::ReplyPtr> r = conn.Command({"SCRIPT", "LOAD", script});
    if (!r.ok()) return Transient(r.status());
    *sha = redis::ReplyText(**r);
  }
  return absl::OkStatus();
}

absl::Status WriterHandshake::RaiseFence(redis::Connection& conn, const std::string& writers_key) {
  absl::StatusOr<redis::ReplyPtr> fence =
      conn.Command({"EVALSHA", fence_sha_, "1", writers_key, job_id_, absl::StrCat(attempt_),
                           absl::StrCat(kWritersKeyTtlSeconds)});
  if (!fence.ok()) return Transient(fence.status());
  if ((*fence)->type == REDIS_REPLY_INTEGER && (*fence)->integer > attempt_) {
    fenced_by_ = (*fence)->integer;
    return absl::FailedPreconditionError(absl::StrCat("attempt ", (*fence)->integer, " of job ", job_id_,
                                                      " writes to Redis now (this is attempt ", attempt_, ")"));
  }
  return absl::OkStatus();
}

// Cuts off the older attempts' connections: whatever they still send is
// dropped with them, and they find the fence when they reconnect.
absl::Status WriterHandshake::CloseOlderAttempts(redis::Connection& conn, const std::string& writers_key) {
  absl::StatusOr<redis::ReplyPtr> list = conn.Command({"CLIENT", "LIST", "TYPE", "normal"});
  if (absl::IsUnavailable(list.status())) return list.status();
  if (!list.ok()) {
    spdlog::warn("redis sink: CLIENT LIST refused ({}): older attempts are fenced when they reconnect only",
                 list.status().message());
    return absl::OkStatus();
  }
  const std::string clients = redis::ReplyText(**list);
  for (absl::string_view line : absl::StrSplit(clients, '\n')) {
    absl::string_view id, name;
    for (absl::string_view field : absl::StrSplit(line, ' ')) {
      if (absl::StartsWith(field, "id=")) id = field.substr(3);
      if (absl::StartsWith(field, "name=")) name = field.substr(5);
    }
    const int64_t attempt = AttemptOfWriterClient(ToStd(name), job_id_);
    if (attempt < 0 || attempt >= attempt_ || id.empty()) continue;
    if (conn.Command({"CLIENT", "KILL", "ID", std::string(id)}).ok()) {
      spdlog::info("redis sink: closed the connection of attempt {} ({})", attempt, name);
    }
  }
  return absl::OkStatus();
}

// Once per writers key: later connections keep what the first one read.
absl::Status WriterHandshake::ReadHighWaterMarks(redis::Connection& conn, const std::string& writers_key) {
  if (marks_read_.contains(writers_key)) return absl::OkStatus();
  absl::StatusOr<redis::ReplyPtr> marks = conn.Command({"HGETALL", writers_key});
  if (absl::IsUnavailable(marks.status())) return marks.status();
  if (marks.ok() && (*marks)->type == REDIS_REPLY_ARRAY) {
    int64_t highest = std::numeric_limits<int64_t>::min();
    for (size_t i = 0; i + 1 < (*marks)->elements; i += 2) {
      const std::string field = redis::ReplyText(*(*marks)->element[i]);
      int64_t value = 0;
      if (absl::StartsWith(field, ToAbsl(kHighWaterPrefix)) &&
          absl::SimpleAtoi(redis::ReplyText(*(*marks)->element[i + 1]), &value)) {
        highest = std::max(highest, value);
      }
    }
    highest_mark_read_ = std::max(highest_mark_read_, highest);
    if (!marks_unreadable_) guard_up_to_ = highest_mark_read_;
    spdlog::info("redis sink: {}: {}", writers_key,
                 highest_mark_read_ == std::numeric_limits<int64_t>::min()
                     ? std::string("no earlier writes recorded: every write is plain")
                     : absl::StrCat("writes up to order ", highest_mark_read_,
                                    " are guarded against newer stored versions"));
  } else {
    spdlog::warn("redis sink: cannot read the high-water marks in {} ({}): every write is guarded", writers_key,
                 marks.ok() ? "not a hash" : std::string(marks.status().message()));
    marks_unreadable_ = true;
    guard_up_to_ = std::numeric_limits<int64_t>::max();
  }
  marks_read_.insert(writers_key);
  return absl::OkStatus();
}

}  // namespace slipstream
