#include "worker/window/sliding_window_operator.h"

#include <charconv>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "worker/state/state_keys.h"
#include "worker/window/pane_aggregate.h"
#include "worker/window/window_math.h"

namespace slipstream {

namespace sk = state_keys;

std::string FormatDouble(double value) {
  char buf[32];
  auto result = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, result.ptr);
}

FeatureWrite MakeUserFeatures(std::string_view user_id, int64_t window_start_ms, int64_t window_end_ms,
                              const PaneAggregate& aggregate) {
  FeatureWrite write;
  write.key = absl::StrCat("user_features:", ToAbsl(user_id));
  write.ttl_seconds = kUserFeaturesTtlSeconds;
  write.fields = {"user_id",
                  std::string(user_id),
                  "view_count_1h",
                  absl::StrCat(aggregate.view_count),
                  "cart_count_1h",
                  absl::StrCat(aggregate.cart_count),
                  "purchase_count_1h",
                  absl::StrCat(aggregate.purchase_count),
                  "avg_viewed_price_1h",
                  FormatDouble(aggregate.AvgViewedPrice()),
                  "window_start",
                  absl::StrCat(window_start_ms),
                  "window_end",
                  absl::StrCat(window_end_ms)};
  return write;
}

SlidingWindowOperator::SlidingWindowOperator(StateStore* store, TimerService* timers)
    : store_(store), timers_(timers) {}

absl::StatusOr<bool> SlidingWindowOperator::ProcessEvent(int key_group, const Event& event,
                                                         int64_t watermark_ms) {
  const int64_t pane = PaneStart(event.event_time_ms);
  // The pane's windows end at pane + 10 min, ..., pane + 60 min. Flink skips
  // windows that are already late (maxTimestamp <= watermark) and the element
  // is dropped when all of them are.
  int64_t first_open_end = pane + kSlideMs;
  const int64_t last_end = pane + kWindowSizeMs;
  while (first_open_end <= last_end && FireTime(first_open_end) <= watermark_ms) first_open_end += kSlideMs;
  if (first_open_end > last_end) return false;

  const std::string key = sk::PaneKey(key_group, event.user_id, pane);
  PaneAggregate aggregate;
  absl::StatusOr<bool> found = store_->Get(key, &scratch_);
  if (!found.ok()) return found.status();
  if (*found && !PaneAggregate::Parse(scratch_, &aggregate)) {
    return absl::DataLossError(absl::StrCat("corrupt pane state for user ", event.user_id));
  }
  aggregate.Add(event);
  aggregate.SerializeTo(&scratch_);
  store_->Put(key, scratch_);
  timers_->Register(key_group, FireTime(first_open_end), TimerKind::kSlidingWindow, event.user_id);
  return true;
}

void SlidingWindowOperator::BeginWatermark() { emitted_until_.clear(); }

absl::Status SlidingWindowOperator::OnTimer(const Timer& timer, int64_t watermark_ms,
                                            std::vector<FeatureWrite>* out) {
  const int64_t first_end = timer.time_ms + 1;
  // An earlier timer of this user in the same watermark step may already have
  // emitted this window as part of its chain.
  if (auto it = emitted_until_.find(timer.user); it != emitted_until_.end() && it->second >= first_end) {
    return absl::OkStatus();
  }
  // Load the user's panes from the first window's start on.
  const std::string prefix = sk::UserPrefix(timer.key_group, sk::kPane, timer.user);
  std::string lower = prefix;
  sk::AppendTime(first_end - kWindowSizeMs, &lower);
  std::string upper = prefix;
  upper.append(9, '\xff');  // past every 8-byte time suffix of this user
  std::map<int64_t, PaneAggregate> panes;
  absl::Status status = store_->Scan(lower, upper, [&](std::string_view key, std::string_view value) {
    if (key.size() != prefix.size() + 8) return true;
    PaneAggregate aggregate;
    if (PaneAggregate::Parse(value, &aggregate)) panes.emplace(sk::DecodeTime(key.substr(prefix.size())), aggregate);
    return true;
  });
  if (!status.ok()) return status;

  // Emit every due, non-empty window in end order. A window without panes
  // breaks the chain: later panes registered their own timers.
  int64_t end = first_end;
  int64_t last_emitted_end = INT64_MIN;
  while (FireTime(end) <= watermark_ms) {
    PaneAggregate window;
    for (auto it = panes.lower_bound(end - kWindowSizeMs); it != panes.end() && it->first < end; ++it) {
      window.Merge(it->second);
    }
    if (window.empty()) break;
    out->push_back(MakeUserFeatures(timer.user, end - kWindowSizeMs, end, window));
    ++windows_fired_;
    last_emitted_end = end;
    end += kSlideMs;
  }
  if (last_emitted_end == INT64_MIN) return absl::OkStatus();  // stale: nothing due
  emitted_until_[timer.user] = last_emitted_end;

  // Panes older than the next window's start are in no future window.
  const int64_t next_start = last_emitted_end + kSlideMs - kWindowSizeMs;
  bool next_window_needs_timer = false;
  for (const auto& [pane_start, aggregate] : panes) {
    if (pane_start < next_start) {
      store_->Delete(sk::PaneKey(timer.key_group, timer.user, pane_start));
    } else if (pane_start < last_emitted_end) {
      next_window_needs_timer = true;  // later panes have timers of their own
    }
  }
  if (next_window_needs_timer) {
    timers_->Register(timer.key_group, FireTime(last_emitted_end + kSlideMs), TimerKind::kSlidingWindow,
                      timer.user);
  }
  return absl::OkStatus();
}

}  // namespace slipstream
