// A bounded job (execution.runtime-mode=BATCH) through the coordinator's gRPC
// service: the stopping offsets are decided once, at the first registration,
// and every worker's assignment carries them; no checkpoints are taken even
// with a job directory; the job is FINISHED once every worker reported its
// input finished, after the on_bounded_finished hook. Time is a ManualClock.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tests/coordinator/coordinator_fixture.h"

namespace slipstream {
namespace {

class CoordinatorBoundedTest : public test_support::CoordinatorFixture {
 protected:
  void SetUp() override {
    CoordinatorFixture::SetUp();
    UseManualClock();
    // Checkpointing configured: BATCH must still take none.
    EnableCheckpoints(/*interval_ms=*/10, /*timeout_ms=*/1000, /*tolerable=*/0);
    customize_ = [this](CoordinatorOptions& options) {
      options.bounded = true;
      options.stopping_offsets = [this](int num_partitions) -> absl::StatusOr<std::map<int, int64_t>> {
        ++decisions_;
        std::map<int, int64_t> offsets;
        for (int p = 0; p < num_partitions; ++p) offsets[p] = 100 + p + decisions_ * 1000;
        return offsets;
      };
      options.on_bounded_finished = [this](int64_t attempt, int num_workers) {
        finished_.emplace_back(attempt, num_workers);
        return absl::OkStatus();
      };
    };
  }

  v1::HeartbeatResponse BeatFinished(const std::string& worker_id, int64_t attempt) {
    grpc::ClientContext ctx;
    v1::HeartbeatRequest request;
    request.set_worker_id(worker_id);
    request.mutable_counters()->set_attempt(0);
    request.set_finished_attempt(attempt);
    v1::HeartbeatResponse response;
    EXPECT_TRUE(stub_->Heartbeat(&ctx, request, &response).ok());
    return response;
  }

  std::atomic<int> decisions_{0};
  std::vector<std::pair<int64_t, int>> finished_;
};

TEST_F(CoordinatorBoundedTest, StoppingOffsetsAreDecidedOnceAndShippedToEveryWorker) {
  StartServer(/*heartbeat_timeout_ms=*/10000, /*partitions=*/4, /*min_workers=*/2);
  const std::string a = MustRegister(7001);
  const std::string b = MustRegister(7002);
  AdvanceAndTick(1);
  const v1::JobStatus job = GetJob();
  ASSERT_EQ(job.state(), "RUNNING");
  EXPECT_EQ(decisions_.load(), 1);
  std::map<int, int64_t> shipped;
  for (const v1::WorkerStatus& w : job.workers()) {
    EXPECT_TRUE(w.assignment().bounded());
    for (int p : w.assignment().partitions()) shipped[p] = w.assignment().stopping_offsets().at(p);
  }
  EXPECT_EQ(shipped, (std::map<int, int64_t>{{0, 1100}, {1, 1101}, {2, 1102}, {3, 1103}}));
  EXPECT_EQ(server_->state(), JobState::kRunning);
  // However long it runs: no checkpoint.
  for (int i = 0; i < 20; ++i) AdvanceAndTick(50);
  EXPECT_EQ(GetJob().checkpoints().completed(), 0);
  EXPECT_EQ(GetJob().checkpoints().in_progress(), 0);
  EXPECT_EQ(decisions_.load(), 1);
  (void)a;
  (void)b;
}

TEST_F(CoordinatorBoundedTest, FinishedOnceEveryWorkerReportedItsInputFinished) {
  StartServer(/*heartbeat_timeout_ms=*/10000, /*partitions=*/4, /*min_workers=*/2);
  const std::string a = MustRegister(7001);
  const std::string b = MustRegister(7002);
  AdvanceAndTick(1);
  ASSERT_EQ(GetJob().state(), "RUNNING");
  BeatAs(a, 1);
  BeatAs(b, 1);
  BeatFinished(a, 1);
  EXPECT_EQ(GetJob().state(), "RUNNING");
  EXPECT_TRUE(finished_.empty());
  const v1::HeartbeatResponse last = BeatFinished(b, 1);
  EXPECT_EQ(GetJob().state(), "FINISHED");
  EXPECT_EQ(server_->state(), JobState::kFinished);
  EXPECT_FALSE(last.has_assignment());
  EXPECT_NE(last.reason().find("FINISHED"), std::string::npos) << last.reason();
  ASSERT_EQ(finished_.size(), 1u);
  EXPECT_EQ(finished_[0], (std::pair<int64_t, int>{1, 2}));
  EXPECT_EQ(GetJob().workers_size(), 2) << "the workers stay registered";
}

}  // namespace
}  // namespace slipstream
