#include "worker/window/timer_service.h"

#include <algorithm>
#include <limits>

#include "worker/state/state_keys.h"

namespace slipstream {

namespace sk = state_keys;
constexpr int64_t kNoTimer = std::numeric_limits<int64_t>::max();

TimerService::TimerService(StateStore* store, KeyGroupRange owned)
    : store_(store), owned_(owned), earliest_(std::max(owned.size(), 0), kNoTimer) {}

std::string TimerService::TimerKey(int key_group, int64_t time_ms, TimerKind kind,
                                   std::string_view user) const {
  std::string key = sk::Prefix(key_group, sk::kTimer);
  sk::AppendTime(time_ms, &key);
  key.push_back(static_cast<char>(kind));
  sk::AppendUser(user, &key);
  return key;
}

void TimerService::Register(int key_group, int64_t time_ms, TimerKind kind, std::string_view user) {
  store_->Put(TimerKey(key_group, time_ms, kind, user), "");
  int64_t& earliest = earliest_[key_group - owned_.first];
  earliest = std::min(earliest, time_ms);
}

void TimerService::Delete(int key_group, int64_t time_ms, TimerKind kind, std::string_view user) {
  // The cached earliest may now be too early; FireDue tolerates that (it
  // scans, finds nothing due, and refreshes).
  store_->Delete(TimerKey(key_group, time_ms, kind, user));
}

int64_t TimerService::EarliestTimer() const {
  return earliest_.empty() ? kNoTimer : *std::min_element(earliest_.begin(), earliest_.end());
}

absl::Status TimerService::RefreshEarliest(int key_group) {
  const std::string lower = sk::Prefix(key_group, sk::kTimer);
  const std::string upper = sk::Prefix(key_group, sk::kTimer + 1);
  int64_t earliest = kNoTimer;
  absl::Status status = store_->Scan(lower, upper, [&](std::string_view key, std::string_view) {
    earliest = sk::DecodeTime(key.substr(3));
    return false;
  });
  earliest_[key_group - owned_.first] = earliest;
  return status;
}

absl::Status TimerService::FireDue(int64_t watermark_ms,
                                   const std::function<absl::Status(const Timer&)>& on_timer) {
  std::vector<Timer> due;
  for (int kg = owned_.first; kg <= owned_.last; ++kg) {
    if (earliest_[kg - owned_.first] > watermark_ms) continue;
    due.clear();
    const std::string lower = sk::Prefix(kg, sk::kTimer);
    std::string upper = lower;
    if (watermark_ms == kNoTimer) {
      upper = sk::Prefix(kg, sk::kTimer + 1);
    } else {
      sk::AppendTime(watermark_ms + 1, &upper);
    }
    absl::Status status = store_->Scan(lower, upper, [&](std::string_view key, std::string_view) {
      Timer timer;
      timer.key_group = kg;
      timer.time_ms = sk::DecodeTime(key.substr(3));
      timer.kind = static_cast<TimerKind>(key[11]);
      std::string_view user;
      if (sk::DecodeUser(key.substr(12), &user) == 0) return true;  // cannot happen: we wrote it
      timer.user.assign(user);
      due.push_back(std::move(timer));
      return true;
    });
    if (!status.ok()) return status;
    for (const Timer& timer : due) {
      store_->Delete(TimerKey(kg, timer.time_ms, timer.kind, timer.user));
      if (absl::Status s = on_timer(timer); !s.ok()) return s;
    }
    if (absl::Status s = RefreshEarliest(kg); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace slipstream
