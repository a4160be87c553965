// SavepointRequests on its own: request ids, the one queued savepoint, the
// status of each request through its life, and the bound on remembered ones.
#include "coordinator/checkpoint/savepoint_requests.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace slipstream {
namespace {

constexpr char kJobId[] = "0123456789abcdef0123456789abcdef";

TEST(SavepointRequests, AQueuedRequestHasARandomIdAndIsInProgress) {
  SavepointRequests requests(kJobId);
  absl::StatusOr<v1::SavepointOperation> op = requests.Queue(3, "/sp/savepoint-012345-aaa", true, 2, "", 1000);
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(op->request_id().size(), 32u);
  EXPECT_EQ(op->request_id().find_first_not_of("0123456789abcdef"), std::string::npos) << op->request_id();
  EXPECT_EQ(op->status(), "IN_PROGRESS");
  EXPECT_EQ(op->job_id(), kJobId);
  EXPECT_EQ(op->trigger_time_ms(), 1000);
  EXPECT_TRUE(op->stop());
  EXPECT_EQ(op->expected(), 2);
  EXPECT_EQ(op->checkpoint_id(), 0) << "not triggered yet";
  ASSERT_TRUE(requests.queued().has_value());
  EXPECT_EQ(requests.queued()->request_id, op->request_id());
  EXPECT_EQ(requests.queued()->dir, "/sp/savepoint-012345-aaa");
  EXPECT_EQ(requests.queued()->attempt, 3);
  EXPECT_TRUE(requests.queued()->stop);
  EXPECT_EQ(requests.StatusOf(op->request_id()), SavepointStatus::kInProgress);
  EXPECT_EQ(requests.Get(op->request_id())->SerializeAsString(), op->SerializeAsString());
  EXPECT_FALSE(requests.Get("unknown").has_value());
  EXPECT_FALSE(requests.StatusOf("unknown").has_value());
}

TEST(SavepointRequests, OnlyOneSavepointAtATime) {
  SavepointRequests requests(kJobId);
  absl::StatusOr<v1::SavepointOperation> first = requests.Queue(1, "/sp/a", false, 1, "", 1000);
  ASSERT_TRUE(first.ok());
  absl::StatusOr<v1::SavepointOperation> queued_busy = requests.Queue(1, "/sp/b", false, 1, "", 1001);
  EXPECT_TRUE(absl::IsFailedPrecondition(queued_busy.status()));
  EXPECT_NE(std::string(queued_busy.status().message()).find(first->request_id()), std::string::npos);
  ASSERT_TRUE(requests.TakeQueued().has_value());
  EXPECT_FALSE(requests.queued().has_value());
  // Triggered and running: the caller names it.
  absl::StatusOr<v1::SavepointOperation> running_busy =
      requests.Queue(1, "/sp/b", false, 1, first->request_id(), 1002);
  EXPECT_TRUE(absl::IsFailedPrecondition(running_busy.status()));
  EXPECT_NE(std::string(running_busy.status().message()).find(first->request_id()), std::string::npos);
}

TEST(SavepointRequests, ARequestGoesFromInProgressToCompleted) {
  SavepointRequests requests(kJobId);
  const std::string id = requests.Queue(1, "/sp/a", false, 2, "", 1000)->request_id();
  const std::optional<QueuedSavepoint> taken = requests.TakeQueued();
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->request_id, id);
  requests.Started(id, /*checkpoint_id=*/9, /*expected_workers=*/3);
  EXPECT_EQ(requests.Get(id)->checkpoint_id(), 9);
  EXPECT_EQ(requests.Get(id)->expected(), 3);
  EXPECT_EQ(requests.Get(id)->status(), "IN_PROGRESS");
  requests.Completed(id, "/sp/a", 1500, 3, 4096);
  const v1::SavepointOperation done = *requests.Get(id);
  EXPECT_EQ(requests.StatusOf(id), SavepointStatus::kCompleted);
  EXPECT_EQ(done.status(), "COMPLETED");
  EXPECT_EQ(done.location(), "/sp/a");
  EXPECT_EQ(done.end_time_ms(), 1500);
  EXPECT_EQ(done.acknowledged(), 3);
  EXPECT_EQ(done.state_bytes(), 4096);
  EXPECT_EQ(done.failure_cause(), "");
}

TEST(SavepointRequests, AQueuedRequestCanFailBeforeItStarts) {
  SavepointRequests requests(kJobId);
  EXPECT_FALSE(requests.FailQueued("nothing queued", 1000));
  const std::string id = requests.Queue(1, "/sp/a", false, 2, "", 1000)->request_id();
  EXPECT_TRUE(requests.FailQueued("attempt 1 ended before the savepoint started", 1200));
  EXPECT_FALSE(requests.queued().has_value());
  const v1::SavepointOperation op = *requests.Get(id);
  EXPECT_EQ(requests.StatusOf(id), SavepointStatus::kFailed);
  EXPECT_EQ(op.status(), "FAILED");
  EXPECT_EQ(op.failure_cause(), "attempt 1 ended before the savepoint started");
  EXPECT_EQ(op.end_time_ms(), 1200);
  EXPECT_TRUE(requests.Queue(2, "/sp/b", false, 2, "", 1300).ok()) << "the next one may come";
}

TEST(SavepointRequests, OnlyTheNewestRequestsAreRemembered) {
  SavepointRequests requests(kJobId);
  std::vector<std::string> ids;
  std::set<std::string> distinct;
  for (size_t i = 0; i < SavepointRequests::kMaxOperations + 5; ++i) {
    absl::StatusOr<v1::SavepointOperation> op = requests.Queue(1, "/sp/x", false, 1, "", 1000 + i);
    ASSERT_TRUE(op.ok()) << op.status();
    ids.push_back(op->request_id());
    distinct.insert(op->request_id());
    requests.TakeQueued();
    requests.Failed(op->request_id(), "test", 2000);
  }
  EXPECT_EQ(distinct.size(), ids.size());
  for (size_t i = 0; i < 5; ++i) EXPECT_FALSE(requests.Get(ids[i]).has_value()) << i;
  for (size_t i = 5; i < ids.size(); ++i) EXPECT_TRUE(requests.Get(ids[i]).has_value()) << i;
}

TEST(SavepointRequests, StatusesHaveFlinksNames) {
  EXPECT_EQ(SavepointStatusName(SavepointStatus::kInProgress), "IN_PROGRESS");
  EXPECT_EQ(SavepointStatusName(SavepointStatus::kCompleted), "COMPLETED");
  EXPECT_EQ(SavepointStatusName(SavepointStatus::kFailed), "FAILED");
}

}  // namespace
}  // namespace slipstream
