#include "tests/integration/coordinator_client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/strings/str_cat.h"

namespace slipstream::it {

namespace {
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address) {
  // The tests poll a coordinator that may not listen yet: keep gRPC's
  // reconnect backoff short (its default grows from 1 s to 120 s).
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}
}  // namespace

CoordinatorClient::CoordinatorClient(const std::string& address)
    : stub_(v1::Coordinator::NewStub(MakeChannel(address))) {}

absl::StatusOr<v1::JobStatus> CoordinatorClient::GetJob() {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  v1::GetJobRequest request;
  v1::JobStatus response;
  grpc::Status status = stub_->GetJob(&ctx, request, &response);
  if (!status.ok()) {
    return absl::UnavailableError(absl::StrCat("GetJob: ", status.error_code(), " ", status.error_message()));
  }
  return response;
}

absl::StatusOr<v1::WorkerCounters> OnlyWorkerCounters(const v1::JobStatus& job) {
  if (job.workers_size() != 1) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job.job_id(), " (", job.state(), ") has ",
                                                      job.workers_size(), " workers, expected 1"));
  }
  return job.workers(0).counters();
}

std::string Summarize(const v1::WorkerCounters& c) {
  return absl::StrCat("records_in=", c.records_in(), " valid=", c.events_valid(), " invalid=", c.records_invalid(),
                      " late=", c.records_late(), " sliding_fired=", c.sliding_windows_fired(),
                      " sessions_fired=", c.sessions_fired(), " emitted=", c.features_emitted(),
                      " redis_written=", c.redis_features_written(), " redis_errors=", c.redis_errors(),
                      " dlq_failures=", c.dlq_delivery_failures(), " watermark_ms=", c.watermark_ms());
}

}  // namespace slipstream::it
