#include "worker/pipeline/attempt_control.h"

#include "worker/exchange/input_gate.h"
#include "worker/sink/feature_sink.h"

namespace slipstream {

void AttemptControl::Fail(const absl::Status& status) {
  {
    std::lock_guard lock(failure_mu_);
    if (failure_.ok()) failure_ = status;
  }
  Cancel();
}

void AttemptControl::Cancel() {
  cancel.store(true);
  interrupt.store(true);
  gate_->Close();
  // An operator blocked on a full sink returns at once (its features are
  // replayed by the next attempt, like the sink's queue).
  sink_->DropQueued();
}

absl::Status AttemptControl::FirstFailure() const {
  std::lock_guard lock(failure_mu_);
  return failure_;
}

}  // namespace slipstream
