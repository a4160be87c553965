// slipstream: the operator's command-line client of a running coordinator,
// shaped after Flink's `flink` CLI (list, savepoint, stop, cancel) plus
// checkpoint history and workers. It talks gRPC to the coordinator's control
// API (tools/cli/coordinator_control.h) and never touches files itself: paths
// are the coordinator's (savepoint directories, disposal).
//
// Output: tables for people; with --json the gRPC response as protobuf JSON
// (field names as in proto/slipstream.proto, 64-bit integers as strings, as
// the protobuf JSON mapping has it), one object per line on stdout. Errors:
// one line on stderr, exit status 1 (refused or failed), 2 (usage),
// 3 (coordinator unreachable or not answering within --timeout), 4 (the
// coordinator wants a token: --token or SLIPSTREAM_TOKEN, none or a wrong
// one given).
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/event.h"
#include "common/grpc_security.h"
#include "tools/cli/coordinator_control.h"

namespace slipstream {
namespace {

constexpr char kProgram[] = "slipstream";
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;
constexpr int kExitUnauthenticated = 4;
constexpr int64_t kPollIntervalMs = 200;
constexpr int64_t kProgressEveryMs = 2000;
// How long `stop` waits for the job to report FINISHED after its savepoint.
constexpr int64_t kFinishWaitMs = 10000;

struct Flags {
  std::string coordinator = "localhost:6123";
  bool json = false;
  double timeout_s = 5;
  std::string job_id;
  std::string target_dir;
  std::string dispose_path;
  std::string token;  // --token, else $SLIPSTREAM_TOKEN
  bool tls = false;
  std::string ca_path;
  std::string cert_path;
  std::string key_path;
};


// The one error line, and the exit status that goes with it.
int Fail(const absl::Status& status, std::string_view context = "") {
  std::cerr << kProgram << ": " << context << (context.empty() ? "" : ": ") << status.message() << "\n";
  if (CoordinatorControl::IsUnauthenticated(status)) return kExitUnauthenticated;
  return CoordinatorControl::IsUnreachable(status) ? kExitUnreachable : kExitFailed;
}

std::string Json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

std::string Time(int64_t epoch_ms) { return epoch_ms <= 0 ? "-" : FormatIso8601Millis(epoch_ms); }

std::string Duration(int64_t ms) {
  if (ms < 10000) return absl::StrCat(ms, " ms");
  return absl::StrFormat("%.1f s", static_cast<double>(ms) / 1000.0);
}

std::string Bytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  if (bytes < 1024 * 1024) return absl::StrFormat("%.1f KiB", static_cast<double>(bytes) / 1024.0);
  if (bytes < int64_t{1024} * 1024 * 1024) {
    return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  }
  return absl::StrFormat("%.2f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
}

// Left-aligned columns, two spaces apart.
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

std::string Ranges(const v1::Assignment& a) {
  std::vector<std::string> out;
  for (const v1::KeyGroupRange& r : a.key_groups()) out.push_back(absl::StrCat(r.first(), "-", r.last()));
  return out.empty() ? "-" : absl::StrJoin(out, ",");
}

int List(CoordinatorControl& control, const Flags& flags) {
  absl::StatusOr<v1::ListJobsResponse> jobs = control.ListJobs();
  if (!jobs.ok()) return Fail(jobs.status());
  if (flags.json) {
    std::cout << Json(*jobs) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"JOB ID", "STATE", "START TIME", "ATTEMPT", "WORKERS", "TOPIC"}};
  for (const v1::JobStatus& job : jobs->jobs()) {
    int in_attempt = 0;
    for (const v1::WorkerStatus& w : job.workers()) in_attempt += w.standby() ? 0 : 1;
    const int standby = job.workers_size() - in_attempt;
    rows.push_back({job.job_id(), job.state(), Time(job.start_time_ms()), absl::StrCat(job.attempt()),
                    standby == 0 ? absl::StrCat(in_attempt) : absl::StrCat(in_attempt, " (+", standby, " standby)"),
                    job.topic()});
  }
  PrintTable(rows);
  return 0;
}

int Workers(CoordinatorControl& control, const Flags& flags) {
  absl::StatusOr<v1::ListWorkersResponse> workers = control.ListWorkers();
  if (!workers.ok()) return Fail(workers.status());
  if (flags.json) {
    std::cout << Json(*workers) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"WORKER ID", "ADDRESS", "HEARTBEAT AGE", "ATTEMPT", "PARTITIONS", "KEY GROUPS"}};
  for (const v1::WorkerStatus& w : workers->workers()) {
    std::vector<std::string> partitions;
    for (int p : w.assignment().partitions()) partitions.push_back(absl::StrCat(p));
    rows.push_back({w.worker_id(), absl::StrCat(w.host(), ":", w.data_port()), Duration(w.heartbeat_age_ms()),
                    w.standby() ? "standby" : absl::StrCat(w.assignment().attempt()),
                    partitions.empty() ? "-" : absl::StrJoin(partitions, ","), Ranges(w.assignment())});
  }
  PrintTable(rows);
  if (workers->workers().empty()) std::cout << "(no worker registered)\n";
  return 0;
}

int Checkpoints(CoordinatorControl& control, const Flags& flags) {
  absl::StatusOr<v1::CheckpointOverview> overview = control.GetCheckpoints(flags.job_id);
  if (!overview.ok()) return Fail(overview.status());
  if (flags.json) {
    std::cout << Json(*overview) << "\n";
    return 0;
  }
  std::cout << "Job " << flags.job_id << ": " << overview->completed() << " completed, " << overview->failed()
            << " failed, " << overview->in_progress() << " in progress; restored " << overview->restored()
            << " time(s)";
  if (overview->has_latest_restored()) {
    std::cout << " (latest: " << overview->latest_restored().id() << " from " << overview->latest_restored().path()
              << ")";
  }
  std::cout << "\n";
  std::vector<std::vector<std::string>> rows = {
      {"ID", "TYPE", "STATUS", "TRIGGER TIME", "DURATION", "SIZE", "ACKS", "PATH / FAILURE"}};
  for (const v1::CheckpointStats& c : overview->history()) {
    rows.push_back({absl::StrCat(c.id()), c.checkpoint_type().empty() ? "CHECKPOINT" : c.checkpoint_type(), c.status(),
                    Time(c.trigger_time_ms()), Duration(c.end_to_end_ms()), Bytes(c.state_bytes()),
                    absl::StrCat(c.acknowledged(), "/", c.expected()),
                    c.status() == "FAILED" ? c.failure_reason() : c.path()});
  }
  PrintTable(rows);
  return 0;
}

// Polls the savepoint until it completes or fails, with progress on stderr.
absl::StatusOr<v1::SavepointOperation> WaitForSavepoint(CoordinatorControl& control, const Flags& flags,
                                                         v1::SavepointOperation op) {
  const int64_t started = Clock::Real().SteadyMs();
  int64_t last_progress = started;
  int32_t last_acks = -1;
  while (op.status() == "IN_PROGRESS") {
    std::this_thread::sleep_for(std::chrono::milliseconds(kPollIntervalMs));
    absl::StatusOr<v1::SavepointOperation> next = control.GetSavepoint(op.job_id(), op.request_id());
    if (!next.ok()) return next.status();
    op = *std::move(next);
    const int64_t now = Clock::Real().SteadyMs();
    if (!flags.json && op.status() == "IN_PROGRESS" &&
        (op.acknowledged() != last_acks || now - last_progress >= kProgressEveryMs)) {
      std::cerr << "  " << Duration(now - started) << ": "
                << (op.checkpoint_id() == 0
                        ? std::string("waiting for the running checkpoint to finish")
                        : absl::StrCat("savepoint ", op.checkpoint_id(), ", ", op.acknowledged(), "/", op.expected(),
                                       " workers done"))
                << "\n";
      last_acks = op.acknowledged();
      last_progress = now;
    }
  }
  return op;
}

int FailedSavepoint(const v1::SavepointOperation& op, const Flags& flags) {
  if (flags.json) std::cout << Json(op) << "\n";
  return Fail(absl::AbortedError(op.failure_cause()),
              absl::StrCat(op.stop() ? "stop-with-savepoint" : "savepoint",
                           op.checkpoint_id() == 0 ? "" : absl::StrCat(" ", op.checkpoint_id()), " of job ",
                           op.job_id(), " failed"));
}

int Dispose(CoordinatorControl& control, const Flags& flags) {
  if (!flags.job_id.empty() || !flags.target_dir.empty()) {
    std::cerr << kProgram << ": savepoint --dispose PATH takes no job id or target directory\n";
    return kExitUsage;
  }
  if (!flags.json) std::cout << "Disposing savepoint '" << flags.dispose_path << "'.\n";
  absl::StatusOr<v1::DisposeSavepointResponse> disposed = control.DisposeSavepoint(flags.dispose_path);
  if (!disposed.ok()) return Fail(disposed.status(), "cannot dispose the savepoint");
  if (flags.json) {
    std::cout << Json(*disposed) << "\n";
  } else {
    std::cout << "Savepoint '" << disposed->path() << "' disposed.\n";
  }
  return 0;
}

int Savepoint(CoordinatorControl& control, const Flags& flags) {
  if (!flags.dispose_path.empty()) return Dispose(control, flags);
  if (flags.job_id.empty()) {
    std::cerr << kProgram << ": savepoint needs a job id (slipstream list shows it), or --dispose PATH\n";
    return kExitUsage;
  }
  if (!flags.json) std::cout << "Triggering savepoint for job " << flags.job_id << ".\n";
  absl::StatusOr<v1::SavepointOperation> op = control.TriggerSavepoint(flags.job_id, flags.target_dir);
  if (!op.ok()) return Fail(op.status(), "cannot trigger a savepoint");
  if (!flags.json) std::cout << "Waiting for response (request " << op->request_id() << ")...\n" << std::flush;
  op = WaitForSavepoint(control, flags, *std::move(op));
  if (!op.ok()) return Fail(op.status(), "lost track of the savepoint");
  if (op->status() != "COMPLETED") return FailedSavepoint(*op, flags);
  if (flags.json) {
    std::cout << Json(*op) << "\n";
  } else {
    std::cout << "Savepoint completed. Path: " << op->location() << "\n"
              << "Restore it with: slipstream-coordinator --from-savepoint " << op->location() << "\n";
  }
  return 0;
}

int Stop(CoordinatorControl& control, const Flags& flags) {
  if (!flags.json) std::cout << "Suspending job " << flags.job_id << " with a savepoint.\n";
  absl::StatusOr<v1::SavepointOperation> op = control.StopWithSavepoint(flags.job_id, flags.target_dir);
  if (!op.ok()) return Fail(op.status(), "cannot stop the job");
  op = WaitForSavepoint(control, flags, *std::move(op));
  if (!op.ok()) return Fail(op.status(), "lost track of the stop-with-savepoint");
  if (op->status() != "COMPLETED") return FailedSavepoint(*op, flags);
  // The coordinator ends the job before it reports the savepoint COMPLETED;
  // a failure racing the stop can still prevent that.
  const int64_t deadline = Clock::Real().SteadyMs() + kFinishWaitMs;
  std::string state;
  while (true) {
    absl::StatusOr<v1::ListJobsResponse> jobs = control.ListJobs();
    if (!jobs.ok()) return Fail(jobs.status(), "the savepoint completed but the job's state is unknown");
    for (const v1::JobStatus& job : jobs->jobs()) {
      if (job.job_id() == flags.job_id) state = job.state();
    }
    if (state == "FINISHED" || Clock::Real().SteadyMs() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(kPollIntervalMs));
  }
  if (flags.json) std::cout << Json(*op) << "\n";
  if (state != "FINISHED") {
    return Fail(absl::FailedPreconditionError(absl::StrCat("the savepoint completed at ", op->location(),
                                                           " but the job is ", state, ", not FINISHED")),
                "stop");
  }
  if (!flags.json) {
    std::cout << "Savepoint completed. Path: " << op->location() << "\n"
              << "Job " << flags.job_id << " FINISHED.\n";
  }
  return 0;
}

int Cancel(CoordinatorControl& control, const Flags& flags) {
  if (!flags.json) std::cout << "Cancelling job " << flags.job_id << ".\n";
  absl::StatusOr<v1::CancelJobResponse> canceled = control.CancelJob(flags.job_id);
  if (!canceled.ok()) return Fail(canceled.status(), "cannot cancel the job");
  if (flags.json) {
    std::cout << Json(*canceled) << "\n";
    return 0;
  }
  std::cout << "Cancelled job " << flags.job_id << ".\n";
  if (canceled->checkpoint_retention() == "DELETE_ON_CANCELLATION") {
    std::cout << "Its checkpoints are deleted (DELETE_ON_CANCELLATION).\n";
  } else if (!canceled->retained_checkpoint().empty()) {
    std::cout << "Retained checkpoint (RETAIN_ON_CANCELLATION): " << canceled->retained_checkpoint() << "\n";
  } else {
    std::cout << "No checkpoint had completed; nothing retained.\n";
  }
  return 0;
}

int Run(int argc, char** argv) {
  Flags flags;
  CLI::App app{
      "slipstream: control a running Slipstream job through its coordinator (like Flink's `flink` CLI).\n"
      "Exit status: 0 done, 1 refused or failed, 2 usage, 3 coordinator unreachable, 4 token missing or wrong.",
      kProgram};
  app.option_defaults()->always_capture_default();
  app.add_option("--coordinator", flags.coordinator, "Coordinator address host:port (jobmanager.rpc.port)");
  app.add_flag("--json", flags.json, "Machine-readable output: the gRPC response as protobuf JSON, one line");
  app.add_option("--timeout", flags.timeout_s, "Seconds to wait for each answer from the coordinator")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--token", flags.token,
                 "Bearer token (security.admin-token to change the job, security.read-token to read it); "
                 "default: $SLIPSTREAM_TOKEN")
      ->always_capture_default(false);
  app.add_flag("--tls", flags.tls, "Connect over TLS (the coordinator has security.ssl.enabled=true)");
  app.add_option("--ca", flags.ca_path, "PEM file of the CA that signed the coordinator's certificate (implies --tls)");
  app.add_option("--cert", flags.cert_path, "PEM file of this client's certificate (security.ssl.client-auth)");
  app.add_option("--key", flags.key_path, "PEM file of the key of --cert");
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the command

  CLI::App* list = app.add_subcommand("list", "The job: id, state, start time, attempt, workers");
  CLI::App* savepoint = app.add_subcommand(
      "savepoint", "Trigger a savepoint and print its path (default directory: state.savepoints.dir), or dispose one");
  savepoint->add_option("job-id", flags.job_id, "Job id (slipstream list)");
  savepoint->add_option("target-directory", flags.target_dir,
                        "Absolute directory (or file:/// URI) on the coordinator's file system");
  savepoint->add_option("--dispose,-d", flags.dispose_path, "Delete the savepoint at this path");
  CLI::App* stop = app.add_subcommand(
      "stop", "Stop the job with a final savepoint (nothing lost or repeated when restored from it)");
  stop->add_option("job-id", flags.job_id, "Job id")->required();
  stop->add_option("--savepoint-path,-p", flags.target_dir,
                   "Directory for the savepoint (default: state.savepoints.dir)");
  CLI::App* cancel = app.add_subcommand(
      "cancel", "Cancel the job (checkpoints per execution.checkpointing.externalized-checkpoint-retention)");
  cancel->add_option("job-id", flags.job_id, "Job id")->required();
  CLI::App* checkpoints =
      app.add_subcommand("checkpoints", "Checkpoint and savepoint history, counts and the restore count");
  checkpoints->add_option("job-id", flags.job_id, "Job id")->required();
  CLI::App* workers =
      app.add_subcommand("workers", "Registered workers: address, heartbeat age, partitions, key-group ranges");

  // CLI11 would only say "A subcommand is required" for a mistyped command:
  // name it. The first word that is neither an option nor an option's value
  // is the command.
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--coordinator" || arg == "--timeout" || arg == "--token" || arg == "--ca" || arg == "--cert" ||
        arg == "--key") {
      ++i;
      continue;
    }
    if (arg.rfind("-", 0) == 0) continue;
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) known = known || sub->get_name() == arg;
    if (!known) {
      std::cerr << kProgram << ": unknown command \"" << arg
                << "\" (commands: list, workers, checkpoints, savepoint, stop, cancel; slipstream --help)\n";
      return kExitUsage;
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << kProgram << ": " << e.what() << " (slipstream --help shows the usage)\n";
    return kExitUsage;
  }

  if (flags.token.empty()) {
    if (const char* env = std::getenv("SLIPSTREAM_TOKEN"); env != nullptr) flags.token = env;
  }
  TlsSettings tls;
  tls.enabled = flags.tls || !flags.ca_path.empty() || !flags.cert_path.empty();
  if (tls.enabled) {
    if (flags.ca_path.empty()) {
      std::cerr << kProgram << ": --tls needs --ca (the CA that signed the coordinator's certificate)\n";
      return kExitUsage;
    }
    if (flags.cert_path.empty() != flags.key_path.empty()) {
      std::cerr << kProgram << ": --cert and --key go together\n";
      return kExitUsage;
    }
    for (auto [flag, path, pem] : {std::tuple{"--ca", &flags.ca_path, &tls.ca_pem},
                                   std::tuple{"--cert", &flags.cert_path, &tls.cert_pem},
                                   std::tuple{"--key", &flags.key_path, &tls.key_pem}}) {
      if (path->empty()) continue;
      absl::StatusOr<std::string> text = ReadPemFile(flag, *path);
      if (!text.ok()) {
        std::cerr << kProgram << ": " << text.status().message() << "\n";
        return kExitUsage;
      }
      *pem = *std::move(text);
    }
  }
  CoordinatorControl control(flags.coordinator, static_cast<int64_t>(flags.timeout_s * 1000),
                             GrpcSecurity(std::move(tls), flags.token));
  if (list->parsed()) return List(control, flags);
  if (savepoint->parsed()) return Savepoint(control, flags);
  if (stop->parsed()) return Stop(control, flags);
  if (cancel->parsed()) return Cancel(control, flags);
  if (checkpoints->parsed()) return Checkpoints(control, flags);
  if (workers->parsed()) return Workers(control, flags);
  return kExitUsage;
}

}  // namespace
}  // namespace slipstream

int main(int argc, char** argv) { return slipstream::Run(argc, argv); }
