#include "worker/sink/redis_sink_probe.h"

#include <utility>

namespace slipstream {

void RedisSinkProbe::LastError(std::string text, int64_t now_ms) {
  std::lock_guard lock(mu_);
  last_error_ = std::move(text);
  last_error_ms_ = now_ms;
}

void RedisSinkProbe::BatchLatency(double ms) {
  std::lock_guard lock(mu_);
  batch_latency_.Observe(ms);
}

void RedisSinkProbe::Fill(RedisSinkStats* s) const {
  s->features_kept_newer = kept_newer_.load();
  s->features_rejected = rejected_.load();
  s->features_guarded = guarded_.load();
  s->error_replies = error_replies_.load();
  s->connection_errors = connection_errors_.load();
  std::lock_guard lock(mu_);
  s->last_error = last_error_;
  s->last_error_ms = last_error_ms_;
  s->batch_latency = batch_latency_;
}

}  // namespace slipstream
