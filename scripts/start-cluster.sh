#!/usr/bin/env bash
# A Slipstream cluster on one machine without Docker: one coordinator (the
# JobManager) and N workers (the TaskManagers), left running in the background.
#
# Usage: scripts/start-cluster.sh [--workers N] [--config PATH] [--run-dir DIR]
#                                 [--with-services] [--foreground] [-Dkey=value ...]
#        scripts/start-cluster.sh --stop [--run-dir DIR] [--with-services]
#        scripts/start-cluster.sh --status [--run-dir DIR]
#
#   --workers N       number of workers (default 2); the coordinator gets
#                     -Dcluster.min-workers=N (winning over a -D of that key),
#                     so it deploys the job over all N
#   --config PATH     application.properties for every process
#                     (default conf/application.properties)
#   -Dkey=value       configuration override for every process (repeatable)
#   --run-dir DIR     logs and pid files (default $SLIPSTREAM_RUN_DIR/cluster,
#                     i.e. /tmp/slipstream-run/cluster)
#   --with-services   also start Kafka and Redis first (scripts/kafka.sh start,
#                     scripts/redis.sh start; ports KAFKA_PORT=9092,
#                     REDIS_PORT=6379) and point the processes at them; with
#                     --stop, stop them too. Without it Kafka and Redis must
#                     already run (./start.sh starts both).
#   --foreground      don't return: wait for the processes, report any that
#                     exits, and stop them all on Ctrl-C (SIGINT/SIGTERM)
#   --stop            stop the cluster recorded in the run dir: SIGTERM to the
#                     workers, then the coordinator, waiting for each (SIGKILL
#                     after CLUSTER_STOP_TIMEOUT=60 s)
#   --status          show which recorded processes run (exit 0 if all do)
#
# Builds nothing: run ./scripts/build.sh first. Workers listen for data
# exchange on a free port each (-Dtaskmanager.data.port=0, winning over a -D
# of that key, since N workers share one machine) and advertise
# taskmanager.host (empty = 127.0.0.1; set a routable address with
# -Dtaskmanager.host=... to let workers on other machines join). The script
# waits until the coordinator accepts connections on jobmanager.rpc.port
# (CLUSTER_START_TIMEOUT=30 s), starts the workers, checks they are still up
# after a second, and prints where the logs are. The run dir holds
# coordinator.log/.pid and worker-1.log/.pid ... worker-N.log/.pid.
#
# Example (Kafka and Redis from ./start.sh, sample data from slipstream-gen):
#   ./start.sh && ./scripts/build.sh
#   scripts/start-cluster.sh --workers 3 -Dkafka.starting-offsets=earliest
#   build/bin/slipstream-gen --config conf/application.properties --partitions 4 --count 100000 --flush-watermark +1d
#   scripts/start-cluster.sh --stop
set -euo pipefail
SLIPSTREAM_TAG="slipstream cluster"
# shellcheck source=scripts/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

ACTION=start
WORKERS=2
CONFIG="$SLIPSTREAM_ROOT/conf/application.properties"
RUN_DIR="$SLIPSTREAM_RUN_DIR/cluster"
WITH_SERVICES=0
FOREGROUND=0
OVERRIDES=()
START_TIMEOUT="${CLUSTER_START_TIMEOUT:-30}"
STOP_TIMEOUT="${CLUSTER_STOP_TIMEOUT:-60}"

need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --workers) need_value "$@"; WORKERS="$2"; shift 2 ;;
    --workers=*) WORKERS="${1#*=}"; shift ;;
    --config) need_value "$@"; CONFIG="$2"; shift 2 ;;
    --config=*) CONFIG="${1#*=}"; shift ;;
    --run-dir) need_value "$@"; RUN_DIR="$2"; shift 2 ;;
    --run-dir=*) RUN_DIR="${1#*=}"; shift ;;
    --with-services) WITH_SERVICES=1; shift ;;
    --foreground) FOREGROUND=1; shift ;;
    --stop) ACTION=stop; shift ;;
    --status) ACTION=status; shift ;;
    -D) need_value "$@"; OVERRIDES+=("-D$2"); shift 2 ;;
    -D?*=*) OVERRIDES+=("$1"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || die "--workers must be a positive integer, not '$WORKERS'"
for o in "${OVERRIDES[@]}"; do
  [[ "$o" =~ ^-D[^=]+= ]] || die "expected -Dkey=value, got '$o'"
done
RUN_DIR="$(readlink -m "$RUN_DIR")"

export KAFKA_PORT="${KAFKA_PORT:-9092}" CONTROLLER_PORT="${CONTROLLER_PORT:-9093}" REDIS_PORT="${REDIS_PORT:-6379}"

BIN="$SLIPSTREAM_BUILD_DIR/bin"
COORDINATOR_BIN="$BIN/slipstream-coordinator"
WORKER_BIN="$BIN/slipstream-worker"

#------------------------------------------------------------------------------
# The processes recorded in the run dir
#------------------------------------------------------------------------------
# Prints "name pidfile" for the coordinator and every worker-*.pid, workers in
# numeric order.
recorded() {
  local f
  [[ -f "$RUN_DIR/coordinator.pid" ]] && printf 'coordinator %s\n' "$RUN_DIR/coordinator.pid"
  for f in "$RUN_DIR"/worker-*.pid; do
    [[ -f "$f" ]] || continue
    f="$(basename "$f" .pid)"
    printf '%s %s\n' "$f" "$RUN_DIR/$f.pid"
  done | sort -t- -k2,2n
}

# live_pid PIDFILE: prints the pid if it is alive and still one of our
# binaries (a recycled pid belongs to someone else and is never signalled).
live_pid() {
  local pid
  pid="$(read_pid "$1")" || return 1
  pid_alive "$pid" && pid_cmdline_has "$pid" "slipstream-" || return 1
  printf '%s\n' "$pid"
}

# stop_all TIMEOUT NAME:PID...: SIGTERM to all of them at once, wait up to
# TIMEOUT seconds for all to exit, then SIGKILL what is left.
stop_all() {
  local timeout="$1" entry i left=()
  shift
  for entry in "$@"; do
    if pid_alive "${entry#*:}"; then
      log "stopping ${entry%%:*} (pid ${entry#*:})"
      kill -TERM "${entry#*:}" 2>/dev/null || true
    fi
  done
  for ((i = 0; i <= timeout * 10; i++)); do
    left=()
    for entry in "$@"; do
      pid_alive "${entry#*:}" && left+=("$entry")
    done
    [[ ${#left[@]} -eq 0 ]] && return 0
    sleep 0.1
  done
  for entry in "${left[@]}"; do
    warn "${entry%%:*} (pid ${entry#*:}) still running after ${timeout}s; sending SIGKILL"
    kill -KILL "${entry#*:}" 2>/dev/null || true
  done
}

# stop_cluster [quiet]: stops what the run dir records: workers first (they
# flush their sink on SIGTERM), then the coordinator. Removes the pid files.
stop_cluster() {
  local name file pid workers=() coordinator=()
  while read -r name file; do
    if pid="$(live_pid "$file")"; then
      if [[ "$name" == coordinator ]]; then coordinator=("$name:$pid"); else workers+=("$name:$pid"); fi
    fi
  done < <(recorded)
  if [[ ${#workers[@]} -eq 0 && ${#coordinator[@]} -eq 0 && "${1:-}" != quiet ]]; then
    log "no cluster running in $RUN_DIR"
  fi
  [[ ${#workers[@]} -gt 0 ]] && stop_all "$STOP_TIMEOUT" "${workers[@]}"
  [[ ${#coordinator[@]} -gt 0 ]] && stop_all 30 "${coordinator[@]}"
  rm -f "$RUN_DIR"/coordinator.pid "$RUN_DIR"/worker-*.pid
}

status_cluster() {
  local name file pid total=0 running=0
  while read -r name file; do
    total=$((total + 1))
    if pid="$(live_pid "$file")"; then
      running=$((running + 1))
      printf '%-12s pid %-8s running   log %s\n' "$name" "$pid" "$RUN_DIR/$name.log"
    else
      printf '%-12s pid %-8s stopped   log %s\n' "$name" "$(read_pid "$file" || echo -)" "$RUN_DIR/$name.log"
    fi
  done < <(recorded)
  if [[ $total -eq 0 ]]; then
    log "no cluster recorded in $RUN_DIR"
    return 1
  fi
  log "$running of $total process(es) running"
  [[ $running -eq $total ]]
}

stop_services() {
  "$SLIPSTREAM_SCRIPTS/kafka.sh" stop || true
  "$SLIPSTREAM_SCRIPTS/redis.sh" stop || true
}

case "$ACTION" in
  stop)
    stop_cluster
    [[ $WITH_SERVICES -eq 1 ]] && stop_services
    exit 0
    ;;
  status)
    status_cluster
    exit $?
    ;;
esac

#------------------------------------------------------------------------------
# start
#------------------------------------------------------------------------------
for b in "$COORDINATOR_BIN" "$WORKER_BIN"; do
  [[ -x "$b" ]] || die "$b is missing: build first with ./scripts/build.sh (this script builds nothing)"
done
[[ -f "$CONFIG" ]] || die "configuration file $CONFIG not found"
CONFIG="$(readlink -f "$CONFIG")"

mkdir -p "$RUN_DIR"
while read -r name file; do
  if pid="$(live_pid "$file")"; then
    die "$name (pid $pid) of a cluster in $RUN_DIR still runs: stop it with $0 --stop --run-dir $RUN_DIR"
  fi
done < <(recorded)
rm -f "$RUN_DIR"/coordinator.pid "$RUN_DIR"/worker-*.pid "$RUN_DIR"/worker-*.log

# The coordinator's gRPC port: the last -Djobmanager.rpc.port, else the config
# file's, else the default.
RPC_PORT=""
for o in "${OVERRIDES[@]}"; do
  [[ "$o" =~ ^-Djobmanager\.rpc\.port=[[:space:]]*([0-9]+)[[:space:]]*$ ]] && RPC_PORT="${BASH_REMATCH[1]}"
done
if [[ -z "$RPC_PORT" ]]; then
  RPC_PORT="$(sed -n -E 's/^[[:space:]]*jobmanager\.rpc\.port[[:space:]]*[=:][[:space:]]*([0-9]+)[[:space:]]*$/\1/p' "$CONFIG" | tail -n 1)"
fi
RPC_PORT="${RPC_PORT:-6123}"
if port_open 127.0.0.1 "$RPC_PORT"; then
  die "something already listens on port $RPC_PORT (jobmanager.rpc.port): another coordinator? ($0 --status, or -Djobmanager.rpc.port=...)"
fi

COMMON=(--config "$CONFIG")
if [[ $WITH_SERVICES -eq 1 ]]; then
  "$SLIPSTREAM_SCRIPTS/kafka.sh" start
  "$SLIPSTREAM_SCRIPTS/redis.sh" start
  COMMON+=("-Dkafka.bootstrap.servers=127.0.0.1:$KAFKA_PORT" "-Dredis.host=127.0.0.1" "-Dredis.port=$REDIS_PORT")
fi
# The user's overrides come after ours and win (the last -D of a key wins) ...
COMMON+=("${OVERRIDES[@]}")
# ... except the two the cluster's shape needs.
COORDINATOR_ARGS=("${COMMON[@]}" "-Dcluster.min-workers=$WORKERS")
WORKER_ARGS=("${COMMON[@]}" "-Dtaskmanager.data.port=0")

STARTED=()  # name:pid of what this run started
STARTED_OK=0
on_exit() {
  if [[ $STARTED_OK -eq 0 && ${#STARTED[@]} -gt 0 ]]; then
    warn "start failed; stopping what was started"
    # Workers first, then the coordinator (STARTED[0]).
    [[ ${#STARTED[@]} -gt 1 ]] && stop_all 20 "${STARTED[@]:1}"
    stop_all 20 "${STARTED[0]}"
    rm -f "$RUN_DIR"/coordinator.pid "$RUN_DIR"/worker-*.pid
  fi
}
trap on_exit EXIT

# launch NAME BINARY ARGS...: background process logging to NAME.log, pid in
# NAME.pid. nohup: a closed terminal must not take the cluster with it.
launch() {
  local name="$1" pid
  shift
  if [[ $FOREGROUND -eq 1 ]]; then
    "$@" </dev/null >"$RUN_DIR/$name.log" 2>&1 &
  else
    nohup "$@" </dev/null >"$RUN_DIR/$name.log" 2>&1 &
  fi
  pid=$!
  printf '%s\n' "$pid" >"$RUN_DIR/$name.pid"
  STARTED+=("$name:$pid")
}

# fail_with NAME MESSAGE: shows the end of NAME's log and dies.
fail_with() {
  echo "----- last lines of $RUN_DIR/$1.log -----" >&2
  tail -n 20 "$RUN_DIR/$1.log" >&2 || true
  echo "-----" >&2
  die "$2"
}

START="$(now_s)"
log "starting the coordinator (gRPC :$RPC_PORT) and $WORKERS worker(s); config $CONFIG"
launch coordinator "$COORDINATOR_BIN" "${COORDINATOR_ARGS[@]}"
coordinator_pid="${STARTED[0]#*:}"
for ((i = 0; ; i++)); do
  port_open 127.0.0.1 "$RPC_PORT" && break
  pid_alive "$coordinator_pid" || fail_with coordinator "the coordinator exited at start"
  ((i < START_TIMEOUT * 10)) || fail_with coordinator "the coordinator does not accept connections on port $RPC_PORT after ${START_TIMEOUT}s"
  sleep 0.1
done
log "coordinator up (pid $coordinator_pid) after $(elapsed_since "$START")"

for ((w = 1; w <= WORKERS; w++)); do
  launch "worker-$w" "$WORKER_BIN" "${WORKER_ARGS[@]}"
done
sleep 1
for entry in "${STARTED[@]}"; do
  pid_alive "${entry#*:}" || fail_with "${entry%%:*}" "${entry%%:*} exited at start"
done
STARTED_OK=1

log "running: coordinator (pid $coordinator_pid) and $WORKERS worker(s) (pids $(printf '%s\n' "${STARTED[@]:1}" | cut -d: -f2 | tr '\n' ' ' | sed 's/ $//'))"
if [[ $WORKERS -eq 1 ]]; then
  log "logs: $RUN_DIR/coordinator.log, $RUN_DIR/worker-1.log"
else
  log "logs: $RUN_DIR/coordinator.log, $RUN_DIR/worker-1.log ... worker-$WORKERS.log"
fi
log "the job is deployed once $WORKERS worker(s) have registered (see coordinator.log)"

if [[ $FOREGROUND -eq 0 ]]; then
  log "stop with: $0 --stop --run-dir $RUN_DIR"
  exit 0
fi

#------------------------------------------------------------------------------
# --foreground
#------------------------------------------------------------------------------
stopping=0
on_signal() {
  stopping=1
  trap '' INT TERM HUP
  log "stopping the cluster"
  # Ctrl-C also reaches the processes themselves (same process group); what
  # is still running gets SIGTERM here.
  stop_cluster quiet
}
trap on_signal INT TERM HUP
log "running in the foreground; Ctrl-C stops the cluster"
declare -A names=()
for entry in "${STARTED[@]}"; do names["${entry#*:}"]="${entry%%:*}"; done
while [[ ${#names[@]} -gt 0 ]]; do
  done_pid=""
  rc=0
  wait -n -p done_pid "${!names[@]}" || rc=$?
  if [[ -z "${done_pid:-}" ]]; then
    # Interrupted by a signal (the trap has stopped everything) or nothing
    # left to wait for.
    [[ $stopping -eq 1 ]] && break
    continue
  fi
  [[ $stopping -eq 1 ]] || warn "${names[$done_pid]} (pid $done_pid) exited with status $rc; log: $RUN_DIR/${names[$done_pid]}.log"
  rm -f "$RUN_DIR/${names[$done_pid]}.pid"
  unset "names[$done_pid]"
done
wait 2>/dev/null || true
log "all processes exited"
