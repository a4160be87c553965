// TaskControlClient: the checkpoint coordinator's calls to the workers'
// TaskControl service (trigger, notify complete, abort, cancel a task). It
// keeps one stub per worker endpoint and tracks every call in flight, so
// Stop can cancel them and wait for their callbacks (which run on gRPC's
// threads) before anything they use goes away.
//
// Thread-safety: the stub cache is not locked; one thread (the checkpoint
// coordinator's driver: its internal thread, or the caller of Tick) makes
// the calls. CancelInFlight and WaitIdle may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proto/slipstream.grpc.pb.h"

namespace slipstream {

// Makes a TaskControl client for a worker's data endpoint "host:port".
using TaskControlStubFactory =
    std::function<std::unique_ptr<v1::TaskControl::StubInterface>(const std::string& target)>;

// The default factory: an insecure gRPC channel to `target`.
std::unique_ptr<v1::TaskControl::StubInterface> MakeTaskControlStub(const std::string& target);

class TaskControlClient {
 public:
  // The answers to a TriggerCheckpoint fan-out.
  struct TriggerResult {
    std::vector<std::string> errors;  // one per worker whose call failed, naming it
    // Errors that only say the worker's task is not (yet, or no longer)
    // running this attempt: FAILED_PRECONDITION.
    size_t not_running = 0;
  };

  // `make_stub` empty: MakeTaskControlStub. Each call's deadline is `rpc_timeout_ms`.
  TaskControlClient(TaskControlStubFactory make_stub, int64_t rpc_timeout_ms);
  ~TaskControlClient();  // CancelInFlight + WaitIdle
  TaskControlClient(const TaskControlClient&) = delete;
  TaskControlClient& operator=(const TaskControlClient&) = delete;

  // Sends `request` to every worker of `workers` at once and waits for all answers.
  TriggerResult TriggerAll(const std::vector<v1::PeerEndpoint>& workers, const v1::TriggerCheckpointRequest& request);
  // Best effort, not waited for: a failure is logged (Notify) or ignored.
  void NotifyCompleteAll(const std::vector<v1::PeerEndpoint>& workers, const v1::CheckpointNotification& note);
  void AbortAll(const std::vector<v1::PeerEndpoint>& workers, const v1::CheckpointNotification& note);
  void CancelTasks(const std::vector<v1::PeerEndpoint>& workers, const v1::CancelTaskRequest& request);

  // Cancels the calls in flight; calls started afterwards fail at once (CANCELLED).
  void CancelInFlight();
  // Waits until every call's callback has run.
  void WaitIdle();

 private:
  struct Tracker;
  std::shared_ptr<v1::TaskControl::StubInterface> StubFor(const v1::PeerEndpoint& worker);

  TaskControlStubFactory make_stub_;
  int64_t rpc_timeout_ms_;
  std::map<std::string, std::shared_ptr<v1::TaskControl::StubInterface>> stubs_;  // by "host:port"
  std::unique_ptr<Tracker> tracker_;
};

}  // namespace slipstream
