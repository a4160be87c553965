#include "tests/integration/it_env.h"

#include "tests/support/free_port.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>

namespace slipstream::it {

namespace {
constexpr const char* kHowToRun =
    "; the integration tests need a Kafka broker, a Redis server and the built binaries: "
    "run them with ./scripts/test.sh (or export SLIPSTREAM_TEST_KAFKA, SLIPSTREAM_TEST_REDIS, "
    "SLIPSTREAM_BIN_DIR and SLIPSTREAM_SOURCE_DIR yourself)";

bool Require(const char* name, std::string* out) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    ADD_FAILURE() << "environment variable " << name << " is not set" << kHowToRun;
    return false;
  }
  *out = value;
  return true;
}
}  // namespace

bool LoadTestEnv(TestEnv* env, bool need_services) {
  bool ok = Require("SLIPSTREAM_BIN_DIR", &env->bin_dir);
  if (!need_services) return ok;
  ok = Require("SLIPSTREAM_SOURCE_DIR", &env->source_dir) && ok;
  ok = Require("SLIPSTREAM_TEST_KAFKA", &env->kafka) && ok;
  std::string redis;
  if (Require("SLIPSTREAM_TEST_REDIS", &redis)) {
    const size_t colon = redis.rfind(':');
    int port = 0;
    if (colon != std::string::npos) port = std::atoi(redis.c_str() + colon + 1);
    if (colon == std::string::npos || colon == 0 || port <= 0 || port > 65535) {
      ADD_FAILURE() << "SLIPSTREAM_TEST_REDIS=\"" << redis << "\" is not host:port" << kHowToRun;
      ok = false;
    } else {
      env->redis_host = redis.substr(0, colon);
      env->redis_port = port;
    }
  } else {
    ok = false;
  }
  return ok;
}

std::string BinaryPath(const TestEnv& env, std::string_view name) {
  const std::string path = (std::filesystem::path(env.bin_dir) / std::string(name)).string();
  if (access(path.c_str(), X_OK) != 0) {
    ADD_FAILURE() << path << " is not an executable (SLIPSTREAM_BIN_DIR=" << env.bin_dir
                  << "); build with `cmake --build build`" << kHowToRun;
  }
  return path;
}

TempDir::TempDir(std::string_view prefix) {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp(" << tmpl << ") failed";
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  const char* keep_all = std::getenv("SLIPSTREAM_IT_KEEP_TMP");
  if (keep_ || (keep_all != nullptr && *keep_all != '\0' && std::string(keep_all) != "0")) {
    std::cout << "[it] kept " << path_ << " (process logs, state) for inspection" << std::endl;
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

int FreeTcpPort() { return test_support::FreeTcpPort(); }

bool TcpPortAcceptsConnections(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

std::string UniqueName(std::string_view test_name) {
  std::random_device rd;
  std::ostringstream os;
  os << "it-" << test_name << "-" << std::hex << ((static_cast<uint64_t>(rd()) << 32) ^ rd() ^ getpid());
  return os.str();
}

int64_t WallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double Stopwatch::ElapsedSeconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Stopwatch::Log(std::string_view message) const {
  char prefix[48];
  std::snprintf(prefix, sizeof(prefix), "[it +%6.2fs] ", ElapsedSeconds());
  std::cout << prefix << message << std::endl;
}

void Stopwatch::EndPhase(std::string_view name) {
  const auto now = std::chrono::steady_clock::now();
  char text[160];
  std::snprintf(text, sizeof(text), "phase %.*s took %.2f s", static_cast<int>(name.size()), name.data(),
                std::chrono::duration<double>(now - phase_).count());
  phase_ = now;
  Log(text);
}

}  // namespace slipstream::it
