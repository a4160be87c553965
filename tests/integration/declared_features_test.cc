// Features declared in a file, end to end: the README's example. The shipped
// definition plus a `purchase_features` group (a 24 h sliding window, 1 h
// slide, of the purchase amount) runs on the unchanged binaries through the
// real Kafka broker and Redis; every write of the new group is checked
// against sums computed here from the produced events, the original groups
// keep their keys, and GetJob shows the definition.
#include <gtest/gtest.h>

#include <charconv>
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
