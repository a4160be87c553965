// A worker's TaskControl endpoint for coordinator tests: a real gRPC server on
// 127.0.0.1:<free port> that records every trigger, completion and abort, and
// answers a trigger by acknowledging (a made-up WorkerSnapshot), declining,
// failing the RPC, or staying silent. Acknowledgements and declines go to
// whatever sink the test sets (the CheckpointCoordinator directly, or the
// coordinator's gRPC service); they are sent before the trigger RPC returns,
// which is the race a fast worker produces.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proto/slipstream.grpc.pb.h"

namespace slipstream::test_support {

// Polls `done` every 10 ms until it holds or `timeout` passes.
inline bool Eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(8000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

class FakeTaskControl final : public v1::TaskControl::Service {
 public:
  // kNotRunning: FAILED_PRECONDITION, as a worker whose task has not started.
  enum class Reply { kAck, kDecline, kFail, kSilent, kNotRunning };
  struct Trigger {
    v1::TriggerCheckpointRequest request;
  };

  FakeTaskControl(std::string worker_id, int first_key_group, int last_key_group)
      : worker_id_(std::move(worker_id)) {
    key_groups_.set_first(first_key_group);
    key_groups_.set_last(last_key_group);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~FakeTaskControl() override { Shutdown(); }

  // Waits (briefly) for handlers in progress; afterwards RPCs fail.
  void Shutdown() {
    std::lock_guard lock(shutdown_mu_);
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
      server_.reset();
    }
  }

  int port() const { return port_; }
  std::string worker_id() const {
    std::lock_guard lock(mu_);
    return worker_id_;
  }
  void set_worker_id(std::string id) {
    std::lock_guard lock(mu_);
    worker_id_ = std::move(id);
  }
  // Leave the snapshot's range out (the coordinator fills it in).
  void omit_key_groups() {
    std::lock_guard lock(mu_);
    omit_key_groups_ = true;
  }

  v1::PeerEndpoint Endpoint(int index) const {
    std::lock_guard lock(mu_);
    v1::PeerEndpoint e;
    e.set_index(index);
    e.set_worker_id(worker_id_);
    e.set_host("127.0.0.1");
    e.set_data_port(port_);
    *e.mutable_key_groups() = key_groups_;
    return e;
  }

  void set_reply(Reply reply) {
    set_policy([reply](int64_t) { return reply; });
  }
  // The answer to the trigger of checkpoint `id`.
  void set_policy(std::function<Reply(int64_t id)> policy) {
    std::lock_guard lock(mu_);
    policy_ = std::move(policy);
  }
  void set_sink(std::function<void(const v1::AcknowledgeCheckpointRequest&)> ack,
                std::function<void(const v1::DeclineCheckpointRequest&)> decline) {
    std::lock_guard lock(mu_);
    ack_ = std::move(ack);
    decline_ = std::move(decline);
  }

  // Runs after the answer to the trigger of checkpoint `id` was sent (the
  // acknowledgement or decline), before the trigger RPC returns: a test can
  // hold the RPC there.
  void set_after_reply(std::function<void(int64_t id)> hook) {
    std::lock_guard lock(mu_);
    after_reply_ = std::move(hook);
  }

  std::vector<Trigger> triggers() const {
    std::lock_guard lock(mu_);
    return triggers_;
  }
  std::vector<v1::CheckpointNotification> completions() const {
    std::lock_guard lock(mu_);
    return completions_;
  }
  std::vector<v1::CheckpointNotification> aborts() const {
    std::lock_guard lock(mu_);
    return aborts_;
  }
  std::vector<v1::CancelTaskRequest> cancels() const {
    std::lock_guard lock(mu_);
    return cancels_;
  }
  bool WasCancelled(int64_t attempt) const {
    for (const auto& c : cancels()) {
      if (c.attempt() == attempt) return true;
    }
    return false;
  }
  bool WasAborted(int64_t checkpoint_id) const {
    for (const auto& a : aborts()) {
      if (a.checkpoint_id() == checkpoint_id) return true;
    }
    return false;
  }

  // The acknowledgement this worker sends for `trigger`: made-up sizes and
  // durations that identify the worker and the checkpoint.
  v1::AcknowledgeCheckpointRequest MakeAck(const v1::TriggerCheckpointRequest& trigger) const {
    std::lock_guard lock(mu_);
    v1::AcknowledgeCheckpointRequest ack;
    ack.set_worker_id(worker_id_);
    ack.set_job_id(trigger.job_id());
    ack.set_attempt(trigger.attempt());
    ack.set_checkpoint_id(trigger.checkpoint_id());
    v1::WorkerSnapshot* s = ack.mutable_snapshot();
    s->set_worker_id(worker_id_);
    if (!omit_key_groups_) *s->mutable_key_groups() = key_groups_;
    s->set_state_path(absl::StrCat("worker-", key_groups_.first()));
    s->set_state_bytes(1000 + key_groups_.first());
    v1::PartitionOffset* offset = s->add_offsets();
    offset->set_partition(key_groups_.first() % 4);
    offset->set_next_offset(trigger.checkpoint_id() * 10);
    s->set_alignment_ms(1 + key_groups_.first());
    s->set_sync_ms(2);
    s->set_async_ms(3);
    s->set_users(5);
    return ack;
  }

  grpc::Status TriggerCheckpoint(grpc::ServerContext*, const v1::TriggerCheckpointRequest* request,
                                 v1::TriggerCheckpointResponse*) override {
    Reply reply;
    std::function<void(const v1::AcknowledgeCheckpointRequest&)> ack;
    std::function<void(const v1::DeclineCheckpointRequest&)> decline;
    std::string worker_id;
    std::function<void(int64_t)> after_reply;
    {
      std::lock_guard lock(mu_);
      triggers_.push_back({*request});
      reply = policy_(request->checkpoint_id());
      ack = ack_;
      decline = decline_;
      worker_id = worker_id_;
      after_reply = after_reply_;
    }
    switch (reply) {
      case Reply::kAck:
        if (ack) ack(MakeAck(*request));
        break;
      case Reply::kDecline:
        if (decline) {
          v1::DeclineCheckpointRequest d;
          d.set_worker_id(worker_id);
          d.set_job_id(request->job_id());
          d.set_attempt(request->attempt());
          d.set_checkpoint_id(request->checkpoint_id());
          d.set_reason("disk full");
          decline(d);
        }
        break;
      case Reply::kFail:
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the task is not running");
      case Reply::kSilent:
        break;
      case Reply::kNotRunning:
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no task is running on this worker");
    }
    if (after_reply) after_reply(request->checkpoint_id());
    return grpc::Status::OK;
  }

  grpc::Status CancelTask(grpc::ServerContext*, const v1::CancelTaskRequest* request,
                          v1::CancelTaskResponse*) override {
    std::lock_guard lock(mu_);
    cancels_.push_back(*request);
    return grpc::Status::OK;
  }

  grpc::Status NotifyCheckpointComplete(grpc::ServerContext*, const v1::CheckpointNotification* request,
                                        v1::CheckpointNotificationResponse*) override {
    std::lock_guard lock(mu_);
    completions_.push_back(*request);
    return grpc::Status::OK;
  }

  grpc::Status AbortCheckpoint(grpc::ServerContext*, const v1::CheckpointNotification* request,
                               v1::CheckpointNotificationResponse*) override {
    std::lock_guard lock(mu_);
    aborts_.push_back(*request);
    return grpc::Status::OK;
  }

 private:
  mutable std::mutex mu_;
  std::string worker_id_;
  v1::KeyGroupRange key_groups_;
  bool omit_key_groups_ = false;
  std::function<Reply(int64_t)> policy_ = [](int64_t) { return Reply::kAck; };
  std::function<void(const v1::AcknowledgeCheckpointRequest&)> ack_;
  std::function<void(const v1::DeclineCheckpointRequest&)> decline_;
  std::function<void(int64_t)> after_reply_;
  std::vector<Trigger> triggers_;
  std::vector<v1::CheckpointNotification> completions_;
  std::vector<v1::CheckpointNotification> aborts_;
  std::vector<v1::CancelTaskRequest> cancels_;
  std::mutex shutdown_mu_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace slipstream::test_support
