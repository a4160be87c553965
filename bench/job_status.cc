// slipstream-bench-status: asks the coordinator for the job (GetJob) and
// prints one line of key=value per worker, for bench/run_throughput.sh:
//
//   job=<id> topic=<topic> state=RUNNING workers=1 worker=<id> heartbeat_age_ms=120 records_in=...
//   records_invalid=... records_late=... dlq_delivery_failures=... features_emitted=...
//   redis_features_written=... redis_errors=... watermark_ms=... sliding_windows_fired=...
//   sessions_fired=... lag=<sum over partitions of high_watermark - next_offset>
//
// With no worker registered it prints `job=<id> topic=<topic> state=CREATED workers=0`. Exit status:
// 0 ok, 2 the coordinator did not answer (message on stderr), 1 bad usage.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "proto/slipstream.grpc.pb.h"

namespace {

constexpr char kProgram[] = "slipstream-bench-status";

int Run(int argc, char** argv) {
  std::string coordinator = "127.0.0.1:6123";
  int timeout_ms = 2000;
  CLI::App app{"Prints the job's worker counters from the Slipstream coordinator (GetJob) as key=value.",
               kProgram};
  app.add_option("--coordinator", coordinator, "coordinator gRPC address host:port")->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "RPC deadline")->capture_default_str()->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  auto channel = grpc::CreateChannel(coordinator, grpc::InsecureChannelCredentials());
  auto stub = slipstream::v1::Coordinator::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  slipstream::v1::GetJobRequest request;
  slipstream::v1::JobStatus job;
  grpc::Status status = stub->GetJob(&ctx, request, &job);
  if (!status.ok()) {
    std::fprintf(stderr, "%s: GetJob at %s failed: %s\n", kProgram, coordinator.c_str(),
                 status.error_message().c_str());
    return 2;
  }
  if (job.workers_size() == 0) {
    std::printf("job=%s topic=%s state=%s workers=0\n", job.job_id().c_str(), job.topic().c_str(),
                job.state().c_str());
    return 0;
  }
  for (const slipstream::v1::WorkerStatus& w : job.workers()) {
    const slipstream::v1::WorkerCounters& c = w.counters();
    int64_t lag = 0;
    bool lag_known = c.partitions_size() > 0;
    for (const slipstream::v1::PartitionProgress& p : c.partitions()) {
      if (p.high_watermark() < 0) {
        lag_known = false;
        continue;
      }
      // next_offset -1 = nothing consumed yet; the log may not start at 0
      // after retention, but a benchmark topic is fresh.
      lag += p.high_watermark() - (p.next_offset() < 0 ? 0 : p.next_offset());
    }
    std::printf(
        "job=%s topic=%s state=%s workers=%d worker=%s heartbeat_age_ms=%lld records_in=%lld events_valid=%lld "
        "records_invalid=%lld records_late=%lld dlq_delivery_failures=%lld features_emitted=%lld "
        "redis_features_written=%lld redis_errors=%lld watermark_ms=%lld sliding_windows_fired=%lld "
        "sessions_fired=%lld lag=%lld\n",
        job.job_id().c_str(), job.topic().c_str(), job.state().c_str(), job.workers_size(), w.worker_id().c_str(),
        static_cast<long long>(w.heartbeat_age_ms()), static_cast<long long>(c.records_in()),
        static_cast<long long>(c.events_valid()), static_cast<long long>(c.records_invalid()),
        static_cast<long long>(c.records_late()), static_cast<long long>(c.dlq_delivery_failures()),
        static_cast<long long>(c.features_emitted()), static_cast<long long>(c.redis_features_written()),
        static_cast<long long>(c.redis_errors()), static_cast<long long>(c.watermark_ms()),
        static_cast<long long>(c.sliding_windows_fired()), static_cast<long long>(c.sessions_fired()),
        lag_known ? static_cast<long long>(lag) : -1LL);
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
