#include "tests/integration/process_runner.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace slipstream::it {

namespace {
int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}
}  // namespace

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::string LastLines(const std::string& text, int lines) {
  if (text.empty()) return text;
  size_t pos = text.size();
  if (text.back() == '\n') --pos;
  int seen = 0;
  while (pos > 0) {
    if (text[pos - 1] == '\n' && ++seen == lines) break;
    --pos;
  }
  return text.substr(pos);
}

Process::Process(std::string name, std::vector<std::string> argv, const std::string& log_dir)
    : name_(std::move(name)), argv_(std::move(argv)) {
  stdout_path_ = log_dir + "/" + name_ + ".stdout";
  stderr_path_ = log_dir + "/" + name_ + ".stderr";
  // Everything the child needs is prepared before fork: after fork in a
  // multi-threaded process only async-signal-safe calls are allowed.
  std::vector<char*> args;
  for (std::string& a : argv_) args.push_back(a.data());
  args.push_back(nullptr);
  const int out_fd = open(stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err_fd = open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd < 0 || err_fd < 0) {
    ADD_FAILURE() << "cannot create log files in " << log_dir << ": " << std::strerror(errno);
    if (out_fd >= 0) close(out_fd);
    if (err_fd >= 0) close(err_fd);
    return;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    const int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    // Undo signal dispositions a test framework may have set.
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    execv(args[0], args.data());
    const char msg[] = "process_runner: execv failed\n";
    (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
    _exit(127);
  }
  close(out_fd);
  close(err_fd);
  if (pid < 0) {
    ADD_FAILURE() << "fork failed: " << std::strerror(errno);
    return;
  }
  pid_ = pid;
}

Process::~Process() {
  if (started() && !exit_status_) Stop();
}

bool Process::Running() {
  if (!started() || exit_status_) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = DecodeStatus(status);
    return false;
  }
  return r == 0;
}

std::optional<int> Process::WaitForExit(int64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return exit_status_;
}

int Process::Stop(int64_t grace_ms) {
  if (!started()) return -1;
  if (exit_status_) return *exit_status_;
  kill(pid_, SIGTERM);
  if (std::optional<int> s = WaitForExit(grace_ms)) return *s;
  std::cout << "[it] " << name_ << " (pid " << pid_ << ") ignored SIGTERM for " << grace_ms
            << " ms; sending SIGKILL" << std::endl;
  kill(pid_, SIGKILL);
  int status = 0;
  if (waitpid(pid_, &status, 0) == pid_) exit_status_ = DecodeStatus(status);
  return exit_status_.value_or(-1);
}

int Process::Kill() {
  if (!started()) return -1;
  if (exit_status_) return *exit_status_;
  kill(pid_, SIGKILL);
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) exit_status_ = DecodeStatus(status);
  return exit_status_.value_or(-1);
}

std::string Process::ReadStdout() const { return ReadFileOrEmpty(stdout_path_); }
std::string Process::ReadStderr() const { return ReadFileOrEmpty(stderr_path_); }

std::string Process::CommandLine() const {
  std::string out;
  for (const std::string& a : argv_) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return out;
}

std::string Process::Tail(int lines) const {
  std::ostringstream os;
  os << "----- " << name_ << " (pid " << pid_ << ", "
     << (exit_status_ ? "exit status " + std::to_string(*exit_status_) : std::string("running")) << ")\n"
     << "$ " << CommandLine() << "\n";
  os << "----- " << name_ << " stdout (last " << lines << " lines of " << stdout_path_ << ")\n"
     << LastLines(ReadStdout(), lines);
  os << "----- " << name_ << " stderr (last " << lines << " lines of " << stderr_path_ << ")\n"
     << LastLines(ReadStderr(), lines);
  return os.str();
}

}  // namespace slipstream::it
