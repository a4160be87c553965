// Throw-away certificates for TLS tests, made with the openssl command-line
// tool at test time (nothing secret is checked in): a CA, and certificates
// it signs for localhost / 127.0.0.1 (usable by servers and clients alike).
// Keys are EC P-256: fast to make, accepted by gRPC and cpp-httplib.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace slipstream::test_support {

struct CertPaths {
  std::string cert;
  std::string key;
};

class TestCertificates {
 public:
  // Creates `dir` and a CA named `ca_name` in it.
  static absl::StatusOr<TestCertificates> Create(const std::filesystem::path& dir,
                                                 const std::string& ca_name = "ca") {
    std::filesystem::create_directories(dir);
    TestCertificates certs(dir, ca_name);
    const std::string key = certs.Path(ca_name + ".key");
    if (absl::Status s = Run(absl::StrCat("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                                          "-keyout ", key, " -out ", certs.ca_path(), " -days 2 -subj /CN=slipstream-test-",
                                          ca_name));
        !s.ok()) {
      return s;
    }
    return certs;
  }

  // A certificate for localhost and 127.0.0.1 signed by this CA.
  absl::StatusOr<CertPaths> Issue(const std::string& name) const {
    CertPaths out{Path(name + ".pem"), Path(name + ".key")};
    const std::string csr = Path(name + ".csr");
    const std::string ext = Path(name + ".ext");
    std::ofstream(ext) << "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n";
    if (absl::Status s = Run(absl::StrCat("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ",
                                          out.key, " -out ", csr, " -subj /CN=", name));
        !s.ok()) {
      return s;
    }
    if (absl::Status s = Run(absl::StrCat("openssl x509 -req -in ", csr, " -CA ", ca_path(), " -CAkey ",
                                          Path(ca_name_ + ".key"), " -CAcreateserial -out ", out.cert,
                                          " -days 2 -extfile ", ext));
        !s.ok()) {
      return s;
    }
    return out;
  }

  std::string ca_path() const { return Path(ca_name_ + ".pem"); }

  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

 private:
  TestCertificates(std::filesystem::path dir, std::string ca_name) : dir_(std::move(dir)), ca_name_(std::move(ca_name)) {}
  std::string Path(const std::string& file) const { return (dir_ / file).string(); }

  static absl::Status Run(const std::string& command) {
    const std::string quiet = command + " >/dev/null 2>&1";
    if (std::system(quiet.c_str()) != 0) return absl::InternalError(absl::StrCat("failed: ", command));
    return absl::OkStatus();
  }

  std::filesystem::path dir_;
  std::string ca_name_;
};

}  // namespace slipstream::test_support
