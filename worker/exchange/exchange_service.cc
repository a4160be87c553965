#include "worker/exchange/exchange_service.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include "worker/exchange/inbound_endpoint_impl.h"
#include "worker/exchange/input_gate.h"

namespace slipstream {
namespace {

// How long a stream for an attempt this worker has not started yet waits
// for it (the coordinator's answers reach workers a heartbeat apart).
constexpr int64_t kAttachWaitMs = 10000;

}  // namespace

void ExchangeService::Attach(std::shared_ptr<InboundEndpoint> endpoint) {
  std::lock_guard lock(mu_);
  endpoint_ = std::move(endpoint);
  cv_.notify_all();
}

void ExchangeService::Detach() {
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

void ExchangeService::Stop() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  cv_.notify_all();
}

grpc::Status ExchangeService::Exchange(grpc::ServerContext* ctx, Stream* stream) {
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
  spdlog::info("data channel from worker {} open (attempt {})", open.sender_worker_id(), open.attempt());
  v1::ChannelCredit credit;
  credit.set_credits(ep.gate->credits_per_channel());
  if (!stream->Write(credit)) {
    ep.OnStreamEnd(index, "the peer went away while the channel opened");
    return grpc::Status::OK;
  }
  const std::string problem = Pump(ctx, stream, ep, index);
  ep.OnStreamEnd(index, problem);
  return problem.empty() ? grpc::Status::OK : grpc::Status(grpc::StatusCode::ABORTED, problem);
}

std::string ExchangeService::Pump(grpc::ServerContext* ctx, Stream* stream, InboundEndpoint::Impl& ep, int index) {
  InputGate* gate = ep.gate;
  std::atomic<bool> reader_done{false};
  std::string problem;  // written by the reader before reader_done
  std::thread reader([&] {
    problem = ForwardBatches(stream, ep, index);
    reader_done.store(true);
  });
  v1::ChannelCredit credit;
  while (!reader_done.load() && !gate->closed() && !ctx->IsCancelled()) {
    const int n = gate->TakeCreditsToGrant(index, 100);
    if (n <= 0) continue;
    credit.set_credits(n);
    if (!stream->Write(credit)) break;
  }
  if (!reader_done.load()) ctx->TryCancel();
  reader.join();
  return problem;
}

std::string ExchangeService::ForwardBatches(Stream* stream, InboundEndpoint::Impl& ep, int index) {
  InputGate* gate = ep.gate;
  v1::ChannelMessage message;
  while (stream->Read(&message)) {
    if (!message.has_batch()) return "protocol error: a second ChannelOpen";
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
    const bool ended = batch.end_of_input;
    if (absl::Status pushed = gate->Push(std::move(batch)); !pushed.ok()) {
      return gate->closed() ? "" : std::string(pushed.message());
    }
    if (ended) return "";
  }
  return gate->closed() ? "" : "the stream ended before end of input";
}

std::shared_ptr<InboundEndpoint> ExchangeService::WaitForAttempt(grpc::ServerContext* ctx, const std::string& job_id,
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

}  // namespace slipstream
