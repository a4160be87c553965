// A child process for the integration tests (fork + exec). Its stdout and
// stderr go to <log_dir>/<name>.stdout / .stderr, so a failing test can show
// their tails. The child gets SIGKILL if the test process dies (prctl
// PDEATHSIG), so no broker-hogging orphans survive a crashed test.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace slipstream::it {

class Process {
 public:
  // Starts `argv[0]` with arguments argv[1..]. `name` names the log files.
  Process(std::string name, std::vector<std::string> argv, const std::string& log_dir);
  // Stop(): SIGTERM, then SIGKILL after 10 s.
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  const std::string& name() const { return name_; }
  pid_t pid() const { return pid_; }
  bool started() const { return pid_ > 0; }

  // True while the child has not exited (reaps it when it has).
  bool Running();
  // Waits up to `timeout_ms` for the child to exit; its exit status
  // (exit code, or 128 + signal) or nullopt when it is still running.
  std::optional<int> WaitForExit(int64_t timeout_ms);
  // SIGTERM, wait up to `grace_ms`, then SIGKILL. Returns the exit status.
  int Stop(int64_t grace_ms = 10000);
  // SIGKILL now and reap: a crash, or a teardown that need not be graceful.
  // Returns the exit status.
  int Kill();
  // Exit status once exited.
  std::optional<int> exit_status() const { return exit_status_; }

  std::string StdoutPath() const { return stdout_path_; }
  std::string StderrPath() const { return stderr_path_; }
  std::string ReadStdout() const;
  std::string ReadStderr() const;
  // The last `lines` lines of stdout and stderr, labelled, for failure output.
  std::string Tail(int lines = 60) const;
  std::string CommandLine() const;

 private:
  std::string name_;
  std::vector<std::string> argv_;
  std::string stdout_path_;
  std::string stderr_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

std::string ReadFileOrEmpty(const std::string& path);
std::string LastLines(const std::string& text, int lines);

}  // namespace slipstream::it
