// CheckpointCoordinator against in-process fake workers (real gRPC TaskControl
// servers on free ports): periodic triggers, completion and _metadata,
// retention, timeouts, declines, failed triggers, the tolerable-failure
// threshold, restarts on the same job directory, stale acknowledgements and
// the end of an attempt.
//
// Tests about exact times run on a ManualClock and drive the coordinator
// with Tick() (background_thread=false): no sleeps, exact boundaries. The
// others use the internal thread with intervals of 10-100 ms; every wait
// polls with a generous deadline so a loaded machine only makes them slower.
#include "coordinator/checkpoint/checkpoint_coordinator.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "tests/coordinator/checkpoint_dirs.h"
#include "tests/coordinator/fake_task_control.h"

namespace slipstream {
namespace {

namespace fs = std::filesystem;
using test_support::Eventually;
using test_support::FakeTaskControl;
using Reply = FakeTaskControl::Reply;

constexpr char kJobId[] = "0123456789abcdef0123456789abcdef";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Failure {
  int64_t attempt;
  std::string cause;
};

class CheckpointCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::temp_directory_path() / absl::StrCat("slipstream-ckpt-test-", ::getpid(), "-", info->name());
    fs::remove_all(root_);
    job_dir_ = root_ / kJobId;
  }

  void TearDown() override {
    for (auto& w : workers_) w->Shutdown();
    ResetCoordinator();
    workers_.clear();
    fs::remove_all(root_);
  }

  // `n` fake workers splitting 128 key groups; they acknowledge into the
  // coordinator (whichever is current).
  void AddWorkers(int n) {
    for (int i = 0; i < n; ++i) {
      const int first = 128 * i / n;
      const int last = 128 * (i + 1) / n - 1;
      auto w = std::make_unique<FakeTaskControl>(absl::StrCat("worker-", i), first, last);
      w->set_sink(
          [this](const v1::AcknowledgeCheckpointRequest& ack) {
            std::lock_guard lock(coordinator_mu_);
            if (coordinator_) acks_status_.push_back(coordinator_->Acknowledge(ack));
          },
          [this](const v1::DeclineCheckpointRequest& decline) {
            std::lock_guard lock(coordinator_mu_);
            if (coordinator_) acks_status_.push_back(coordinator_->Decline(decline));
          });
      workers_.push_back(std::move(w));
    }
  }

  static CheckpointSettings Settings(int64_t interval_ms, int64_t timeout_ms = 10000, int64_t tolerable = 100,
                                     int retained = 1) {
    CheckpointSettings s;
    s.interval_ms = interval_ms;
    s.timeout_ms = timeout_ms;
    s.tolerable_failed = tolerable;
    s.num_retained = retained;
    s.exactly_once = true;
    s.rpc_timeout_ms = 3000;
    return s;
  }

  void StartCoordinator(const CheckpointSettings& settings, TaskControlStubFactory make_stub = nullptr) {
    CheckpointCoordinatorOptions options;
    options.settings = settings;
    if (manual_clock_ != nullptr) {
      options.clock = manual_clock_.get();
      options.background_thread = false;
    }
    options.job_dir = job_dir_.string();
    options.job_id = kJobId;
    options.topic = "events";
    options.max_parallelism = 128;
    options.make_stub = std::move(make_stub);
    options.on_failure = [this](int64_t attempt, const std::string& cause) {
      std::lock_guard lock(failures_mu_);
      failures_.push_back({attempt, cause});
    };
    absl::StatusOr<std::unique_ptr<CheckpointCoordinator>> c = CheckpointCoordinator::Start(std::move(options));
    ASSERT_TRUE(c.ok()) << c.status();
    std::lock_guard lock(coordinator_mu_);
    coordinator_ = *std::move(c);
  }

  void ResetCoordinator() {
    std::unique_ptr<CheckpointCoordinator> old;
    {
      std::lock_guard lock(coordinator_mu_);
      old = std::move(coordinator_);
    }
    old.reset();  // outside the lock: its RPCs to the fakes may be in flight
  }

  CheckpointCoordinator& coordinator() { return *coordinator_; }

  // Time the test drives: set before StartCoordinator; the coordinator then
  // moves only on Tick.
  void UseManualClock() { manual_clock_ = std::make_unique<ManualClock>(); }
  void AdvanceAndTick(int64_t ms) {
    manual_clock_->AdvanceMs(ms);
    coordinator_->Tick();
  }

  std::vector<v1::PeerEndpoint> Endpoints() const {
    std::vector<v1::PeerEndpoint> out;
    for (size_t i = 0; i < workers_.size(); ++i) out.push_back(workers_[i]->Endpoint(static_cast<int>(i)));
    return out;
  }

  void Deploy(int64_t attempt) { coordinator_->OnAttemptDeployed(attempt, Endpoints(), 4); }

  v1::CheckpointOverview Overview() {
    v1::CheckpointOverview o;
    coordinator_->FillOverview(&o);
    return o;
  }

  std::vector<Failure> Failures() {
    std::lock_guard lock(failures_mu_);
    return failures_;
  }

  std::vector<int64_t> CheckpointDirs() const { return test_support::CheckpointIdsOnDisk(job_dir_); }

  fs::path ChkDir(int64_t id) const { return job_dir_ / absl::StrCat("chk-", id); }

  static v1::CheckpointMetadata ReadMetadata(const fs::path& dir) {
    std::ifstream in(dir / "_metadata");
    std::stringstream text;
    text << in.rdbuf();
    v1::CheckpointMetadata m;
    const auto status = google::protobuf::util::JsonStringToMessage(text.str(), &m);
    EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << text.str();
    return m;
  }

  // Checkpoint ids the worker was asked to trigger, in order.
  static std::vector<int64_t> TriggeredIds(const FakeTaskControl& w) {
    std::vector<int64_t> ids;
    for (const auto& t : w.triggers()) ids.push_back(t.request.checkpoint_id());
    return ids;
  }

  const v1::CheckpointStats* FindStats(const v1::CheckpointOverview& o, int64_t id) {
    for (const auto& s : o.history()) {
      if (s.id() == id) return &s;
    }
    return nullptr;
  }

  fs::path root_;
  fs::path job_dir_;
  std::unique_ptr<ManualClock> manual_clock_;
  std::vector<std::unique_ptr<FakeTaskControl>> workers_;
  std::mutex coordinator_mu_;
  std::unique_ptr<CheckpointCoordinator> coordinator_;
  std::vector<absl::Status> acks_status_;
  std::mutex failures_mu_;
  std::vector<Failure> failures_;
};

// On the test's clock: the first trigger exactly one interval after the
// deployment, then one per interval.
TEST_F(CheckpointCoordinatorTest, TriggersEveryIntervalWithIncreasingIds) {
  UseManualClock();
  AddWorkers(2);
  StartCoordinator(Settings(/*interval_ms=*/100));
  const int64_t deployed_ms = manual_clock_->WallMs();
  Deploy(1);
  AdvanceAndTick(99);
  EXPECT_TRUE(workers_[0]->triggers().empty()) << "one interval is not over";
  AdvanceAndTick(1);
  EXPECT_EQ(Overview().completed(), 1) << "acknowledged during the trigger: completed in the same tick";
  AdvanceAndTick(100);
  AdvanceAndTick(100);
  EXPECT_EQ(Overview().completed(), 3) << Overview().DebugString();
  for (const auto& w : workers_) {
    const std::vector<FakeTaskControl::Trigger> triggers = w->triggers();
    ASSERT_EQ(triggers.size(), 3u);
    for (size_t i = 0; i < triggers.size(); ++i) {
      const v1::TriggerCheckpointRequest& t = triggers[i].request;
      EXPECT_EQ(t.checkpoint_id(), static_cast<int64_t>(i + 1));
      EXPECT_EQ(t.job_id(), kJobId);
      EXPECT_EQ(t.attempt(), 1);
      EXPECT_TRUE(t.exactly_once());
      EXPECT_EQ(t.target_dir(), ChkDir(t.checkpoint_id()).string());
      EXPECT_TRUE(fs::path(t.target_dir()).is_absolute());
      EXPECT_EQ(t.timestamp_ms(), deployed_ms + 100 * static_cast<int64_t>(i + 1));
    }
  }
  {
    std::lock_guard lock(coordinator_mu_);
    for (const absl::Status& s : acks_status_) EXPECT_TRUE(s.ok()) << s;
  }
  EXPECT_TRUE(Failures().empty());
}

// The same schedule on the internal thread and the real clock.
TEST_F(CheckpointCoordinatorTest, TheInternalThreadTriggersEveryInterval) {
  AddWorkers(2);
  StartCoordinator(Settings(/*interval_ms=*/100));
  const int64_t deployed_ms = NowMs();
  Deploy(1);
  ASSERT_TRUE(Eventually([&] { return Overview().completed() >= 3; })) << Overview().DebugString();
  const std::vector<FakeTaskControl::Trigger> triggers = workers_[0]->triggers();
  ASSERT_GE(triggers.size(), 3u);
  // The coordinator's trigger times: delivery may be late on a busy machine.
  EXPECT_GE(triggers[0].request.timestamp_ms() - deployed_ms, 95);
  for (size_t i = 0; i < triggers.size(); ++i) {
    EXPECT_EQ(triggers[i].request.checkpoint_id(), static_cast<int64_t>(i + 1));
    if (i > 0) {
      EXPECT_GE(triggers[i].request.timestamp_ms() - triggers[i - 1].request.timestamp_ms(), 95);
    }
  }
  coordinator().Tick();  // does nothing while the thread drives
  EXPECT_TRUE(Failures().empty());
}

TEST_F(CheckpointCoordinatorTest, MinPauseSpacesCheckpointsFromTheEndOfThePreviousOne) {
  UseManualClock();
  AddWorkers(1);
  CheckpointSettings settings = Settings(/*interval_ms=*/50);
  settings.min_pause_ms = 250;
  StartCoordinator(settings);
  Deploy(1);
  AdvanceAndTick(50);
  ASSERT_EQ(workers_[0]->triggers().size(), 1u);
  ASSERT_EQ(Overview().completed(), 1);  // ended at once: the pause starts now
  AdvanceAndTick(249);
  EXPECT_EQ(workers_[0]->triggers().size(), 1u) << "min-pause is not over, though the interval is";
  AdvanceAndTick(1);
  const auto triggers = workers_[0]->triggers();
  ASSERT_EQ(triggers.size(), 2u);
  EXPECT_EQ(triggers[1].request.timestamp_ms() - triggers[0].request.timestamp_ms(), 250);
}

TEST_F(CheckpointCoordinatorTest, CompletionWritesMetadataWithEveryWorkersSnapshot) {
  AddWorkers(3);
  StartCoordinator(Settings(/*interval_ms=*/100, 10000, 100, /*retained=*/10));
  Deploy(1);
  ASSERT_TRUE(Eventually([&] { return Overview().completed() >= 1; }));
  ASSERT_TRUE(fs::exists(ChkDir(1) / "_metadata"));
  EXPECT_FALSE(fs::exists(ChkDir(1) / "_metadata.tmp"));
  const v1::CheckpointMetadata m = ReadMetadata(ChkDir(1));
  EXPECT_EQ(m.job_id(), kJobId);
  EXPECT_EQ(m.checkpoint_id(), 1);
  EXPECT_EQ(m.attempt(), 1);
  EXPECT_EQ(m.topic(), "events");
  EXPECT_EQ(m.max_parallelism(), 128);
  EXPECT_EQ(m.num_partitions(), 4);
  EXPECT_FALSE(m.savepoint());
  EXPECT_GT(m.trigger_time_ms(), 0);
  EXPECT_GE(m.completion_time_ms(), m.trigger_time_ms());
  ASSERT_EQ(m.workers_size(), 3);
  for (int i = 0; i < 3; ++i) {
    // In worker index order, exactly what each worker acknowledged.
    v1::TriggerCheckpointRequest trigger;
    trigger.set_job_id(kJobId);
    trigger.set_attempt(1);
    trigger.set_checkpoint_id(1);
    const v1::WorkerSnapshot expected = workers_[i]->MakeAck(trigger).snapshot();
    EXPECT_EQ(m.workers(i).SerializeAsString(), expected.SerializeAsString())
        << m.workers(i).DebugString() << " vs " << expected.DebugString();
  }
  // Every worker hears that checkpoint 1 is complete.
  for (const auto& w : workers_) {
    EXPECT_TRUE(Eventually([&] {
      for (const auto& c : w->completions()) {
        if (c.checkpoint_id() == 1 && c.attempt() == 1 && c.job_id() == kJobId) return true;
      }
      return false;
    }));
  }
  const std::optional<CompletedCheckpoint> latest = coordinator().LatestCompleted();
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->metadata.SerializeAsString(), ReadMetadata(latest->path).SerializeAsString());
  const v1::CheckpointOverview o = Overview();
  EXPECT_EQ(o.restored(), 0);
  EXPECT_EQ(o.failed(), 0);
  const v1::CheckpointStats* first = FindStats(o, 1);
  ASSERT_NE(first, nullptr) << o.DebugString();
  EXPECT_EQ(first->status(), "COMPLETED");
  EXPECT_EQ(first->acknowledged(), 3);
  EXPECT_EQ(first->expected(), 3);
  EXPECT_EQ(first->state_bytes(), 1000 + 1042 + 1085);
  EXPECT_EQ(first->alignment_ms(), 1 + 85);  // max over workers
  EXPECT_EQ(first->path(), ChkDir(1).string());
  EXPECT_GE(o.latest_completed().id(), 1);
}

TEST_F(CheckpointCoordinatorTest, RetentionKeepsTheNewestNumRetainedCheckpoints) {
  AddWorkers(2);
  StartCoordinator(Settings(/*interval_ms=*/50, 10000, 100, /*retained=*/2));
  Deploy(1);
  ASSERT_TRUE(Eventually([&] { return Overview().completed() >= 5; }));
  coordinator().Stop();  // abandons (removes) a checkpoint in progress
  const int64_t latest = coordinator().LatestCompleted()->metadata.checkpoint_id();
  EXPECT_EQ(CheckpointDirs(), (std::vector<int64_t>{latest - 1, latest}));
  EXPECT_TRUE(fs::exists(ChkDir(latest - 1) / "_metadata"));
  EXPECT_TRUE(fs::exists(ChkDir(latest) / "_metadata"));
}

TEST_F(CheckpointCoordinatorTest, HistoryIsBoundedAndNewestFirst) {
  AddWorkers(1);
  StartCoordinator(Settings(/*interval_ms=*/10));
  Deploy(1);
  ASSERT_TRUE(Eventually([&] { return Overview().completed() >= 25; }));
  const v1::CheckpointOverview o = Overview();
  EXPECT_EQ(o.history_size(), 20);
  for (int i = 1; i < o.history_size(); ++i) EXPECT_GT(o.history(i - 1).id(), o.history(i).id());
}

TEST_F(CheckpointCoordinatorTest, SilentWorkerTimesTheCheckpointOutThenTheNextSucceeds) {
  UseManualClock();
  AddWorkers(2);
  workers_[1]->set_policy([](int64_t id) { return id == 1 ? Reply::kSilent : Reply::kAck; });
  StartCoordinator(Settings(/*interval_ms=*/100, /*timeout_ms=*/300, /*tolerable=*/5));
  Deploy(1);
  AdvanceAndTick(100);  // checkpoint 1
  AdvanceAndTick(299);
  EXPECT_EQ(Overview().failed(), 0) << "not expired a millisecond before the timeout";
  EXPECT_EQ(Overview().in_progress(), 1);
  EXPECT_EQ(workers_[0]->triggers().size(), 1u) << "one checkpoint at a time";
  AdvanceAndTick(1);
  v1::CheckpointOverview o = Overview();
  EXPECT_EQ(o.failed(), 1);
  const v1::CheckpointStats* failed = FindStats(o, 1);
  ASSERT_NE(failed, nullptr) << o.DebugString();
  EXPECT_EQ(failed->status(), "FAILED");
  EXPECT_NE(failed->failure_reason().find("expired"), std::string::npos) << failed->failure_reason();
  EXPECT_NE(failed->failure_reason().find("worker-1"), std::string::npos) << failed->failure_reason();
  EXPECT_EQ(failed->acknowledged(), 1);
  EXPECT_EQ(failed->end_to_end_ms(), 300);
  EXPECT_FALSE(fs::exists(ChkDir(1)));
  for (const auto& w : workers_) EXPECT_TRUE(Eventually([&] { return w->WasAborted(1); }));

  // The interval is long over: the next checkpoint starts in the same tick.
  EXPECT_EQ(o.completed(), 1);
  EXPECT_EQ(coordinator().LatestCompleted()->metadata.checkpoint_id(), 2);
  EXPECT_TRUE(Failures().empty());
}

TEST_F(CheckpointCoordinatorTest, DeclineAbortsTheCheckpoint) {
  AddWorkers(2);
  workers_[1]->set_reply(Reply::kDecline);
  StartCoordinator(Settings(/*interval_ms=*/100, 10000, /*tolerable=*/5));
  Deploy(1);
  ASSERT_TRUE(Eventually([&] { return Overview().failed() >= 1; }));
  const v1::CheckpointOverview o = Overview();
  const v1::CheckpointStats* failed = FindStats(o, 1);
  ASSERT_NE(failed, nullptr) << o.DebugString();
  EXPECT_EQ(failed->status(), "FAILED");
  EXPECT_NE(failed->failure_reason().find("worker-1 declined"), std::string::npos) << failed->failure_reason();
  EXPECT_NE(failed->failure_reason().find("disk full"), std::string::npos) << failed->failure_reason();
  EXPECT_EQ(o.completed(), 0);
  for (const auto& w : workers_) EXPECT_TRUE(Eventually([&] { return w->WasAborted(1); }));
  EXPECT_TRUE(Eventually([&] { return !fs::exists(ChkDir(1)); }));
  EXPECT_FALSE(coordinator().LatestCompleted().has_value());
}

TEST_F(CheckpointCoordinatorTest, FailedTriggerRpcFailsTheCheckpoint) {
  AddWorkers(2);
  // Worker 1's endpoint leads nowhere (the stub factory is the test's).
  const std::string dead_target = absl::StrCat("127.0.0.1:", workers_[1]->port());
  workers_[1]->Shutdown();
  struct Targets {
    std::mutex mu;
    std::vector<std::string> seen;
  };
  auto targets = std::make_shared<Targets>();  // the coordinator outlives this scope
  StartCoordinator(Settings(/*interval_ms=*/100, 10000, /*tolerable=*/5),
                   [targets](const std::string& target) -> std::unique_ptr<v1::TaskControl::StubInterface> {
                     std::lock_guard lock(targets->mu);
                     targets->seen.push_back(target);
                     return MakeTaskControlStub(target);
                   });
  Deploy(1);
  ASSERT_TRUE(Eventually([&] { return Overview().failed() >= 1; }));
  const v1::CheckpointOverview overview = Overview();
  const v1::CheckpointStats* failed = FindStats(overview, 1);
  ASSERT_NE(failed, nullptr);
  EXPECT_NE(failed->failure_reason().find("worker-1"), std::string::npos) << failed->failure_reason();
  EXPECT_NE(failed->failure_reason().find("TriggerCheckpoint failed"), std::string::npos) << failed->failure_reason();
  EXPECT_TRUE(Eventually([&] { return workers_[0]->WasAborted(1); }));
  EXPECT_TRUE(Eventually([&] { return !fs::exists(ChkDir(1)); }));
  std::lock_guard lock(targets->mu);
  EXPECT_NE(std::find(targets->seen.begin(), targets->seen.end(), dead_target), targets->seen.end());
}

TEST_F(CheckpointCoordinatorTest, ExceedingTolerableFailuresFailsTheAttempt) {
  UseManualClock();
  AddWorkers(2);
  workers_[0]->set_reply(Reply::kDecline);
  StartCoordinator(Settings(/*interval_ms=*/50, 10000, /*tolerable=*/1));
  Deploy(1);
  AdvanceAndTick(50);
  EXPECT_EQ(Overview().failed(), 1);
  EXPECT_TRUE(Failures().empty()) << "one failure is tolerated";
  AdvanceAndTick(50);
  const std::vector<Failure> failures = Failures();
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].attempt, 1);
  EXPECT_NE(failures[0].cause.find("tolerable"), std::string::npos) << failures[0].cause;
  EXPECT_NE(failures[0].cause.find("disk full"), std::string::npos) << failures[0].cause;
  EXPECT_EQ(Overview().failed(), 2);  // one tolerated, the second one too many
  // Nothing more is triggered in the failing attempt.
  AdvanceAndTick(300);
  EXPECT_EQ(TriggeredIds(*workers_[1]), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(Failures().size(), 1u);
}

TEST_F(CheckpointCoordinatorTest, TasksNotRunningYetDoNotCountAsFailures) {
  // Just deployed: worker 0's task starts only after two triggers. With no
  // tolerable failure, counting them would fail the attempt (Flink: a
  // NOT_ALL_REQUIRED_TASKS_RUNNING checkpoint failure is not counted).
  AddWorkers(2);
  workers_[0]->set_policy([](int64_t id) { return id <= 2 ? Reply::kNotRunning : Reply::kAck; });
  StartCoordinator(Settings(/*interval_ms=*/50, 10000, /*tolerable=*/0));
  Deploy(1);
  ASSERT_TRUE(Eventually([&] { return Overview().completed() >= 1; }));
  EXPECT_TRUE(Failures().empty()) << Failures()[0].cause;
  const v1::CheckpointOverview overview = Overview();
  EXPECT_EQ(overview.failed(), 2);
  const v1::CheckpointStats* first = FindStats(overview, 1);
  ASSERT_NE(first, nullptr);
  EXPECT_NE(first->failure_reason().find("not all tasks are running"), std::string::npos) << first->failure_reason();
}

TEST_F(CheckpointCoordinatorTest, ACompletedCheckpointResetsTheFailureCount) {
  AddWorkers(2);
  // Odd checkpoints are declined, even ones complete: never two failures in a row.
  workers_[1]->set_policy([](int64_t id) { return id % 2 == 1 ? Reply::kDecline : Reply::kAck; });
  StartCoordinator(Settings(/*interval_ms=*/50, 10000, /*tolerable=*/1));
  Deploy(1);
  ASSERT_TRUE(Eventually([&] { return Overview().completed() >= 3 && Overview().failed() >= 3; }));
  EXPECT_TRUE(Failures().empty());
}

// A restarted coordinator continues after the largest chk-<n> on disk, and
// only a directory with _metadata counts as completed.
TEST_F(CheckpointCoordinatorTest, IdsContinueAfterARestartOnTheSameDirectory) {
  AddWorkers(2);
  StartCoordinator(Settings(/*interval_ms=*/100, 10000, 100, /*retained=*/5));
  Deploy(1);
  ASSERT_TRUE(Eventually([&] { return Overview().completed() >= 2; }));
  ResetCoordinator();
  std::vector<int64_t> completed;
  for (int64_t id : CheckpointDirs()) {
    if (fs::exists(ChkDir(id) / "_metadata")) completed.push_back(id);
  }
  ASSERT_GE(completed.size(), 2u);
  ASSERT_LT(completed.back(), 7);
  // An incomplete checkpoint left behind by a crash.
  fs::create_directories(ChkDir(7) / "worker-0");

  StartCoordinator(Settings(/*interval_ms=*/100, 10000, 100, /*retained=*/5));
  std::optional<CompletedCheckpoint> latest = coordinator().LatestCompleted();
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->metadata.checkpoint_id(), completed.back());
  EXPECT_EQ(latest->path, ChkDir(completed.back()).string());
  v1::CheckpointOverview o = Overview();
  EXPECT_EQ(o.latest_completed().id(), completed.back());
  EXPECT_EQ(o.completed(), 0);

  const size_t triggers_before = workers_[0]->triggers().size();
  Deploy(2);
  ASSERT_TRUE(Eventually([&] { return Overview().completed() >= 1; }));
  const auto triggers = workers_[0]->triggers();
  ASSERT_GT(triggers.size(), triggers_before);
  EXPECT_EQ(triggers[triggers_before].request.checkpoint_id(), 8);
  EXPECT_EQ(triggers[triggers_before].request.attempt(), 2);
  latest = coordinator().LatestCompleted();
  EXPECT_GE(latest->metadata.checkpoint_id(), 8);
  // The abandoned chk-7 is older than a completed checkpoint: deleted.
  EXPECT_FALSE(fs::exists(ChkDir(7)));
}

// CancelJob reports the latest completed checkpoint as retained. A
// checkpoint every worker acknowledged but not yet written when the job ends
// must not complete afterwards: with num-retained=1 it would delete the
// retained one (found by a coordinator test under load).
TEST_F(CheckpointCoordinatorTest, ACheckpointAcknowledgedWhenTheJobEndsDoesNotReplaceTheRetainedOne) {
  UseManualClock();
  AddWorkers(2);
  StartCoordinator(Settings(/*interval_ms=*/100));
  Deploy(1);
  AdvanceAndTick(100);
  ASSERT_EQ(Overview().completed(), 1);
  const std::optional<CompletedCheckpoint> retained = coordinator().LatestCompleted();
  ASSERT_TRUE(retained.has_value());
  for (auto& w : workers_) w->set_reply(Reply::kSilent);
  AdvanceAndTick(100);  // checkpoint 2 triggered; nobody answers yet
  const v1::TriggerCheckpointRequest trigger = workers_[0]->triggers().back().request;
  ASSERT_EQ(trigger.checkpoint_id(), 2);
  EXPECT_TRUE(coordinator().Acknowledge(workers_[0]->MakeAck(trigger)).ok());
  EXPECT_TRUE(coordinator().Acknowledge(workers_[1]->MakeAck(trigger)).ok());
  coordinator().OnJobTerminated("job canceled", /*delete_checkpoints=*/false);  // before a tick completes it
  AdvanceAndTick(100);
  EXPECT_EQ(Overview().completed(), 1) << Overview().DebugString();
  ASSERT_TRUE(coordinator().LatestCompleted().has_value());
  EXPECT_EQ(coordinator().LatestCompleted()->path, retained->path);
  EXPECT_TRUE(fs::exists(fs::path(retained->path) / "_metadata"));
  EXPECT_FALSE(fs::exists(ChkDir(2) / "_metadata"));
}

TEST_F(CheckpointCoordinatorTest, StaleOrForeignAcknowledgementsAreRejected) {
  AddWorkers(2);
  for (auto& w : workers_) w->set_reply(Reply::kSilent);
  StartCoordinator(Settings(/*interval_ms=*/100, 20000, 100));
  Deploy(1);
  ASSERT_TRUE(Eventually([&] { return workers_[0]->triggers().size() == 1 && workers_[1]->triggers().size() == 1; }));
  const v1::TriggerCheckpointRequest trigger = workers_[0]->triggers()[0].request;
  const v1::AcknowledgeCheckpointRequest good0 = workers_[0]->MakeAck(trigger);
  const v1::AcknowledgeCheckpointRequest good1 = workers_[1]->MakeAck(trigger);

  v1::AcknowledgeCheckpointRequest ack = good0;
  ack.set_attempt(2);
  EXPECT_TRUE(absl::IsNotFound(coordinator().Acknowledge(ack)));
  ack = good0;
  ack.set_attempt(0);
  EXPECT_TRUE(absl::IsNotFound(coordinator().Acknowledge(ack)));
  ack = good0;
  ack.set_checkpoint_id(99);
  EXPECT_TRUE(absl::IsNotFound(coordinator().Acknowledge(ack)));
  ack = good0;
  ack.set_worker_id("somebody-else");
  ack.mutable_snapshot()->set_worker_id("somebody-else");
  EXPECT_TRUE(absl::IsInvalidArgument(coordinator().Acknowledge(ack)));
  ack = good0;
  ack.set_job_id("ffffffffffffffffffffffffffffffff");
  EXPECT_TRUE(absl::IsInvalidArgument(coordinator().Acknowledge(ack)));
  ack = good0;
  ack.mutable_snapshot()->mutable_key_groups()->set_last(127);  // not its range
  EXPECT_TRUE(absl::IsInvalidArgument(coordinator().Acknowledge(ack)));
  ack = good0;
  ack.mutable_snapshot()->set_worker_id("worker-1");  // someone else's snapshot
  EXPECT_TRUE(absl::IsInvalidArgument(coordinator().Acknowledge(ack)));
  v1::DeclineCheckpointRequest decline;
  decline.set_worker_id("worker-0");
  decline.set_job_id(kJobId);
  decline.set_attempt(1);
  decline.set_checkpoint_id(99);
  EXPECT_TRUE(absl::IsNotFound(coordinator().Decline(decline)));
  EXPECT_EQ(Overview().failed(), 0);
  EXPECT_EQ(Overview().in_progress(), 1);

  EXPECT_TRUE(coordinator().Acknowledge(good0).ok());
  EXPECT_TRUE(coordinator().Acknowledge(good0).ok()) << "a retried ack is harmless";
  decline.set_checkpoint_id(1);
  EXPECT_TRUE(absl::IsFailedPrecondition(coordinator().Decline(decline))) << "worker-0 acknowledged already";
  const v1::CheckpointStats in_progress = Overview().history(0);
  EXPECT_EQ(in_progress.status(), "IN_PROGRESS");
  EXPECT_EQ(in_progress.acknowledged(), 1);
  EXPECT_EQ(in_progress.expected(), 2);
  EXPECT_TRUE(coordinator().Acknowledge(good1).ok());
  ASSERT_TRUE(Eventually([&] { return Overview().completed() == 1; }));
  EXPECT_TRUE(absl::IsNotFound(coordinator().Acknowledge(good1))) << "checkpoint 1 is complete";

  // A new attempt: acknowledgements of the old one are stale.
  coordinator().OnAttemptEnded(1, "worker lost");
  Deploy(2);
  v1::TriggerCheckpointRequest second;
  ASSERT_TRUE(Eventually([&] {
    for (const auto& t : workers_[0]->triggers()) {
      if (t.request.attempt() == 2) {
        second = t.request;
        return true;
      }
    }
    return false;
  }));
  EXPECT_GT(second.checkpoint_id(), 1);
  ack = workers_[0]->MakeAck(second);
  ack.set_attempt(1);
  EXPECT_TRUE(absl::IsNotFound(coordinator().Acknowledge(ack)));
  EXPECT_TRUE(coordinator().Acknowledge(workers_[0]->MakeAck(second)).ok());
}

TEST_F(CheckpointCoordinatorTest, EndingTheAttemptAbortsThePendingCheckpointAndStopsTriggering) {
  UseManualClock();
  AddWorkers(2);
  for (auto& w : workers_) w->set_reply(Reply::kSilent);
  StartCoordinator(Settings(/*interval_ms=*/100, 20000, /*tolerable=*/0));
  Deploy(1);
  AdvanceAndTick(100);
  ASSERT_EQ(workers_[1]->triggers().size(), 1u);
  coordinator().OnAttemptEnded(1, "worker worker-1 lost");
  coordinator().Tick();
  EXPECT_FALSE(fs::exists(ChkDir(1)));
  for (const auto& w : workers_) {
    EXPECT_TRUE(Eventually([&] { return w->WasAborted(1); }));
    EXPECT_TRUE(Eventually([&] { return w->WasCancelled(1); })) << "told to stop at once";
  }
  const v1::CheckpointOverview overview = Overview();
  const v1::CheckpointStats* failed = FindStats(overview, 1);
  ASSERT_NE(failed, nullptr);
  EXPECT_NE(failed->failure_reason().find("attempt 1 ended: worker worker-1 lost"), std::string::npos)
      << failed->failure_reason();
  EXPECT_EQ(Overview().in_progress(), 0);
  // Not a checkpoint failure in the sense of tolerable-failed-checkpoints=0.
  EXPECT_TRUE(Failures().empty());
  AdvanceAndTick(350);
  EXPECT_EQ(workers_[0]->triggers().size(), 1u) << "no checkpoints between attempts";

  for (auto& w : workers_) w->set_reply(Reply::kAck);
  Deploy(2);
  AdvanceAndTick(100);
  EXPECT_EQ(Overview().completed(), 1);
  const CompletedCheckpoint latest = *coordinator().LatestCompleted();
  EXPECT_EQ(latest.metadata.attempt(), 2);
  EXPECT_EQ(latest.metadata.checkpoint_id(), 2);
}

// The failed attempt's checkpoint 2 was acknowledged by every worker but not
// yet written when attempt 2 was deployed restoring checkpoint 1: checkpoint
// 2 still completes, but with state.checkpoints.num-retained=1 it must not
// delete checkpoint 1, which attempt 2's workers are reading. The first
// checkpoint of attempt 2 subsumes both.
TEST_F(CheckpointCoordinatorTest, TheRestoredCheckpointOutlivesLateCheckpointsOfTheFailedAttempt) {
  AddWorkers(2);
  std::mutex hold_mu;
  std::condition_variable hold_cv;
  bool released = false;
  auto release = [&] {
    std::lock_guard lock(hold_mu);
    released = true;
    hold_cv.notify_all();
  };
  struct Releaser {
    std::function<void()> f;
    ~Releaser() { f(); }
  } releaser{release};
  for (auto& w : workers_) {
    w->set_after_reply([&](int64_t id) {
      if (id != 2) return;
      std::unique_lock lock(hold_mu);
      hold_cv.wait(lock, [&] { return released; });
    });
  }
  StartCoordinator(Settings(/*interval_ms=*/100, 10000, 100, /*retained=*/1));
  Deploy(1);
  // Checkpoint 2 is in progress with both acknowledgements in.
  ASSERT_TRUE(Eventually([&] {
    const v1::CheckpointOverview o = Overview();
    const v1::CheckpointStats* two = FindStats(o, 2);
    return two != nullptr && two->status() == "IN_PROGRESS" && two->acknowledged() == 2;
  })) << Overview().DebugString();
  ASSERT_TRUE(fs::exists(ChkDir(1) / "_metadata"));
  coordinator().OnAttemptEnded(1, "worker lost");
  coordinator().OnAttemptDeployed(2, Endpoints(), 4, ChkDir(1).string());
  release();
  ASSERT_TRUE(Eventually([&] { return coordinator().LatestCompleted()->metadata.checkpoint_id() >= 2; }));
  EXPECT_EQ(coordinator().LatestCompleted()->metadata.attempt(), 1);
  EXPECT_TRUE(fs::exists(ChkDir(1) / "_metadata")) << "the restored checkpoint was deleted";
  ASSERT_TRUE(Eventually([&] { return coordinator().LatestCompleted()->metadata.attempt() == 2; }));
  coordinator().Stop();
  EXPECT_EQ(CheckpointDirs(), (std::vector<int64_t>{coordinator().LatestCompleted()->metadata.checkpoint_id()}));
}

TEST_F(CheckpointCoordinatorTest, AtLeastOnceModeIsPassedToTheWorkers) {
  AddWorkers(1);
  CheckpointSettings settings = Settings(/*interval_ms=*/50);
  settings.exactly_once = false;
  StartCoordinator(settings);
  Deploy(1);
  ASSERT_TRUE(Eventually([&] { return !workers_[0]->triggers().empty(); }));
  EXPECT_FALSE(workers_[0]->triggers()[0].request.exactly_once());
}

TEST_F(CheckpointCoordinatorTest, UnusableDirectoryIsAnErrorNamingTheKey) {
  CheckpointCoordinatorOptions options;
  options.job_dir = "/proc/slipstream-cannot-create-this/job";
  options.job_id = kJobId;
  absl::StatusOr<std::unique_ptr<CheckpointCoordinator>> c = CheckpointCoordinator::Start(options);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string(c.status().message()).find("state.checkpoints.dir"), std::string::npos) << c.status();
}

}  // namespace
}  // namespace slipstream
