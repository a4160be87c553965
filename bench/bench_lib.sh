# shellcheck shell=bash
# Shared by the bench/run_*.sh scripts (sourced after scripts/lib.sh).

# bench_finish STATUS: the end of a run's EXIT trap, once its processes are
# stopped. Stops the Kafka and Redis the script started (STARTED_KAFKA,
# STARTED_REDIS, KAFKA_SH, REDIS_SH; a Redis Cluster with STARTED_REDIS_CLUSTER
# and REDIS_CLUSTER_SH), removes state, checkpoints, savepoints
# and the copied binaries from $RUN, then keeps the logs on failure (printing
# their tails) or with --keep-logs (KEEP_LOGS=1), else removes $RUN; exits
# with STATUS.
bench_finish() {
  local status=$1
  # Kafka's data (this run's topics) goes with it; nothing else uses that dir.
  if [[ "$STARTED_KAFKA" -eq 1 ]]; then "$KAFKA_SH" clean >/dev/null; fi
  if [[ "$STARTED_REDIS" -eq 1 ]]; then "$REDIS_SH" stop >/dev/null; fi
  if [[ "${STARTED_REDIS_CLUSTER:-0}" -eq 1 ]]; then "$REDIS_CLUSTER_SH" stop >/dev/null; fi
  find "$RUN" -maxdepth 2 \( -name 'state*' -o -name checkpoints -o -name savepoints \) -exec rm -rf {} + 2>/dev/null
  rm -rf "${RUN:?}/bin"
  if [[ "$status" -ne 0 ]]; then
    for f in "$RUN"/*.log "$RUN"/*/*.log; do
      [[ -f "$f" ]] || continue
      printf -- '----- last 15 lines of %s -----\n' "$f" >&2
      tail -n 15 "$f" >&2
    done
    warn "failed (exit $status); logs kept in $RUN"
  elif [[ "$KEEP_LOGS" -eq 1 ]]; then
    log "logs kept in $RUN"
  else
    rm -rf "$RUN"
  fi
  exit "$status"
}

# bench_build BUILD BINARY...: runs scripts/build.sh when BUILD is 1 or one
# of the binaries is missing from $BIN, then insists they all exist. Sets
# BUILD_TYPE and SANITIZE (from the CMake cache, for the report) and warns
# when the build is Debug or sanitized: its numbers would be low.
bench_build() {
  local build=$1 b missing=0
  shift
  for b in "$@"; do
    [[ -x "$BIN/$b" ]] || missing=1
  done
  if [[ "$build" -eq 1 || "$missing" -eq 1 ]]; then
    log "building (scripts/build.sh)"
    "$SLIPSTREAM_SCRIPTS/build.sh"
  fi
  for b in "$@"; do
    [[ -x "$BIN/$b" ]] || die "$BIN/$b is missing after the build"
  done
  BUILD_TYPE="$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$SLIPSTREAM_BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)"
  SANITIZE="$(sed -n 's/^SLIPSTREAM_SANITIZE:BOOL=//p' "$SLIPSTREAM_BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)"
  if [[ "$SANITIZE" == "ON" || "$BUILD_TYPE" == "Debug" ]]; then
    warn "the build in $SLIPSTREAM_BUILD_DIR is $BUILD_TYPE with SLIPSTREAM_SANITIZE=$SANITIZE: numbers will be low"
  fi
}

# bench_lock: one benchmark per port set at a time, whichever script. Two
# runs would share the ports (gRPC even lets two coordinators listen on one
# port with SO_REUSEPORT, so the status polls would alternate between them)
# and disturb each other's numbers. The lock is in /tmp, so it holds across
# SLIPSTREAM_RUN_DIRs; file descriptor 8 keeps it for the script's life.
bench_lock() {
  LOCK="${TMPDIR:-/tmp}/slipstream-bench-$KAFKA_PORT-$REDIS_PORT-$COORDINATOR_PORT.lock"
  exec 8>>"$LOCK"
  flock -n 8 || die "another benchmark is running on these ports (lock $LOCK)"
}

# Polling helpers (no forks: the scripts poll every 100 ms).
kv() { # kv KEY LINE: the value of KEY in a line of key=value pairs
  local re="(^| )$1=([^ ]*)"
  if [[ "$2" =~ $re ]]; then printf '%s\n' "${BASH_REMATCH[2]}"; fi
}
clock_ms() { # sets NOW_MS
  local t="${EPOCHREALTIME/[.,]/}"
  # shellcheck disable=SC2034  # read by the scripts that source this
  NOW_MS=$((t / 1000))
}
running() { # running PID: alive and not a zombie
  local stat
  [[ -r "/proc/$1/stat" ]] && read -r stat <"/proc/$1/stat" 2>/dev/null && [[ "$stat" != *") Z "* ]]
}
cpu_ticks() { # cpu_ticks PID: utime + stime (clock ticks), 0 if gone
  local stat fields
  read -r stat 2>/dev/null <"/proc/$1/stat" || {
    echo 0
    return
  }
  read -r -a fields <<<"${stat##*) }"
  echo $((fields[11] + fields[12]))
}
# shellcheck disable=SC2034  # used by the scripts that source this
CLK_TCK="$(getconf CLK_TCK)"
