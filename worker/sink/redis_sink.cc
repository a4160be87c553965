#include "worker/sink/redis_sink.h"

#include <csignal>
#include <thread>

#include "worker/sink/redis_sink_probe.h"
#include "worker/sink/redis_sink_queue.h"
#include "worker/sink/redis_sink_writer.h"

namespace slipstream {

// The queue and the probe are shared by the task thread and the writer
// thread; the writer (and its connection) belongs to the writer thread once
// it runs.
struct RedisSink::Impl {
  Impl(const RedisSinkOptions& options, ShardRouter router, std::shared_ptr<const redis::TlsContext> tls)
      : queue(options.max_queued), writer(options, std::move(router), std::move(tls), queue, probe) {}

  RedisSinkQueue queue;
  RedisSinkProbe probe;
  RedisSinkWriter writer;
  std::thread thread;
};

RedisSink::RedisSink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<RedisSink>> RedisSink::Start(const RedisSinkOptions& options) {
  // A TLS connection writes with write(2), which raises SIGPIPE when Redis
  // has gone away; the sink handles EPIPE as a lost connection, so the
  // signal must not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  std::shared_ptr<const redis::TlsContext> tls;
  if (options.tls.enabled) {
    absl::StatusOr<std::shared_ptr<const redis::TlsContext>> created = redis::TlsContext::Create(options.tls);
    if (!created.ok()) return created.status();
    tls = std::move(*created);
  }
  absl::StatusOr<ShardRouter> router = ShardRouter::Create(options);
  if (!router.ok()) return router.status();
  auto impl = std::make_unique<Impl>(options, std::move(*router), std::move(tls));
  if (absl::Status s = impl->writer.ConnectAtStart(); !s.ok()) return s;
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->writer.Run(); });
  return std::unique_ptr<RedisSink>(new RedisSink(std::move(impl)));
}

RedisSink::~RedisSink() {
  impl_->queue.Stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void RedisSink::Write(std::vector<FeatureWrite>* features) { impl_->queue.Push(features); }

void RedisSink::Flush() { impl_->queue.WaitUntilAllAcked(); }

void RedisSink::DropQueued() { impl_->queue.DropQueued(); }

size_t RedisSink::Discard() {
  DropQueued();
  impl_->queue.Stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  return impl_->queue.Dropped();
}

uint64_t RedisSink::Enqueued() const { return impl_->queue.Enqueued(); }

bool RedisSink::WaitUntilAcked(uint64_t mark, int64_t timeout_ms) {
  return impl_->queue.WaitUntilAcked(mark, timeout_ms);
}

std::optional<int64_t> RedisSink::Superseded() const { return impl_->queue.SupersededBy(); }

RedisSinkStats RedisSink::stats() const {
  RedisSinkStats s;
  const RedisSinkQueue::Counts counts = impl_->queue.counts();
  s.features_written = static_cast<int64_t>(counts.acked);
  s.queued = static_cast<int64_t>(counts.queued);
  s.pending = static_cast<int64_t>(counts.enqueued - counts.acked);
  impl_->probe.Fill(&s);
  return s;
}

}  // namespace slipstream
