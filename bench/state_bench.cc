// slipstream-bench-state: the phases of a checkpoint and a restore of the
// window state, without Kafka or Redis, at a given number of users:
//   build      N users' events into a WindowEngine (one event per user per
//              step, `--events-per-user` steps, 1 min apart)
//   sync       WindowEngine::BeginSnapshot (the synchronous pause)
//   write      Commit() steps until the snapshot's round is in RocksDB
//   upload     StateSnapshot::WriteKeyGroups (the SST file of the range)
//   release    destroying the engine (what a cancelled task frees)
//   ingest     StateStore::IngestKeyGroups into a fresh store (restore of
//              key groups --restore-first..--restore-last, default all)
//   rebuild    WindowEngine::Restore (the working copy back in memory)
// Prints one line per phase with its time and throughput.
//   slipstream-bench-state --users 1000000 [--events-per-user 3] [--dir /dev/shm/...]
//                          [--restore-first 0 --restore-last 42]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "CLI/CLI.hpp"
#include "common/event.h"
#include "common/features/feature_definition.h"
#include "common/key_groups.h"
#include "worker/state/state_store.h"
#include "worker/window/feature_program.h"
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
  int restore_first = 0;
  int restore_last = 127;
  app.add_option("--restore-first", restore_first, "first key group restored (a worker's share after a rescale)")
      ->check(CLI::Range(0, 127));
  app.add_option("--restore-last", restore_last, "last key group restored")->check(CLI::Range(0, 127));
  std::string features;
  app.add_option("--features", features,
                 "feature definition file over the shipped input (default: the built-in conf/features.yaml)");
  int rebuilds = 1;
  app.add_option("--rebuilds", rebuilds, "rebuild this many times (one line each; for profiling)")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  namespace sl = slipstream;
  constexpr int kMaxParallelism = 128;
  const sl::KeyGroupRange all{0, kMaxParallelism - 1};
  const sl::KeyGroupRange restore_range{restore_first, restore_last};
  if (restore_range.empty()) return Fail("--restore-first is after --restore-last");
  std::filesystem::remove_all(dir);
  sl::WindowEngineOptions engine_options;
  if (!features.empty()) {
    absl::StatusOr<sl::FeatureDefinition> definition = sl::LoadFeatureDefinitionFile(features);
    if (!definition.ok()) return Fail(std::string(definition.status().message()));
    auto program = sl::FeatureProgram::Compile(std::make_shared<const sl::FeatureDefinition>(*std::move(definition)));
    if (!program.ok()) return Fail(std::string(program.status().message()));
    engine_options.program = *program;
  }
  int status = 0;
  {
    auto store = sl::StateStore::Open(dir + "/db", sl::StateStoreOptions{});
    if (!store.ok()) return Fail(std::string(store.status().message()));
    auto engine = std::make_unique<sl::WindowEngine>(store->get(), all, engine_options);
    // A view at 12.50 of the default definition's input (event_time,
    // event_type, user_id, price).
    const sl::InputSchema& input = sl::DefaultFeatureDefinition().input;
    sl::Event event;
    event.fields.resize(input.fields.size());
    for (sl::FieldValue& v : event.fields) v.present = true;
    event.fields[static_cast<size_t>(input.FieldIndex("event_type"))].string_value = "view";
    event.fields[static_cast<size_t>(input.FieldIndex("price"))].double_value = 12.5;
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
    begin = Clock::now();
    const int64_t built_users = engine->stats().users;
    engine.reset();
    Report("release", SecondsSince(begin), built_users, "users");
    store->reset();

    auto restored_store = sl::StateStore::Open(dir + "/restored", sl::StateStoreOptions{});
    if (!restored_store.ok()) return Fail(std::string(restored_store.status().message()));
    begin = Clock::now();
    absl::StatusOr<sl::IngestedSnapshots> ingested = (*restored_store)->IngestKeyGroups({file}, restore_range);
    if (!ingested.ok()) return Fail(std::string(ingested.status().message()));
    Report("ingest", SecondsSince(begin), ingested->bytes, "bytes");

    for (int i = 0; i < rebuilds; ++i) {
      begin = Clock::now();
      sl::WindowEngine restored(restored_store->get(), restore_range, engine_options);
      if (!restored.Restore().ok()) return Fail("Restore failed");
      Report("rebuild", SecondsSince(begin), restored.stats().users, "users");
      std::printf("         %lld timers\n", static_cast<long long>(restored.stats().timers));
      if (restore_range.first == 0 && restore_range.last == kMaxParallelism - 1 && restored.stats().users != users) {
        status = Fail("restored a different number of users");
      }
    }
  }
  std::filesystem::remove_all(dir);
  return status;
}
