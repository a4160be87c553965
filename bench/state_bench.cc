// slipstream-bench-state: the phases of a checkpoint and a restore of the
// window state, without Kafka or Redis, at a given number of users:
//   build      N users' events into a WindowEngine (one event per user per
//              step, `--events-per-user` steps, 1 min apart)
//   sync       WindowEngine::BeginSnapshot (the synchronous pause)
//   write      Commit() steps until the snapshot's round is in RocksDB
//   upload     StateSnapshot::WriteKeyGroups (the SST file of the range)
//   ingest     StateStore::IngestKeyGroups into a fresh store (restore)
//   rebuild    WindowEngine::Restore (the working copy back in memory)
// Prints one line per phase with its time and throughput.
//   slipstream-bench-state --users 1000000 [--events-per-user 3] [--dir /dev/shm/...]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "CLI/CLI.hpp"
#include "common/event.h"
#include "common/key_groups.h"
#include "worker/state/state_store.h"
#include "worker/window/window_engine.h"

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point begin) {
  return std::chrono::duration<double>(Clock::now() - begin).count();
}

void Report(const char* phase, double seconds, int64_t items, const char* unit) {
  std::printf("%-8s %10.3f s  %12lld %s  %12.0f %s/s\n", phase, seconds, static_cast<long long>(items), unit,
              seconds > 0 ? static_cast<double>(items) / seconds : 0.0, unit);
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "slipstream-bench-state: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"slipstream-bench-state: checkpoint and restore phases of the window state"};
  int64_t users = 1000000;
  int events_per_user = 3;
  std::string dir = "/dev/shm/slipstream-bench-state";
  app.add_option("--users", users, "distinct users")->check(CLI::PositiveNumber);
  app.add_option("--events-per-user", events_per_user, "events per user, 1 min apart")->check(CLI::PositiveNumber);
  app.add_option("--dir", dir, "scratch directory (wiped)");
  CLI11_PARSE(app, argc, argv);
  namespace sl = slipstream;
  constexpr int kMaxParallelism = 128;
  const sl::KeyGroupRange all{0, kMaxParallelism - 1};
  std::filesystem::remove_all(dir);
  int status = 0;
  {
    auto store = sl::StateStore::Open(dir + "/db", sl::StateStoreOptions{});
    if (!store.ok()) return Fail(std::string(store.status().message()));
    auto engine = std::make_unique<sl::WindowEngine>(store->get(), all);
    sl::Event event;
    event.type = sl::EventType::kView;
    event.price = 12.5;
    const int64_t t0 = 1'700'000'000'000;
    auto begin = Clock::now();
    int64_t events = 0;
    for (int step = 0; step < events_per_user; ++step) {
      for (int64_t u = 0; u < users; ++u) {
        event.user_id = "user-" + std::to_string(u);
        event.event_time_ms = t0 + step * 60'000 + u % 60'000;
        if (!engine->ProcessEvent(sl::KeyGroupForKey(event.user_id, kMaxParallelism), event).ok()) {
          return Fail("ProcessEvent failed");
        }
        ++events;
        if (events % 2048 == 0 && !engine->Commit().ok()) return Fail("Commit failed");
      }
    }
    Report("build", SecondsSince(begin), events, "events");

    begin = Clock::now();
    engine->BeginSnapshot();
    Report("sync", SecondsSince(begin), engine->stats().users, "users");

    begin = Clock::now();
    std::unique_ptr<sl::StateSnapshot> snapshot;
    int64_t steps = 0;
    while (!snapshot) {
      if (!engine->Commit().ok()) return Fail("Commit failed");
      snapshot = engine->TakeSnapshot();
      ++steps;
    }
    Report("write", SecondsSince(begin), steps, "steps");

    begin = Clock::now();
    const std::string file = dir + "/kg-0-127.sst";
    absl::StatusOr<sl::SnapshotFileInfo> written = snapshot->WriteKeyGroups(file, all);
    if (!written.ok()) return Fail(std::string(written.status().message()));
    Report("upload", SecondsSince(begin), written->keys, "keys");
    std::printf("         %lld bytes in %s\n", static_cast<long long>(written->bytes), file.c_str());
    snapshot.reset();
    engine.reset();
    store->reset();

    auto restored_store = sl::StateStore::Open(dir + "/restored", sl::StateStoreOptions{});
    if (!restored_store.ok()) return Fail(std::string(restored_store.status().message()));
    begin = Clock::now();
    absl::StatusOr<int64_t> keys = (*restored_store)->IngestKeyGroups({file}, all);
    if (!keys.ok()) return Fail(std::string(keys.status().message()));
    Report("ingest", SecondsSince(begin), *keys, "keys");

    begin = Clock::now();
    sl::WindowEngine restored(restored_store->get(), all);
    if (!restored.Restore().ok()) return Fail("Restore failed");
    Report("rebuild", SecondsSince(begin), restored.stats().users, "users");
    if (restored.stats().users != users) status = Fail("restored a different number of users");
  }
  std::filesystem::remove_all(dir);
  return status;
}
