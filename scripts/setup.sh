#!/usr/bin/env bash
# Installs everything Slipstream needs to build, test and run locally, with
# apt-get (Debian bookworm). Idempotent: when every package is already there
# it only asks dpkg and returns (well under a second).
#
# Usage: scripts/setup.sh
set -euo pipefail
SLIPSTREAM_TAG="slipstream setup"
# shellcheck source=scripts/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # C++ libraries
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librdkafka-dev libhiredis-dev librocksdb-dev libabsl-dev libsimdjson-dev
  libspdlog-dev libfmt-dev libcli11-dev libcpp-httplib-dev nlohmann-json3-dev
  # TLS: HTTPS on rest.port (cpp-httplib's SSLServer, CPPHTTPLIB_OPENSSL_SUPPORT)
  libssl-dev
  # tests and benchmarks
  libbenchmark-dev libgtest-dev libgmock-dev googletest
  # local services: Redis, and Java + Maven for the Kafka broker
  redis-server redis-tools openjdk-17-jre-headless maven
  # utilities the scripts and tests use
  curl ca-certificates procps iproute2 netcat-openbsd
  # the TLS tests make throw-away certificates with the openssl tool
  openssl
)

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script supports Debian/Ubuntu only"

# Lists the packages from PACKAGES that are not fully installed ("ii").
missing_packages() {
  local -A ok=()
  local name status
  # dpkg-query exits non-zero when it knows nothing of some package; that
  # package then simply doesn't show up as installed.
  while IFS=$'\t' read -r name status; do
    # Status-Abbrev is e.g. "ii ": the second letter is the current state.
    if [[ "${status:1:1}" == "i" ]]; then ok["$name"]=1; fi
  done < <(dpkg-query -W -f='${Package}\t${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)
  local p
  for p in "${PACKAGES[@]}"; do
    if [[ -z "${ok[$p]:-}" ]]; then printf '%s\n' "$p"; fi
  done
}

mapfile -t MISSING < <(missing_packages)

if [[ ${#MISSING[@]} -eq 0 ]]; then
  log "all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

log "installing ${#MISSING[@]} missing package(s): ${MISSING[*]}"
START="$(now_s)"

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(
  -y -q
  -o Dpkg::Options::=--force-confdef
  -o Dpkg::Options::=--force-confold
  -o DPkg::Lock::Timeout=300
  -o Dpkg::Use-Pty=0
)

# Slim images drop man pages, and the JRE's postinst then fails to create its
# man-page alternatives unless the directory exists.
as_root mkdir -p /usr/share/man/man1

log "apt-get update"
as_root env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" update </dev/null
as_root env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install --no-install-recommends \
  "${MISSING[@]}" </dev/null

mapfile -t STILL_MISSING < <(missing_packages)
if [[ ${#STILL_MISSING[@]} -gt 0 ]]; then
  die "still not installed after apt-get: ${STILL_MISSING[*]}"
fi
log "installed ${#MISSING[@]} package(s) in $(elapsed_since "$START")"
