// GetJob against the coordinator's gRPC API (slipstream.v1.Coordinator).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/grpc_security.h"
#include "proto/slipstream.grpc.pb.h"

namespace slipstream::it {

class CoordinatorClient {
 public:
  // host:port; `security`: TLS and token of the calls (default: plaintext, none).
  explicit CoordinatorClient(const std::string& address, const GrpcSecurity& security = {});
  // One GetJob call with a 2 s deadline.
  absl::StatusOr<v1::JobStatus> GetJob();

 private:
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

// Counters of the job's only worker, or an error when there is not exactly one.
absl::StatusOr<v1::WorkerCounters> OnlyWorkerCounters(const v1::JobStatus& job);

// Counters of a RUNNING job with exactly `expected_workers` workers that
// have all reported the current attempt: sums over workers, the minimum
// watermark, and every worker's partitions and channels. An error says what
// is not there yet.
absl::StatusOr<v1::WorkerCounters> JobCounters(const v1::JobStatus& job, int expected_workers);
// The same over the workers that run the attempt, with any number of standbys.
absl::StatusOr<v1::WorkerCounters> RunningCounters(const v1::JobStatus& job, int running_workers);

// One line summary of counters for progress logs.
std::string Summarize(const v1::WorkerCounters& c);

class Process;

// Polls GetJob every `poll_ms` until `done` accepts an answer, and returns
// it. Adds a test failure and returns nullopt when one of `alive` exits
// first, or after `timeout_ms` (naming `what` and the last state seen).
std::optional<v1::JobStatus> WaitForJob(CoordinatorClient& coordinator, const std::string& what, int64_t timeout_ms,
                                        const std::vector<Process*>& alive,
                                        const std::function<bool(const v1::JobStatus&)>& done, int64_t poll_ms = 100);

}  // namespace slipstream::it
