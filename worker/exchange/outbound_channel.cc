#include "worker/exchange/outbound_channel.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "proto/slipstream.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace slipstream {

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
