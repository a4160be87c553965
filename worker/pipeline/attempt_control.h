// AttemptControl: how one task's attempt ends, shared by every thread of the
// task (the source thread, the operator thread, the checkpoint uploader, and
// Cancel() from the worker's control thread). Flags, not messages: each
// loop reads them at its next step, and Fail()/Cancel() also wake whatever
// may block (the input gate, a full sink).
#pragma once

#include <atomic>
#include <mutex>

#include "absl/status/status.h"

namespace slipstream {

class InputGate;
class FeatureSink;

class AttemptControl {
 public:
  // Neither is owned; both outlive the attempt's threads.
  AttemptControl(InputGate* gate, FeatureSink* sink) : gate_(gate), sink_(sink) {}

  // Stop now: the attempt failed or was cancelled. Nothing queued is
  // processed, no end of input is sent.
  std::atomic<bool> cancel{false};
  // A graceful stop is in progress: the source is sending end of input.
  std::atomic<bool> stopping{false};
  // Set on a stop request or a failure: wakes a source blocked on credit or
  // on connecting to a peer.
  std::atomic<bool> interrupt{false};

  // The attempt failed (the first failure is the one Run() returns): stops
  // everything as Cancel() does.
  void Fail(const absl::Status& status);
  // As Flink cancels a task: stop at once. Features the sink holds are
  // dropped: the next attempt replays them.
  void Cancel();
  absl::Status FirstFailure() const;

 private:
  InputGate* const gate_;
  FeatureSink* const sink_;
  mutable std::mutex failure_mu_;
  absl::Status failure_;  // guarded by failure_mu_
};

}  // namespace slipstream
