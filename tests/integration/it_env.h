// Shared plumbing of the integration tests: the environment that
// scripts/test.sh exports, temporary directories, free ports, unique names
// and progress logging with elapsed times (so a CI log shows where time goes).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace slipstream::it {

// The services and binaries scripts/test.sh provides. Missing variables make
// the calling test FAIL (never skip) with a message naming them.
struct TestEnv {
  std::string kafka;       // SLIPSTREAM_TEST_KAFKA, host:port
  std::string redis_host;  // from SLIPSTREAM_TEST_REDIS
  int redis_port = 0;
  std::string bin_dir;     // SLIPSTREAM_BIN_DIR
  std::string source_dir;  // SLIPSTREAM_SOURCE_DIR
};

// Reads every variable; on a missing/invalid one records a gtest failure and
// returns false. `need_services` = false only requires SLIPSTREAM_BIN_DIR.
bool LoadTestEnv(TestEnv* env, bool need_services = true);

// Path of build/bin/<name>, failing the test when it is not executable.
std::string BinaryPath(const TestEnv& env, std::string_view name);

// A fresh directory under $TMPDIR (or /tmp). Removed on destruction unless
// Keep() was called (the tests keep it when they fail, for the logs) or
// SLIPSTREAM_IT_KEEP_TMP=1 is set.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  void Keep() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

// A TCP port that was free a moment ago on 127.0.0.1 (bind to port 0).
int FreeTcpPort();

// True when something accepts TCP connections on 127.0.0.1:port.
bool TcpPortAcceptsConnections(int port);

// "it-<test>-<random hex>": unique topic / group names per run.
std::string UniqueName(std::string_view test_name);

// Wall-clock milliseconds since the epoch / a monotonic clock in ms.
int64_t WallNowMs();
int64_t SteadyNowMs();

// Progress log on stdout, prefixed with the seconds since `start`.
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()), phase_(start_) {}
  double ElapsedSeconds() const;
  // Logs "[it +T s] message".
  void Log(std::string_view message) const;
  // Logs "[it +T s] phase <name> took X s" and starts the next phase.
  void EndPhase(std::string_view name);

 private:
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point phase_;
};

}  // namespace slipstream::it
