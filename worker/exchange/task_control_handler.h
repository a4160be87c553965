// TaskControlHandler: what a running task does with the coordinator's
// checkpoint calls (the TaskControl service, served next to the data plane
// by DataPlaneServer). Called on gRPC threads.
#pragma once

#include "absl/status/status.h"
#include "proto/slipstream.pb.h"

namespace slipstream {

class TaskControlHandler {
 public:
  virtual ~TaskControlHandler() = default;
  virtual absl::Status TriggerCheckpoint(const v1::TriggerCheckpointRequest& request) = 0;
  virtual void CheckpointComplete(const v1::CheckpointNotification& notification) = 0;
  virtual void AbortCheckpoint(const v1::CheckpointNotification& notification) = 0;
};

}  // namespace slipstream
