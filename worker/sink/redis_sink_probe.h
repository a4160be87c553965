// RedisSinkProbe: the Redis sink's counters, its latest error and its batch
// latency, as RedisSinkStats reports them. The writer thread records; any
// thread reads (stats()).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "common/prometheus.h"
#include "worker/sink/redis_sink.h"

namespace slipstream {

class RedisSinkProbe {
 public:
  void ErrorReply() { error_replies_.fetch_add(1); }
  void ConnectionError() { connection_errors_.fetch_add(1); }
  void KeptNewer() { kept_newer_.fetch_add(1); }
  void Rejected() { rejected_.fetch_add(1); }
  void Guarded(int64_t features) { guarded_.fetch_add(features); }
  // The latest error reply or connection problem, and when (epoch ms).
  void LastError(std::string text, int64_t now_ms);
  // One pipelined batch: first send to last reply.
  void BatchLatency(double ms);

  // Everything but the queue's counts (written, queued, pending).
  void Fill(RedisSinkStats* stats) const;

 private:
  std::atomic<int64_t> error_replies_{0};
  std::atomic<int64_t> connection_errors_{0};
  std::atomic<int64_t> kept_newer_{0};
  std::atomic<int64_t> rejected_{0};
  std::atomic<int64_t> guarded_{0};
  mutable std::mutex mu_;
  std::string last_error_;
  int64_t last_error_ms_ = 0;
  LatencyHistogram batch_latency_;
};

}  // namespace slipstream
