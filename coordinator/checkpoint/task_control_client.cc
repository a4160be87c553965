#include "coordinator/checkpoint/task_control_client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace slipstream {

namespace {

using Stub = v1::TaskControl::StubInterface;

std::string Target(const v1::PeerEndpoint& worker) { return absl::StrCat(worker.host(), ":", worker.data_port()); }

struct RpcBase {
  virtual ~RpcBase() = default;
  grpc::ClientContext ctx;
};

template <typename Request, typename Response>
struct Rpc final : RpcBase {
  Request request;
  Response response;
  std::shared_ptr<Stub> stub;
};

template <typename Request, typename Response>
using AsyncMethod = void (Stub::async_interface::*)(grpc::ClientContext*, const Request*, Response*,
                                                    std::function<void(grpc::Status)>);
template <typename Request, typename Response>
using SyncMethod = grpc::Status (Stub::*)(grpc::ClientContext*, const Request&, Response*);

}  // namespace

// RPCs to workers that have not finished.
struct TaskControlClient::Tracker {
  // False once cancelled: the call must not start.
  bool Begin(std::shared_ptr<RpcBase> rpc) {
    std::lock_guard lock(mu);
    if (cancelled) return false;
    live.emplace(rpc.get(), std::move(rpc));
    return true;
  }
  // The call is destroyed here (outside the lock) when this held its last
  // reference, and before WaitIdle() can see `live` empty.
  void End(RpcBase* rpc) {
    std::shared_ptr<RpcBase> ended;
    std::unique_lock lock(mu);
    auto it = live.find(rpc);
    if (it == live.end()) return;
    ended = std::move(it->second);
    live.erase(it);
    ++ending;
    lock.unlock();
    ended.reset();
    lock.lock();
    --ending;
    if (live.empty() && ending == 0) cv.notify_all();
  }
  void CancelAll() {
    std::vector<std::shared_ptr<RpcBase>> calls;
    {
      std::lock_guard lock(mu);
      cancelled = true;
      for (const auto& [raw, rpc] : live) calls.push_back(rpc);
    }
    // Outside the lock: a cancelled call's callback may run inline.
    for (const auto& rpc : calls) rpc->ctx.TryCancel();
  }
  void WaitIdle() {
    std::unique_lock lock(mu);
    cv.wait(lock, [this] { return live.empty() && ending == 0; });
  }

  // Starts one unary call; `done` runs exactly once, on a gRPC thread
  // (inline when the call cannot start or the stub has no callback API).
  template <typename Request, typename Response>
  void Start(std::shared_ptr<Stub> stub, Request request, int64_t timeout_ms,
             std::type_identity_t<AsyncMethod<Request, Response>> async_method,
             std::type_identity_t<SyncMethod<Request, Response>> sync_method,
             std::function<void(const grpc::Status&)> done) {
    auto rpc = std::make_shared<Rpc<Request, Response>>();
    rpc->request = std::move(request);
    rpc->stub = stub;
    rpc->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
    if (!Begin(rpc)) {
      done(grpc::Status(grpc::StatusCode::CANCELLED, "the checkpoint coordinator is stopping"));
      return;
    }
    Stub::async_interface* async = stub->async();
    if (async == nullptr) {  // a hand-written stub without the callback API
      done(((*stub).*sync_method)(&rpc->ctx, rpc->request, &rpc->response));
      RpcBase* const call = rpc.get();
      rpc.reset();
      End(call);
      return;
    }
    Rpc<Request, Response>* raw = rpc.get();
    // The callback drops its reference before End(), so the call (its
    // context and its generated gRPC client, maybe the channel's last reference) is destroyed
    // inside End(), before WaitIdle() can return: never later, on a gRPC
    // thread, after the client is gone (a channel torn down then tripped
    // gRPC's "prior > 0" reference-count assertion in a test's teardown).
    (async->*async_method)(&raw->ctx, &raw->request, &raw->response,
                           [rpc = std::move(rpc), this, done = std::move(done)](grpc::Status status) mutable {
                             done(status);
                             RpcBase* const call = rpc.get();
                             rpc.reset();
                             End(call);
                           });
  }

  std::mutex mu;
  std::condition_variable cv;
  std::map<RpcBase*, std::shared_ptr<RpcBase>> live;
  int ending = 0;  // calls End() took out of `live` and is still destroying
  bool cancelled = false;
};

std::unique_ptr<v1::TaskControl::StubInterface> MakeTaskControlStub(const std::string& target) {
  return v1::TaskControl::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
}

TaskControlClient::TaskControlClient(TaskControlStubFactory make_stub, int64_t rpc_timeout_ms)
    : make_stub_(std::move(make_stub)), rpc_timeout_ms_(rpc_timeout_ms), tracker_(std::make_unique<Tracker>()) {}

TaskControlClient::~TaskControlClient() {
  tracker_->CancelAll();
  tracker_->WaitIdle();
}

std::shared_ptr<Stub> TaskControlClient::StubFor(const v1::PeerEndpoint& worker) {
  const std::string target = Target(worker);
  std::shared_ptr<Stub>& stub = stubs_[target];
  if (!stub) stub = make_stub_ ? make_stub_(target) : MakeTaskControlStub(target);
  return stub;
}

TaskControlClient::TriggerResult TaskControlClient::TriggerAll(const std::vector<v1::PeerEndpoint>& workers,
                                                               const v1::TriggerCheckpointRequest& request) {
  struct FanOut {
    std::mutex mu;
    std::condition_variable cv;
    size_t remaining = 0;
    TriggerResult result;
  };
  auto fan = std::make_shared<FanOut>();
  fan->remaining = workers.size();
  for (const v1::PeerEndpoint& w : workers) {
    const std::string label = absl::StrCat("worker ", w.worker_id(), " (", Target(w), ")");
    tracker_->Start<v1::TriggerCheckpointRequest, v1::TriggerCheckpointResponse>(
        StubFor(w), request, rpc_timeout_ms_, &Stub::async_interface::TriggerCheckpoint, &Stub::TriggerCheckpoint,
        [fan, label](const grpc::Status& status) {
          std::lock_guard fan_lock(fan->mu);
          if (!status.ok()) {
            fan->result.errors.push_back(absl::StrCat(label, ": TriggerCheckpoint failed: ", status.error_message(),
                                                      " (gRPC code ", static_cast<int>(status.error_code()), ")"));
            if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) ++fan->result.not_running;
          }
          if (--fan->remaining == 0) fan->cv.notify_all();
        });
  }
  std::unique_lock fan_lock(fan->mu);
  fan->cv.wait(fan_lock, [&] { return fan->remaining == 0; });
  return fan->result;
}

void TaskControlClient::NotifyCompleteAll(const std::vector<v1::PeerEndpoint>& workers,
                                          const v1::CheckpointNotification& note) {
  for (const v1::PeerEndpoint& w : workers) {
    tracker_->Start<v1::CheckpointNotification, v1::CheckpointNotificationResponse>(
        StubFor(w), note, rpc_timeout_ms_, &Stub::async_interface::NotifyCheckpointComplete,
        &Stub::NotifyCheckpointComplete, [worker_id = w.worker_id(), id = note.checkpoint_id()](const grpc::Status& s) {
          if (!s.ok() && s.error_code() != grpc::StatusCode::CANCELLED) {
            spdlog::warn("worker {}: NotifyCheckpointComplete({}) failed: {}", worker_id, id, s.error_message());
          }
        });
  }
}

void TaskControlClient::AbortAll(const std::vector<v1::PeerEndpoint>& workers,
                                 const v1::CheckpointNotification& note) {
  for (const v1::PeerEndpoint& w : workers) {
    tracker_->Start<v1::CheckpointNotification, v1::CheckpointNotificationResponse>(
        StubFor(w), note, rpc_timeout_ms_, &Stub::async_interface::AbortCheckpoint, &Stub::AbortCheckpoint,
        [](const grpc::Status&) {});  // best effort: the worker may be gone
  }
}

void TaskControlClient::CancelTasks(const std::vector<v1::PeerEndpoint>& workers,
                                    const v1::CancelTaskRequest& request) {
  for (const v1::PeerEndpoint& w : workers) {
    tracker_->Start<v1::CancelTaskRequest, v1::CancelTaskResponse>(
        StubFor(w), request, rpc_timeout_ms_, &Stub::async_interface::CancelTask, &Stub::CancelTask,
        [worker_id = w.worker_id(), attempt = request.attempt()](const grpc::Status& status) {
          if (!status.ok()) {
            spdlog::debug("CancelTask of attempt {} on worker {}: {}", attempt, worker_id, status.error_message());
          }
        });
  }
}

void TaskControlClient::CancelInFlight() { tracker_->CancelAll(); }

void TaskControlClient::WaitIdle() { tracker_->WaitIdle(); }

}  // namespace slipstream
