#include "tests/integration/coordinator_client.h"

#include <algorithm>
#include <climits>

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/process_runner.h"

namespace slipstream::it {

namespace {
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address, const GrpcSecurity& security) {
  // The tests poll a coordinator that may not listen yet: keep gRPC's
  // reconnect backoff short (its default grows from 1 s to 120 s).
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  return security.Channel(address, args);
}
}  // namespace

CoordinatorClient::CoordinatorClient(const std::string& address, const GrpcSecurity& security)
    : stub_(v1::Coordinator::NewStub(MakeChannel(address, security))) {}

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

namespace {

absl::StatusOr<v1::WorkerCounters> SumCounters(const v1::JobStatus& job, int expected_workers, bool skip_standbys) {
  int workers = 0;
  for (const v1::WorkerStatus& w : job.workers()) workers += skip_standbys && w.standby() ? 0 : 1;
  if (job.state() != "RUNNING" || workers != expected_workers) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job.job_id(), " is ", job.state(), " with ", workers,
                                                      skip_standbys ? " running" : "", " workers, expected RUNNING with ",
                                                      expected_workers));
  }
  v1::WorkerCounters sum;
  sum.set_watermark_ms(INT64_MAX);
  sum.set_attempt(job.attempt());
  for (const v1::WorkerStatus& w : job.workers()) {
    const v1::WorkerCounters& c = w.counters();
    if (skip_standbys && w.standby()) continue;
    if (w.standby() || c.attempt() != job.attempt()) {
      return absl::FailedPreconditionError(absl::StrCat("worker ", w.worker_id(), " has not reported attempt ",
                                                        job.attempt(), " yet"));
    }
    sum.set_records_in(sum.records_in() + c.records_in());
    sum.set_events_valid(sum.events_valid() + c.events_valid());
    sum.set_records_invalid(sum.records_invalid() + c.records_invalid());
    sum.set_records_late(sum.records_late() + c.records_late());
    sum.set_dlq_delivery_failures(sum.dlq_delivery_failures() + c.dlq_delivery_failures());
    sum.set_features_emitted(sum.features_emitted() + c.features_emitted());
    sum.set_redis_features_written(sum.redis_features_written() + c.redis_features_written());
    sum.set_redis_errors(sum.redis_errors() + c.redis_errors());
    sum.set_redis_pending_features(sum.redis_pending_features() + c.redis_pending_features());
    sum.set_redis_features_rejected(sum.redis_features_rejected() + c.redis_features_rejected());
    sum.set_redis_features_kept_newer(sum.redis_features_kept_newer() + c.redis_features_kept_newer());
    sum.set_redis_features_guarded(sum.redis_features_guarded() + c.redis_features_guarded());
    sum.set_sliding_windows_fired(sum.sliding_windows_fired() + c.sliding_windows_fired());
    sum.set_sessions_fired(sum.sessions_fired() + c.sessions_fired());
    sum.set_watermark_ms(std::min(sum.watermark_ms(), c.watermark_ms()));
    for (const v1::PartitionProgress& p : c.partitions()) *sum.add_partitions() = p;
    for (const v1::ChannelStatus& ch : c.channels()) *sum.add_channels() = ch;
  }
  return sum;
}

}  // namespace

absl::StatusOr<v1::WorkerCounters> JobCounters(const v1::JobStatus& job, int expected_workers) {
  return SumCounters(job, expected_workers, /*skip_standbys=*/false);
}

absl::StatusOr<v1::WorkerCounters> RunningCounters(const v1::JobStatus& job, int running_workers) {
  return SumCounters(job, running_workers, /*skip_standbys=*/true);
}

std::string Summarize(const v1::WorkerCounters& c) {
  return absl::StrCat("records_in=", c.records_in(), " valid=", c.events_valid(), " invalid=", c.records_invalid(),
                      " late=", c.records_late(), " sliding_fired=", c.sliding_windows_fired(),
                      " sessions_fired=", c.sessions_fired(), " emitted=", c.features_emitted(),
                      " redis_written=", c.redis_features_written(), " redis_errors=", c.redis_errors(),
                      " dlq_failures=", c.dlq_delivery_failures(), " watermark_ms=", c.watermark_ms());
}

std::optional<v1::JobStatus> WaitForJob(CoordinatorClient& coordinator, const std::string& what, int64_t timeout_ms,
                                        const std::vector<Process*>& alive,
                                        const std::function<bool(const v1::JobStatus&)>& done, int64_t poll_ms) {
  const auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  const int64_t deadline = now_ms() + timeout_ms;
  std::string last = "no answer";
  while (now_ms() < deadline) {
    for (Process* p : alive) {
      if (!p->Running()) {
        ADD_FAILURE() << p->name() << " exited (status " << p->exit_status().value_or(-1) << ") while waiting for "
                      << what;
        return std::nullopt;
      }
    }
    absl::StatusOr<v1::JobStatus> job = coordinator.GetJob();
    if (job.ok()) {
      if (done(*job)) return *job;
      last = absl::StrCat(job->state(), ", attempt ", job->attempt(), ", ", job->workers_size(), " workers, ",
                          job->rescales(), " rescales, ", job->failures(), " failures, checkpoints completed ",
                          job->checkpoints().completed(), " failed ", job->checkpoints().failed(), ", restored ",
                          job->checkpoints().restored());
    } else {
      last = std::string(job.status().message());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
  ADD_FAILURE() << "timed out after " << timeout_ms / 1000 << " s waiting for " << what << "; last: " << last;
  return std::nullopt;
}

}  // namespace slipstream::it
