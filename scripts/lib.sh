# shellcheck shell=bash
# Shared helpers for Slipstream's scripts. Source it; don't run it.
#
#   source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
#
# Sets SLIPSTREAM_ROOT (the repo root), SLIPSTREAM_RUN_DIR (pid files, data,
# logs of local services), SLIPSTREAM_CACHE (downloads that survive runs) and
# SLIPSTREAM_BUILD_DIR (the CMake build tree, default <root>/build).

if [[ -n "${_SLIPSTREAM_LIB_LOADED:-}" ]]; then
  return 0
fi
_SLIPSTREAM_LIB_LOADED=1

SLIPSTREAM_SCRIPTS="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
SLIPSTREAM_ROOT="$(cd "$SLIPSTREAM_SCRIPTS/.." && pwd)"
export SLIPSTREAM_ROOT

# CI may run with a minimal environment; make sure HOME is usable.
if [[ -z "${HOME:-}" ]]; then
  HOME="$(getent passwd "$(id -u)" | cut -d: -f6)"
  export HOME
fi

export SLIPSTREAM_RUN_DIR="${SLIPSTREAM_RUN_DIR:-/tmp/slipstream-run}"
export SLIPSTREAM_CACHE="${SLIPSTREAM_CACHE:-$HOME/.cache/slipstream}"
export SLIPSTREAM_BUILD_DIR="${SLIPSTREAM_BUILD_DIR:-$SLIPSTREAM_ROOT/build}"

# Prefix for messages; scripts may set SLIPSTREAM_TAG before sourcing.
: "${SLIPSTREAM_TAG:=slipstream}"

log() { printf '[%s] %s\n' "$SLIPSTREAM_TAG" "$*"; }
warn() { printf '[%s] WARNING: %s\n' "$SLIPSTREAM_TAG" "$*" >&2; }
die() {
  printf '[%s] ERROR: %s\n' "$SLIPSTREAM_TAG" "$*" >&2
  exit 1
}

# Run a command as root (directly when we are root, else through sudo).
as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

# port_open HOST PORT: true if something accepts TCP connections there.
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# pid_alive PID: true if the process exists (and is not a zombie).
pid_alive() {
  local pid="$1" state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
  [[ "$state" != "Z" ]]
}

# read_pid FILE: prints the pid stored in FILE, if the file exists.
read_pid() {
  [[ -f "$1" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$1")"
  [[ -n "$pid" ]] || return 1
  printf '%s\n' "$pid"
}

# pid_cmdline_has PID STRING: true if the process's command line contains STRING.
pid_cmdline_has() {
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true)"
  [[ "$cmd" == *"$2"* ]]
}

# stop_pid PID NAME [TIMEOUT]: SIGTERM, wait up to TIMEOUT seconds (default
# 20), then SIGKILL. Only ever signals that one pid.
stop_pid() {
  local pid="$1" name="$2" timeout="${3:-20}" i
  pid_alive "$pid" || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  warn "$name (pid $pid) still running after ${timeout}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  die "could not stop $name (pid $pid)"
}

# now_s: seconds since the epoch with millisecond precision (for timings).
now_s() { date +%s.%N | cut -c1-14; }

# elapsed_since START: "12.3s" since START (a now_s value).
elapsed_since() {
  awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1fs", b - a }'
}
