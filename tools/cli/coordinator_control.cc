#include "tools/cli/coordinator_control.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/strings/str_cat.h"

namespace slipstream {
namespace {

using Stub = v1::Coordinator::Stub;
template <typename Request, typename Response>
using Method = grpc::Status (Stub::*)(grpc::ClientContext*, const Request&, Response*);

// absl::StatusCode mirrors gRPC's canonical codes value for value.
absl::Status FromGrpc(const grpc::Status& status, const std::string& address, int64_t timeout_ms) {
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return absl::UnavailableError(
        absl::StrCat("cannot reach the coordinator at ", address, ": ", status.error_message()));
  }
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::DeadlineExceededError(absl::StrCat("the coordinator at ", address, " did not answer within ",
                                                    timeout_ms, " ms (--timeout)"));
  }
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    return absl::UnauthenticatedError(absl::StrCat("the coordinator at ", address, " refused: ", status.error_message(),
                                                   " (pass it with --token or SLIPSTREAM_TOKEN)"));
  }
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    return absl::UnimplementedError(absl::StrCat("the coordinator at ", address,
                                                 " does not support this command (an older version?): ",
                                                 status.error_message()));
  }
  return absl::Status(code, status.error_message());
}

template <typename Request, typename Response>
absl::StatusOr<Response> Call(Stub* stub, Method<Request, Response> method, const Request& request,
                              const std::string& address, int64_t timeout_ms) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  Response response;
  const grpc::Status status = (stub->*method)(&ctx, request, &response);
  if (!status.ok()) return FromGrpc(status, address, timeout_ms);
  return response;
}

}  // namespace

CoordinatorControl::CoordinatorControl(std::string address, int64_t timeout_ms, const GrpcSecurity& security)
    : address_(std::move(address)), timeout_ms_(timeout_ms), stub_(v1::Coordinator::NewStub(security.Channel(address_))) {}

CoordinatorControl::~CoordinatorControl() = default;

bool CoordinatorControl::IsUnauthenticated(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnauthenticated;
}

bool CoordinatorControl::IsUnreachable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable || status.code() == absl::StatusCode::kDeadlineExceeded;
}

absl::StatusOr<v1::ListJobsResponse> CoordinatorControl::ListJobs() {
  return Call(stub_.get(), &Stub::ListJobs, v1::ListJobsRequest(), address_, timeout_ms_);
}

absl::StatusOr<v1::SavepointOperation> CoordinatorControl::TriggerSavepoint(const std::string& job_id,
                                                                            const std::string& target_dir) {
  v1::TriggerSavepointRequest request;
  request.set_job_id(job_id);
  request.set_target_dir(target_dir);
  return Call(stub_.get(), &Stub::TriggerSavepoint, request, address_, timeout_ms_);
}

absl::StatusOr<v1::SavepointOperation> CoordinatorControl::StopWithSavepoint(const std::string& job_id,
                                                                             const std::string& target_dir) {
  v1::StopWithSavepointRequest request;
  request.set_job_id(job_id);
  request.set_target_dir(target_dir);
  return Call(stub_.get(), &Stub::StopWithSavepoint, request, address_, timeout_ms_);
}

absl::StatusOr<v1::SavepointOperation> CoordinatorControl::GetSavepoint(const std::string& job_id,
                                                                        const std::string& request_id) {
  v1::GetSavepointRequest request;
  request.set_job_id(job_id);
  request.set_request_id(request_id);
  return Call(stub_.get(), &Stub::GetSavepoint, request, address_, timeout_ms_);
}

absl::StatusOr<v1::CancelJobResponse> CoordinatorControl::CancelJob(const std::string& job_id) {
  v1::CancelJobRequest request;
  request.set_job_id(job_id);
  return Call(stub_.get(), &Stub::CancelJob, request, address_, timeout_ms_);
}

absl::StatusOr<v1::CheckpointOverview> CoordinatorControl::GetCheckpoints(const std::string& job_id) {
  v1::GetCheckpointsRequest request;
  request.set_job_id(job_id);
  return Call(stub_.get(), &Stub::GetCheckpoints, request, address_, timeout_ms_);
}

absl::StatusOr<v1::ListWorkersResponse> CoordinatorControl::ListWorkers() {
  return Call(stub_.get(), &Stub::ListWorkers, v1::ListWorkersRequest(), address_, timeout_ms_);
}

absl::StatusOr<v1::DisposeSavepointResponse> CoordinatorControl::DisposeSavepoint(const std::string& path) {
  v1::DisposeSavepointRequest request;
  request.set_path(path);
  return Call(stub_.get(), &Stub::DisposeSavepoint, request, address_, timeout_ms_);
}

}  // namespace slipstream
