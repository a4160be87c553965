// The coordinator's gRPC service, in process on a free port, through a real
// gRPC client: registration, waiting for cluster.min-workers, deployment over
// several workers, standbys, heartbeats, deregistration, failing the attempt
// when one of its workers is lost (the others stay), and checkpoints of the
// running attempt with fake workers' TaskControl endpoints as their data
// ports. Recovery (restart strategies, restore) is coordinator_recovery_test.cc.
#include "coordinator/coordinator_server.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "proto/slipstream.grpc.pb.h"
#include "tests/coordinator/coordinator_fixture.h"
#include "tests/coordinator/fake_task_control.h"

namespace slipstream {
namespace {

using test_support::Eventually;
using test_support::FakeTaskControl;

class CoordinatorServerTest : public test_support::CoordinatorFixture {};

TEST_F(CoordinatorServerTest, FirstWorkerGetsEveryPartitionAndKeyGroup) {
  StartServer();
  v1::RegisterWorkerResponse response;
  ASSERT_TRUE(Register(&response).ok());
  const v1::Assignment& a = response.assignment();
  EXPECT_EQ(a.job_id(), "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(a.topic(), "events");
  EXPECT_EQ(a.attempt(), 1);
  EXPECT_EQ(std::vector<int>(a.partitions().begin(), a.partitions().end()), (std::vector<int>{0, 1, 2, 3}));
  ASSERT_EQ(a.key_groups_size(), 1);
  EXPECT_EQ(a.key_groups(0).first(), 0);
  EXPECT_EQ(a.key_groups(0).last(), 127);
  EXPECT_EQ(a.worker_index(), 0);
  ASSERT_EQ(a.workers_size(), 1);
  EXPECT_EQ(a.workers(0).worker_id(), response.worker_id());
  EXPECT_EQ(a.workers(0).data_port(), 7000);
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "RUNNING");
  EXPECT_EQ(job.attempt(), 1);
  ASSERT_EQ(job.workers_size(), 1);
  EXPECT_EQ(job.workers(0).worker_id(), response.worker_id());
  EXPECT_FALSE(job.workers(0).standby());
}

TEST_F(CoordinatorServerTest, RegistrationWithoutDataPortIsRefused) {
  StartServer();
  v1::RegisterWorkerResponse response;
  const grpc::Status status = Register(&response, /*data_port=*/0);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("data port"), std::string::npos) << status.error_message();
}

// Three workers, cluster.min-workers=3: nothing is deployed before the
// third registers; then every worker learns the same map, partitions are
// dealt once each and key groups split into Flink's contiguous ranges.
TEST_F(CoordinatorServerTest, WaitsForMinWorkersThenDeploysOverAll) {
  StartServer(10000, 4, /*min_workers=*/3);
  v1::RegisterWorkerResponse first, second, third;
  ASSERT_TRUE(Register(&first, 7001).ok());
  ASSERT_TRUE(Register(&second, 7002).ok());
  EXPECT_EQ(first.assignment().attempt(), 0);
  EXPECT_EQ(second.assignment().attempt(), 0);
  EXPECT_EQ(GetJob().state(), "CREATED");
  EXPECT_EQ(Beat(first.worker_id()).assignment().attempt(), 0);
  ASSERT_TRUE(Register(&third, 7003).ok());
  ASSERT_EQ(third.assignment().attempt(), 1);

  std::vector<v1::Assignment> assignments = {Beat(first.worker_id()).assignment(),
                                             Beat(second.worker_id()).assignment(), third.assignment()};
  std::vector<int> partition_owners(4, 0);
  std::vector<int> key_group_owners(128, 0);
  for (int i = 0; i < 3; ++i) {
    const v1::Assignment& a = assignments[i];
    EXPECT_EQ(a.attempt(), 1);
    EXPECT_EQ(a.worker_index(), i) << "indices follow registration order";
    ASSERT_EQ(a.workers_size(), 3);
    EXPECT_EQ(a.workers(i).data_port(), 7001 + i);
    for (int p : a.partitions()) ++partition_owners[p];
    ASSERT_EQ(a.key_groups_size(), 1);
    EXPECT_EQ(a.key_groups(0).first(), a.workers(i).key_groups().first());
    EXPECT_EQ(a.key_groups(0).last(), a.workers(i).key_groups().last());
    for (int kg = a.key_groups(0).first(); kg <= a.key_groups(0).last(); ++kg) ++key_group_owners[kg];
    for (int j = 0; j < 3; ++j) {
      EXPECT_EQ(a.workers(j).SerializeAsString(), assignments[0].workers(j).SerializeAsString())
          << "workers disagree about worker " << j;
    }
  }
  for (int p = 0; p < 4; ++p) EXPECT_EQ(partition_owners[p], 1) << "partition " << p;
  for (int kg = 0; kg < 128; ++kg) EXPECT_EQ(key_group_owners[kg], 1) << "key group " << kg;
  // Flink's KeyGroupRangeAssignment for 128 key groups over 3 operators.
  EXPECT_EQ(assignments[0].key_groups(0).last(), 42);
  EXPECT_EQ(assignments[1].key_groups(0).first(), 43);
  EXPECT_EQ(assignments[1].key_groups(0).last(), 85);
  EXPECT_EQ(assignments[2].key_groups(0).first(), 86);
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "RUNNING");
  EXPECT_EQ(job.min_workers(), 3);
  ASSERT_EQ(job.workers_size(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(job.workers(i).assignment().worker_index(), i);
}

// Workers that register within the stabilization timeout join one
// deployment, made once no worker registered for that long: each
// registration restarts the wait.
TEST_F(CoordinatorServerTest, WorkersStartingTogetherAreDeployedTogether) {
  UseManualClock();
  StartServer(10000, 4, /*min_workers=*/1, /*stabilization_ms=*/400);
  const std::string a = MustRegister(7001);
  AdvanceAndTick(300);
  EXPECT_EQ(GetJob().state(), "CREATED");
  const std::string b = MustRegister(7002);
  AdvanceAndTick(399);
  EXPECT_EQ(GetJob().state(), "CREATED") << "699 ms after a, but 399 ms after b";
  AdvanceAndTick(1);
  const v1::JobStatus job = GetJob();
  ASSERT_EQ(job.state(), "RUNNING");
  ASSERT_EQ(job.workers_size(), 2);
  EXPECT_EQ(Beat(a).assignment().workers_size(), 2);
  EXPECT_EQ(Beat(b).assignment().worker_index(), 1);
}

// Partition discovery without checkpoints: the attempt ends at once (not a
// failure) and the next reads every partition, the new ones from their
// earliest offset.
TEST_F(CoordinatorServerTest, DiscoveredPartitionsAreReadFromTheirEarliestOffset) {
  UseManualClock();
  // Discovery runs on its own thread every 20 ms of wall time (the test
  // cannot run it); what it found is acted on at the next tick.
  partition_discovery_interval_ms_ = 20;
  StartServer(/*heartbeat_timeout_ms=*/10000, /*partitions=*/4);
  const std::string a = MustRegister(7001);
  ASSERT_EQ(BeatAs(a, 1).assignment().partitions_size(), 4);
  topic_partitions_->store(6);
  ASSERT_TRUE(Eventually([&] {
    Tick();
    return GetJob().state() == "RESTARTING";
  })) << "the growth was not acted on";
  // The worker runs what its last answer assigned: attempt 1, then nothing
  // (the attempt ended), then attempt 2, once it said it runs no task.
  const v1::HeartbeatResponse told = BeatAs(a, 1);
  EXPECT_FALSE(told.has_assignment());
  EXPECT_NE(told.reason().find("grew from 4 to 6"), std::string::npos) << told.reason();
  EXPECT_EQ(GetJob().attempt(), 1);
  const v1::HeartbeatResponse beat = BeatAs(a, 0);
  ASSERT_EQ(beat.assignment().attempt(), 2);
  EXPECT_EQ(beat.assignment().partitions_size(), 6);
  EXPECT_EQ(std::vector<int>(beat.assignment().earliest_partitions().begin(),
                             beat.assignment().earliest_partitions().end()),
            (std::vector<int>{4, 5}));
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.failures(), 0);
}

// A topic that shrank (deleted and created again) or vanished fails the job,
// saying so.
TEST_F(CoordinatorServerTest, ATopicThatShrankOrVanishedFailsTheJob) {
  for (const int now : {2, -1}) {
    partition_discovery_interval_ms_ = 20;
    StartServer(/*heartbeat_timeout_ms=*/10000, /*partitions=*/4);
    const std::string a = MustRegister(7001);
    ASSERT_EQ(Beat(a).assignment().attempt(), 1);
    topic_partitions_->store(now);
    const v1::JobStatus job = WaitForJob([](const v1::JobStatus& j) { return j.state() == "FAILED"; });
    EXPECT_EQ(job.state(), "FAILED");
    EXPECT_NE(job.failure_cause().find(now > 0 ? "shrank from 4 to 2" : "vanished"), std::string::npos)
        << job.failure_cause();
    server_.reset();
    topic_partitions_->store(0);
  }
}

TEST_F(CoordinatorServerTest, WorkerJoiningARunningJobIsAStandby) {
  StartServer();
  v1::RegisterWorkerResponse first, late;
  ASSERT_TRUE(Register(&first, 7001).ok());
  ASSERT_TRUE(Register(&late, 7002).ok());
  EXPECT_EQ(late.assignment().attempt(), 0);
  const v1::HeartbeatResponse beat = Beat(late.worker_id());
  EXPECT_TRUE(beat.known());
  EXPECT_FALSE(beat.has_assignment());
  const v1::JobStatus job = GetJob();
  ASSERT_EQ(job.workers_size(), 2);
  EXPECT_EQ(job.workers(0).worker_id(), first.worker_id());
  EXPECT_FALSE(job.workers(0).standby());
  EXPECT_EQ(job.workers(1).worker_id(), late.worker_id());
  EXPECT_TRUE(job.workers(1).standby());
}

// A silent worker of the running attempt fails it: the coordinator reports
// the cause and removes that worker; the attempt's other worker stays
// registered, its heartbeats are answered without an assignment (reason: the
// cause), and the next attempt is deployed over every worker still
// registered (the survivor and the standbys, in registration order).
TEST_F(CoordinatorServerTest, LostWorkerFailsTheAttemptAndIsReported) {
  UseManualClock();
  restart_.fixed_delay_ms = 300;  // so `a` sees the cause before attempt 2 exists
  StartServer(/*heartbeat_timeout_ms=*/500, 4, /*min_workers=*/2);
  const std::string a = MustRegister(7001);
  const std::string b = MustRegister(7002);
  ASSERT_EQ(Beat(a).assignment().attempt(), 1);
  const std::string standby = MustRegister(7003);
  const std::string standby2 = MustRegister(7004);
  // a and the standbys keep beating; b falls silent. It is lost the first
  // tick after heartbeat.timeout.
  const auto beat_all_but_b = [&] {
    const v1::HeartbeatResponse beat = Beat(a);
    Beat(standby);
    Beat(standby2);
    EXPECT_TRUE(beat.known()) << "a survivor stays registered: " << beat.reason();
    return beat;
  };
  AdvanceAndTick(250);
  beat_all_but_b();
  AdvanceAndTick(250);
  ASSERT_TRUE(beat_all_but_b().has_assignment()) << "b silent for exactly heartbeat.timeout";
  AdvanceAndTick(1);
  const std::string reason_for_a = beat_all_but_b().reason();
  EXPECT_NE(reason_for_a.find("lost"), std::string::npos) << reason_for_a;
  EXPECT_NE(reason_for_a.find(b), std::string::npos) << reason_for_a;
  // Attempt 2 follows at the restart delay (everyone left has reported idle).
  AdvanceAndTick(299);
  beat_all_but_b();
  EXPECT_EQ(GetJob().state(), "RESTARTING");
  AdvanceAndTick(1);
  const v1::JobStatus job = GetJob();
  ASSERT_EQ(job.attempt(), 2);
  EXPECT_EQ(job.failures(), 1);
  EXPECT_EQ(job.restarts(), 1);
  EXPECT_NE(job.failure_cause().find(b), std::string::npos) << job.failure_cause();
  EXPECT_EQ(job.state(), "RUNNING");
  ASSERT_EQ(job.workers_size(), 3);
  EXPECT_EQ(job.workers(0).worker_id(), a);
  EXPECT_EQ(job.workers(1).worker_id(), standby);
  EXPECT_EQ(job.workers(2).worker_id(), standby2);
  EXPECT_EQ(Beat(standby).assignment().attempt(), 2);
  EXPECT_EQ(Beat(a).assignment().worker_index(), 0);
  EXPECT_FALSE(Heartbeat(b)) << "the lost worker is forgotten";
}

// A worker failing (DeregisterWorker with a cause) ends the attempt; the
// other worker stays registered and idle until cluster.min-workers are back.
TEST_F(CoordinatorServerTest, WorkerFailureEndsTheAttemptWithItsCause) {
  StartServer(10000, 4, /*min_workers=*/2);
  const std::string a = MustRegister(7001);
  const std::string b = MustRegister(7002);
  ASSERT_EQ(Beat(a).assignment().attempt(), 1);
  Deregister(b, "the data channel to worker x broke");
  const v1::HeartbeatResponse beat = Beat(a);
  EXPECT_TRUE(beat.known());
  EXPECT_FALSE(beat.has_assignment());
  EXPECT_NE(beat.reason().find("data channel"), std::string::npos) << beat.reason();
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.state(), "RESTARTING");
  EXPECT_EQ(job.failures(), 1);
  EXPECT_NE(job.failure_cause().find("data channel"), std::string::npos) << job.failure_cause();
  ASSERT_EQ(job.workers_size(), 1);
  EXPECT_EQ(job.workers(0).worker_id(), a);
  EXPECT_TRUE(job.workers(0).standby());
  // A new worker makes two again: attempt 2 runs on a and the newcomer.
  const std::string c = MustRegister(7003);
  EXPECT_EQ(Beat(c).assignment().attempt(), 2);
  EXPECT_EQ(Beat(a).assignment().workers_size(), 2);
}

TEST_F(CoordinatorServerTest, HeartbeatsCarryCountersAndUnknownWorkersAreToldSo) {
  StartServer();
  v1::RegisterWorkerResponse response;
  ASSERT_TRUE(Register(&response).ok());
  EXPECT_TRUE(Heartbeat(response.worker_id()));
  EXPECT_EQ(GetJob().workers(0).counters().records_in(), 7);
  EXPECT_FALSE(Heartbeat("somebody-else"));
}

// On the test's own clock: a worker is kept up to heartbeat.timeout of
// silence and forgotten the first tick after it.
TEST_F(CoordinatorServerTest, SilentWorkerIsForgottenAfterHeartbeatTimeout) {
  UseManualClock();
  StartServer(/*heartbeat_timeout_ms=*/300);
  v1::RegisterWorkerResponse response;
  ASSERT_TRUE(Register(&response).ok());
  AdvanceAndTick(300);
  EXPECT_EQ(GetJob().workers_size(), 1) << "silent for exactly heartbeat.timeout: still there";
  EXPECT_EQ(GetJob().state(), "RUNNING");
  AdvanceAndTick(1);
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.workers_size(), 0);
  EXPECT_EQ(job.state(), "RESTARTING");
  EXPECT_NE(job.failure_cause().find("no heartbeat for 301 ms"), std::string::npos) << job.failure_cause();
  EXPECT_FALSE(Heartbeat(response.worker_id()));
}

// A worker whose data port refuses connections is lost as soon as it is
// silent for a moment, long before heartbeat.timeout; one whose port accepts
// stays until the timeout.
TEST_F(CoordinatorServerTest, WorkerWhoseProcessIsGoneIsLostWithoutWaitingForTheTimeout) {
  UseManualClock();
  probe_workers_ = true;
  StartServer(/*heartbeat_timeout_ms=*/60000);
  // A port something listens on (a live process) and one nothing listens on.
  const int listening = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listening, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(listening, 8), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(getsockname(listening, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const int live_port = ntohs(address.sin_port);
  const int closed = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in closed_address{};
  closed_address.sin_family = AF_INET;
  closed_address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(closed, reinterpret_cast<sockaddr*>(&closed_address), sizeof(closed_address)), 0);
  length = sizeof(closed_address);
  ASSERT_EQ(getsockname(closed, reinterpret_cast<sockaddr*>(&closed_address), &length), 0);
  const int dead_port = ntohs(closed_address.sin_port);  // bound, never listening: refused
  const std::string live = MustRegister(live_port);
  const std::string dead = MustRegister(dead_port);
  // Workers silent for 2.5 s on the coordinator's clock are probed; the
  // prober runs on its own thread every 200 ms of wall time (the test cannot
  // run it). The clock moves 2.5 s and nothing ticks: heartbeat.timeout
  // (60 s) cannot be what removes a worker here.
  AdvanceClock(2500);
  const v1::JobStatus job = WaitForJob([&](const v1::JobStatus& j) {
    return j.workers_size() == 1 && j.workers(0).worker_id() == live;
  });
  ASSERT_EQ(job.workers_size(), 1);
  EXPECT_EQ(job.workers(0).worker_id(), live);
  const v1::HeartbeatResponse gone = Beat(dead);
  EXPECT_FALSE(gone.known());
  EXPECT_NE(gone.reason().find("refuses connections"), std::string::npos) << gone.reason();
  close(listening);
  close(closed);
}

TEST_F(CoordinatorServerTest, RegistrationWaitsWhileTheTopicIsMissing) {
  StartServer(10000, absl::NotFoundError("topic events does not exist"));
  v1::RegisterWorkerResponse response;
  const grpc::Status status = Register(&response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(status.error_message().find("does not exist"), std::string::npos) << status.error_message();
}

TEST_F(CoordinatorServerTest, SecondCoordinatorCannotShareThePort) {
  StartServer();
  CoordinatorOptions options;
  options.listen_address = absl::StrCat("127.0.0.1:", server_->port());
  options.partition_count = [] { return absl::StatusOr<int>(1); };
  auto second = CoordinatorServer::Start(options);
  EXPECT_FALSE(second.ok());
}

// Two workers of attempt 1 acknowledge through AcknowledgeCheckpoint: the
// coordinator completes checkpoints, writes _metadata and reports them in
// GetJob.
TEST_F(CoordinatorServerTest, CheckpointsTheRunningAttemptAndReportsThemInGetJob) {
  EnableCheckpoints(/*interval_ms=*/100, /*timeout_ms=*/1000, /*tolerable=*/100);
  StartServer(10000, 4, /*min_workers=*/2);
  FakeTaskControl& a = AddFakeWorker();
  FakeTaskControl& b = AddFakeWorker();
  ASSERT_EQ(GetJob().state(), "RUNNING");
  a.set_reply(FakeTaskControl::Reply::kAck);
  b.set_reply(FakeTaskControl::Reply::kAck);
  const v1::JobStatus job = WaitForJob([](const v1::JobStatus& j) { return j.checkpoints().completed() >= 2; });
  const v1::CheckpointOverview& c = job.checkpoints();
  ASSERT_GE(c.completed(), 2) << c.DebugString();
  const v1::CheckpointStats& latest = c.latest_completed();
  EXPECT_EQ(latest.status(), "COMPLETED");
  EXPECT_EQ(latest.acknowledged(), 2);
  EXPECT_EQ(latest.state_bytes(), 2000);
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(latest.path()) / "_metadata")) << latest.path();
  EXPECT_EQ(std::filesystem::path(latest.path()).parent_path().string(), job_dir_);
  EXPECT_GE(c.history_size(), 2);
  for (const auto& t : a.triggers()) EXPECT_EQ(t.request.attempt(), 1);
  std::lock_guard lock(sink_mu_);
  for (const grpc::Status& s : sink_statuses_) {
    // Only acks sent for a checkpoint that timed out before the fakes knew
    // their ids could be refused; nothing else.
    EXPECT_TRUE(s.ok() || s.error_code() == grpc::StatusCode::NOT_FOUND) << s.error_message();
  }
}

TEST_F(CoordinatorServerTest, CheckpointAcknowledgementsAreCheckedAndMappedToGrpcCodes) {
  EnableCheckpoints(/*interval_ms=*/100, /*timeout_ms=*/20000, /*tolerable=*/100);
  StartServer();
  FakeTaskControl& w = AddFakeWorker();
  ASSERT_TRUE(Eventually([&] { return !w.triggers().empty(); }));
  const v1::TriggerCheckpointRequest trigger = w.triggers()[0].request;
  auto ack = [&](const v1::AcknowledgeCheckpointRequest& request) {
    grpc::ClientContext ctx;
    v1::AcknowledgeCheckpointResponse response;
    return stub_->AcknowledgeCheckpoint(&ctx, request, &response);
  };
  v1::AcknowledgeCheckpointRequest stale = w.MakeAck(trigger);
  stale.set_checkpoint_id(trigger.checkpoint_id() + 100);
  EXPECT_EQ(ack(stale).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::AcknowledgeCheckpointRequest foreign = w.MakeAck(trigger);
  foreign.set_worker_id("somebody-else");
  foreign.mutable_snapshot()->clear_worker_id();
  EXPECT_EQ(ack(foreign).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(ack(w.MakeAck(trigger)).ok());
  const v1::JobStatus job = WaitForJob([](const v1::JobStatus& j) { return j.checkpoints().completed() >= 1; });
  EXPECT_EQ(job.checkpoints().latest_completed().id(), trigger.checkpoint_id());
}

TEST_F(CoordinatorServerTest, CheckpointRpcsWithoutCheckpointingAreRefused) {
  StartServer();
  grpc::ClientContext ctx;
  v1::AcknowledgeCheckpointResponse response;
  v1::AcknowledgeCheckpointRequest request;
  request.set_checkpoint_id(1);
  EXPECT_EQ(stub_->AcknowledgeCheckpoint(&ctx, request, &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(GetJob().checkpoints().completed(), 0);
}

// execution.checkpointing.tolerable-failed-checkpoints=0: the first declined
// checkpoint fails the attempt, whose workers are then told to cancel it.
TEST_F(CoordinatorServerTest, FailedCheckpointBeyondTolerableFailsTheAttempt) {
  EnableCheckpoints(/*interval_ms=*/100, /*timeout_ms=*/20000, /*tolerable=*/0);
  restart_.fixed_delay_ms = 60000;  // no attempt 2 during the test
  StartServer();
  FakeTaskControl& w = AddFakeWorker();
  w.set_reply(FakeTaskControl::Reply::kDecline);
  const v1::JobStatus job = WaitForJob([](const v1::JobStatus& j) { return j.state() == "RESTARTING"; });
  ASSERT_EQ(job.state(), "RESTARTING");
  EXPECT_NE(job.failure_cause().find("tolerable"), std::string::npos) << job.failure_cause();
  EXPECT_NE(job.failure_cause().find("disk full"), std::string::npos) << job.failure_cause();
  EXPECT_EQ(job.failures(), 1);
  EXPECT_EQ(job.checkpoints().failed(), 1);
  const v1::HeartbeatResponse beat = Beat(w.worker_id());
  EXPECT_TRUE(beat.known());
  EXPECT_FALSE(beat.has_assignment());
  EXPECT_NE(beat.reason().find("tolerable"), std::string::npos) << beat.reason();
}

// A worker of the attempt failing aborts the checkpoint in progress and
// nothing is triggered until the next attempt.
TEST_F(CoordinatorServerTest, EndOfTheAttemptAbortsItsPendingCheckpoint) {
  UseManualClock();
  EnableCheckpoints(/*interval_ms=*/100, /*timeout_ms=*/20000, /*tolerable=*/0);
  StartServer(10000, 4, /*min_workers=*/2);
  FakeTaskControl& a = AddFakeWorker();
  FakeTaskControl& b = AddFakeWorker();
  a.set_reply(FakeTaskControl::Reply::kSilent);
  b.set_reply(FakeTaskControl::Reply::kSilent);
  AdvanceAndTick(99);
  EXPECT_TRUE(a.triggers().empty()) << "one interval is not over";
  AdvanceAndTick(1);
  ASSERT_EQ(a.triggers().size(), 1u);
  ASSERT_EQ(b.triggers().size(), 1u);
  const int64_t id = a.triggers()[0].request.checkpoint_id();
  Deregister(b.worker_id(), "the source failed");
  Tick();  // the checkpoint coordinator sends the aborts
  EXPECT_TRUE(Eventually([&] { return a.WasAborted(id); }));
  const v1::JobStatus job = GetJob();
  EXPECT_EQ(job.checkpoints().failed(), 1);
  EXPECT_EQ(job.checkpoints().in_progress(), 0);
  EXPECT_EQ(job.state(), "RESTARTING");
  EXPECT_NE(job.failure_cause().find("the source failed"), std::string::npos) << job.failure_cause();
  for (int i = 0; i < 10; ++i) AdvanceAndTick(100);
  EXPECT_EQ(a.triggers().size(), 1u) << "nothing is triggered until the next attempt";
}

}  // namespace
}  // namespace slipstream
