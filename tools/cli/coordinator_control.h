// CoordinatorControl: the `slipstream` CLI's client of the coordinator's
// control API (proto/slipstream.proto, service Coordinator). Every call has
// a deadline, so an unreachable or hung coordinator is an error within
// `timeout_ms`, never a hang; gRPC statuses become absl::Status with the
// coordinator's message, and an unreachable coordinator says where it
// looked. Not thread-safe (one call at a time; the CLI is single-threaded).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/grpc_security.h"
#include "proto/slipstream.grpc.pb.h"

namespace slipstream {

class CoordinatorControl {
 public:
  // `address` is host:port; `security`: TLS and the operator's token.
  CoordinatorControl(std::string address, int64_t timeout_ms, const GrpcSecurity& security = {});
  ~CoordinatorControl();

  [[nodiscard]] absl::StatusOr<v1::ListJobsResponse> ListJobs();
  [[nodiscard]] absl::StatusOr<v1::SavepointOperation> TriggerSavepoint(const std::string& job_id,
                                                                         const std::string& target_dir);
  [[nodiscard]] absl::StatusOr<v1::SavepointOperation> StopWithSavepoint(const std::string& job_id,
                                                                          const std::string& target_dir);
  [[nodiscard]] absl::StatusOr<v1::SavepointOperation> GetSavepoint(const std::string& job_id,
                                                                     const std::string& request_id);
  [[nodiscard]] absl::StatusOr<v1::CancelJobResponse> CancelJob(const std::string& job_id);
  [[nodiscard]] absl::StatusOr<v1::CheckpointOverview> GetCheckpoints(const std::string& job_id);
  [[nodiscard]] absl::StatusOr<v1::ListWorkersResponse> ListWorkers();
  [[nodiscard]] absl::StatusOr<v1::DisposeSavepointResponse> DisposeSavepoint(const std::string& path);

  // True for the errors that mean "no answer from the coordinator"
  // (UNAVAILABLE, DEADLINE_EXCEEDED) rather than "the coordinator said no".
  static bool IsUnreachable(const absl::Status& status);
  // True when the coordinator wants a (different) token.
  static bool IsUnauthenticated(const absl::Status& status);

 private:
  std::string address_;
  int64_t timeout_ms_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

}  // namespace slipstream
