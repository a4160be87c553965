// Our job, checkpoints and savepoint operations as the JSON records of
// Flink's REST API (field names and shapes are Flink's where the concept is
// the same). Private to coordinator/rest.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/rest/responses.h"
#include "proto/slipstream.pb.h"

namespace slipstream::rest {

// Flink's JobStatus name of the job's state (job_state: RESCALING and
// STOPPING are RUNNING there), and whether it is terminal.
std::string FlinkState(const v1::JobStatus& job);
bool Terminal(const v1::JobStatus& job);
// A record of Flink's /jobs/overview.
json JobOverviewJson(const v1::JobStatus& job, const std::string& name);
// A checkpoint of Flink's /jobs/<id>/checkpoints history.
json CheckpointJson(const v1::CheckpointStats& s);
bool IsSavepoint(const v1::CheckpointStats& s);
// Flink's {min, max, avg} summary.
json MinMaxAvg(const std::vector<int64_t>& values);
// A worker's Redis write latency for /taskmanagers.
json RedisLatencyJson(const v1::LatencyHistogramSnapshot& h);
// Flink's AsynchronousOperationResult for a savepoint or stop.
json SavepointOperationJson(const v1::SavepointOperation& op);

}  // namespace slipstream::rest
