// End-to-end tests of the real binaries against a real Kafka broker and a
// real Redis server (both started by scripts/test.sh):
//
//  Workers/PipelineWithWorkers.MatchesReferenceModel/{1,2,3}
//    ~110k valid events (5.5 h of event time, 500 users, 4 partitions) plus
//    ~0.5 % invalid records go through a coordinator and 1, 2 or 3 workers
//    (with several, events cross between workers in the key-group shuffle);
//    late events and a far-future watermark push follow. Redis, the workers'
//    counters and the dead-letter topic must match an independent reference
//    model (tests/integration/workload.h) exactly, whatever the number of
//    workers: the final Redis state, every feature write the job made
//    (recorded with Redis MONITOR), the counters reported through GetJob,
//    and the dead-letter topic; every partition and key group is owned by
//    exactly one worker.
//  PipelineEndToEnd.LostWorkerIsReportedWithoutHanging
//  PipelineEndToEnd.SlowRedisHoldsThePipelineBackWithBoundedMemory
//    two workers, one writing to Redis through a throttling proxy: the other
//    worker's source stops within what the buffers between them allow
//    (backpressure across the shuffle), memory stays bounded, and nothing is
//    lost once the limit is lifted.
//  Binaries.InvalidConfigFailsNamingTheKey
//
// Each test uses its own topics, consumer group, Redis database, RPC port and
// temporary directory, so they can run in parallel with other tests. A
// failing test keeps its temporary directory (process logs, state) and
// prints the tails of every process's stdout/stderr.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <csignal>
#include <chrono>
#include <filesystem>
#include <limits>
#include <fstream>
#include <tuple>

#include <google/protobuf/util/json_util.h>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/key_groups.h"
#include "tests/integration/coordinator_client.h"
#include "tests/integration/e2e_fixture.h"
#include "tests/integration/feature_checks.h"
#include "tests/integration/it_env.h"
#include "tests/integration/kafka_client.h"
#include "tests/integration/process_runner.h"
#include "tests/integration/redis_client.h"
#include "tests/integration/throttle_proxy.h"
#include "tests/integration/workload.h"
#include "worker/pipeline/feature_task.h"
#include "worker/sink/redis_sink.h"

namespace slipstream::it {
namespace {

constexpr int kPartitions = 4;
// Redis databases owned by these tests (nothing else in the suite uses them).
// MatchesReferenceModel/N uses 14 - N (13, 12, 11).
// 14 is shared with WebUi.* (web_ui_test.cc): neither reads nor flushes it.
constexpr int kRedisDbLostWorker = 14;
// The watermark trails the largest event time by the out-of-orderness bound
// (10 s) plus 1 ms.
constexpr int64_t kWatermarkLagMs = 10 * kSecondMs + 1;
constexpr int kLateEvents = 200;
constexpr int kBehindWatermarkEvents = 60;
const char* const kWatermarkUser = "__watermark__";

// ---------------------------------------------------------------------------

// (workers, checkpoints every 300 ms)
class PipelineWithWorkers : public PipelineEndToEnd, public ::testing::WithParamInterface<std::tuple<int, bool>> {};

TEST_P(PipelineWithWorkers, MatchesReferenceModel) {
  ASSERT_TRUE(env_ok_);
  ASSERT_GT(rpc_port_, 0);
  const int workers = std::get<0>(GetParam());
  const bool checkpointing = std::get<1>(GetParam());
  // 13, 12, 11 without checkpoints; 8, 7, 6 with.
  const int kRedisDbReferenceModel = (checkpointing ? 9 : 14) - workers;
  clock_.Log("topic " + topic_ + ", dead-letter topic " + dlq_topic_ + ", redis db " +
             std::to_string(kRedisDbReferenceModel) + ", tmp " + tmp_->path());

  absl::StatusOr<std::unique_ptr<RedisClient>> redis;
  absl::StatusOr<std::unique_ptr<RedisMonitor>> monitor;
  ASSERT_NO_FATAL_FAILURE(OpenRecordedRedisDb(kRedisDbReferenceModel, &redis, &monitor));

  // --- Workload and reference model inputs -------------------------------
  Workload w = GenerateWorkload(WorkloadOptions{});
  clock_.Log(absl::StrCat("generated ", w.valid.size(), " valid events for ", w.users.size(), " users over ",
                          (w.max_time_ms - w.start_ms) / 1000, " s of event time, ", w.malformed,
                          " invalid records"));
  ASSERT_GE(w.valid.size(), 100000u);
  ASSERT_GE(w.max_time_ms - w.start_ms, 5 * kHourMs);
  clock_.EndPhase("generate");

  // Everything produced, in order, with what must happen to it.
  std::vector<RecordSpec> produced_specs;
  std::vector<size_t> produced_index;  // producer index of produced_specs[i]

  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, kPartitions).ok());
  absl::StatusOr<std::unique_ptr<TestProducer>> producer_or = TestProducer::Create(env_.kafka);
  ASSERT_TRUE(producer_or.ok()) << producer_or.status();
  TestProducer& producer = **producer_or;
  auto produce = [&](RecordSpec spec, int32_t partition = -1) {
    produced_index.push_back(producer.Produce(topic_, spec.key, spec.value, partition));
    produced_specs.push_back(std::move(spec));
  };

  // --- Phase 1: the main stream -------------------------------------------
  for (const RecordSpec& r : w.records) produce(r);
  {
    absl::Status flushed = producer.Flush(120000);
    ASSERT_TRUE(flushed.ok()) << flushed;
  }
  // Close phase 1 with one event at the largest event time in every
  // partition (for a user already living there), so every partition's
  // watermark reaches max - 10 s - 1 ms and the wait below is well defined.
  std::map<int32_t, std::string> user_in_partition;
  std::map<std::string, std::set<int32_t>> partitions_of_user;
  for (size_t i = 0; i < produced_specs.size(); ++i) {
    const RecordSpec& s = produced_specs[i];
    if (s.event_index < 0) continue;
    const int32_t p = producer.delivery(produced_index[i]).partition;
    partitions_of_user[w.valid[s.event_index].user].insert(p);
    user_in_partition.emplace(p, w.valid[s.event_index].user);
  }
  for (const auto& [user, parts] : partitions_of_user) {
    ASSERT_EQ(parts.size(), 1u) << "user " << user << " was spread over several partitions: the producer "
                                   "must partition by key";
  }
  ASSERT_EQ(user_in_partition.size(), static_cast<size_t>(kPartitions)) << "some partition got no users";
  for (const auto& [partition, user] : user_in_partition) {
    ValidEvent e{user, w.max_time_ms, EventKind::kView, 4200};
    RecordSpec spec;
    spec.key = user;
    spec.value = CanonicalEventJson(user, e.time_ms, e.kind, e.price_cents);
    spec.event_index = static_cast<int>(w.valid.size());
    w.valid.push_back(e);
    produce(spec);
  }
  {
    absl::Status flushed = producer.Flush(30000);
    ASSERT_TRUE(flushed.ok()) << flushed;
  }
  const int64_t phase1_records = static_cast<int64_t>(produced_specs.size());
  clock_.Log(absl::StrCat("produced ", phase1_records, " phase-1 records"));
  clock_.EndPhase("produce phase 1");

  // --- Start the job --------------------------------------------------------
  CoordinatorClient coordinator(CoordinatorAddress());
  std::vector<std::string> coordinator_args = {"-Dcluster.min-workers=" + std::to_string(workers)};
  // Frequent checkpoints: barriers and alignment must not change a single
  // feature, and the files must follow the documented layout.
  coordinator_args.push_back(checkpointing ? "-Dexecution.checkpointing.interval=300 ms"
                                           : "-Dexecution.checkpointing.interval=1 h");
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, kRedisDbReferenceModel, coordinator_args));
  std::vector<int> metrics_ports;
  for (int i = 1; i <= workers; ++i) {
    metrics_ports.push_back(FreeTcpPort());
    Start("worker-" + std::to_string(i), "slipstream-worker", kRedisDbReferenceModel,
          {"-Dmetrics.port=" + std::to_string(metrics_ports.back())});
  }

  // Polls GetJob until `done(counters)` or the timeout; logs progress.
  auto wait_for = [&](const std::string& what, int64_t timeout_ms,
                      const std::function<bool(const v1::WorkerCounters&)>& done) -> std::optional<v1::WorkerCounters> {
    const int64_t deadline = SteadyNowMs() + timeout_ms;
    int64_t next_log = SteadyNowMs() + 5000;
    std::string last_problem = "no answer yet";
    while (SteadyNowMs() < deadline) {
      if (std::optional<std::string> exited = ExitedProcess()) {
        ADD_FAILURE() << *exited << " while waiting for " << what;
        return std::nullopt;
      }
      absl::StatusOr<v1::JobStatus> job = coordinator.GetJob();
      if (job.ok()) {
        absl::StatusOr<v1::WorkerCounters> c = JobCounters(*job, workers);
        if (c.ok()) {
          if (done(*c)) return *c;
          last_problem = Summarize(*c);
        } else {
          last_problem = std::string(c.status().message());
        }
      } else {
        last_problem = std::string(job.status().message());
      }
      if (SteadyNowMs() >= next_log) {
        clock_.Log("waiting for " + what + ": " + last_problem);
        next_log += 5000;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "timed out after " << timeout_ms / 1000 << " s waiting for " << what
                  << "; last state: " << last_problem;
    return std::nullopt;
  };

  const int64_t phase1_watermark = w.max_time_ms - kWatermarkLagMs;
  std::optional<v1::WorkerCounters> after_phase1 =
      wait_for("the watermark to reach the end of phase 1", 150000,
               [&](const v1::WorkerCounters& c) { return c.watermark_ms() >= phase1_watermark; });
  ASSERT_TRUE(after_phase1.has_value());
  clock_.Log("phase 1 consumed: " + Summarize(*after_phase1));
  EXPECT_EQ(after_phase1->watermark_ms(), phase1_watermark)
      << "the watermark must be max event time - 10 s - 1 ms while no later event exists";
  clock_.EndPhase("process phase 1");

  // --- Phase 2: late events, then a far-future event per partition ---------
  // Interleaved with them: events behind the watermark that are not late
  // (their user's last session is still open), which the job must accept.
  const std::vector<ValidEvent> behind =
      BehindWatermarkEvents(w.valid, phase1_watermark, kBehindWatermarkEvents, /*seed=*/11);
  ASSERT_GE(behind.size(), static_cast<size_t>(kBehindWatermarkEvents / 2)) << "too few users with an open session";
  int64_t late = 0;
  {
    std::mt19937_64 rng(7);
    for (int i = 0; i < kLateEvents; ++i) {
      if (static_cast<size_t>(i) < behind.size()) {
        const ValidEvent& e = behind[static_cast<size_t>(i)];
        RecordSpec spec;
        spec.key = e.user;
        spec.value = CanonicalEventJson(e.user, e.time_ms, e.kind, e.price_cents);
        spec.event_index = static_cast<int>(w.valid.size());
        w.valid.push_back(e);
        produce(spec);
      }
      // Mostly known users, some never seen before (they must get no keys).
      const std::string user = i % 10 == 9 ? "late-only-" + std::to_string(i)
                                           : w.users[rng() % w.users.size()];
      const int64_t t = w.start_ms - 2 * kHourMs + static_cast<int64_t>(rng() % (30 * kMinuteMs));
      RecordSpec spec;
      spec.key = user;
      spec.value = CanonicalEventJson(user, t, static_cast<EventKind>("vcp"[i % 3]), 1000 + i);
      spec.dlq_code = "late";
      produce(spec);
      ++late;
    }
    absl::Status flushed = producer.Flush(30000);
    ASSERT_TRUE(flushed.ok()) << flushed;
  }
  const int64_t future_ms = EpochMs(9999, 12, 31, 23, 59, 59, 999);
  for (int32_t p = 0; p < kPartitions; ++p) {
    RecordSpec spec;
    spec.key = kWatermarkUser;
    spec.value = CanonicalEventJson(kWatermarkUser, future_ms, EventKind::kView, 100);
    produce(spec, p);
  }
  {
    absl::Status flushed = producer.Flush(30000);
    ASSERT_TRUE(flushed.ok()) << flushed;
  }
  const int64_t total_records = static_cast<int64_t>(produced_specs.size());
  clock_.Log(absl::StrCat("produced ", late, " late events, ", behind.size(),
                          " events behind the watermark but not late, and ", kPartitions, " far-future events"));

  // --- Reference model ------------------------------------------------------
  const ReferenceModel model(w.valid);
  const int64_t expected_sessions = static_cast<int64_t>(model.sessions().size());
  const int64_t expected_keys = static_cast<int64_t>(model.user_features().size()) + expected_sessions;
  clock_.Log(absl::StrCat("reference model: ", model.sliding_windows(), " sliding windows, ", expected_sessions,
                          " sessions, ", model.user_features().size(), " users"));

  const int64_t final_watermark = future_ms - kWatermarkLagMs;
  v1::WorkerCounters previous;
  bool have_previous = false;
  std::optional<v1::WorkerCounters> final_counters = wait_for(
      "all windows to fire and reach Redis", 120000, [&](const v1::WorkerCounters& c) {
        // Not waiting for the model's key count here: when the job writes
        // fewer keys, the comparisons below say which ones are missing.
        const bool done = c.records_in() >= total_records && c.watermark_ms() >= final_watermark &&
                          c.features_emitted() == c.redis_features_written();
        // Stable: the same counters in two polls a heartbeat apart or more
        // (except what moves on an idle job: memory, and the channels, which
        // carry checkpoint barriers).
        v1::WorkerCounters progress = c;
        progress.clear_channels();
        progress.clear_rss_bytes();
        progress.clear_peak_rss_bytes();
        progress.clear_gate_queued_bytes();
        const bool stable = done && have_previous && previous.SerializeAsString() == progress.SerializeAsString();
        previous = progress;
        have_previous = done;
        if (done && !stable) std::this_thread::sleep_for(std::chrono::milliseconds(400));
        return stable;
      });
  ASSERT_TRUE(final_counters.has_value());
  const v1::WorkerCounters& c = *final_counters;
  clock_.Log("final counters: " + Summarize(c));
  {
    // Every write is acknowledged (redis_features_written), so the key count
    // should be final; allow a moment in case the counters run ahead.
    const int64_t deadline = SteadyNowMs() + 10000;
    absl::StatusOr<int64_t> size = (*redis)->FeatureKeyCount();
    while (size.ok() && *size != expected_keys && SteadyNowMs() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      size = (*redis)->FeatureKeyCount();
    }
    ASSERT_TRUE(size.ok()) << size.status();
    clock_.Log(absl::StrCat("redis db ", kRedisDbReferenceModel, " holds ", *size, " keys, the model expects ",
                            expected_keys));
  }
  clock_.EndPhase("process phase 2");

  // --- Counters ---------------------------------------------------------------
  const int64_t valid_total = static_cast<int64_t>(w.valid.size()) + late + kPartitions;
  EXPECT_EQ(c.records_in(), total_records);
  EXPECT_EQ(c.events_valid(), valid_total);
  EXPECT_EQ(c.records_invalid(), w.malformed);
  EXPECT_EQ(c.records_late(), late);
  EXPECT_EQ(c.sliding_windows_fired(), model.sliding_windows());
  EXPECT_EQ(c.sessions_fired(), expected_sessions);
  EXPECT_EQ(c.features_emitted(), model.sliding_windows() + expected_sessions);
  EXPECT_EQ(c.redis_features_written(), c.features_emitted());
  EXPECT_EQ(c.redis_errors(), 0);
  EXPECT_EQ(c.dlq_delivery_failures(), 0);
  EXPECT_EQ(c.watermark_ms(), final_watermark);
  {
    std::map<int32_t, int64_t> end_offsets;
    for (size_t i = 0; i < produced_specs.size(); ++i) {
      const Delivery& d = producer.delivery(produced_index[i]);
      end_offsets[d.partition] = std::max(end_offsets[d.partition], d.offset + 1);
    }
    ASSERT_EQ(c.partitions_size(), kPartitions);
    std::set<int32_t> partitions_seen;
    for (const v1::PartitionProgress& p : c.partitions()) {
      EXPECT_TRUE(partitions_seen.insert(p.partition()).second) << "partition " << p.partition() << " read twice";
      EXPECT_EQ(p.next_offset(), end_offsets[p.partition()]) << "partition " << p.partition();
      EXPECT_EQ(p.watermark_ms(), final_watermark) << "partition " << p.partition();
    }
  }

  // --- Prometheus: every worker's /metrics adds up to the same counters ----
  {
    std::map<std::string, double> sums;
    int64_t latency_samples = 0;
    for (int port : metrics_ports) {
      httplib::Client client("127.0.0.1", port);
      client.set_connection_timeout(5);
      httplib::Result res = client.Get("/metrics");
      ASSERT_TRUE(res) << "GET http://127.0.0.1:" << port << "/metrics failed";
      ASSERT_EQ(res->status, 200);
      std::istringstream lines(res->body);
      std::string line;
      while (std::getline(lines, line)) {
        if (line.empty() || line[0] == '#') continue;
        const size_t name_end = line.find_first_of("{ ");
        const size_t value_at = line.rfind(' ');
        ASSERT_NE(value_at, std::string::npos) << line;
        const std::string name = line.substr(0, name_end);
        const double value = std::stod(line.substr(value_at + 1));
        sums[name] += value;
        if (name == "slipstream_redis_write_latency_seconds_count") latency_samples += static_cast<int64_t>(value);
      }
      EXPECT_EQ(client.Get("/nothing-here")->status, 404);
    }
    EXPECT_EQ(sums["slipstream_records_in_total"], static_cast<double>(total_records));
    EXPECT_EQ(sums["slipstream_records_invalid_total"], static_cast<double>(w.malformed));
    EXPECT_EQ(sums["slipstream_records_late_total"], static_cast<double>(late));
    EXPECT_EQ(sums["slipstream_features_emitted_total"], static_cast<double>(c.features_emitted()));
    EXPECT_EQ(sums["slipstream_redis_features_written_total"], static_cast<double>(c.redis_features_written()));
    EXPECT_EQ(sums["slipstream_partition_lag_records"], 0.0) << "every partition is read to its end";
    EXPECT_GT(latency_samples, 0) << "no Redis write latency recorded";
    EXPECT_EQ(sums["slipstream_worker_task_attempt"], static_cast<double>(workers));
  }

  // --- REST: Flink's endpoints answer with the job's figures ---------------
  {
    absl::StatusOr<v1::JobStatus> job = coordinator.GetJob();
    ASSERT_TRUE(job.ok()) << job.status();
    httplib::Client rest("127.0.0.1", rest_port_);
    rest.set_connection_timeout(5);
    auto get = [&](const std::string& path, int expected_status) -> std::string {
      httplib::Result res = rest.Get(path.c_str());
      if (!res) {
        ADD_FAILURE() << "GET " << path << " failed";
        return "";
      }
      EXPECT_EQ(res->status, expected_status) << "GET " << path << ": " << res->body;
      return res->body;
    };
    const std::string id = job->job_id();
    EXPECT_NE(get("/jobs", 200).find("{\"id\":\"" + id + "\",\"status\":\"RUNNING\"}"), std::string::npos);
    EXPECT_NE(get("/overview", 200).find("\"taskmanagers\":" + std::to_string(workers)), std::string::npos);
    EXPECT_NE(get("/jobs/" + id, 200).find("\"state\":\"RUNNING\""), std::string::npos);
    const std::string checkpoints = get("/jobs/" + id + "/checkpoints", 200);
    EXPECT_NE(checkpoints.find("\"counts\":{"), std::string::npos) << checkpoints;
    EXPECT_NE(checkpoints.find("\"restored\":0"), std::string::npos) << checkpoints;
    if (checkpointing) {
      const std::string chk_prefix = tmp_->path() + "/checkpoints/" + id + "/chk-";
      EXPECT_NE(checkpoints.find("\"external_path\":\"" + chk_prefix), std::string::npos) << checkpoints;
      EXPECT_EQ(checkpoints.find("\"completed\":0"), std::string::npos) << checkpoints;
    }
    EXPECT_NE(get("/jobs/" + id + "/checkpoints/config", 200).find("\"mode\":\"exactly_once\""), std::string::npos);
    const std::string taskmanagers = get("/taskmanagers", 200);
    for (const v1::WorkerStatus& w : job->workers()) {
      EXPECT_NE(taskmanagers.find("\"id\":\"" + w.worker_id() + "\""), std::string::npos) << taskmanagers;
    }
    EXPECT_NE(get("/jobs/00000000000000000000000000000000", 404).find("\"errors\":["), std::string::npos);
    EXPECT_NE(get("/no/such/path", 404).find("\"errors\":["), std::string::npos);
    httplib::Result post = rest.Post("/jobs", "{}", "application/json");
    ASSERT_TRUE(post);
    EXPECT_EQ(post->status, 405) << post->body;
    EXPECT_NE(get("/", 200).find("<title>Slipstream"), std::string::npos) << "the web UI page";
    const std::string metrics = get("/metrics", 200);
    EXPECT_NE(metrics.find("slipstream_job_attempt{job_id=\"" + id + "\"} 1\n"), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("slipstream_job_state{job_id=\"" + id + "\",state=\"RUNNING\"} 1\n"), std::string::npos);
  }

  // --- Cluster: one attempt, every key group and partition owned once -------
  {
    absl::StatusOr<v1::JobStatus> job = coordinator.GetJob();
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(job->attempt(), 1);
    EXPECT_EQ(job->failures(), 0) << job->failure_cause();
    ASSERT_EQ(job->workers_size(), workers);
    std::vector<int> key_group_owners(job->max_parallelism(), 0);
    std::vector<int> partition_owners(kPartitions, 0);
    for (const v1::WorkerStatus& w : job->workers()) {
      ASSERT_EQ(w.assignment().key_groups_size(), 1);
      for (int kg = w.assignment().key_groups(0).first(); kg <= w.assignment().key_groups(0).last(); ++kg) {
        ++key_group_owners.at(kg);
      }
      for (int p : w.assignment().partitions()) ++partition_owners.at(p);
      clock_.Log(absl::StrCat("worker ", w.worker_id(), ": key groups ", w.assignment().key_groups(0).first(), "-",
                              w.assignment().key_groups(0).last(), ", ", w.assignment().partitions_size(),
                              " partitions, ", w.counters().records_in(), " records in, ",
                              w.counters().redis_features_written(), " features written"));
    }
    for (size_t kg = 0; kg < key_group_owners.size(); ++kg) {
      EXPECT_EQ(key_group_owners[kg], 1) << "key group " << kg;
    }
    for (int p = 0; p < kPartitions; ++p) EXPECT_EQ(partition_owners[p], 1) << "partition " << p;
    // The shuffle: what left a worker for a peer arrived there, nothing
    // else, and with several workers some records did cross.
    int64_t sent = 0, received = 0;
    for (const v1::ChannelStatus& ch : c.channels()) {
      (ch.outbound() ? sent : received) += ch.records();
      EXPECT_EQ(ch.error(), "") << (ch.outbound() ? "to " : "from ") << ch.peer_worker_id();
    }
    EXPECT_EQ(sent, received);
    if (workers > 1) {
      EXPECT_GT(sent, 0);
      EXPECT_EQ(c.channels_size(), 2 * workers * (workers - 1));
    }
    clock_.Log(absl::StrCat(sent, " records crossed between workers"));

    // Checkpoints: several completed while the job ran, and the directory
    // holds exactly the retained one (state.checkpoints.num-retained=1) in
    // the documented layout: chk-<n>/_metadata plus one state directory per
    // key-group range.
    v1::CheckpointOverview cp = job->checkpoints();
    clock_.Log(absl::StrCat("checkpoints: ", cp.completed(), " completed while the input was processed, ",
                            cp.failed(), " failed; latest ", cp.latest_completed().id(), " at ",
                            cp.latest_completed().path()));
    if (checkpointing) {
      // Retention needs several. The job goes on checkpointing every 300 ms
      // after its input ended: wait for the third, rather than expect it by
      // now (how many fit into processing depends on the machine's load).
      std::optional<v1::JobStatus> later =
          WaitForJob(coordinator, "three completed checkpoints", 60000, {},
                     [](const v1::JobStatus& j) { return j.checkpoints().completed() >= 3; });
      ASSERT_TRUE(later.has_value());
      cp = later->checkpoints();
      const std::filesystem::path job_dir = std::filesystem::path(tmp_->path()) / "checkpoints" / job->job_id();
      // The job keeps checkpointing while this looks: a newer checkpoint may
      // complete and retention remove the one being read. Then look again.
      auto layout_problems = [&]() -> std::vector<std::string> {
        std::vector<std::string> problems;
        std::vector<std::string> completed_dirs;
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(job_dir, ec)) {
          const std::string name = entry.path().filename().string();
          if (name.rfind("chk-", 0) == 0 && std::filesystem::exists(entry.path() / "_metadata")) {
            completed_dirs.push_back(name);
          }
        }
        if (completed_dirs.size() != 1) {
          problems.push_back("retained checkpoints: " + absl::StrJoin(completed_dirs, ", ") + " (expected one)");
          return problems;
        }
        const std::filesystem::path chk = job_dir / completed_dirs[0];
        std::ifstream in(chk / "_metadata");
        std::stringstream json;
        json << in.rdbuf();
        v1::CheckpointMetadata metadata;
        if (!google::protobuf::util::JsonStringToMessage(json.str(), &metadata).ok()) {
          problems.push_back("unreadable " + (chk / "_metadata").string() + ": " + json.str());
          return problems;
        }
        if (metadata.job_id() != job->job_id()) problems.push_back("job id " + metadata.job_id());
        if (metadata.workers_size() != workers) {
          problems.push_back(absl::StrCat(metadata.workers_size(), " worker snapshots"));
        }
        std::vector<int> covered(job->max_parallelism(), 0);
        int offsets = 0;
        for (const v1::WorkerSnapshot& w : metadata.workers()) {
          for (int kg = w.key_groups().first(); kg <= w.key_groups().last(); ++kg) ++covered.at(kg);
          // One SST file per worker snapshot, named after its range, inside
          // chk-n (so that the directory is self-contained).
          const std::string expected = absl::StrCat("kg-", w.key_groups().first(), "-", w.key_groups().last(), ".sst");
          if (w.state_path() != expected || !std::filesystem::is_regular_file(chk / w.state_path())) {
            problems.push_back((chk / w.state_path()).string() + " is not the range's state file " + expected);
          } else if (w.state_bytes() != static_cast<int64_t>(std::filesystem::file_size(chk / w.state_path()))) {
            problems.push_back(absl::StrCat((chk / w.state_path()).string(), " has ",
                                            std::filesystem::file_size(chk / w.state_path()), " bytes, ",
                                            w.state_bytes(), " acknowledged"));
          }
          offsets += w.offsets_size();
        }
        for (size_t kg = 0; kg < covered.size(); ++kg) {
          if (covered[kg] != 1) problems.push_back(absl::StrCat("key group ", kg, " covered ", covered[kg], " times"));
        }
        if (offsets != kPartitions) problems.push_back(absl::StrCat(offsets, " partition offsets"));
        return problems;
      };
      std::vector<std::string> problems = layout_problems();
      for (int retry = 0; retry < 20 && !problems.empty(); ++retry) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        problems = layout_problems();
      }
      EXPECT_TRUE(problems.empty()) << absl::StrJoin(problems, "\n");

      // Completed checkpoints commit their offsets to the consumer group (lag
      // monitoring): once the job is idle, up to the end of every partition.
      absl::StatusOr<int64_t> end = TopicEndOffsetSum(env_.kafka, topic_);
      ASSERT_TRUE(end.ok()) << end.status();
      absl::StatusOr<int64_t> committed = CommittedOffsetSum(env_.kafka, topic_ + "-group", topic_);
      for (int i = 0; i < 100 && committed.ok() && *committed != *end; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        committed = CommittedOffsetSum(env_.kafka, topic_ + "-group", topic_);
      }
      ASSERT_TRUE(committed.ok()) << committed.status();
      EXPECT_EQ(*committed, *end) << "offsets committed to " << topic_ << "-group";
    } else {
      EXPECT_EQ(cp.completed(), 0);
    }
  }

  // --- Redis --------------------------------------------------------------------
  ASSERT_NO_FATAL_FAILURE(CheckFinalRedisState(**redis, model));

  // --- Every feature write (Redis MONITOR) ----------------------------------
  // The final state only shows each user's newest window; the write log
  // shows every window and session the job fired.
  {
    absl::StatusOr<std::vector<RedisMonitor::Command>> commands = (*monitor)->Finish(**redis, 30000);
    ASSERT_TRUE(commands.ok()) << commands.status();
    CheckFeatureWrites(model, *commands);
  }
  clock_.EndPhase("check redis");

  // --- Dead-letter topic ------------------------------------------------------
  {
    const int64_t expected_dlq = w.malformed + late;
    absl::StatusOr<std::vector<ConsumedRecord>> dlq =
        ReadWholeTopic(env_.kafka, dlq_topic_, static_cast<size_t>(expected_dlq), 60000);
    ASSERT_TRUE(dlq.ok()) << dlq.status();
    absl::StatusOr<int64_t> dlq_end = TopicEndOffsetSum(env_.kafka, dlq_topic_);
    ASSERT_TRUE(dlq_end.ok()) << dlq_end.status();
    EXPECT_EQ(static_cast<int64_t>(dlq->size()), expected_dlq)
        << "dead-letter records read (" << w.malformed << " invalid + " << late << " late expected)";
    EXPECT_EQ(*dlq_end, expected_dlq) << "records in the dead-letter topic (sum of end offsets)";

    std::map<std::pair<int32_t, int64_t>, size_t> by_source;  // (partition, offset) -> produced_specs index
    for (size_t i = 0; i < produced_specs.size(); ++i) {
      const Delivery& d = producer.delivery(produced_index[i]);
      by_source[{d.partition, d.offset}] = i;
    }
    Mismatches dlq_mismatches("dead-letter records");
    std::set<size_t> seen;
    std::map<std::string, int64_t> by_code;
    for (const ConsumedRecord& r : *dlq) {
      const std::string where = absl::StrCat("dlq ", r.partition, "@", r.offset);
      const std::optional<std::string> reason = r.Header("dlq.reason");
      const std::optional<std::string> source_topic = r.Header("dlq.source.topic");
      const std::optional<std::string> source_partition = r.Header("dlq.source.partition");
      const std::optional<std::string> source_offset = r.Header("dlq.source.offset");
      if (!reason || !source_topic || !source_partition || !source_offset) {
        dlq_mismatches.Add(where + ": missing one of the headers dlq.reason, dlq.source.topic, "
                                   "dlq.source.partition, dlq.source.offset");
        continue;
      }
      if (*source_topic != topic_) dlq_mismatches.Add(where + ": dlq.source.topic " + Printable(*source_topic));
      const std::optional<int64_t> sp = ParseInt(*source_partition);
      const std::optional<int64_t> so = ParseInt(*source_offset);
      if (!sp || !so) {
        dlq_mismatches.Add(where + ": unparsable source partition/offset " + Printable(*source_partition) + "/" +
                           Printable(*source_offset));
        continue;
      }
      auto it = by_source.find({static_cast<int32_t>(*sp), *so});
      if (it == by_source.end()) {
        dlq_mismatches.Add(where + ": source " + *source_partition + "@" + *source_offset + " was never produced");
        continue;
      }
      const RecordSpec& spec = produced_specs[it->second];
      if (!seen.insert(it->second).second) {
        dlq_mismatches.Add(where + ": duplicate dead letter for source " + *source_partition + "@" + *source_offset);
        continue;
      }
      if (spec.dlq_code.empty()) {
        dlq_mismatches.Add(where + ": valid record dead-lettered with reason " + Printable(*reason) +
                           "; value " + Printable(spec.value));
        continue;
      }
      const std::string code = reason->substr(0, reason->find(':'));
      ++by_code[code];
      if (reason->rfind(spec.dlq_code + ": ", 0) != 0 || reason->size() <= spec.dlq_code.size() + 2) {
        dlq_mismatches.Add(where + ": reason " + Printable(*reason) + " should be \"" + spec.dlq_code +
                           ": <detail>\" for value " + Printable(spec.value));
      }
      if (r.value.value_or("") != spec.value) {
        dlq_mismatches.Add(where + ": value " + Printable(r.value.value_or("<null>")) + " differs from the source " +
                           Printable(spec.value));
      }
      if (r.key.value_or("") != spec.key.value_or("")) {
        dlq_mismatches.Add(where + ": key " + Printable(r.key.value_or("<null>")) + " differs from the source " +
                           Printable(spec.key.value_or("<null>")));
      }
    }
    for (size_t i = 0; i < produced_specs.size(); ++i) {
      if (!produced_specs[i].dlq_code.empty() && !seen.count(i)) {
        const Delivery& d = producer.delivery(produced_index[i]);
        dlq_mismatches.Add(absl::StrCat("no dead letter for source ", d.partition, "@", d.offset, " (expected ",
                                        produced_specs[i].dlq_code, "): ", Printable(produced_specs[i].value)));
      }
    }
    dlq_mismatches.Report();
    std::string codes;
    for (const auto& [code, n] : by_code) absl::StrAppend(&codes, " ", code, "=", n);
    clock_.Log("dead letters by reason:" + codes);
  }
  clock_.EndPhase("check dead-letter topic");
  if (!HasFailure()) (void)(*redis)->FlushDb();  // keep the data of a failed run for inspection
}

// ---------------------------------------------------------------------------

INSTANTIATE_TEST_SUITE_P(Workers, PipelineWithWorkers,
                         ::testing::Values(std::make_tuple(1, false), std::make_tuple(2, false),
                                           std::make_tuple(3, false), std::make_tuple(1, true),
                                           std::make_tuple(2, true), std::make_tuple(3, true)),
                         [](const ::testing::TestParamInfo<std::tuple<int, bool>>& info) {
                           return std::to_string(std::get<0>(info.param)) + "Workers" +
                                  (std::get<1>(info.param) ? "WithCheckpoints" : "");
                         });

// ---------------------------------------------------------------------------

// Two workers run; one is killed (SIGKILL). The coordinator must report the
// failed attempt naming the lost worker, the surviving worker must cancel its
// task and wait for the next attempt instead of hanging, and the coordinator
// keeps serving.
TEST_F(PipelineEndToEnd, LostWorkerIsReportedWithoutHanging) {
  ASSERT_TRUE(env_ok_);
  ASSERT_GT(rpc_port_, 0);
  {
    absl::Status created = CreateTopic(env_.kafka, topic_, kPartitions);
    ASSERT_TRUE(created.ok()) << created;
  }
  CoordinatorClient coordinator(CoordinatorAddress());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, kRedisDbLostWorker,
                                           {"-Dcluster.min-workers=2", "-Dheartbeat.timeout=2 s"}));
  Process& survivor = Start("worker-1", "slipstream-worker", kRedisDbLostWorker, {"-Dheartbeat.timeout=2 s"});
  Process& victim = Start("worker-2", "slipstream-worker", kRedisDbLostWorker, {"-Dheartbeat.timeout=2 s"});

  // Both running, with their data channels connected both ways.
  std::string victim_id;
  const int64_t deadline = SteadyNowMs() + 60000;
  while (SteadyNowMs() < deadline && victim_id.empty()) {
    if (std::optional<std::string> exited = ExitedProcess()) FAIL() << *exited;
    absl::StatusOr<v1::JobStatus> job = coordinator.GetJob();
    if (job.ok() && JobCounters(*job, 2).ok()) {
      bool connected = true;
      for (const v1::WorkerStatus& w : job->workers()) {
        connected = connected && w.counters().channels_size() == 2;
        for (const v1::ChannelStatus& ch : w.counters().channels()) connected = connected && ch.connected();
      }
      if (connected) {
        for (const v1::WorkerStatus& w : job->workers()) {
          if (w.registered_at_ms() == std::max(job->workers(0).registered_at_ms(), job->workers(1).registered_at_ms())) {
            victim_id = w.worker_id();
          }
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(victim_id.empty()) << "two connected workers never showed up in GetJob";
  // Which process is which: the worker id carries its data port.
  absl::StatusOr<v1::JobStatus> before = coordinator.GetJob();
  ASSERT_TRUE(before.ok());
  std::string survivor_id;
  for (const v1::WorkerStatus& w : before->workers()) {
    if (w.worker_id() != victim_id) survivor_id = w.worker_id();
  }
  clock_.Log("both workers run with connected channels; killing one of them");
  // Kill the process registered second (worker-2 was started second, but
  // registration order decides the id; kill by matching the data port).
  Process* killed = &victim;
  Process* kept = &survivor;
  for (const v1::WorkerStatus& w : before->workers()) {
    if (w.worker_id() == victim_id && victim.ReadStdout().find(absl::StrCat(":", w.data_port())) == std::string::npos &&
        survivor.ReadStdout().find(absl::StrCat(":", w.data_port())) != std::string::npos) {
      std::swap(killed, kept);
    }
  }
  ::kill(killed->pid(), SIGKILL);
  const int64_t killed_at = SteadyNowMs();

  // The coordinator fails the attempt naming the lost worker; the survivor
  // cancels its task and waits, idle, for the next attempt (which needs
  // cluster.min-workers=2 again): it neither hangs in its task nor exits.
  absl::StatusOr<v1::JobStatus> job = coordinator.GetJob();
  const int64_t report_deadline = SteadyNowMs() + 15000;
  auto survivor_idle = [&](const v1::JobStatus& j) {
    return j.workers_size() == 1 && j.workers(0).counters().attempt() == 0;
  };
  while ((!job.ok() || job->failures() == 0 || !survivor_idle(*job)) && SteadyNowMs() < report_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    job = coordinator.GetJob();
  }
  ASSERT_TRUE(job.ok()) << "the coordinator stopped answering: " << job.status();
  clock_.Log(absl::StrCat("after ", SteadyNowMs() - killed_at, " ms the coordinator reports ", job->state(), ": ",
                          job->failure_cause()));
  EXPECT_EQ(job->state(), "RESTARTING");
  EXPECT_EQ(job->failures(), 1);
  EXPECT_NE(job->failure_cause().find(victim_id), std::string::npos) << job->failure_cause();
  EXPECT_TRUE(survivor_idle(*job)) << "the surviving worker should stay registered with its task cancelled";
  EXPECT_TRUE(kept->Running());
  (void)survivor_id;
}

// ---------------------------------------------------------------------------

// A worker advertises a data address its peer cannot reach (TEST-NET-1,
// 192.0.2.1). The peer must keep retrying and report the problem in its
// heartbeat, where the coordinator (GetJob, log) shows it; the job does not
// fail over it, and with the channel missing the operator's watermark waits
// (nothing fires early, nothing is dropped).
TEST_F(PipelineEndToEnd, UnreachablePeerIsRetriedAndReported) {
  ASSERT_TRUE(env_ok_);
  ASSERT_GT(rpc_port_, 0);
  constexpr int kRedisDbUnreachable = 9;
  {
    absl::Status created = CreateTopic(env_.kafka, topic_, kPartitions);
    ASSERT_TRUE(created.ok()) << created;
  }
  CoordinatorClient coordinator(CoordinatorAddress());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, kRedisDbUnreachable, {"-Dcluster.min-workers=2"}));
  Start("worker-1", "slipstream-worker", kRedisDbUnreachable);
  Start("worker-2", "slipstream-worker", kRedisDbUnreachable, {"-Dtaskmanager.host=192.0.2.1"});

  std::string problem;
  std::string reporter;
  std::string unreachable;
  const int64_t deadline = SteadyNowMs() + 30000;
  while (SteadyNowMs() < deadline && problem.empty()) {
    if (std::optional<std::string> exited = ExitedProcess()) FAIL() << *exited;
    absl::StatusOr<v1::JobStatus> job = coordinator.GetJob();
    if (job.ok() && JobCounters(*job, 2).ok()) {
      for (const v1::WorkerStatus& w : job->workers()) {
        for (const v1::ChannelStatus& ch : w.counters().channels()) {
          if (ch.outbound() && !ch.connected() && !ch.error().empty()) {
            problem = ch.error();
            reporter = w.worker_id();
            unreachable = ch.peer_worker_id();
          }
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_FALSE(problem.empty()) << "no worker reported the unreachable peer within 30 s";
  clock_.Log("worker " + reporter + " reports its channel to " + unreachable + ": " + problem);
  EXPECT_EQ(unreachable.rfind("192.0.2.1:", 0), 0u) << unreachable;

  // Still retrying once the problem is 3 s old (as the worker dates it, on
  // the same clock as ours): same job attempt, nothing failed, the problem
  // still reported, the watermark held back.
  auto reported_since_ms = [&](const v1::JobStatus& j) -> int64_t {
    for (const v1::WorkerStatus& w : j.workers()) {
      for (const v1::ChannelStatus& ch : w.counters().channels()) {
        if (ch.outbound() && ch.peer_worker_id() == unreachable && !ch.connected()) return ch.error_since_ms();
      }
    }
    return 0;
  };
  std::optional<v1::JobStatus> later = WaitForJob(
      coordinator, "the problem reported for 3 s", 30000, {processes_[0].get(), processes_[1].get(), processes_[2].get()},
      [&](const v1::JobStatus& j) {
        const int64_t since = reported_since_ms(j);
        const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        return since == 0 || now - since >= 3000;  // 0: no longer reported (checked below)
      });
  ASSERT_TRUE(later.has_value());
  const std::optional<v1::JobStatus> job = later;
  EXPECT_EQ(job->state(), "RUNNING");
  EXPECT_EQ(job->attempt(), 1);
  EXPECT_EQ(job->failures(), 0) << job->failure_cause();
  bool still_reported = false;
  for (const v1::WorkerStatus& w : job->workers()) {
    EXPECT_EQ(w.counters().features_emitted(), 0) << w.worker_id();
    for (const v1::ChannelStatus& ch : w.counters().channels()) {
      if (ch.outbound() && ch.peer_worker_id() == unreachable) {
        still_reported = !ch.connected() && !ch.error().empty() && ch.error_since_ms() > 0;
      }
    }
  }
  EXPECT_TRUE(still_reported);
  // The coordinator's log says so too.
  const std::string coordinator_log = processes_.front()->ReadStdout() + processes_.front()->ReadStderr();
  EXPECT_NE(coordinator_log.find("channel to peer " + unreachable), std::string::npos) << coordinator_log;
}

// ---------------------------------------------------------------------------

constexpr int kRedisDbSlowRedis = 10;
// What the throttled worker may send to Redis: ~100 features per second.
constexpr int64_t kThrottledBytesPerSecond = 32 * 1024;
// How long the job must stay held back while throttled.
constexpr int64_t kHeldForMs = 6000;
// source.idle-timeout of the workers: the partitions without events are idle
// (left out of the watermark) before the events are produced.
constexpr int64_t kIdleTimeoutMs = 2000;
// Resident memory each worker must stay below while throttled. Measured: the
// throttled worker peaks at ~120-160 MiB with its sink queue full, the other
// at ~50 MiB (the baseline: binary, gRPC, librdkafka, RocksDB, window state).
// What the design bounds on top of that baseline: the sink queue (100,000
// features; ~0.7 KiB each measured, 1 KiB allowed = ~100 MiB), the input gate
// and the outbound batches (2 channels x 8 credits x at most 256 KiB), a
// RocksDB memtable (64 MiB) and librdkafka's prefetch (at most the whole
// ~26 MB topic here): ~250 MiB, plus 50 % for allocator slack. (An unbounded
// buffer is caught first by the records_in bound: it would let the job read
// everything.)
constexpr int64_t kRssBoundBytes = 384LL << 20;

// VmRSS (`field` "VmRSS") or VmHWM (peak, "VmHWM") of a process in bytes, from
// /proc/<pid>/status; -1 when unreadable.
int64_t ProcStatusBytes(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) != 0) continue;
    std::istringstream value(line.substr(field.size() + 1));
    int64_t kb = -1;
    value >> kb;
    return kb < 0 ? -1 : kb * 1024;
  }
  return -1;
}

std::string Mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

// The buffers between a worker's source and a peer's Redis sink, as the
// workers run them (their defaults: the test sets none of them).
struct PipelineBuffers {
  int64_t poll_batch = FeatureTaskOptions{}.poll_batch;                    // records per source poll
  int64_t credits_per_channel = FeatureTaskOptions{}.credits_per_channel;  // batches in a channel's gate
  int64_t sink_max_queued = static_cast<int64_t>(RedisSinkOptions{}.max_queued);
  int64_t sink_batch = RedisSinkOptions{}.batch_size;  // -Dredis.batch-size, passed explicitly
  int64_t sink_in_flight = static_cast<int64_t>(RedisSink::kMaxBatchesInFlight);
  // Features the sink may hold unacknowledged: its queue and the batches sent.
  int64_t SinkPendingBound() const { return sink_max_queued + sink_in_flight * sink_batch; }
};

// How far one source can read a partition before a peer whose Redis sink is
// full makes it wait, derived from the events and the buffers alone (no
// timing), for a job in which that partition is the only one that is not
// idle, so that the peer's watermark is the partition's:
//  - after reading n records the source's watermark is wm(n) = (largest event
//    time among them) - 10 s - 1 ms, sent after every poll batch;
//  - once the peer's operator has processed those records and that
//    watermark it has emitted at least fired(n) features: its sliding
//    windows with end - 1 <= wm(n) that hold one of the n records (sessions
//    are left out: a lower bound);
//  - every emitted feature sits in the sink (at most SinkPendingBound()) or
//    has been acknowledged by Redis (at most `written`), so the operator
//    cannot have finished a watermark with fired(n) > written +
//    SinkPendingBound(): it has processed at most RecordsWithin(...) plus one
//    poll batch;
//  - beyond what the operator processed, the source can only be ahead by
//    what the peer's gate holds (credits_per_channel batches, each at most a
//    poll batch) and the poll batch it is routing, plus one for the poll
//    batch whose watermark the operator may be firing.
class ReadAheadBound {
 public:
  // `events`: the partition's events in offset order; `at_peer`: whether a
  // user's key group belongs to the peer with the slow sink.
  ReadAheadBound(const std::vector<ValidEvent>& events, const std::function<bool(const std::string&)>& at_peer) {
    const size_t n = events.size();
    std::vector<int64_t> watermark(n + 1, std::numeric_limits<int64_t>::min());
    int64_t max_time = std::numeric_limits<int64_t>::min();
    for (size_t k = 0; k < n; ++k) {
      max_time = std::max(max_time, events[k].time_ms);
      watermark[k + 1] = max_time - kWatermarkLagMs;
    }
    // newly_fired[k]: windows that fire once k records (and their
    // watermark) are processed, and not before.
    std::vector<int64_t> newly_fired(n + 1, 0);
    std::set<std::pair<std::string, int64_t>> seen;  // (user, window start)
    for (size_t k = 0; k < n; ++k) {
      const ValidEvent& e = events[k];
      if (!at_peer(e.user)) continue;
      for (int64_t start = FloorTo(e.time_ms, kSlideMs); start > e.time_ms - kWindowMs; start -= kSlideMs) {
        if (!seen.emplace(e.user, start).second) continue;
        const int64_t fires_at = start + kWindowMs - 1;
        const auto first = std::lower_bound(watermark.begin() + static_cast<std::ptrdiff_t>(k + 1), watermark.end(),
                                            fires_at);
        if (first != watermark.end()) ++newly_fired[static_cast<size_t>(first - watermark.begin())];
      }
    }
    fired_.resize(n + 1);
    int64_t sum = 0;
    for (size_t k = 0; k <= n; ++k) fired_[k] = sum += newly_fired[k];
  }

  // fired(n) of the comment above.
  int64_t fired(size_t n) const { return fired_[std::min(n, fired_.size() - 1)]; }

  // The largest n with fired(n) <= features.
  int64_t RecordsWithin(int64_t features) const {
    return std::upper_bound(fired_.begin(), fired_.end(), features) - fired_.begin() - 1;
  }

  // The most records the source can have read while the peer's Redis has
  // acknowledged at most `written` of its features.
  int64_t RecordsReadAtMost(int64_t written, const PipelineBuffers& b) const {
    return RecordsWithin(written + b.SinkPendingBound()) + (b.credits_per_channel + 3) * b.poll_batch;
  }

 private:
  std::vector<int64_t> fired_;
};

// Feature writes (HSET) that Redis executed before `before_epoch_s` for keys
// whose user satisfies `pick`, from MONITOR's record (its timestamps come from
// the same clock as ours).
int64_t FeatureWritesBefore(const std::vector<RedisMonitor::Command>& commands, double before_epoch_s,
                            const std::function<bool(const std::string&)>& pick) {
  int64_t n = 0;
  for (const RedisMonitor::Command& c : commands) {
    if (c.args.size() < 2 || !absl::EqualsIgnoreCase(c.args[0], "HSET")) continue;
    if (std::strtod(c.origin.c_str(), nullptr) >= before_epoch_s) continue;
    const std::string& key = c.args[1];
    std::string user;
    if (absl::StartsWith(key, kUserPrefix)) {
      user = key.substr(kUserPrefix.size());
    } else if (absl::StartsWith(key, kSessionPrefix)) {
      user = key.substr(kSessionPrefix.size());
      user = user.substr(0, user.rfind(':'));
    } else {
      continue;
    }
    if (pick(user)) ++n;
  }
  return n;
}

double EpochSecondsNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Two workers; worker-2 reaches Redis only through a ThrottleProxy limited to
// kThrottledBytesPerSecond, worker-1 directly. Every event is in one of
// worker-1's partitions; the other partitions stay empty and idle (they are
// idle before anything is produced), so worker-2's watermark is that
// partition's and its windows fire as worker-1's source reads: how far
// worker-1 can read is then bounded by the buffers in between
// (ReadAheadBound), whatever the scheduling. Users are chosen so that 19 of
// 20 live in worker-2's key groups, which have to write ~3x as many
// features as its sink may hold: worker-1's source routes most of what it
// reads to worker-2 over the shuffle and must wait for worker-2's credit.
//
// While throttled: worker-1's source must stop (a plateau of kHeldForMs)
// short of the partition's end, within ReadAheadBound of what worker-2's
// Redis acknowledged, and its channel to worker-2 must have waited for
// credit meanwhile; worker-2 must keep writing (slowly), its sink never hold
// more than its bound, and no worker's memory grow past kRssBoundBytes. Then
// the limit is lifted, the closing events are produced, and Redis, the
// MONITOR write log and the counters must match the reference model exactly.
TEST_F(PipelineEndToEnd, SlowRedisHoldsThePipelineBackWithBoundedMemory) {
  ASSERT_TRUE(env_ok_);
  ASSERT_GT(rpc_port_, 0);
  clock_.Log("topic " + topic_ + ", redis db " + std::to_string(kRedisDbSlowRedis) + ", tmp " + tmp_->path());
  const PipelineBuffers buffers;

  absl::StatusOr<std::unique_ptr<RedisClient>> redis;
  absl::StatusOr<std::unique_ptr<RedisMonitor>> monitor;
  ASSERT_NO_FATAL_FAILURE(OpenRecordedRedisDb(kRedisDbSlowRedis, &redis, &monitor));
  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, kPartitions).ok());

  absl::StatusOr<std::unique_ptr<ThrottleProxy>> proxy_or = ThrottleProxy::Start(env_.redis_host, env_.redis_port);
  ASSERT_TRUE(proxy_or.ok()) << proxy_or.status();
  ThrottleProxy& proxy = **proxy_or;
  proxy.SetRateLimit(kThrottledBytesPerSecond);

  // However the test ends: lift the limit and stop the workers while the
  // proxy still runs (a worker flushes its sink on SIGTERM; throttled, that
  // would take minutes). TearDown then only stops the coordinator.
  struct Finally {
    std::function<void()> run;
    ~Finally() { run(); }
  };
  Finally stop_workers_first{[&] {
    proxy.SetRateLimit(0);
    for (const auto& p : processes_) {
      if (p->name() != "coordinator" && p->Running()) ::kill(p->pid(), SIGTERM);
    }
    for (const auto& p : processes_) {
      if (p->name() == "coordinator") continue;
      const int64_t begin = SteadyNowMs();
      std::optional<int> status = p->WaitForExit(30000);
      EXPECT_EQ(status.value_or(-1), 0) << p->name() << " did not shut down cleanly on SIGTERM within 30 s";
      clock_.Log(absl::StrCat("stopped ", p->name(), " (exit status ", status.value_or(-1), ") in ",
                              SteadyNowMs() - begin, " ms"));
    }
  }};

  // --- Start the job (on an empty topic) ------------------------------------
  CoordinatorClient coordinator(CoordinatorAddress());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, kRedisDbSlowRedis, {"-Dcluster.min-workers=2"}));
  const std::vector<std::string> worker_args = {absl::StrCat("-Dsource.idle-timeout=", kIdleTimeoutMs, " ms"),
                                                absl::StrCat("-Dredis.batch-size=", buffers.sink_batch)};
  std::vector<std::string> throttled_args = worker_args;
  throttled_args.push_back("-Dredis.host=127.0.0.1");
  throttled_args.push_back("-Dredis.port=" + std::to_string(proxy.port()));
  Process& direct = Start("worker-1", "slipstream-worker", kRedisDbSlowRedis, worker_args);
  Process& throttled = Start("worker-2", "slipstream-worker", kRedisDbSlowRedis, throttled_args);
  // Running on both workers, every partition idle (nothing produced yet).
  const std::optional<v1::JobStatus> deployed = WaitForJob(
      coordinator, "the job on two workers with every partition idle", 60000, {&direct, &throttled},
      [&](const v1::JobStatus& job) {
        if (!JobCounters(job, 2).ok()) return false;
        int idle = 0;
        for (const v1::WorkerStatus& w : job.workers()) {
          for (const v1::PartitionProgress& p : w.counters().partitions()) idle += p.idle() ? 1 : 0;
        }
        return idle == kPartitions;
      });
  ASSERT_TRUE(deployed.has_value());
  // Which worker id is which process: each logs "registered as <id>".
  std::string throttled_id, direct_id;
  const std::string throttled_log = throttled.ReadStderr() + throttled.ReadStdout();
  for (const v1::WorkerStatus& w : deployed->workers()) {
    ASSERT_EQ(w.assignment().key_groups_size(), 1);
    (throttled_log.find("registered as " + w.worker_id()) != std::string::npos ? throttled_id : direct_id) =
        w.worker_id();
  }
  ASSERT_FALSE(throttled_id.empty()) << "no worker id in worker-2's log:\n" << throttled_log;
  ASSERT_FALSE(direct_id.empty());
  auto worker_status = [](const v1::JobStatus& job, const std::string& id) -> const v1::WorkerStatus* {
    for (const v1::WorkerStatus& w : job.workers()) {
      if (w.worker_id() == id) return &w;
    }
    return nullptr;
  };
  const v1::WorkerStatus& throttled_status = *worker_status(*deployed, throttled_id);
  const v1::WorkerStatus& direct_status = *worker_status(*deployed, direct_id);
  const int max_parallelism = deployed->max_parallelism();
  const v1::KeyGroupRange throttled_groups = throttled_status.assignment().key_groups(0);
  const v1::KeyGroupRange direct_groups = direct_status.assignment().key_groups(0);
  ASSERT_FALSE(direct_status.assignment().partitions().empty())
      << "worker-1 reads no partition: nothing would cross the shuffle";
  const int32_t events_partition = direct_status.assignment().partitions(0);
  clock_.Log(absl::StrCat("job runs: worker-1 = ", direct_id, " (key groups ", direct_groups.first(), "-",
                          direct_groups.last(), ", reads partition ", events_partition, " which holds every event), ",
                          "worker-2 = ", throttled_id, " (key groups ", throttled_groups.first(), "-",
                          throttled_groups.last(), "), Redis through the proxy at ", kThrottledBytesPerSecond, " B/s"));

  // --- Workload: GenerateWorkload's event stream with renamed users ---------
  WorkloadOptions options;
  options.users = 6000;
  options.valid_events = 200000;
  options.step_ms = 150;  // 8.3 h of event time: ~340,000 features
  options.malformed_fraction = 0;
  const Workload w = GenerateWorkload(options);
  auto in_range = [&](const std::string& user, const v1::KeyGroupRange& r) {
    const int kg = KeyGroupForKey(user, max_parallelism);
    return kg >= r.first() && kg <= r.last();
  };
  auto at_throttled = [&](const std::string& user) { return in_range(user, throttled_groups); };
  std::map<std::string, std::string> renamed;
  int next_id = 0;
  for (size_t i = 0; i < w.users.size(); ++i) {
    const v1::KeyGroupRange& target = i % 20 == 0 ? direct_groups : throttled_groups;
    std::string user;
    do {
      user = absl::StrCat("slow-", next_id++);
    } while (!in_range(user, target));
    renamed[w.users[i]] = user;
  }
  std::vector<ValidEvent> events = w.valid;
  for (ValidEvent& e : events) e.user = renamed.at(e.user);
  const ReferenceModel model(events);
  const int64_t expected_sessions = static_cast<int64_t>(model.sessions().size());
  const int64_t expected_features = model.sliding_windows() + expected_sessions;
  const int64_t expected_keys = static_cast<int64_t>(model.user_features().size()) + expected_sessions;
  int64_t throttled_features = 0;
  for (const auto& [user, windows] : model.windows()) {
    if (at_throttled(user)) throttled_features += static_cast<int64_t>(windows.size());
  }
  for (const auto& [key, session] : model.sessions()) {
    if (at_throttled(session.user)) ++throttled_features;
  }
  const int64_t total_events = static_cast<int64_t>(events.size());
  const ReadAheadBound read_ahead(events, at_throttled);
  // Even if worker-2 wrote at the proxy's full rate for the whole throttled
  // phase (45 s, >= 100 bytes per feature), the bound must stay short of the
  // partition's end: otherwise a plateau would prove nothing.
  const int64_t most_written = 45 * kThrottledBytesPerSecond / 100;
  clock_.Log(absl::StrCat(total_events, " events of ", w.users.size(), " users over ",
                          (w.max_time_ms - w.start_ms) / 1000, " s of event time; the model expects ",
                          model.sliding_windows(), " sliding windows + ", expected_sessions, " sessions = ",
                          expected_features, " features, ", throttled_features, " of them from worker-2; ",
                          "worker-1 can read at most ", read_ahead.RecordsReadAtMost(0, buffers),
                          " records before Redis acknowledged any of worker-2's (poll batch ", buffers.poll_batch,
                          ", ", buffers.credits_per_channel, " credits, sink bound ", buffers.SinkPendingBound(),
                          " features)"));
  ASSERT_LT(read_ahead.RecordsReadAtMost(most_written, buffers), total_events - buffers.poll_batch)
      << "worker-2 must have far more features to write than its sink holds, or nothing holds the job back";

  // --- Produce into one partition (the job consumes meanwhile) --------------
  absl::StatusOr<std::unique_ptr<TestProducer>> producer_or = TestProducer::Create(env_.kafka);
  ASSERT_TRUE(producer_or.ok()) << producer_or.status();
  TestProducer& producer = **producer_or;
  for (const ValidEvent& e : events) {
    producer.Produce(topic_, e.user, CanonicalEventJson(e.user, e.time_ms, e.kind, e.price_cents), events_partition);
  }
  {
    absl::Status flushed = producer.Flush(120000);
    ASSERT_TRUE(flushed.ok()) << flushed;
  }
  for (size_t i = 0; i < producer.produced(); ++i) {
    // ReadAheadBound takes the events in offset order.
    ASSERT_EQ(producer.delivery(i).offset, static_cast<int64_t>(i)) << "event " << i << " out of order";
  }
  clock_.Log(absl::StrCat("produced ", total_events, " records into partition ", events_partition));
  clock_.EndPhase("start and produce");

  // --- Throttled: held back, with bounded memory ----------------------------
  struct Sample {
    int64_t at_ms = 0;
    int64_t direct_records_in = 0;  // every record is in worker-1's partition
    int64_t throttled_records_in = 0;
    int64_t throttled_written = 0;  // as reported in GetJob
    int64_t throttled_pending = 0;  // in worker-2's sink, not acknowledged
    int64_t direct_written = 0;
    int64_t direct_backpressure_ms = 0;  // worker-1's outbound channel to worker-2
    int64_t proxy_bytes = 0;
  };
  auto outbound_backpressure_ms = [](const v1::WorkerStatus& w, const std::string& peer) -> int64_t {
    for (const v1::ChannelStatus& ch : w.counters().channels()) {
      if (ch.outbound() && ch.peer_worker_id() == peer) return ch.backpressure_ms();
    }
    return -1;
  };
  // A plateau: worker-1 reads at most this much more in kHeldForMs. While
  // throttled, each batch Redis acknowledges frees room for a little more
  // of the stream, which the source reads in whole poll batches.
  const int64_t creep = 2 * buffers.poll_batch;
  std::vector<Sample> samples;
  std::optional<size_t> held_from;  // index into samples
  int64_t max_rss[2] = {0, 0};      // worker-1, worker-2
  int64_t max_pending = 0;
  bool rss_failed = false;
  int64_t next_log_ms = 0;
  const int64_t throttled_deadline = SteadyNowMs() + 45000;
  for (;;) {
    if (std::optional<std::string> exited = ExitedProcess()) FAIL() << *exited << " while throttled";
    ASSERT_LT(SteadyNowMs(), throttled_deadline)
        << "while worker-2's Redis is throttled, worker-1's source did not stop for " << kHeldForMs / 1000
        << " s: it read " << (samples.empty() ? 0 : samples.front().direct_records_in) << " -> "
        << (samples.empty() ? 0 : samples.back().direct_records_in) << " of " << total_events << "; worker-2 wrote "
        << (samples.empty() ? 0 : samples.back().throttled_written) << " features; its sink should block once "
        << buffers.sink_max_queued << " wait";
    absl::StatusOr<v1::JobStatus> job = coordinator.GetJob();
    absl::StatusOr<v1::WorkerCounters> sum =
        job.ok() ? JobCounters(*job, 2) : absl::StatusOr<v1::WorkerCounters>(job.status());
    if (!sum.ok()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    const v1::WorkerStatus* d = worker_status(*job, direct_id);
    const v1::WorkerStatus* t = worker_status(*job, throttled_id);
    ASSERT_TRUE(d != nullptr && t != nullptr) << "the job's workers changed: " << job->DebugString();
    Sample s;
    s.at_ms = SteadyNowMs();
    s.direct_records_in = d->counters().records_in();
    s.throttled_records_in = t->counters().records_in();
    s.throttled_written = t->counters().redis_features_written();
    s.throttled_pending = t->counters().redis_pending_features();
    s.direct_written = d->counters().redis_features_written();
    s.direct_backpressure_ms = outbound_backpressure_ms(*d, throttled_id);
    s.proxy_bytes = proxy.bytes_forwarded_to_target();
    samples.push_back(s);
    max_pending = std::max(max_pending, s.throttled_pending);
    const int64_t rss[2] = {ProcStatusBytes(direct.pid(), "VmRSS"), ProcStatusBytes(throttled.pid(), "VmRSS")};
    for (int i = 0; i < 2; ++i) {
      max_rss[i] = std::max(max_rss[i], rss[i]);
      if (rss[i] >= kRssBoundBytes && !rss_failed) {
        rss_failed = true;
        ADD_FAILURE() << "worker-" << i + 1 << " uses " << Mib(rss[i]) << " while throttled (bound "
                      << Mib(kRssBoundBytes) << ")";
      }
    }
    if (s.at_ms >= next_log_ms) {
      next_log_ms = s.at_ms + 1000;
      clock_.Log(absl::StrCat("throttled: worker-1 read ", s.direct_records_in, "/", total_events,
                              "; redis_features_written worker-1 ", s.direct_written, ", worker-2 ",
                              s.throttled_written, " (", s.throttled_pending, " pending); proxy forwarded ",
                              s.proxy_bytes, " B; worker-1 -> worker-2 backpressure_ms ", s.direct_backpressure_ms,
                              "; RSS worker-1 ", Mib(rss[0]), ", worker-2 ", Mib(rss[1])));
    }
    // Held: short of the end, with no more than `creep` read for kHeldForMs.
    size_t from = samples.size() - 1;
    while (from > 0 && samples[from - 1].direct_records_in > 0 &&
           s.direct_records_in - samples[from - 1].direct_records_in <= creep) {
      --from;
    }
    if (s.direct_records_in < total_events && samples[from].direct_records_in > 0 &&
        s.at_ms - samples[from].at_ms >= kHeldForMs) {
      held_from = from;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  const Sample& held_start = samples[*held_from];
  const Sample& held_end = samples.back();
  const int64_t held_ms = held_end.at_ms - held_start.at_ms;
  const int64_t peak_rss[2] = {ProcStatusBytes(direct.pid(), "VmHWM"), ProcStatusBytes(throttled.pid(), "VmHWM")};
  clock_.Log(absl::StrCat("held back for ", held_ms, " ms: worker-1 read ", held_start.direct_records_in, " -> ",
                          held_end.direct_records_in, " of ", total_events, " (",
                          held_end.direct_records_in * 100 / total_events, " %); worker-2 redis_features_written ",
                          held_start.throttled_written, " -> ", held_end.throttled_written, ", at most ", max_pending,
                          " pending in its sink (bound ", buffers.SinkPendingBound(), "), proxy forwarded ",
                          held_end.proxy_bytes - held_start.proxy_bytes, " B meanwhile (",
                          (held_end.proxy_bytes - held_start.proxy_bytes) * 1000 / std::max<int64_t>(held_ms, 1),
                          " B/s)"));
  clock_.Log(absl::StrCat("RSS while throttled: max sampled worker-1 ", Mib(max_rss[0]), ", worker-2 ", Mib(max_rss[1]),
                          "; peak (VmHWM) worker-1 ", Mib(peak_rss[0]), ", worker-2 ", Mib(peak_rss[1]), "; bound ",
                          Mib(kRssBoundBytes)));
  // The sink held no more than its bound: Write blocked instead.
  EXPECT_LE(max_pending, buffers.SinkPendingBound()) << "worker-2's Redis sink held more than its bound";
  EXPECT_GT(max_pending, buffers.sink_max_queued / 2) << "worker-2's sink never filled: what held the job back?";
  EXPECT_EQ(held_end.throttled_records_in, 0) << "worker-2's partitions hold no events";
  // Slowly, but worker-2 keeps writing: held back, not stuck.
  EXPECT_GT(held_end.proxy_bytes, held_start.proxy_bytes) << "worker-2 wrote nothing to Redis while throttled";
  for (int i = 0; i < 2; ++i) {
    EXPECT_GT(peak_rss[i], 0);
    EXPECT_LT(peak_rss[i], kRssBoundBytes) << "peak RSS (VmHWM) of worker-" << i + 1;
  }
  clock_.EndPhase("throttled");

  // --- Lift the limit, close the stream: everything must arrive -------------
  const double lifted_at_epoch_s = EpochSecondsNow();
  proxy.SetRateLimit(0);
  const int64_t unthrottled_at = SteadyNowMs();
  clock_.Log("rate limit lifted");
  const int64_t final_watermark = ProduceClosingEvents(producer, topic_, kPartitions);
  {
    absl::Status flushed = producer.Flush(30000);
    ASSERT_TRUE(flushed.ok()) << flushed;
  }
  const int64_t total_records = static_cast<int64_t>(producer.produced());
  std::optional<v1::JobStatus> final_job;
  v1::WorkerCounters c;
  {
    std::string previous;
    std::string last_state = "no answer yet";
    int64_t next_progress_log = SteadyNowMs() + 5000;
    const int64_t deadline = SteadyNowMs() + 90000;
    while (SteadyNowMs() < deadline) {
      if (std::optional<std::string> exited = ExitedProcess()) FAIL() << *exited << " after the limit was lifted";
      absl::StatusOr<v1::JobStatus> job = coordinator.GetJob();
      absl::StatusOr<v1::WorkerCounters> sum =
          job.ok() ? JobCounters(*job, 2) : absl::StatusOr<v1::WorkerCounters>(job.status());
      if (sum.ok()) {
        last_state = Summarize(*sum);
        const bool done = sum->records_in() >= total_records && sum->watermark_ms() >= final_watermark &&
                          sum->features_emitted() == sum->redis_features_written();
        // Stable: the same counters in two polls a heartbeat apart or more
        // (channels carry checkpoint barriers and memory moves: not those).
        v1::WorkerCounters progress = *sum;
        progress.clear_channels();
        progress.clear_rss_bytes();
        progress.clear_peak_rss_bytes();
        progress.clear_gate_queued_bytes();
        if (done && previous == progress.SerializeAsString()) {
          final_job = *job;
          c = *sum;
          break;
        }
        previous = done ? progress.SerializeAsString() : "";
      } else {
        last_state = std::string(sum.status().message());
      }
      if (SteadyNowMs() >= next_progress_log) {
        clock_.Log("waiting for everything to reach Redis: " + last_state);
        next_progress_log += 5000;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
    }
    ASSERT_TRUE(final_job.has_value()) << "not everything reached Redis within 90 s of lifting the limit; last state: "
                                       << last_state;
  }
  clock_.Log(absl::StrCat("everything written ", SteadyNowMs() - unthrottled_at, " ms after the limit was lifted: ",
                          Summarize(c)));
  clock_.EndPhase("drain");

  // --- Counters -----------------------------------------------------------------
  EXPECT_EQ(c.records_in(), total_records);
  EXPECT_EQ(c.events_valid(), total_records);
  EXPECT_EQ(c.records_invalid(), 0);
  EXPECT_EQ(c.records_late(), 0);
  EXPECT_EQ(c.sliding_windows_fired(), model.sliding_windows());
  EXPECT_EQ(c.sessions_fired(), expected_sessions);
  EXPECT_EQ(c.features_emitted(), expected_features);
  EXPECT_EQ(c.redis_features_written(), c.features_emitted());
  EXPECT_EQ(c.redis_pending_features(), 0);
  EXPECT_EQ(c.redis_errors(), 0);
  EXPECT_EQ(c.watermark_ms(), final_watermark);
  EXPECT_EQ(final_job->attempt(), 1);
  EXPECT_EQ(final_job->failures(), 0) << final_job->failure_cause();
  for (const v1::ChannelStatus& ch : c.channels()) {
    EXPECT_EQ(ch.error(), "") << (ch.outbound() ? "to " : "from ") << ch.peer_worker_id();
  }
  {
    const v1::WorkerStatus* t = worker_status(*final_job, throttled_id);
    const v1::WorkerStatus* d = worker_status(*final_job, direct_id);
    ASSERT_TRUE(t != nullptr && d != nullptr);
    EXPECT_EQ(t->counters().redis_features_written(), throttled_features);
    EXPECT_EQ(d->counters().redis_features_written(), expected_features - throttled_features);
    // worker-1's source waited for worker-2's credit through the held
    // window (a wait is counted when it ends, so look after it ended). It
    // runs between credits too, for a poll batch at a time: half the window
    // is a floor no scheduling can miss, and an unheld source never reaches.
    const int64_t direct_backpressure_ms = outbound_backpressure_ms(*d, throttled_id);
    clock_.Log(absl::StrCat("backpressure_ms worker-1 -> worker-2: ", held_start.direct_backpressure_ms,
                            " when held back, ", direct_backpressure_ms, " at the end (the held window lasted ",
                            held_ms, " ms); worker-2 -> worker-1: ", outbound_backpressure_ms(*t, direct_id)));
    EXPECT_GE(direct_backpressure_ms - held_start.direct_backpressure_ms, held_ms / 2)
        << "worker-1's outbound channel to worker-2 should have waited for credit while held back";
    clock_.Log(absl::StrCat("RSS at the end: worker-1 ", Mib(ProcStatusBytes(direct.pid(), "VmRSS")), ", worker-2 ",
                            Mib(ProcStatusBytes(throttled.pid(), "VmRSS")), "; peak worker-1 ",
                            Mib(ProcStatusBytes(direct.pid(), "VmHWM")), ", worker-2 ",
                            Mib(ProcStatusBytes(throttled.pid(), "VmHWM"))));
  }

  // --- Redis: final state and every write (MONITOR) --------------------------
  {
    const int64_t deadline = SteadyNowMs() + 10000;
    absl::StatusOr<int64_t> size = (*redis)->FeatureKeyCount();
    while (size.ok() && *size != expected_keys && SteadyNowMs() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      size = (*redis)->FeatureKeyCount();
    }
    ASSERT_TRUE(size.ok()) << size.status();
    clock_.Log(absl::StrCat("redis db ", kRedisDbSlowRedis, " holds ", *size, " keys, the model expects ",
                            expected_keys));
    EXPECT_EQ(*size, expected_keys);
  }
  ASSERT_NO_FATAL_FAILURE(CheckFinalRedisState(**redis, model));
  {
    absl::StatusOr<std::vector<RedisMonitor::Command>> commands = (*monitor)->Finish(**redis, 60000);
    ASSERT_TRUE(commands.ok()) << commands.status();
    CheckFeatureWrites(model, *commands);
    // How far worker-1 read while held, against what its buffers allow given
    // what Redis had executed of worker-2's writes before the limit was
    // lifted (at least what it had acknowledged when the plateau was seen).
    const int64_t written_while_held = FeatureWritesBefore(*commands, lifted_at_epoch_s, at_throttled);
    const int64_t bound = read_ahead.RecordsReadAtMost(written_while_held, buffers);
    clock_.Log(absl::StrCat("worker-2's Redis executed ", written_while_held,
                            " of its feature writes before the limit was lifted: worker-1 may read at most ", bound,
                            " of ", total_events, " records; it read ", held_end.direct_records_in));
    EXPECT_GE(written_while_held, held_end.throttled_written);
    EXPECT_LE(held_end.direct_records_in, bound)
        << "worker-1's source read further than the buffers between it and worker-2's sink allow: backpressure "
           "did not cross the shuffle";
    EXPECT_LT(bound, total_events - buffers.poll_batch) << "the bound is no proof of being held back";
  }
  clock_.EndPhase("check redis");
  if (!HasFailure()) (void)(*redis)->FlushDb();  // keep the data of a failed run for inspection
}

// ---------------------------------------------------------------------------

// Two workers with checkpoints every 500 ms. While the stream is being
// produced and consumed, one worker (or the coordinator) is killed with
// SIGKILL and started again;
// the job must restart from the latest completed checkpoint (state and
// offsets) and end with Redis equal to the reference model, every write on
// the way correct.
class RecoveryEndToEnd : public PipelineEndToEnd {
 protected:
  void RunRecoveryScenario(bool kill_coordinator, int redis_db);
};

void RecoveryEndToEnd::RunRecoveryScenario(bool kill_coordinator, int redis_db) {
  ASSERT_TRUE(env_ok_);
  ASSERT_GT(rpc_port_, 0);
  const int kRedisDbRecovery = redis_db;
  absl::StatusOr<std::unique_ptr<RedisClient>> redis;
  absl::StatusOr<std::unique_ptr<RedisMonitor>> monitor;
  ASSERT_NO_FATAL_FAILURE(OpenRecordedRedisDb(kRedisDbRecovery, &redis, &monitor));

  Workload w = GenerateWorkload(WorkloadOptions{});
  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, kPartitions).ok());
  absl::StatusOr<std::unique_ptr<TestProducer>> producer_or = TestProducer::Create(env_.kafka);
  ASSERT_TRUE(producer_or.ok()) << producer_or.status();
  TestProducer& producer = **producer_or;
  int64_t produced = 0;
  auto produce_range = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      producer.Produce(topic_, w.records[i].key, w.records[i].value, -1);
      ++produced;
    }
    absl::Status flushed = producer.Flush(60000);
    ASSERT_TRUE(flushed.ok()) << flushed;
  };

  CoordinatorClient coordinator(CoordinatorAddress());
  const std::vector<std::string> job_args = {"-Dcluster.min-workers=2", "-Dheartbeat.timeout=2 s",
                                             "-Dexecution.checkpointing.interval=500 ms",
                                             "-Drestart-strategy.fixed-delay.delay=200 ms"};
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, kRedisDbRecovery, job_args));
  Start("worker-1", "slipstream-worker", kRedisDbRecovery, job_args);
  Process* victim = &Start("worker-2", "slipstream-worker", kRedisDbRecovery, job_args);

  // Produces in slices; after the first third, kill worker-2 once a
  // checkpoint has completed, and start it again.
  const size_t n = w.records.size();
  produce_range(0, n / 3);
  auto wait_job = [&](const std::string& what, const std::function<bool(const v1::JobStatus&)>& done) {
    const int64_t deadline = SteadyNowMs() + 120000;
    std::string last = "no answer";
    while (SteadyNowMs() < deadline) {
      absl::StatusOr<v1::JobStatus> job = coordinator.GetJob();
      if (job.ok()) {
        if (done(*job)) return true;
        last = absl::StrCat(job->state(), " attempt ", job->attempt(), ", checkpoints completed ",
                            job->checkpoints().completed(), ", restored ", job->checkpoints().restored());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "timed out waiting for " << what << "; last: " << last;
    return false;
  };
  ASSERT_TRUE(wait_job("a completed checkpoint", [](const v1::JobStatus& j) { return j.checkpoints().completed() >= 2; }));
  Process* killed = kill_coordinator ? processes_.front().get() : victim;
  ::kill(killed->pid(), SIGKILL);
  const int64_t killed_at = SteadyNowMs();
  clock_.Log(kill_coordinator ? "killed the coordinator (SIGKILL)" : "killed worker-2 (SIGKILL)");
  produce_range(n / 3, 2 * n / 3);
  killed->WaitForExit(5000);
  if (kill_coordinator) {
    // Same configuration, same state.checkpoints.dir: it finds the job id
    // and the latest completed checkpoint there; the workers register again.
    ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, kRedisDbRecovery, job_args));
  } else {
    Start("worker-2b", "slipstream-worker", kRedisDbRecovery, job_args);
  }
  ASSERT_TRUE(wait_job("the restored attempt to run", [&](const v1::JobStatus& j) {
    return j.state() == "RUNNING" && (kill_coordinator || j.attempt() >= 2) && j.checkpoints().restored() >= 1 &&
           JobCounters(j, 2).ok();
  }));
  clock_.Log(absl::StrCat("a restored attempt runs ", SteadyNowMs() - killed_at, " ms after the kill (including the "
                          "restart of the killed process)"));
  produce_range(2 * n / 3, n);
  const int64_t final_watermark = ProduceClosingEvents(producer, topic_, kPartitions);
  ASSERT_TRUE(producer.Flush(30000).ok());

  const ReferenceModel model(w.valid);
  const int64_t expected_keys = static_cast<int64_t>(model.user_features().size() + model.sessions().size());
  ASSERT_TRUE(wait_job("every feature in Redis", [&](const v1::JobStatus& j) {
    absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, 2);
    if (!c.ok() || c->watermark_ms() < final_watermark || c->features_emitted() != c->redis_features_written()) {
      return false;
    }
    absl::StatusOr<int64_t> size = (*redis)->FeatureKeyCount();
    return size.ok() && *size == expected_keys;
  }));
  absl::StatusOr<v1::JobStatus> job = coordinator.GetJob();
  ASSERT_TRUE(job.ok());
  clock_.Log(absl::StrCat("final: attempt ", job->attempt(), ", failures ", job->failures(), ", restored ",
                          job->checkpoints().restored(), " (", job->restored_from(), "), checkpoints completed ",
                          job->checkpoints().completed()));
  if (!kill_coordinator) {
    EXPECT_GE(job->failures(), 1);
  }
  EXPECT_GE(job->checkpoints().restored(), 1);
  ASSERT_NO_FATAL_FAILURE(CheckFinalRedisState(**redis, model));
  absl::StatusOr<std::vector<RedisMonitor::Command>> commands = (*monitor)->Finish(**redis, 30000);
  ASSERT_TRUE(commands.ok()) << commands.status();
  CheckFeatureWritesAreCorrectAtLeastOnce(model, *commands);
  if (!HasFailure()) (void)(*redis)->FlushDb();
}

TEST_F(RecoveryEndToEnd, KilledWorkerRecoversFromTheLatestCheckpoint) {
  RunRecoveryScenario(/*kill_coordinator=*/false, /*redis_db=*/5);
}

// The coordinator is killed with SIGKILL and started again with the same
// configuration: it finds the job and its latest completed checkpoint in
// state.checkpoints.dir (no other service), the workers register again, and
// the job resumes from that checkpoint.
TEST_F(RecoveryEndToEnd, RestartedCoordinatorResumesFromTheLatestCheckpoint) {
  RunRecoveryScenario(/*kill_coordinator=*/true, /*redis_db=*/4);
}

// ---------------------------------------------------------------------------

TEST(Binaries, InvalidConfigFailsNamingTheKey) {
  TestEnv env;
  ASSERT_TRUE(LoadTestEnv(&env, /*need_services=*/false));
  TempDir tmp("slipstream-it-binaries");
  bool failed = false;
  auto run = [&](const std::string& binary, const std::vector<std::string>& args, const std::string& label)
      -> std::unique_ptr<Process> {
    std::vector<std::string> argv = {BinaryPath(env, binary)};
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = std::make_unique<Process>(binary + "-" + label, argv, tmp.path());
    if (!p->WaitForExit(15000)) {
      ADD_FAILURE() << p->CommandLine() << " still runs after 15 s";
      p->Stop(2000);
    }
    return p;
  };
  for (const std::string binary : {"slipstream-coordinator", "slipstream-worker", "slipstream-gen"}) {
    SCOPED_TRACE(binary);
    {
      auto p = run(binary, {"-Dredis.port=abc"}, "bad-value");
      EXPECT_NE(p->exit_status().value_or(0), 0) << p->CommandLine();
      const std::string err = p->ReadStderr();
      EXPECT_NE(err.find("redis.port"), std::string::npos) << p->CommandLine() << " stderr:\n" << err;
      EXPECT_NE(err.find("abc"), std::string::npos) << p->CommandLine() << " stderr:\n" << err;
    }
    {
      auto p = run(binary, {"-Dredis.prot=1"}, "unknown-key");
      EXPECT_NE(p->exit_status().value_or(0), 0) << p->CommandLine();
      const std::string err = p->ReadStderr();
      EXPECT_NE(err.find("redis.prot"), std::string::npos) << p->CommandLine() << " stderr:\n" << err;
    }
    {
      auto p = run(binary, {"--help"}, "help");
      EXPECT_EQ(p->exit_status().value_or(-1), 0) << p->CommandLine() << " stderr:\n" << p->ReadStderr();
      EXPECT_NE(p->ReadStdout().find("kafka.bootstrap.servers"), std::string::npos)
          << p->CommandLine() << " stdout:\n" << p->ReadStdout();
    }
  }
  failed = ::testing::Test::HasFailure();
  if (failed) tmp.Keep();
}

}  // namespace
}  // namespace slipstream::it
