#include "worker/sink/redis_sink_queue.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace slipstream {

void RedisSinkQueue::Push(std::vector<FeatureWrite>* features) {
  if (features->empty()) return;
  {
    std::unique_lock lock(mu_);
    for (FeatureWrite& f : *features) {
      if (queue_.size() >= max_queued_) {
        not_empty_.notify_one();  // the writer may be asleep on an empty queue
        not_full_.wait(lock, [&] { return queue_.size() < max_queued_ || discarding_; });
      }
      if (discarding_) {
        ++dropped_;
        continue;
      }
      queue_.push_back(std::move(f));
      ++enqueued_;
    }
  }
  features->clear();
  not_empty_.notify_one();
}

void RedisSinkQueue::WaitUntilAllAcked() {
  std::unique_lock lock(mu_);
  const uint64_t target = enqueued_;
  progressed_.wait(lock, [&] { return acked_ >= target || discarding_; });
}

bool RedisSinkQueue::WaitUntilAcked(uint64_t mark, int64_t timeout_ms) {
  std::unique_lock lock(mu_);
  return progressed_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return acked_ >= mark; });
}

void RedisSinkQueue::DropQueued() {
  {
    std::lock_guard lock(mu_);
    dropped_ += queue_.size();
    queue_.clear();
    discarding_ = true;
  }
  not_full_.notify_all();
  not_empty_.notify_all();
  progressed_.notify_all();
}

void RedisSinkQueue::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  not_empty_.notify_all();
}

size_t RedisSinkQueue::Dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

uint64_t RedisSinkQueue::Enqueued() const {
  std::lock_guard lock(mu_);
  return enqueued_;
}

std::optional<int64_t> RedisSinkQueue::SupersededBy() const {
  std::lock_guard lock(mu_);
  return superseded_by_;
}

RedisSinkQueue::Counts RedisSinkQueue::counts() const {
  std::lock_guard lock(mu_);
  return Counts{.enqueued = enqueued_, .acked = acked_, .queued = queue_.size()};
}

bool RedisSinkQueue::WaitForWork(bool have_retry) {
  std::unique_lock lock(mu_);
  not_empty_.wait(lock, [&] { return stopping_ || discarding_ || !queue_.empty() || have_retry; });
  return !(discarding_ || (stopping_ && queue_.empty() && !have_retry));
}

RedisSinkQueue::Take RedisSinkQueue::TakeBatch(size_t max_features, bool nothing_in_flight, int64_t guard_up_to,
                                               std::vector<FeatureWrite>* batch, bool* guarded) {
  {
    std::unique_lock lock(mu_);
    if (nothing_in_flight) not_empty_.wait(lock, [&] { return stopping_ || discarding_ || !queue_.empty(); });
    if (discarding_ && nothing_in_flight) return Take::kStop;
    if (queue_.empty() || discarding_) return nothing_in_flight && stopping_ ? Take::kStop : Take::kNothingNow;
    const size_t n = std::min(queue_.size(), max_features);
    batch->reserve(n);
    for (size_t i = 0; i < n; ++i) {
      *guarded = *guarded || queue_.front().order <= guard_up_to;
      batch->push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }
  not_full_.notify_all();
  return Take::kBatch;
}

RedisSinkQueue::Flags RedisSinkQueue::flags() const {
  std::lock_guard lock(mu_);
  return Flags{.stopping = stopping_, .discarding = discarding_};
}

bool RedisSinkQueue::Pause(int64_t ms) {
  std::unique_lock lock(mu_);
  return !not_full_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return discarding_; });
}

void RedisSinkQueue::FencedOut(int64_t by_attempt) {
  {
    std::lock_guard lock(mu_);
    superseded_by_ = by_attempt;
    discarding_ = true;
    dropped_ += queue_.size();
    queue_.clear();
  }
  not_full_.notify_all();
  progressed_.notify_all();
}

void RedisSinkQueue::Acknowledge(uint64_t features) {
  {
    std::lock_guard lock(mu_);
    acked_ += features;
  }
  progressed_.notify_all();
}

}  // namespace slipstream
