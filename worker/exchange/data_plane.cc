#include "worker/exchange/data_plane.h"

#include "common/clock.h"
#include "common/grpc_status.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/grpc_security.h"
#include "proto/slipstream.grpc.pb.h"
#include "spdlog/spdlog.h"
#include "worker/exchange/input_gate.h"

namespace slipstream {

namespace {



// How long a stream for an attempt this worker has not started yet waits
// for it (the coordinator's answers reach workers a heartbeat apart).
constexpr int64_t kAttachWaitMs = 10000;

}  // namespace

// --------------------------------------------------------------------------
// InboundEndpoint

struct InboundEndpoint::Impl {
  std::string job_id;
  int64_t attempt = 0;
  std::vector<std::string> peer_ids;
  int local_index = 0;
  InputGate* gate = nullptr;

  struct Channel {
    bool claimed = false;
    bool connected = false;
    bool ended = false;
    std::string error;
    int64_t error_since_ms = 0;
    int64_t batches = 0;
    int64_t records = 0;
    int64_t bytes = 0;
    int64_t watermark_ms = INT64_MIN;
    bool idle = false;
  };
  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<Channel> channels;
  std::optional<std::string> broken;
  int active_streams = 0;  // handlers using this endpoint (and its gate)

  void StreamStarted() {
    std::lock_guard lock(mu);
    ++active_streams;
  }
  void StreamDone() {
    std::lock_guard lock(mu);
    --active_streams;
    cv.notify_all();
  }
  void WaitForStreams() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return active_streams == 0; });
  }

  absl::Status Claim(int index, const std::string& sender_id) {
    std::lock_guard lock(mu);
    if (index < 0 || index >= static_cast<int>(channels.size()) || index == local_index) {
      return absl::InvalidArgumentError(absl::StrCat("sender index ", index, " is not a peer of attempt ", attempt));
    }
    if (peer_ids[index] != sender_id) {
      return absl::InvalidArgumentError(absl::StrCat("worker index ", index, " of attempt ", attempt, " is ",
                                                     peer_ids[index], ", not ", sender_id));
    }
    Channel& c = channels[index];
    if (c.claimed) {
      // A second stream from the same peer means the first broke: what was
      // in flight on it is gone, so the attempt cannot continue.
      return absl::FailedPreconditionError(
          absl::StrCat("worker ", sender_id, " reconnected during attempt ", attempt, "; records may be lost"));
    }
    c.claimed = true;
    c.connected = true;
    return absl::OkStatus();
  }

  void OnBatch(int index, const v1::DataBatch& b) {
    std::lock_guard lock(mu);
    Channel& c = channels[index];
    ++c.batches;
    c.records += b.record_count();
    c.bytes += static_cast<int64_t>(b.records().size());
    c.watermark_ms = b.watermark_ms();
    c.idle = b.idle();
    if (b.end_of_input()) c.ended = true;
  }

  void OnStreamEnd(int index, const std::string& problem) {
    std::lock_guard lock(mu);
    Channel& c = channels[index];
    c.connected = false;
    if (c.ended && problem.empty()) return;
    c.error = problem.empty() ? "the stream ended before end of input" : problem;
    c.error_since_ms = Clock::Real().WallMs();
    if (!broken) broken = absl::StrCat("the data channel from worker ", peer_ids[index], " broke: ", c.error);
  }
};

InboundEndpoint::InboundEndpoint(std::string job_id, int64_t attempt, std::vector<std::string> peer_ids,
                                 int local_index, InputGate* gate)
    : impl_(std::make_unique<Impl>()) {
  impl_->job_id = std::move(job_id);
  impl_->attempt = attempt;
  impl_->channels.resize(peer_ids.size());
  impl_->peer_ids = std::move(peer_ids);
  impl_->local_index = local_index;
  impl_->gate = gate;
}

InboundEndpoint::~InboundEndpoint() = default;
const std::string& InboundEndpoint::job_id() const { return impl_->job_id; }
int64_t InboundEndpoint::attempt() const { return impl_->attempt; }
InputGate* InboundEndpoint::gate() const { return impl_->gate; }

std::optional<std::string> InboundEndpoint::BrokenChannel() const {
  std::lock_guard lock(impl_->mu);
  return impl_->broken;
}

std::vector<v1::ChannelStatus> InboundEndpoint::Status() const {
  std::lock_guard lock(impl_->mu);
  std::vector<v1::ChannelStatus> out;
  for (size_t i = 0; i < impl_->channels.size(); ++i) {
    if (static_cast<int>(i) == impl_->local_index) continue;
    const Impl::Channel& c = impl_->channels[i];
    v1::ChannelStatus s;
    s.set_peer_worker_id(impl_->peer_ids[i]);
    s.set_outbound(false);
    s.set_connected(c.connected);
    s.set_error(c.error);
    s.set_error_since_ms(c.error_since_ms);
    s.set_batches(c.batches);
    s.set_records(c.records);
    s.set_bytes(c.bytes);
    s.set_watermark_ms(c.watermark_ms);
    s.set_idle(c.idle);
    out.push_back(std::move(s));
  }
  return out;
}

// --------------------------------------------------------------------------
// DataPlaneServer

// Peers and the coordinator must show the internal token (AccessControl).
grpc::Status AuthorizeInternal(const AccessControl& access, const grpc::ServerContext& ctx, const char* method) {
  const absl::Status s = access.Check(Access::kInternal, AuthorizationOf(ctx));
  if (s.ok()) return grpc::Status::OK;
  spdlog::warn("refused {} from {}: {}", method, ctx.peer(), std::string(s.message()));
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(s.message()));
}

class DataPlaneService final : public v1::DataPlane::Service {
 public:
  explicit DataPlaneService(AccessControl access) : access_(std::move(access)) {}

  void Attach(std::shared_ptr<InboundEndpoint> endpoint) {
    std::lock_guard lock(mu_);
    endpoint_ = std::move(endpoint);
    cv_.notify_all();
  }

  // Returns once no stream handler uses the detached endpoint any more, so
  // its gate may be destroyed.
  void Detach() {
    std::shared_ptr<InboundEndpoint> detached;
    {
      std::lock_guard lock(mu_);
      detached = std::move(endpoint_);
      endpoint_.reset();
      cv_.notify_all();
    }
    if (!detached) return;
    detached->impl_->gate->Close();  // ends the handlers' loops
    detached->impl_->WaitForStreams();
  }

  grpc::Status Exchange(grpc::ServerContext* ctx,
                        grpc::ServerReaderWriter<v1::ChannelCredit, v1::ChannelMessage>* stream) override {
    if (grpc::Status denied = AuthorizeInternal(access_, *ctx, "Exchange"); !denied.ok()) return denied;
    v1::ChannelMessage first;
    if (!stream->Read(&first) || !first.has_open()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a data channel must start with ChannelOpen");
    }
    const v1::ChannelOpen open = first.open();
    std::shared_ptr<InboundEndpoint> endpoint = WaitForAttempt(ctx, open.job_id(), open.attempt());
    if (!endpoint) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("this worker is not running attempt ", open.attempt(), " of job ",
                                       open.job_id()));
    }
    InboundEndpoint::Impl& ep = *endpoint->impl_;
    // WaitForAttempt counted this handler in; count it out on every return.
    struct StreamGuard {
      InboundEndpoint::Impl& ep;
      ~StreamGuard() { ep.StreamDone(); }
    } guard{ep};
    const int index = open.sender_index();
    if (absl::Status claimed = ep.Claim(index, open.sender_worker_id()); !claimed.ok()) {
      spdlog::error("refused a data channel: {}", std::string(claimed.message()));
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, std::string(claimed.message()));
    }
    InputGate* gate = ep.gate;
    spdlog::info("data channel from worker {} open (attempt {})", open.sender_worker_id(), open.attempt());
    v1::ChannelCredit credit;
    credit.set_credits(gate->credits_per_channel());
    if (!stream->Write(credit)) {
      ep.OnStreamEnd(index, "the peer went away while the channel opened");
      return grpc::Status::OK;
    }
    std::atomic<bool> reader_done{false};
    std::string problem;  // written by the reader before reader_done
    std::thread reader([&] {
      v1::ChannelMessage message;
      bool ended = false;
      while (stream->Read(&message)) {
        if (!message.has_batch()) {
          problem = "protocol error: a second ChannelOpen";
          break;
        }
        v1::DataBatch* b = message.mutable_batch();
        ep.OnBatch(index, *b);
        InboundBatch batch;
        batch.channel = index;
        batch.records = std::move(*b->mutable_records());
        batch.record_count = b->record_count();
        batch.watermark_ms = b->watermark_ms();
        batch.idle = b->idle();
        batch.end_of_input = b->end_of_input();
        batch.barrier_id = b->barrier_id();
        ended = batch.end_of_input;
        if (absl::Status pushed = gate->Push(std::move(batch)); !pushed.ok()) {
          if (!gate->closed()) problem = std::string(pushed.message());
          break;
        }
        if (ended) break;
      }
      if (!ended && problem.empty() && !gate->closed()) problem = "the stream ended before end of input";
      reader_done.store(true);
    });
    while (!reader_done.load() && !gate->closed() && !ctx->IsCancelled()) {
      const int n = gate->TakeCreditsToGrant(index, 100);
      if (n <= 0) continue;
      credit.set_credits(n);
      if (!stream->Write(credit)) break;
    }
    if (!reader_done.load()) ctx->TryCancel();
    reader.join();
    ep.OnStreamEnd(index, problem);
    return problem.empty() ? grpc::Status::OK : grpc::Status(grpc::StatusCode::ABORTED, problem);
  }

 private:
  std::shared_ptr<InboundEndpoint> WaitForAttempt(grpc::ServerContext* ctx, const std::string& job_id,
                                                  int64_t attempt) {
    std::unique_lock lock(mu_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kAttachWaitMs);
    auto matches = [&] { return endpoint_ && endpoint_->job_id() == job_id && endpoint_->attempt() == attempt; };
    // Short slices: a cancelled call (the sender gave up) or a server that
    // shuts down must not hold this thread for the whole wait.
    while (!matches() && !stopping_ && !ctx->IsCancelled() && std::chrono::steady_clock::now() < deadline) {
      if (endpoint_ && endpoint_->job_id() == job_id && endpoint_->attempt() > attempt) break;  // too old
      cv_.wait_for(lock, std::chrono::milliseconds(50));
    }
    if (!matches() || stopping_) return nullptr;
    endpoint_->impl_->StreamStarted();  // under mu_: Detach cannot miss it
    return endpoint_;
  }

 public:
  // The server is going away: waiting streams give up at once.
  void Stop() {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }

 private:
  const AccessControl access_;
  bool stopping_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<InboundEndpoint> endpoint_;
};

namespace {

// Forwards the coordinator's checkpoint calls to the running task.
class TaskControlService final : public v1::TaskControl::Service {
 public:
  explicit TaskControlService(AccessControl access) : access_(std::move(access)) {}

  void Set(std::shared_ptr<TaskControlHandler> handler) {
    std::lock_guard lock(mu_);
    handler_ = std::move(handler);
  }

  grpc::Status TriggerCheckpoint(grpc::ServerContext* ctx, const v1::TriggerCheckpointRequest* request,
                                 v1::TriggerCheckpointResponse*) override {
    if (grpc::Status denied = AuthorizeInternal(access_, *ctx, "TriggerCheckpoint"); !denied.ok()) return denied;
    std::shared_ptr<TaskControlHandler> handler = Get();
    // FAILED_PRECONDITION: the coordinator does not count it as a failed
    // checkpoint (the task is starting or stopping).
    if (!handler) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no task is running on this worker");
    return ToGrpcStatus(handler->TriggerCheckpoint(*request));
  }

  grpc::Status NotifyCheckpointComplete(grpc::ServerContext* ctx, const v1::CheckpointNotification* request,
                                        v1::CheckpointNotificationResponse*) override {
    if (grpc::Status denied = AuthorizeInternal(access_, *ctx, "NotifyCheckpointComplete"); !denied.ok()) {
      return denied;
    }
    if (std::shared_ptr<TaskControlHandler> handler = Get()) handler->CheckpointComplete(*request);
    return grpc::Status::OK;
  }

  grpc::Status AbortCheckpoint(grpc::ServerContext* ctx, const v1::CheckpointNotification* request,
                               v1::CheckpointNotificationResponse*) override {
    if (grpc::Status denied = AuthorizeInternal(access_, *ctx, "AbortCheckpoint"); !denied.ok()) return denied;
    if (std::shared_ptr<TaskControlHandler> handler = Get()) handler->AbortCheckpoint(*request);
    return grpc::Status::OK;
  }

  // Not the task's to answer: the process decides (it asks the coordinator).
  grpc::Status CancelTask(grpc::ServerContext* ctx, const v1::CancelTaskRequest* request,
                          v1::CancelTaskResponse*) override {
    if (grpc::Status denied = AuthorizeInternal(access_, *ctx, "CancelTask"); !denied.ok()) return denied;
    std::function<void(const v1::CancelTaskRequest&)> listener;
    {
      std::lock_guard lock(mu_);
      listener = cancel_listener_;
    }
    if (!listener) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this worker does not take cancellations yet");
    listener(*request);
    return grpc::Status::OK;
  }

  void SetCancelListener(std::function<void(const v1::CancelTaskRequest&)> listener) {
    std::lock_guard lock(mu_);
    cancel_listener_ = std::move(listener);
  }

 private:
  std::shared_ptr<TaskControlHandler> Get() {
    std::lock_guard lock(mu_);
    return handler_;
  }
  const AccessControl access_;
  std::mutex mu_;
  std::shared_ptr<TaskControlHandler> handler_;
  std::function<void(const v1::CancelTaskRequest&)> cancel_listener_;
};

}  // namespace

struct DataPlaneServer::Impl {
  explicit Impl(const AccessControl& access) : service(access), control(access) {}
  DataPlaneService service;
  TaskControlService control;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

DataPlaneServer::DataPlaneServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<DataPlaneServer>> DataPlaneServer::Start(int port, const GrpcSecurity& security,
                                                                       AccessControl access) {
  auto impl = std::make_unique<Impl>(access);
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(64 << 20);
  // Accept the senders' keepalive pings (every 10 s).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddListeningPort(absl::StrCat("0.0.0.0:", port), security.ServerCredentials(), &impl->port);
  builder.RegisterService(&impl->service);
  builder.RegisterService(&impl->control);
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return absl::UnavailableError(
        absl::StrCat("taskmanager.data.port: cannot listen on port ", port, " (in use, or not allowed)"));
  }
  return std::unique_ptr<DataPlaneServer>(new DataPlaneServer(std::move(impl)));
}

DataPlaneServer::~DataPlaneServer() {
  impl_->service.Stop();
  impl_->service.Detach();
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

int DataPlaneServer::port() const { return impl_->port; }

void DataPlaneServer::Attach(std::shared_ptr<InboundEndpoint> endpoint) { impl_->service.Attach(std::move(endpoint)); }

void DataPlaneServer::Detach() { impl_->service.Detach(); }

void DataPlaneServer::SetCancelListener(std::function<void(const v1::CancelTaskRequest&)> listener) {
  impl_->control.SetCancelListener(std::move(listener));
}

void DataPlaneServer::SetTaskControl(std::shared_ptr<TaskControlHandler> handler) {
  impl_->control.Set(std::move(handler));
}

// --------------------------------------------------------------------------
// OutboundChannel

struct OutboundChannel::Impl {
  GrpcSecurity security;
  std::string peer_id;
  std::string target;
  v1::ChannelOpen open;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::DataPlane::Stub> stub;
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ChannelMessage, v1::ChannelCredit>> stream;
  std::thread reader;

  mutable std::mutex mu;
  std::condition_variable cv;
  int credits = 0;
  bool stream_ended = false;  // the peer closed or the stream broke
  bool connected = false;
  std::string error;
  int64_t error_since_ms = 0;
  int64_t batches = 0;
  int64_t records = 0;
  int64_t bytes = 0;
  int64_t backpressure_ms = 0;
  int64_t waiting_since_ms = 0;  // steady ms a credit wait began (0: not waiting)

  void SetError(const std::string& message) {
    std::lock_guard lock(mu);
    if (error.empty()) {
      error_since_ms = Clock::Real().WallMs();
      spdlog::warn("data channel to worker {} at {}: {} (retrying)", peer_id, target, message);
    }
    error = message;
  }

  absl::Status Connect(const std::atomic<bool>& cancel) {
    int64_t backoff_ms = 100;
    while (!cancel.load()) {
      if (!channel) {
        grpc::ChannelArguments args;
        args.SetMaxReceiveMessageSize(64 << 20);
        // One connection per peer pair, not shared with other channels.
        args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
        // Reconnect quickly to a peer that starts late (gRPC's default
        // backoff grows to 2 minutes).
        args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
        args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
        args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
        // Notice a peer that vanished without closing its connection.
        args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
        args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
        channel = security.Channel(target, args);
        stub = v1::DataPlane::NewStub(channel);
      }
      std::string problem;
      if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(1))) {
        problem = "cannot connect to its data endpoint";
      } else {
        ctx = std::make_unique<grpc::ClientContext>();
        stream = stub->Exchange(ctx.get());
        v1::ChannelMessage message;
        *message.mutable_open() = open;
        v1::ChannelCredit first;
        // The peer may hold the open for up to 10 s until it runs this
        // attempt; a cancel must not wait for that.
        std::atomic<bool> opened{false};
        std::thread cancel_watch([&] {
          while (!opened.load()) {
            if (cancel.load()) {
              ctx->TryCancel();
              return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
        });
        const bool open_ok = stream->Write(message) && stream->Read(&first);
        opened.store(true);
        cancel_watch.join();
        if (open_ok) {
          std::lock_guard lock(mu);
          credits = first.credits();
          connected = true;
          stream_ended = false;
          if (!error.empty()) spdlog::info("data channel to worker {} at {} is open", peer_id, target);
          error.clear();
          error_since_ms = 0;
          break;
        }
        // The stream is over (the peer refused it, or it never connected):
        // Finish returns the peer's reason.
        v1::ChannelCredit ignored;
        while (stream->Read(&ignored)) {
        }
        const grpc::Status status = stream->Finish();
        stream.reset();
        ctx.reset();
        problem = status.ok() ? "the peer closed the channel at once" : status.error_message();
      }
      SetError(problem);
      const int64_t until = Clock::Real().SteadyMs() + backoff_ms;
      while (!cancel.load() && Clock::Real().SteadyMs() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      backoff_ms = std::min<int64_t>(backoff_ms * 2, 2000);
    }
    // Cancelled before the stream opened; one that opened just as the cancel
    // came is used (its reader must run, or credit would never return).
    if (!stream) return absl::CancelledError("cancelled while connecting");
    reader = std::thread([this] {
      v1::ChannelCredit credit;
      while (stream->Read(&credit)) {
        std::lock_guard lock(mu);
        credits += credit.credits();
        cv.notify_all();
      }
      std::lock_guard lock(mu);
      stream_ended = true;
      connected = false;
      cv.notify_all();
    });
    return absl::OkStatus();
  }

  void Close() {
    if (!stream) return;
    ctx->TryCancel();
    if (reader.joinable()) reader.join();
    (void)stream->Finish();
    stream.reset();
    ctx.reset();
  }
};

OutboundChannel::OutboundChannel(std::string peer_worker_id, std::string target, v1::ChannelOpen open,
                                 GrpcSecurity security)
    : impl_(std::make_unique<Impl>()) {
  impl_->security = std::move(security);
  impl_->peer_id = std::move(peer_worker_id);
  impl_->target = std::move(target);
  impl_->open = std::move(open);
}

OutboundChannel::~OutboundChannel() { impl_->Close(); }

absl::Status OutboundChannel::Send(v1::DataBatch* batch, const std::atomic<bool>& cancel) {
  Impl& s = *impl_;
  if (!s.stream) {
    if (absl::Status connected = s.Connect(cancel); !connected.ok()) return connected;
  }
  {
    std::unique_lock lock(s.mu);
    if (s.credits == 0 && !s.stream_ended) {
      const int64_t begin = Clock::Real().SteadyMs();
      s.waiting_since_ms = begin;
      while (s.credits == 0 && !s.stream_ended && !cancel.load()) s.cv.wait_for(lock, std::chrono::milliseconds(50));
      s.backpressure_ms += Clock::Real().SteadyMs() - begin;
      s.waiting_since_ms = 0;
    }
    if (cancel.load()) return absl::CancelledError("cancelled while waiting for credit");
    if (s.stream_ended) {
      s.error = "the stream broke (the peer stopped or failed)";
      s.error_since_ms = Clock::Real().WallMs();
      return absl::UnavailableError(absl::StrCat("the data channel to worker ", s.peer_id, " at ", s.target,
                                                 " broke; records in flight may be lost"));
    }
    --s.credits;
    ++s.batches;
    s.records += batch->record_count();
    s.bytes += static_cast<int64_t>(batch->records().size());
  }
  v1::ChannelMessage message;
  message.mutable_batch()->Swap(batch);
  if (!s.stream->Write(message)) {
    std::lock_guard lock(s.mu);
    s.error = "write failed (the peer stopped or failed)";
    s.error_since_ms = Clock::Real().WallMs();
    return absl::UnavailableError(absl::StrCat("the data channel to worker ", s.peer_id, " at ", s.target,
                                               " broke while sending; records in flight may be lost"));
  }
  return absl::OkStatus();
}

absl::Status OutboundChannel::Finish(int timeout_ms) {
  Impl& s = *impl_;
  if (!s.stream) return absl::OkStatus();
  s.stream->WritesDone();
  {
    std::unique_lock lock(s.mu);
    s.cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return s.stream_ended; });
  }
  s.Close();
  return absl::OkStatus();
}

v1::ChannelStatus OutboundChannel::Status() const {
  const Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  v1::ChannelStatus out;
  out.set_peer_worker_id(s.peer_id);
  out.set_outbound(true);
  out.set_connected(s.connected);
  out.set_error(s.error);
  out.set_error_since_ms(s.error_since_ms);
  out.set_batches(s.batches);
  out.set_records(s.records);
  out.set_bytes(s.bytes);
  // Includes a wait still in progress, so a stall shows while it lasts.
  out.set_backpressure_ms(s.backpressure_ms + (s.waiting_since_ms > 0 ? Clock::Real().SteadyMs() - s.waiting_since_ms : 0));
  return out;
}

}  // namespace slipstream
