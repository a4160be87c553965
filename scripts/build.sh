#!/usr/bin/env bash
# Configures and builds Slipstream with CMake + Ninja into <root>/build.
#
# Usage: scripts/build.sh [extra cmake configure args, e.g. -DSLIPSTREAM_SANITIZE=ON]
#
# Environment:
#   BUILD_TYPE=RelWithDebInfo     CMAKE_BUILD_TYPE
#   SLIPSTREAM_SKIP_SETUP=1       don't run scripts/setup.sh first
#   SLIPSTREAM_BUILD_DIR=<root>/build
#   SLIPSTREAM_JOBS=$(nproc)      parallel compile jobs
set -euo pipefail
SLIPSTREAM_TAG="slipstream build"
# shellcheck source=scripts/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
  exit 0
fi

if [[ "${SLIPSTREAM_SKIP_SETUP:-0}" != "1" ]]; then
  "$SLIPSTREAM_SCRIPTS/setup.sh"
fi

BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}"
JOBS="${SLIPSTREAM_JOBS:-$(nproc)}"
CACHE_FILE="$SLIPSTREAM_BUILD_DIR/CMakeCache.txt"

# A build tree made with another generator can't be reconfigured for Ninja.
if [[ -f "$CACHE_FILE" ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$CACHE_FILE"; then
  die "$SLIPSTREAM_BUILD_DIR was configured with another generator; remove it (rm -rf '$SLIPSTREAM_BUILD_DIR') and re-run"
fi

START="$(now_s)"
log "configuring ($BUILD_TYPE) in $SLIPSTREAM_BUILD_DIR"
cmake -S "$SLIPSTREAM_ROOT" -B "$SLIPSTREAM_BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE="$BUILD_TYPE" "$@"

log "building with $JOBS job(s)"
cmake --build "$SLIPSTREAM_BUILD_DIR" -j"$JOBS"
log "build finished in $(elapsed_since "$START"); binaries in $SLIPSTREAM_BUILD_DIR/bin"
