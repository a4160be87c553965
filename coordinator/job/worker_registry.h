// WorkerRegistry: the workers the coordinator knows (Flink's
// ResourceManager view of its TaskManagers): registration, heartbeats and
// their counters, workers that leave on purpose, workers lost (silent for
// heartbeat.timeout, refusing connections, or not cancelling a task in
// task.cancellation.timeout) and the reason each forgotten worker is told.
//
// Not thread-safe: the coordinator service calls it under its lock. Time
// comes from the caller (the lifecycle's clock).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "proto/slipstream.pb.h"

namespace slipstream {

struct WorkerEntry {
  std::string id;
  int64_t sequence = 0;  // registration order: stable worker indices
  v1::RegisterWorkerRequest registration;
  v1::Assignment assignment;    // empty (attempt 0) unless in the running attempt
  v1::WorkerCounters counters;  // counters.attempt: the task it runs (0: idle)
  int64_t registered_at_ms = 0;
  int64_t last_heartbeat_ms = 0;
  int64_t report_seq = 0;      // event sequence of its last registration or heartbeat
  int64_t stale_since_ms = 0;  // runs a task it should cancel since then (0: it does not)
  int64_t finished_attempt = 0;  // bounded: the attempt whose input it finished (latest report)
  bool in_attempt() const { return assignment.attempt() != 0; }
  // Runs a task, and not the one it is assigned.
  bool runs_stale_task() const {
    return counters.attempt() != 0 && !(in_attempt() && assignment.attempt() == counters.attempt());
  }
};

// A worker the registry dropped: why, and whether it was in the attempt.
struct DroppedWorker {
  std::string id;
  std::string cause;
  bool in_attempt = false;
};

// A worker to probe: its data endpoint and the heartbeat the probe is about.
struct ProbeTarget {
  std::string id;
  std::string host;
  int port = 0;
  int64_t last_heartbeat_ms = 0;
};

struct WorkerRegistryOptions {
  int64_t heartbeat_timeout_ms = 10000;
  int64_t cancellation_timeout_ms = 180000;  // 0: never
  int max_parallelism = 128;                 // at most this many workers get a deployment
};

class WorkerRegistry {
 public:
  explicit WorkerRegistry(WorkerRegistryOptions options) : options_(options) {}

  // A new worker: a fresh id (host:port-<hex>), idle.
  const WorkerEntry& Register(const v1::RegisterWorkerRequest& request, int64_t now);

  // A heartbeat from a known worker: its counters (a failure report names
  // the failed attempt, which has stopped: kept as attempt 0), channel
  // changes logged. Nothing for an unknown worker.
  struct Heartbeat {
    WorkerEntry* worker;
    int64_t previous_attempt;  // the task it ran before this report
    int64_t failed_attempt;    // the attempt a failure_cause is about (0: none)
  };
  std::optional<Heartbeat> RecordHeartbeat(const v1::HeartbeatRequest& request, int64_t now);

  WorkerEntry* Find(const std::string& id);
  // Removes a known worker; false if unknown.
  bool Remove(const std::string& id);
  // Removes a worker and remembers why, for its next heartbeat.
  void Drop(const std::string& id, const std::string& cause);
  // Why a worker was dropped (the heartbeat answer's reason), if it was.
  std::optional<std::string> ForgottenReason(const std::string& id) const;

  // A worker left while its task still runs: no deployment until it says
  // the task stopped (FinishLeaving) or heartbeat.timeout passed.
  void MarkLeaving(const std::string& id, int64_t now) { leaving_[id] = now; }
  bool FinishLeaving(const std::string& id) { return leaving_.erase(id) > 0; }

  // Drops workers silent for longer than heartbeat.timeout and workers that
  // did not cancel a stale task within task.cancellation.timeout; forgets
  // leaving workers that never said their task stopped.
  std::vector<DroppedWorker> ExpireSilent(int64_t now);

  // Workers silent for `silence_ms`, and those a restart waits for.
  std::vector<ProbeTarget> ProbeTargets(int64_t now, int64_t silence_ms, bool restarting) const;
  // Drops the probed worker when it has not spoken since the probe was
  // planned; the dropped worker, if so.
  std::optional<DroppedWorker> DropRefused(const ProbeTarget& target);

  // The attempt ended or the job did: every assignment cleared, and the
  // reports that follow tell whether each worker stopped its task.
  void ClearAssignments(int64_t now);

  // Idle for the next deployment: its latest report came after the last
  // attempt ended and says it runs no task.
  bool ReadyForDeployment(const WorkerEntry& w) const {
    return w.counters.attempt() == 0 && w.report_seq > end_seq_;
  }
  // Why each worker is not ready for the next deployment (empty: all are).
  std::vector<std::string> Busy(int64_t ended_attempt) const;

  int size() const { return static_cast<int>(workers_.size()); }
  int AttemptWorkerCount() const;
  // Bounded: the attempt has workers, and every one of them reported that
  // its task of `attempt` finished its input.
  bool AttemptFinished(int64_t attempt) const;
  // Workers registered but not in the running attempt that the next
  // deployment would use (it takes at most max_parallelism workers).
  int JoinedWorkerCount() const;
  // Every worker not in the attempt is ready for a deployment.
  bool JoinedWorkersReady() const;
  // Attempt workers by index, then standbys by registration order.
  std::vector<const WorkerEntry*> InOrder() const;
  // The workers of the next deployment: registration order, at most
  // max_parallelism (more would leave some without key groups).
  std::vector<WorkerEntry*> ForDeployment();

  int64_t last_registration_ms() const { return last_registration_ms_; }

 private:
  void UpdateStale(WorkerEntry& w, int64_t now);

  const WorkerRegistryOptions options_;
  std::map<std::string, WorkerEntry> workers_;
  // Workers that left on purpose while their task still ran (SIGTERM):
  // no longer part of the job, but no attempt is deployed until each says
  // its task has stopped (a second DeregisterWorker) or `heartbeat.timeout`
  // passed. Worker id -> when it left.
  std::map<std::string, int64_t> leaving_;
  std::map<std::string, std::string> forgotten_;  // worker id -> why it was dropped
  int64_t registrations_ = 0;
  int64_t last_registration_ms_ = 0;
  int64_t events_ = 0;   // sequence of registrations, heartbeats and attempt ends
  int64_t end_seq_ = 0;  // event sequence of the last attempt end
};

// True when host:port actively refuses a TCP connection: no process listens
// there any more (a worker that died, or restarted on another port). False
// when it accepts, or when the outcome is unknown within `timeout_ms` (a hung
// or partitioned worker: the heartbeat timeout decides about those).
bool ConnectionRefused(const std::string& host, int port, int timeout_ms);

}  // namespace slipstream
