#include "coordinator/job/worker_registry.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/random_id.h"
#include "common/absl_compat.h"
#include "spdlog/spdlog.h"

namespace slipstream {
namespace {

constexpr size_t kMaxForgotten = 1000;

// Logs when a worker starts or stops having trouble with a data channel.
void ReportChannelChanges(const WorkerEntry& w, const v1::WorkerCounters& now) {
  std::map<std::pair<std::string, bool>, std::string> before;
  for (const v1::ChannelStatus& c : w.counters.channels()) before[{c.peer_worker_id(), c.outbound()}] = c.error();
  for (const v1::ChannelStatus& c : now.channels()) {
    const std::string& old = before[{c.peer_worker_id(), c.outbound()}];
    if (c.error() == old) continue;
    if (c.error().empty()) {
      spdlog::info("worker {}: channel {} peer {} works again", w.id, c.outbound() ? "to" : "from",
                   c.peer_worker_id());
    } else {
      spdlog::warn("worker {}: channel {} peer {}: {}", w.id, c.outbound() ? "to" : "from", c.peer_worker_id(),
                   c.error());
    }
  }
}

}  // namespace

const WorkerEntry& WorkerRegistry::Register(const v1::RegisterWorkerRequest& request, int64_t now) {
  WorkerEntry entry;
  entry.id = absl::StrCat(request.host(), ":", request.data_port(), "-", RandomHex(6));
  entry.sequence = ++registrations_;
  entry.registration = request;
  entry.registered_at_ms = now;
  entry.last_heartbeat_ms = now;
  entry.report_seq = ++events_;  // a registering worker runs no task
  last_registration_ms_ = now;
  const std::string id = entry.id;
  return workers_.emplace(id, std::move(entry)).first->second;
}

std::optional<WorkerRegistry::Heartbeat> WorkerRegistry::RecordHeartbeat(const v1::HeartbeatRequest& request,
                                                                        int64_t now) {
  auto it = workers_.find(request.worker_id());
  if (it == workers_.end()) return std::nullopt;
  WorkerEntry& w = it->second;
  w.last_heartbeat_ms = now;
  w.report_seq = ++events_;
  ReportChannelChanges(w, request.counters());
  const int64_t previous_attempt = w.counters.attempt();
  w.counters = request.counters();
  if (request.finished_attempt() != 0 && request.finished_attempt() != w.finished_attempt) {
    spdlog::info("worker {} finished its bounded input of attempt {}", w.id, request.finished_attempt());
  }
  w.finished_attempt = request.finished_attempt();
  // A failure report names the failed attempt in counters.attempt; its
  // task has ended by then (a worker reports a failure only after that),
  // so the worker runs nothing: kept as attempt 0, it is not taken for a
  // task of an old attempt still running.
  const int64_t failed_attempt = request.failure_cause().empty() ? 0 : w.counters.attempt();
  if (!request.failure_cause().empty()) w.counters.set_attempt(0);
  UpdateStale(w, now);
  return Heartbeat{&w, previous_attempt, failed_attempt};
}

WorkerEntry* WorkerRegistry::Find(const std::string& id) {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : &it->second;
}

bool WorkerRegistry::Remove(const std::string& id) { return workers_.erase(id) > 0; }

void WorkerRegistry::Drop(const std::string& id, const std::string& cause) {
  if (forgotten_.size() >= kMaxForgotten) forgotten_.clear();
  forgotten_[id] = cause;
  workers_.erase(id);
}

std::optional<std::string> WorkerRegistry::ForgottenReason(const std::string& id) const {
  auto it = forgotten_.find(id);
  if (it == forgotten_.end()) return std::nullopt;
  return it->second;
}

std::vector<DroppedWorker> WorkerRegistry::ExpireSilent(int64_t now) {
  std::vector<DroppedWorker> dropped;
  for (const auto& [id, w] : workers_) {
    const int64_t age = now - w.last_heartbeat_ms;
    std::string cause;
    if (age > options_.heartbeat_timeout_ms) {
      cause = absl::StrCat("worker ", w.id, " lost: no heartbeat for ", age, " ms (heartbeat.timeout ",
                           options_.heartbeat_timeout_ms, " ms)");
      spdlog::warn("{}", cause);
    } else if (w.stale_since_ms != 0 && options_.cancellation_timeout_ms > 0 &&
               now - w.stale_since_ms > options_.cancellation_timeout_ms) {
      cause = absl::StrCat("worker ", w.id, " still runs its task of attempt ", w.counters.attempt(), " ",
                           now - w.stale_since_ms, " ms after it was told to cancel it (task.cancellation.timeout ",
                           options_.cancellation_timeout_ms, " ms)");
      spdlog::error("{}: dropping the worker (its next heartbeat is answered known=false)", cause);
    } else {
      continue;
    }
    dropped.push_back({w.id, std::move(cause), w.in_attempt()});
  }
  for (const DroppedWorker& d : dropped) Drop(d.id, d.cause);
  for (auto it = leaving_.begin(); it != leaving_.end();) {
    if (now - it->second <= options_.heartbeat_timeout_ms) {
      ++it;
      continue;
    }
    spdlog::warn("worker {} left {} ms ago and never said its task stopped (heartbeat.timeout {} ms): not waiting "
                 "for it any more",
                 it->first, now - it->second, options_.heartbeat_timeout_ms);
    it = leaving_.erase(it);
  }
  return dropped;
}

std::vector<ProbeTarget> WorkerRegistry::ProbeTargets(int64_t now, int64_t silence_ms, bool restarting) const {
  std::vector<ProbeTarget> targets;
  for (const auto& [id, w] : workers_) {
    const bool awaited = restarting && (w.runs_stale_task() || w.stale_since_ms != 0);
    if (now - w.last_heartbeat_ms >= silence_ms || awaited) {
      targets.push_back({id, w.registration.host(), w.registration.data_port(), w.last_heartbeat_ms});
    }
  }
  return targets;
}

std::optional<DroppedWorker> WorkerRegistry::DropRefused(const ProbeTarget& target) {
  auto it = workers_.find(target.id);
  if (it == workers_.end() || it->second.last_heartbeat_ms != target.last_heartbeat_ms) return std::nullopt;  // it spoke since
  DroppedWorker dropped{target.id,
                        absl::StrCat("worker ", target.id, " lost: its data endpoint ", target.host, ":",
                                     target.port, " refuses connections (the process is gone)"),
                        it->second.in_attempt()};
  spdlog::warn("{}", dropped.cause);
  Drop(target.id, dropped.cause);
  return dropped;
}

void WorkerRegistry::ClearAssignments(int64_t now) {
  end_seq_ = ++events_;
  for (auto& [id, w] : workers_) {
    w.assignment.Clear();
    UpdateStale(w, now);
  }
}

std::vector<std::string> WorkerRegistry::Busy(int64_t ended_attempt) const {
  std::vector<std::string> busy;
  for (const auto& [id, since] : leaving_) busy.push_back(absl::StrCat(id, " (left, its task still stopping)"));
  for (const auto& [id, w] : workers_) {
    if (ReadyForDeployment(w)) continue;
    busy.push_back(w.counters.attempt() != 0
                       ? absl::StrCat(id, " (still runs attempt ", w.counters.attempt(), ")")
                       : absl::StrCat(id, " (no heartbeat since attempt ", ended_attempt, " ended)"));
  }
  return busy;
}

bool WorkerRegistry::AttemptFinished(int64_t attempt) const {
  bool any = false;
  for (const auto& [id, w] : workers_) {
    if (!w.in_attempt() || w.assignment.attempt() != attempt) continue;
    if (w.finished_attempt != attempt) return false;
    any = true;
  }
  return any;
}

int WorkerRegistry::AttemptWorkerCount() const {
  int n = 0;
  for (const auto& [id, w] : workers_) n += w.in_attempt() ? 1 : 0;
  return n;
}

int WorkerRegistry::JoinedWorkerCount() const {
  const int usable = std::min<int>(size(), options_.max_parallelism);
  return std::max(0, usable - AttemptWorkerCount());
}

bool WorkerRegistry::JoinedWorkersReady() const {
  return std::all_of(workers_.begin(), workers_.end(),
                     [this](const auto& entry) { return entry.second.in_attempt() || ReadyForDeployment(entry.second); });
}

std::vector<const WorkerEntry*> WorkerRegistry::InOrder() const {
  std::vector<const WorkerEntry*> out;
  for (const auto& [id, w] : workers_) out.push_back(&w);
  std::sort(out.begin(), out.end(), [](const WorkerEntry* a, const WorkerEntry* b) {
    if (a->in_attempt() != b->in_attempt()) return a->in_attempt();
    if (a->in_attempt()) return a->assignment.worker_index() < b->assignment.worker_index();
    return a->sequence < b->sequence;
  });
  return out;
}

std::vector<WorkerEntry*> WorkerRegistry::ForDeployment() {
  std::vector<WorkerEntry*> ordered;
  for (auto& [id, w] : workers_) ordered.push_back(&w);
  std::sort(ordered.begin(), ordered.end(),
            [](const WorkerEntry* a, const WorkerEntry* b) { return a->sequence < b->sequence; });
  if (static_cast<int>(ordered.size()) > options_.max_parallelism) ordered.resize(options_.max_parallelism);
  return ordered;
}

void WorkerRegistry::UpdateStale(WorkerEntry& w, int64_t now) {
  if (!w.runs_stale_task()) {
    w.stale_since_ms = 0;
  } else if (w.stale_since_ms == 0) {
    w.stale_since_ms = now;
  }
}

bool ConnectionRefused(const std::string& host, int port, int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || found == nullptr) return false;
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, &freeaddrinfo);
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool refused = false;
  if (connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
    if (errno == ECONNREFUSED) {
      refused = true;
    } else if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, timeout_ms) == 1) {
        int error = 0;
        socklen_t length = sizeof(error);
        refused = getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == ECONNREFUSED;
      }
    }
  }
  close(fd);
  return refused;
}

}  // namespace slipstream
