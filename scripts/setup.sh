#!/usr/bin/env bash
# Installs everything Slipstream needs to build, test and run locally, with
# apt-get (Debian bookworm). Idempotent: when every package is already there
# it only asks dpkg and returns (well under a second).
#
# Usage: scripts/setup.sh [--with-ui-test]
#
#   --with-ui-test   also what the web UI test needs (scripts/test.sh passes
#                    it): Debian's chromium, Node.js + npm, and the test's npm
#                    packages (tests/ui/, pinned by its package-lock.json) in
#                    $SLIPSTREAM_CACHE/ui-test/node_modules via `npm ci`.
#                    Not for images or quick starts: Chromium is ~300 MB.
set -euo pipefail
SLIPSTREAM_TAG="slipstream setup"
# shellcheck source=scripts/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

WITH_UI_TEST=0
for arg in "$@"; do
  case "$arg" in
    --with-ui-test) WITH_UI_TEST=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # C++ libraries
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librdkafka-dev libhiredis-dev librocksdb-dev libabsl-dev libsimdjson-dev
  libspdlog-dev libfmt-dev libcli11-dev libcpp-httplib-dev nlohmann-json3-dev
  # feature definition files (conf/features.yaml)
  libyaml-cpp-dev
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
if [[ "$WITH_UI_TEST" == "1" ]]; then
  # Debian's Chromium, driven by playwright-core (npm) with executablePath
  # /usr/bin/chromium (no browser download), and a font for its pages.
  PACKAGES+=(chromium fonts-dejavu-core)
  # Node.js and npm from Debian, unless a Node.js that brings its own npm is
  # installed (Debian's npm package conflicts with such a one).
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    PACKAGES+=(nodejs npm)
  fi
fi

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

# The UI test's node_modules, outside the source tree (nothing installed is
# ever committed): `npm ci` from tests/ui/package-lock.json into
# $SLIPSTREAM_CACHE/ui-test, skipped when that lock file is already installed.
install_ui_test_modules() {
  [[ "$WITH_UI_TEST" == "1" ]] || return 0
  local src="$SLIPSTREAM_ROOT/tests/ui" dest="$SLIPSTREAM_CACHE/ui-test"
  if [[ -f "$dest/package-lock.json" && -d "$dest/node_modules/playwright-core" ]] &&
    cmp -s "$src/package-lock.json" "$dest/package-lock.json"; then
    return 0
  fi
  log "npm ci for the web UI test into $dest"
  local start
  start="$(now_s)"
  rm -rf "$dest"
  mkdir -p "$dest"
  cp "$src/package.json" "$src/package-lock.json" "$dest/"
  # --ignore-scripts: playwright-core has no install step we need (it never
  # downloads a browser: the test uses Debian's /usr/bin/chromium).
  (cd "$dest" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error </dev/null) ||
    die "npm ci failed for the web UI test's packages (in $dest)"
  log "UI test packages installed in $(elapsed_since "$start")"
}

mapfile -t MISSING < <(missing_packages)

if [[ ${#MISSING[@]} -eq 0 ]]; then
  log "all ${#PACKAGES[@]} packages already installed"
  install_ui_test_modules
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
install_ui_test_modules
