// TimerService: event-time timers kept in RocksDB, ordered by time within
// each key group (key layout in worker/state/state_keys.h), like Flink's
// RocksDB-backed InternalTimerService. Registering the same (time, kind,
// user) twice is one timer. An in-memory "earliest timer" per key group lets a
// watermark advance skip key groups with nothing due. Used only from the
// task thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/key_groups.h"
#include "worker/state/state_store.h"

namespace slipstream {

enum class TimerKind : char { kSlidingWindow = 'w', kSession = 's' };

struct Timer {
  int key_group;
  int64_t time_ms;
  TimerKind kind;
  std::string user;
};

class TimerService {
 public:
  TimerService(StateStore* store, KeyGroupRange owned);

  void Register(int key_group, int64_t time_ms, TimerKind kind, std::string_view user);
  void Delete(int key_group, int64_t time_ms, TimerKind kind, std::string_view user);

  // Fires every timer with time <= watermark, key group by key group and in
  // time order within one, removing each before calling `on_timer`.
  // `on_timer` may register timers later than the watermark.
  [[nodiscard]] absl::Status FireDue(int64_t watermark_ms,
                                     const std::function<absl::Status(const Timer&)>& on_timer);

  // Number of registered timers is not tracked; the earliest known one is.
  int64_t EarliestTimer() const;

 private:
  std::string TimerKey(int key_group, int64_t time_ms, TimerKind kind, std::string_view user) const;
  [[nodiscard]] absl::Status RefreshEarliest(int key_group);

  StateStore* store_;
  KeyGroupRange owned_;
  std::vector<int64_t> earliest_;  // per owned key group; INT64_MAX when none
};

}  // namespace slipstream
