// The execution.checkpointing.* / state.checkpoints.* settings, on their own
// so the REST API and the server options can name them without the
// checkpoint coordinator's gRPC machinery.
#pragma once

#include <cstdint>

namespace slipstream {

struct CheckpointSettings {
  int64_t interval_ms = 30000;      // execution.checkpointing.interval (trigger to trigger)
  int64_t timeout_ms = 600000;      // execution.checkpointing.timeout
  int64_t min_pause_ms = 0;         // execution.checkpointing.min-pause (end to next trigger)
  int64_t tolerable_failed = 0;     // execution.checkpointing.tolerable-failed-checkpoints
  int num_retained = 1;             // state.checkpoints.num-retained
  bool exactly_once = true;         // execution.checkpointing.mode == EXACTLY_ONCE
  int64_t rpc_timeout_ms = 5000;    // deadline of each TaskControl RPC
};

}  // namespace slipstream
