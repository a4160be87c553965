// slipstream-bench-status: asks the coordinator for the job (GetJob) and
// prints one line of key=value per worker, for bench/run_throughput.sh:
//
//   job=<id> topic=<topic> state=RUNNING workers=1 worker=<id> heartbeat_age_ms=120 records_in=...
//   records_invalid=... records_late=... dlq_delivery_failures=... features_emitted=...
//   redis_features_written=... redis_errors=... watermark_ms=... sliding_windows_fired=...
//   sessions_fired=... redis_features_guarded=... redis_features_kept_newer=...
//   lag=<sum over partitions of high_watermark - next_offset> redis_pending_features=...
//
// redis_pending_features = features handed to the sink and not yet
// acknowledged (queued + in flight), as of the worker's last heartbeat.
//
// With no worker registered it prints `job=<id> topic=<topic> state=CREATED workers=0`.
//
// With --total (bench/run_scaleout.sh) it prints one line for the whole job
// instead: the counters summed over the workers of the current attempt
// (standbys left out), for N workers:
//
//   job=<id> topic=<topic> state=RUNNING attempt=1 failures=0 workers=2 current=2 records_in=...
//   events_valid=... records_invalid=... records_late=... dlq_delivery_failures=...
//   features_emitted=... redis_features_written=... redis_errors=... redis_features_guarded=...
//   redis_features_kept_newer=... sliding_windows_fired=...
//   sessions_fired=... watermark_min_ms=... lag=... channel_records_out=... channel_records_in=...
//   channel_batches_out=... channel_bytes_out=... backpressure_ms=... records_shuffled_out=...
//   records_shuffled_in=... records_in_by_worker=a,b redis_pending_features=...
//
// current = workers whose counters belong to the job's attempt (a worker's
// first heartbeat after the deployment may still carry none); watermark_min_ms
// = the smallest operator watermark among them (INT64_MIN while a worker has
// none); channel_records_out/in = records sent to / received from other
// workers over the shuffle (each crossing record is counted once in each);
// records_shuffled_out/in = the same seen by the sources and operators.
//
// Exit status: 0 ok, 2 the coordinator did not answer (message on stderr), 1 bad usage.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>

#include "CLI/CLI.hpp"
#include "proto/slipstream.grpc.pb.h"

namespace {

constexpr char kProgram[] = "slipstream-bench-status";

// Sum of a partition list's lag, -1 when some high watermark is unknown.
int64_t Lag(const slipstream::v1::WorkerCounters& c) {
  int64_t lag = 0;
  if (c.partitions_size() == 0) return -1;
  for (const slipstream::v1::PartitionProgress& p : c.partitions()) {
    if (p.high_watermark() < 0) return -1;
    lag += p.high_watermark() - (p.next_offset() < 0 ? 0 : p.next_offset());
  }
  return lag;
}

void PrintTotal(const slipstream::v1::JobStatus& job) {
  long long workers = 0, current = 0, records_in = 0, events_valid = 0, records_invalid = 0, records_late = 0,
            dlq_failures = 0, features_emitted = 0, written = 0, redis_errors = 0, sliding = 0, sessions = 0,
            lag = 0, shuffled_out = 0, shuffled_in = 0, records_out = 0, records_in_channels = 0, batches_out = 0,
            bytes_out = 0, backpressure = 0, guarded = 0, kept_newer = 0, pending = 0;
  long long watermark_min = std::numeric_limits<long long>::max();
  bool lag_known = true;
  std::string by_worker;
  for (const slipstream::v1::WorkerStatus& w : job.workers()) {
    if (w.standby()) continue;
    ++workers;
    const slipstream::v1::WorkerCounters& c = w.counters();
    if (c.attempt() != job.attempt() || job.attempt() == 0) {
      watermark_min = std::numeric_limits<long long>::min();
      lag_known = false;
      by_worker += by_worker.empty() ? "-" : ",-";
      continue;
    }
    ++current;
    records_in += c.records_in();
    events_valid += c.events_valid();
    records_invalid += c.records_invalid();
    records_late += c.records_late();
    dlq_failures += c.dlq_delivery_failures();
    features_emitted += c.features_emitted();
    written += c.redis_features_written();
    redis_errors += c.redis_errors();
    guarded += c.redis_features_guarded();
    kept_newer += c.redis_features_kept_newer();
    pending += c.redis_pending_features();
    sliding += c.sliding_windows_fired();
    sessions += c.sessions_fired();
    shuffled_out += c.records_shuffled_out();
    shuffled_in += c.records_shuffled_in();
    if (c.watermark_ms() < watermark_min) watermark_min = c.watermark_ms();
    const int64_t l = Lag(c);
    if (l < 0) {
      lag_known = false;
    } else {
      lag += l;
    }
    for (const slipstream::v1::ChannelStatus& ch : c.channels()) {
      if (ch.outbound()) {
        records_out += ch.records();
        batches_out += ch.batches();
        bytes_out += ch.bytes();
        backpressure += ch.backpressure_ms();
      } else {
        records_in_channels += ch.records();
      }
    }
    by_worker += (by_worker.empty() ? "" : ",") + std::to_string(c.records_in());
  }
  if (current == 0) {
    watermark_min = std::numeric_limits<long long>::min();
    lag_known = false;
  }
  std::printf(
      "job=%s topic=%s state=%s attempt=%lld failures=%lld workers=%lld current=%lld records_in=%lld "
      "events_valid=%lld records_invalid=%lld records_late=%lld dlq_delivery_failures=%lld features_emitted=%lld "
      "redis_features_written=%lld redis_errors=%lld redis_features_guarded=%lld redis_features_kept_newer=%lld "
      "sliding_windows_fired=%lld sessions_fired=%lld "
      "watermark_min_ms=%lld lag=%lld channel_records_out=%lld channel_records_in=%lld channel_batches_out=%lld "
      "channel_bytes_out=%lld backpressure_ms=%lld records_shuffled_out=%lld records_shuffled_in=%lld "
      "records_in_by_worker=%s redis_pending_features=%lld\n",
      job.job_id().c_str(), job.topic().c_str(), job.state().c_str(), static_cast<long long>(job.attempt()),
      static_cast<long long>(job.failures()), workers, current, records_in, events_valid, records_invalid,
      records_late, dlq_failures, features_emitted, written, redis_errors, guarded, kept_newer, sliding, sessions,
      watermark_min,
      lag_known ? lag : -1LL, records_out, records_in_channels, batches_out, bytes_out, backpressure,
      shuffled_out, shuffled_in, by_worker.empty() ? "-" : by_worker.c_str(), pending);
  std::fflush(stdout);
}

int Run(int argc, char** argv) {
  std::string coordinator = "127.0.0.1:6123";
  int timeout_ms = 2000;
  bool total = false;
  CLI::App app{"Prints the job's worker counters from the Slipstream coordinator (GetJob) as key=value.",
               kProgram};
  app.add_option("--coordinator", coordinator, "coordinator gRPC address host:port")->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "RPC deadline")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("--total", total, "one line with the counters summed over the current attempt's workers");
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
  if (total) {
    PrintTotal(job);
    return 0;
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
        "sessions_fired=%lld redis_features_guarded=%lld redis_features_kept_newer=%lld lag=%lld "
        "redis_pending_features=%lld\n",
        job.job_id().c_str(), job.topic().c_str(), job.state().c_str(), job.workers_size(), w.worker_id().c_str(),
        static_cast<long long>(w.heartbeat_age_ms()), static_cast<long long>(c.records_in()),
        static_cast<long long>(c.events_valid()), static_cast<long long>(c.records_invalid()),
        static_cast<long long>(c.records_late()), static_cast<long long>(c.dlq_delivery_failures()),
        static_cast<long long>(c.features_emitted()), static_cast<long long>(c.redis_features_written()),
        static_cast<long long>(c.redis_errors()), static_cast<long long>(c.watermark_ms()),
        static_cast<long long>(c.sliding_windows_fired()), static_cast<long long>(c.sessions_fired()),
        static_cast<long long>(c.redis_features_guarded()), static_cast<long long>(c.redis_features_kept_newer()),
        lag_known ? static_cast<long long>(lag) : -1LL, static_cast<long long>(c.redis_pending_features()));
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
