// Features declared in a file, end to end: the README's example. The shipped
// definition plus a `purchase_features` group (a 24 h sliding window, 1 h
// slide, of the purchase amount) runs on the unchanged binaries through the
// real Kafka broker and Redis; every write of the new group is checked
// against sums computed here from the produced events, the original groups
// keep their keys, and GetJob shows the definition.
#include <gtest/gtest.h>

#include <charconv>
#include <chrono>
#include <optional>
#include <thread>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/integration/e2e_fixture.h"
#include "tests/integration/kafka_client.h"
#include "tests/integration/redis_client.h"
#include "tests/integration/workload.h"

namespace slipstream::it {
namespace {

constexpr char kAddedGroup[] = R"yaml(
  # Added without a rebuild: what each user spent in the last 24 hours.
  - name: purchase_features
    window: {type: sliding, size: 24 h, slide: 1 h}
    key: "purchase_features:{user_id}"
    ttl: 25 h
    features:
      - user_id
      - {name: purchase_amount_24h, aggregate: sum, field: price, filter: "event_type == 'purchase'"}
      - {name: purchases_24h, aggregate: count, filter: "event_type == 'purchase'"}
      - {name: max_price_24h, aggregate: max, field: price}
      - window_end
)yaml";

// Prices are multiples of 0.25: exact in binary, so any summation order gives
// this text (shortest round trip, as the sink writes doubles).
std::string FormatCents(int64_t cents) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), static_cast<double>(cents) / 100.0);
  return std::string(buf, r.ptr);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class DeclaredFeatures : public PipelineEndToEnd {};

TEST_F(DeclaredFeatures, AGroupAddedToTheFileIsComputedWithoutARebuild) {
  ASSERT_TRUE(env_ok_) << "run through ./scripts/test.sh (needs Kafka and Redis)";
  StartPrivateRedis();
  const std::string features_path = tmp_->path() + "/features.yaml";
  {
    std::ofstream out(features_path);
    out << ReadFile(env_.source_dir + "/conf/features.yaml") << kAddedGroup;
  }
  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, 2).ok());

  // Three users over 30 hours: a purchase every 50 minutes (user u0), views
  // and purchases mixed (u1), views only (u2). Prices in cents, exact sums.
  struct Produced {
    std::string user;
    int64_t time_ms;
    EventKind kind;
    int64_t cents;
  };
  std::vector<Produced> events;
  const int64_t t0 = EpochMs(2026, 3, 1, 0, 0, 0, 0);
  for (int i = 0; i < 36; ++i) {
    events.push_back({"u0", t0 + i * 50 * 60000LL, EventKind::kPurchase, 1000 + 25 * i});
    events.push_back({"u1", t0 + i * 50 * 60000LL + 7000, i % 3 == 0 ? EventKind::kPurchase : EventKind::kView,
                      500 + 25 * i});
    events.push_back({"u2", t0 + i * 50 * 60000LL + 9000, EventKind::kView, 300});
  }
  absl::StatusOr<std::unique_ptr<TestProducer>> producer = TestProducer::Create(env_.kafka);
  ASSERT_TRUE(producer.ok()) << producer.status();
  for (const Produced& e : events) {
    (*producer)->Produce(topic_, e.user, CanonicalEventJson(e.user, e.time_ms, e.kind, e.cents));
  }
  ProduceClosingEvents(**producer, topic_, 2);
  ASSERT_TRUE((*producer)->Flush(30000).ok());

  CoordinatorClient coordinator(CoordinatorAddress());
  StartCoordinator(coordinator, 0, {"-Dpipeline.features=" + features_path});
  Process& worker = Start("worker", "slipstream-worker", 0, {"-Dpipeline.features=" + features_path});

  // Expected: for each user and 1 h-aligned window end e, the window
  // [e - 24 h, e) of its events; the key holds the newest window's values.
  std::map<std::string, std::map<int64_t, std::pair<int64_t, int64_t>>> expected;  // user -> end -> (cents, n)
  for (const Produced& e : events) {
    const int64_t hour = 3600000;
    const int64_t last_start = e.time_ms - e.time_ms % hour;
    for (int64_t start = last_start; start > e.time_ms - 24 * hour; start -= hour) {
      auto& [cents, n] = expected[e.user][start + 24 * hour];
      if (e.kind == EventKind::kPurchase) {
        cents += e.cents;
        ++n;
      }
    }
  }
  absl::StatusOr<std::unique_ptr<RedisClient>> redis = RedisClient::Connect(env_.redis_host, env_.redis_port, 0);
  ASSERT_TRUE(redis.ok()) << redis.status();
  for (const auto& [user, windows] : expected) {
    const int64_t last_end = windows.rbegin()->first;
    const int64_t deadline = SteadyNowMs() + 60000;
    std::map<std::string, std::string> hash;
    while (SteadyNowMs() < deadline && worker.Running()) {
      absl::StatusOr<std::map<std::string, std::string>> got = (*redis)->HGetAll("purchase_features:" + user);
      ASSERT_TRUE(got.ok()) << got.status();
      hash = *got;
      if (hash["window_end"] == absl::StrCat(last_end)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(hash["window_end"], absl::StrCat(last_end)) << user << ": the newest 24 h window never arrived";
    const auto& [cents, n] = windows.rbegin()->second;
    EXPECT_EQ(hash["purchases_24h"], absl::StrCat(n)) << user;
    EXPECT_EQ(hash["purchase_amount_24h"], n == 0 ? "0" : FormatCents(cents)) << user;
    EXPECT_EQ(hash["user_id"], user);
    absl::StatusOr<int64_t> ttl = (*redis)->Ttl("purchase_features:" + user);
    ASSERT_TRUE(ttl.ok());
    EXPECT_GT(*ttl, 24 * 3600) << "ttl 25 h";
  }
  // The shipped groups are still written, with their own keys.
  absl::StatusOr<std::map<std::string, std::string>> original = (*redis)->HGetAll("user_features:u1");
  ASSERT_TRUE(original.ok());
  EXPECT_FALSE((*original)["view_count_1h"].empty()) << "user_features:u1 is missing";

  absl::StatusOr<v1::JobStatus> job = coordinator.GetJob();
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->features().groups_size(), 3);
  EXPECT_EQ(job->features().groups(2).name(), "purchase_features");
  EXPECT_EQ(job->features().groups(2).window(), "sliding 1 d / 1 h");
  EXPECT_EQ(job->features().groups(2).features(1).definition(), "sum(price) where event_type == 'purchase'");
}

}  // namespace
}  // namespace slipstream::it

namespace slipstream::it {
namespace {

// A running job's definition changes through a restore, as in Flink: the
// job runs with the shipped file and checkpoints; its coordinator and worker
// stop; they start again on the same checkpoints with a file that adds a
// group. The shipped groups carry their state over (a session spanning the
// restart counts every event), the added group starts empty (it sums only
// what came after). Then a file that changes a filter is refused, naming the
// group and the feature.
TEST_F(DeclaredFeatures, ARestoreAcceptsAddedGroupsAndRefusesChangedFeatures) {
  ASSERT_TRUE(env_ok_) << "run through ./scripts/test.sh (needs Kafka and Redis)";
  StartPrivateRedis();
  const std::string shipped = ReadFile(env_.source_dir + "/conf/features.yaml");
  const std::string extended_path = tmp_->path() + "/extended.yaml";
  const std::string changed_path = tmp_->path() + "/changed.yaml";
  {
    std::ofstream(extended_path) << shipped << kAddedGroup;
    std::string changed = shipped + kAddedGroup;  // the last checkpoint's file, one filter changed
    const std::string from = "filter: \"event_type == 'cart'\"";
    ASSERT_NE(changed.find(from), std::string::npos);
    changed.replace(changed.find(from), from.size(), "filter: \"event_type in ('cart', 'purchase')\"");
    std::ofstream(changed_path) << changed;
  }
  ASSERT_TRUE(CreateTopic(env_.kafka, topic_, 1).ok());
  absl::StatusOr<std::unique_ptr<TestProducer>> producer = TestProducer::Create(env_.kafka);
  ASSERT_TRUE(producer.ok()) << producer.status();
  const int64_t t0 = EpochMs(2026, 3, 1, 12, 0, 0, 0);
  auto produce = [&](int64_t at, EventKind kind, int64_t cents) {
    (*producer)->Produce(topic_, "u0", CanonicalEventJson("u0", at, kind, cents), 0);
  };
  // Before the restart: two purchases of 10.00.
  produce(t0, EventKind::kPurchase, 1000);
  produce(t0 + 60000, EventKind::kPurchase, 1000);
  ASSERT_TRUE((*producer)->Flush(30000).ok());

  const std::vector<std::string> checkpointing = {"-Dexecution.checkpointing.interval=300 ms"};
  CoordinatorClient coordinator(CoordinatorAddress());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, 0, checkpointing));
  Process* first_coordinator = processes_.back().get();
  Process& first_worker = Start("worker", "slipstream-worker", 0, checkpointing);
  // A checkpoint completed after both records were read holds them.
  int64_t completed_after_read = -1;
  std::optional<v1::JobStatus> read = WaitForJob(
      coordinator, "both records read and a checkpoint after that", 60000, {first_coordinator, &first_worker},
      [&](const v1::JobStatus& j) {
        absl::StatusOr<v1::WorkerCounters> c = JobCounters(j, 1);
        if (!c.ok() || c->records_in() < 2) return false;
        if (completed_after_read < 0) completed_after_read = j.checkpoints().completed();
        return j.checkpoints().completed() > completed_after_read;
      });
  ASSERT_TRUE(read.has_value());
  ASSERT_EQ(first_worker.Stop(), 0);
  ASSERT_EQ(first_coordinator->Stop(), 0);

  // After the restart, under the extended file: two purchases of 1.00, then
  // an event far ahead that closes every window and the session.
  produce(t0 + 120000, EventKind::kPurchase, 100);
  produce(t0 + 180000, EventKind::kPurchase, 100);
  ProduceClosingEvents(**producer, topic_, 1);
  ASSERT_TRUE((*producer)->Flush(30000).ok());
  const std::vector<std::string> extended = {"-Dexecution.checkpointing.interval=300 ms",
                                             "-Dpipeline.features=" + extended_path};
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, 0, extended, "coordinator-extended"));
  Process* second_coordinator = processes_.back().get();
  Process& second_worker = Start("worker-extended", "slipstream-worker", 0, extended);
  absl::StatusOr<std::unique_ptr<RedisClient>> redis = RedisClient::Connect(env_.redis_host, env_.redis_port, 0);
  ASSERT_TRUE(redis.ok()) << redis.status();
  std::map<std::string, std::string> session, purchases;
  const int64_t deadline = SteadyNowMs() + 60000;
  while (SteadyNowMs() < deadline && second_worker.Running()) {
    absl::StatusOr<std::map<std::string, std::string>> s = (*redis)->HGetAll(absl::StrCat("session_features:u0:", t0));
    absl::StatusOr<std::map<std::string, std::string>> p = (*redis)->HGetAll("purchase_features:u0");
    ASSERT_TRUE(s.ok() && p.ok());
    session = *s;
    purchases = *p;
    // The newest 24 h window holding the purchases ends at t0's hour + 24 h.
    if (!session.empty() && purchases["window_end"] == absl::StrCat(t0 + 24 * 3600000LL)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(session["event_count"], "4") << "the session carries its state over the restore";
  EXPECT_EQ(purchases["purchases_24h"], "2") << "the added group starts empty: only the purchases after";
  EXPECT_EQ(purchases["purchase_amount_24h"], "2");
  absl::StatusOr<v1::JobStatus> job = coordinator.GetJob();
  ASSERT_TRUE(job.ok());
  EXPECT_GE(job->checkpoints().restored(), 1);
  ASSERT_EQ(second_worker.Stop(), 0);
  ASSERT_EQ(second_coordinator->Stop(), 0);

  // A changed filter cannot restore: the job fails naming what changed.
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(coordinator, 0, {"-Dpipeline.features=" + changed_path},
                                           "coordinator-changed"));
  Process* third_coordinator = processes_.back().get();
  Process& third_worker = Start("worker-changed", "slipstream-worker", 0, {"-Dpipeline.features=" + changed_path});
  std::optional<v1::JobStatus> failed =
      WaitForJob(coordinator, "the restore under a changed filter to fail", 60000, {third_coordinator, &third_worker},
                 [](const v1::JobStatus& j) { return j.state() == "FAILED"; });
  ASSERT_TRUE(failed.has_value());
  EXPECT_NE(failed->failure_cause().find("cart_count_1h"), std::string::npos) << failed->failure_cause();
  EXPECT_NE(failed->failure_cause().find("user_features"), std::string::npos) << failed->failure_cause();
}

}  // namespace
}  // namespace slipstream::it
