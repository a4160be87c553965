// WorkerRegistry on explicit times: registration, heartbeats, expiry at the
// exact boundary, stale tasks, leaving workers, deployment readiness.
#include "coordinator/job/worker_registry.h"

#include <gtest/gtest.h>

namespace slipstream {
namespace {

v1::RegisterWorkerRequest Registration(int port) {
  v1::RegisterWorkerRequest r;
  r.set_host("127.0.0.1");
  r.set_data_port(port);
  return r;
}

v1::HeartbeatRequest Beat(const std::string& id, int64_t attempt, std::string failure = "") {
  v1::HeartbeatRequest h;
  h.set_worker_id(id);
  h.mutable_counters()->set_attempt(attempt);
  h.set_failure_cause(std::move(failure));
  return h;
}

WorkerRegistryOptions Options() { return WorkerRegistryOptions{300, 1000, 2}; }

TEST(WorkerRegistry, ASilentWorkerIsDroppedJustAfterTheHeartbeatTimeoutAndToldWhy) {
  WorkerRegistry registry(Options());
  const std::string id = registry.Register(Registration(7001), 0).id;
  EXPECT_NE(id.find("127.0.0.1:7001-"), std::string::npos) << id;
  EXPECT_TRUE(registry.ExpireSilent(300).empty());
  const std::vector<DroppedWorker> dropped = registry.ExpireSilent(301);
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].id, id);
  EXPECT_FALSE(dropped[0].in_attempt);
  EXPECT_EQ(registry.size(), 0);
  ASSERT_TRUE(registry.ForgottenReason(id).has_value());
  EXPECT_NE(registry.ForgottenReason(id)->find("no heartbeat for 301 ms"), std::string::npos);
  EXPECT_FALSE(registry.RecordHeartbeat(Beat(id, 0), 302).has_value());
}

TEST(WorkerRegistry, AWorkerThatDoesNotCancelItsTaskIsDroppedAfterTheCancellationTimeout) {
  WorkerRegistry registry(Options());
  const std::string id = registry.Register(Registration(7001), 0).id;
  ASSERT_TRUE(registry.RecordHeartbeat(Beat(id, 4), 100).has_value());  // runs attempt 4, assigned none
  EXPECT_EQ(registry.Find(id)->stale_since_ms, 100);
  for (int64_t t = 200; t <= 1100; t += 100) ASSERT_TRUE(registry.RecordHeartbeat(Beat(id, 4), t).has_value());
  EXPECT_TRUE(registry.ExpireSilent(1100).empty()) << "1000 ms stale: not more than the timeout";
  ASSERT_TRUE(registry.RecordHeartbeat(Beat(id, 4), 1101).has_value());
  const std::vector<DroppedWorker> dropped = registry.ExpireSilent(1101);
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_NE(dropped[0].cause.find("still runs its task of attempt 4"), std::string::npos) << dropped[0].cause;
}

TEST(WorkerRegistry, AFailureReportKeepsTheWorkerIdleAndNamesTheFailedAttempt) {
  WorkerRegistry registry(Options());
  const std::string id = registry.Register(Registration(7001), 0).id;
  const auto beat = registry.RecordHeartbeat(Beat(id, 5, "boom"), 10);
  ASSERT_TRUE(beat.has_value());
  EXPECT_EQ(beat->failed_attempt, 5);
  EXPECT_EQ(beat->worker->counters.attempt(), 0);
}

TEST(WorkerRegistry, AfterAnAttemptEndsAWorkerIsReadyOnlyOnceItReportsIdleAgain) {
  WorkerRegistry registry(Options());
  const std::string id = registry.Register(Registration(7001), 0).id;
  EXPECT_TRUE(registry.ReadyForDeployment(*registry.Find(id)));
  registry.ClearAssignments(10);
  EXPECT_FALSE(registry.ReadyForDeployment(*registry.Find(id))) << "no report since the end";
  EXPECT_EQ(registry.Busy(1), std::vector<std::string>({id + " (no heartbeat since attempt 1 ended)"}));
  ASSERT_TRUE(registry.RecordHeartbeat(Beat(id, 0), 20).has_value());
  EXPECT_TRUE(registry.ReadyForDeployment(*registry.Find(id)));
  EXPECT_TRUE(registry.Busy(1).empty());
}

TEST(WorkerRegistry, ALeavingWorkerIsWaitedForUntilItsTaskStoppedOrTheTimeout) {
  WorkerRegistry registry(Options());
  registry.MarkLeaving("gone-1", 0);
  registry.MarkLeaving("gone-2", 0);
  EXPECT_EQ(registry.Busy(1).size(), 2u);
  EXPECT_TRUE(registry.FinishLeaving("gone-1"));
  EXPECT_FALSE(registry.FinishLeaving("gone-1"));
  registry.ExpireSilent(300);
  EXPECT_EQ(registry.Busy(1).size(), 1u);
  registry.ExpireSilent(301);
  EXPECT_TRUE(registry.Busy(1).empty());
}

TEST(WorkerRegistry, DeploymentTakesWorkersInRegistrationOrderUpToMaxParallelism) {
  WorkerRegistry registry(Options());  // max parallelism 2
  const std::string a = registry.Register(Registration(7003), 0).id;
  const std::string b = registry.Register(Registration(7001), 1).id;
  const std::string c = registry.Register(Registration(7002), 2).id;
  const std::vector<WorkerEntry*> deployed = registry.ForDeployment();
  ASSERT_EQ(deployed.size(), 2u);
  EXPECT_EQ(deployed[0]->id, a);
  EXPECT_EQ(deployed[1]->id, b);
  deployed[0]->assignment.set_attempt(1);
  deployed[0]->assignment.set_worker_index(1);
  deployed[1]->assignment.set_attempt(1);
  deployed[1]->assignment.set_worker_index(0);
  const std::vector<const WorkerEntry*> listed = registry.InOrder();
  EXPECT_EQ(listed[0]->id, b) << "attempt workers by index first";
  EXPECT_EQ(listed[1]->id, a);
  EXPECT_EQ(listed[2]->id, c) << "then standbys";
  EXPECT_EQ(registry.AttemptWorkerCount(), 2);
  EXPECT_EQ(registry.JoinedWorkerCount(), 0) << "a third worker exceeds max parallelism";
}

TEST(WorkerRegistry, AProbeDropsOnlyAWorkerThatHasNotSpokenSince) {
  WorkerRegistry registry(Options());
  const std::string id = registry.Register(Registration(7001), 0).id;
  std::vector<ProbeTarget> targets = registry.ProbeTargets(250, 250, false);
  ASSERT_EQ(targets.size(), 1u);
  ASSERT_TRUE(registry.RecordHeartbeat(Beat(id, 0), 260).has_value());
  EXPECT_FALSE(registry.DropRefused(targets[0]).has_value()) << "it spoke after the probe was planned";
  targets = registry.ProbeTargets(600, 250, false);
  ASSERT_EQ(targets.size(), 1u);
  const auto dropped = registry.DropRefused(targets[0]);
  ASSERT_TRUE(dropped.has_value());
  EXPECT_NE(dropped->cause.find("refuses connections"), std::string::npos);
  EXPECT_EQ(registry.size(), 0);
}

}  // namespace
}  // namespace slipstream
