#include "worker/window/window_engine.h"

#include <limits>

#include "worker/window/session_window_operator.h"
#include "worker/window/sliding_window_operator.h"
#include "worker/window/timer_service.h"

namespace slipstream {

struct WindowEngine::Impl {
  Impl(StateStore* s, KeyGroupRange owned) : store(s), timers(s, owned), sliding(s, &timers), sessions(s, &timers) {}
  StateStore* store;
  TimerService timers;
  SlidingWindowOperator sliding;
  SessionWindowOperator sessions;
};

WindowEngine::WindowEngine(StateStore* store, KeyGroupRange owned)
    : impl_(std::make_unique<Impl>(store, owned)), watermark_(std::numeric_limits<int64_t>::min()) {}
WindowEngine::~WindowEngine() = default;

absl::StatusOr<bool> WindowEngine::ProcessEvent(int key_group, const Event& event) {
  absl::StatusOr<bool> in_sliding = impl_->sliding.ProcessEvent(key_group, event, watermark_);
  if (!in_sliding.ok()) return in_sliding.status();
  absl::StatusOr<bool> in_session = impl_->sessions.ProcessEvent(key_group, event, watermark_);
  if (!in_session.ok()) return in_session.status();
  return *in_sliding || *in_session;
}

absl::Status WindowEngine::AdvanceWatermark(int64_t watermark_ms, std::vector<FeatureWrite>* out) {
  if (watermark_ms <= watermark_) return absl::OkStatus();
  watermark_ = watermark_ms;
  impl_->sliding.BeginWatermark();
  return impl_->timers.FireDue(watermark_ms, [&](const Timer& timer) -> absl::Status {
    switch (timer.kind) {
      case TimerKind::kSlidingWindow:
        return impl_->sliding.OnTimer(timer, watermark_ms, out);
      case TimerKind::kSession:
        return impl_->sessions.OnTimer(timer, out);
    }
    return absl::OkStatus();
  });
}

absl::Status WindowEngine::Commit() { return impl_->store->Commit(); }

WindowEngineStats WindowEngine::stats() const {
  return {impl_->sliding.windows_fired(), impl_->sessions.sessions_fired()};
}

}  // namespace slipstream
