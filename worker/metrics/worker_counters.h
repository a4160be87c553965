// The counters a worker reports to the coordinator (heartbeats, and its
// goodbye when it leaves): its task's counters plus the process's memory.
#pragma once

#include <cstdint>

#include "proto/slipstream.pb.h"
#include "worker/pipeline/feature_task.h"

namespace slipstream {

// Copies `counters` into `out`, with the process's resident memory and its
// peak (VmRSS, VmHWM). Leaves `out->attempt()` to the caller.
void FillWorkerCounters(const TaskCounters& counters, v1::WorkerCounters* out);

// The process's resident memory (VmRSS), in bytes; 0 when unknown.
int64_t ResidentBytes();

}  // namespace slipstream
