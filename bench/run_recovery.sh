#!/usr/bin/env bash
# Recovery and checkpoint-overhead benchmark (issue 4).
#
# Usage: bench/run_recovery.sh [--part kill|overhead|rescale|all] [options] [-Dkey=value ...]
#
# Part "kill": how long a job is down after a worker dies.
#   A live stream (slipstream-gen --rate R, event time advancing 1 ms per
#   record) feeds a coordinator and 2 workers (cluster.min-workers=2,
#   checkpoints every --interval, every other setting at its default:
#   heartbeat.timeout 10 s, restart-strategy fixed-delay 1 s,
#   cluster.stabilization-timeout 1 s). Once the job has caught up and a
#   checkpoint has completed, the script waits --kill-after, sends SIGKILL to
#   one worker (alternating) and starts it again at once (as a supervisor such
#   as systemd or Kubernetes would, with no delay), then polls GetJob every
#   100 ms (slipstream-bench-status --total) and reports, from the kill:
#     failover   the coordinator has failed the attempt (state or attempt changed)
#     deployed   the coordinator deploys the next attempt (its log line)
#     running    both workers report the attempt (their state is restored)
#     resumed    the restored attempt processes records again (records_in > 0)
#     caught up  consumer lag (sum over partitions of the broker's end offset
#                minus the next offset to read, as the workers last saw them)
#                back under --lag-ok records (default: 0.25 s of input), and
#                the operator watermark back past where it was at the kill
#   plus the backlog replayed (the largest lag seen in the restored attempt)
#   and how long before the kill the last checkpoint had completed.
#   --kills N kills, each after the job caught up and a new checkpoint completed.
#
#   --rate N          live records per second (default 20000)
#   --users N         distinct users (default 100000)
#   --interval DUR    execution.checkpointing.interval (default "30 s")
#   --kill-after DUR  wait this long after a checkpoint completed (default "15 s",
#                     half the default interval: the replay covers ~15 s of input)
#   --kills N         (default 3)
#   --lag-ok N        "caught up" lag threshold in records (default rate / 4)
#
# Part "overhead": catch-up throughput with checkpoints every 30 s against the
#   same run without checkpoints (interval 1 d: none within a run). A topic is
#   preloaded once per --overhead-users value (slipstream-gen --count --events,
#   step 1 ms, 4 partitions, flush records); then runs alternate between the
#   two modes (--runs of each), every run a fresh coordinator + --workers
#   workers reading from the earliest offset until every record is consumed,
#   the watermark has passed the flush records and Redis has acknowledged
#   every feature (the definition of bench/run_scaleout.sh). events/s = events
#   / (first poll with records_in > 0 .. first poll with the condition). It
#   reports both modes' medians, their ratio (target: with / without ≥ 0.90),
#   the worker CPU seconds per 1M events, and the checkpoints of each run
#   (count, synchronous part and end-to-end time, from the logs).
#
#   --events N            events per topic (default 12000000: ~1 min per run,
#                         so a 30 s interval gives 1–2 checkpoints per run)
#   --overhead-users LIST comma-separated user counts (default 100000)
#   --workers N           workers per run (default 1)
#   --runs N              runs of each mode (default 2)
#
# Part "rescale" (issue 5): the pause a scale-out causes.
#   --preload records of --users users (default for this part: 1,000,000
#   users, 3,000,000 records, event time 1 ms apart, ending now) are produced
#   first, then a live stream of --rate records/s follows. A coordinator
#   (scheduler-mode=reactive, checkpoints every --interval,
#   cluster.stabilization-timeout 1 s) and 2 workers read from the earliest
#   offset. Once they have caught up, a worker joins (--joins times, one more
#   each time, after the job caught up again) and the script reports, from
#   the start of the joining worker's process:
#     requested  the coordinator asks for the rescale checkpoint (its log)
#     ended      the checkpoint completed and the old attempt ended (its log)
#     running    every worker reports the new attempt (state restored)
#     resumed    the new attempt processes records (records_in > 0)
#     caught up  lag back under --lag-ok records
#   The pause is "ended" to "resumed": the time no worker processes input.
#
#   --preload N       records before the live stream (default 3000000)
#   --joins N         workers added one after the other (default 2: 2 -> 3 -> 4)
#
# Common:
#   --build           run scripts/build.sh first (default: only if a binary is missing)
#   --keep-logs       keep the run directory (logs; state is always deleted)
#   -Dkey=value       extra configuration for coordinator and workers (repeatable)
#
# Like the other bench scripts it starts its own Kafka (KRaft, fresh data dir)
# and Redis on dedicated ports, refuses to run if anything listens on them,
# takes the per-port-set lock, and prints Markdown blocks for bench/RESULTS.md.
#
# Environment (defaults): BENCH_KAFKA_PORT=29092 BENCH_CONTROLLER_PORT=29093
#   BENCH_REDIS_PORT=26379 BENCH_COORDINATOR_PORT=26123
#   BENCH_TIMEOUT=300 (give up on a phase that makes no progress for this many s)
#   SLIPSTREAM_RUN_DIR=/tmp/slipstream-run (Kafka data in bench-kafka-<port>, Redis in
#   bench-redis-<port>, logs in recovery-<date>-<time>-XXXX, deleted after a
#   successful run unless --keep-logs)
set -euo pipefail
# shellcheck disable=SC2034  # read by scripts/lib.sh
SLIPSTREAM_TAG="bench recovery"
# shellcheck disable=SC1091 source=SCRIPTDIR/../scripts/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../scripts/lib.sh"
# shellcheck disable=SC1091 source=SCRIPTDIR/bench_lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/bench_lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

PART=all
RATE=20000
USERS=100000
INTERVAL="30 s"
KILL_AFTER="15 s"
KILLS=3
PRELOAD=3000000
JOINS=2
USERS_SET=0
LAG_OK=""
EVENTS=12000000
OVERHEAD_USERS=100000
WORKERS=1
RUNS=2
BUILD=0
KEEP_LOGS=0
EXTRA=()
need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --part) need_value "$@"; PART="$2"; shift 2 ;;
    --rate) need_value "$@"; RATE="$2"; shift 2 ;;
    --users) need_value "$@"; USERS="$2"; USERS_SET=1; shift 2 ;;
    --preload) need_value "$@"; PRELOAD="$2"; shift 2 ;;
    --joins) need_value "$@"; JOINS="$2"; shift 2 ;;
    --interval) need_value "$@"; INTERVAL="$2"; shift 2 ;;
    --kill-after) need_value "$@"; KILL_AFTER="$2"; shift 2 ;;
    --kills) need_value "$@"; KILLS="$2"; shift 2 ;;
    --lag-ok) need_value "$@"; LAG_OK="$2"; shift 2 ;;
    --events) need_value "$@"; EVENTS="$2"; shift 2 ;;
    --overhead-users) need_value "$@"; OVERHEAD_USERS="$2"; shift 2 ;;
    --workers) need_value "$@"; WORKERS="$2"; shift 2 ;;
    --runs) need_value "$@"; RUNS="$2"; shift 2 ;;
    --build) BUILD=1; shift ;;
    --keep-logs) KEEP_LOGS=1; shift ;;
    -D?*=*) EXTRA+=("$1"); shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[[ "$PART" =~ ^(kill|overhead|rescale|all)$ ]] || die "--part must be kill, overhead, rescale or all, got '$PART'"
if [[ "$PART" == rescale && "$USERS_SET" -eq 0 ]]; then USERS=1000000; fi
for v in RATE USERS KILLS EVENTS WORKERS RUNS PRELOAD JOINS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v,,} must be a positive integer, got '${!v}'"
done
[[ -z "$LAG_OK" || "$LAG_OK" =~ ^[1-9][0-9]*$ ]] || die "--lag-ok must be a positive integer, got '$LAG_OK'"
LAG_OK="${LAG_OK:-$((RATE / 4 > 1000 ? RATE / 4 : 1000))}"
[[ "$OVERHEAD_USERS" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--overhead-users: expected N[,N...], got '$OVERHEAD_USERS'"
duration_ms() { # Flink-style duration ("500 ms", "15 s", "2 min") in ms
  local re='^[[:space:]]*([0-9]+)[[:space:]]*(ms|s|min|h|d)?[[:space:]]*$'
  [[ "$1" =~ $re ]] || return 1
  local n="${BASH_REMATCH[1]}"
  case "${BASH_REMATCH[2]}" in
    "" | ms) echo "$n" ;;
    s) echo $((n * 1000)) ;;
    min) echo $((n * 60000)) ;;
    h) echo $((n * 3600000)) ;;
    d) echo $((n * 86400000)) ;;
  esac
}
KILL_AFTER_MS="$(duration_ms "$KILL_AFTER")" || die "--kill-after: expected a duration like '15 s', got '$KILL_AFTER'"
duration_ms "$INTERVAL" >/dev/null || die "--interval: expected a duration like '30 s', got '$INTERVAL'"

PARTITIONS=4
export KAFKA_PORT="${BENCH_KAFKA_PORT:-29092}"
export CONTROLLER_PORT="${BENCH_CONTROLLER_PORT:-29093}"
export KAFKA_DATA_DIR="$SLIPSTREAM_RUN_DIR/bench-kafka-$KAFKA_PORT"  # per port set: never another run's broker
export REDIS_PORT="${BENCH_REDIS_PORT:-26379}"
export REDIS_DIR="$SLIPSTREAM_RUN_DIR/bench-redis-$REDIS_PORT"
COORDINATOR_PORT="${BENCH_COORDINATOR_PORT:-26123}"
TIMEOUT="${BENCH_TIMEOUT:-300}"
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "BENCH_TIMEOUT must be a positive integer, got '$TIMEOUT'"
BIN="$SLIPSTREAM_BUILD_DIR/bin"
KAFKA_SH="$SLIPSTREAM_SCRIPTS/kafka.sh"
REDIS_SH="$SLIPSTREAM_SCRIPTS/redis.sh"

# ------------------------------------------------------------------ build
BINARIES=(slipstream-gen slipstream-coordinator slipstream-worker slipstream-bench-status)
bench_build "$BUILD" "${BINARIES[@]}"
command -v redis-cli >/dev/null 2>&1 || die "redis-cli not found: run scripts/setup.sh first"

# ------------------------------------------------------------------ one run at a time
bench_lock

# ------------------------------------------------------------------ run dir, cleanup
mkdir -p "$SLIPSTREAM_RUN_DIR"
RUN="$(mktemp -d "$SLIPSTREAM_RUN_DIR/recovery-$(date +%Y%m%d-%H%M%S)-XXXX")"
TOPIC_BASE="bench-recovery-$(date +%s)-$$"
STARTED_KAFKA=0
STARTED_REDIS=0
GEN_PID=""
COORDINATOR_PID=""
WORKER_PIDS=()
stop_job() { # workers first (all at once), then the coordinator
  local pid i
  for pid in ${WORKER_PIDS[@]+"${WORKER_PIDS[@]}"}; do
    pid_alive "$pid" && kill -TERM "$pid" 2>/dev/null
  done
  for pid in ${WORKER_PIDS[@]+"${WORKER_PIDS[@]}"}; do
    for ((i = 0; i < 600; i++)); do
      pid_alive "$pid" || break
      sleep 0.1
    done
    stop_pid "$pid" "slipstream-worker" 1
  done
  WORKER_PIDS=()
  if [[ -n "$COORDINATOR_PID" ]]; then stop_pid "$COORDINATOR_PID" "slipstream-coordinator" 20; fi
  COORDINATOR_PID=""
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  if [[ -n "$GEN_PID" ]]; then stop_pid "$GEN_PID" "slipstream-gen" 10; fi
  stop_job
  bench_finish "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A copy of the binaries, so a rebuild meanwhile does not disturb the runs.
mkdir -p "$RUN/bin"
for b in "${BINARIES[@]}"; do
  cp "$BIN/$b" "$RUN/bin/$b" || die "cannot copy $BIN/$b"
done
BIN="$RUN/bin"
[[ "$("$BIN/slipstream-bench-status" --help 2>&1 || true)" == *--total* ]] ||
  die "slipstream-bench-status has no --total: rebuild (--build)"

# ------------------------------------------------------------------ machine
LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
NPROC="$(nproc)"
CPU_MODEL="$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)"
MEM_GIB="$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)"
COMMIT="$(git -C "$SLIPSTREAM_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$SLIPSTREAM_ROOT" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null || true)" ]]; then
  COMMIT="$COMMIT + local changes"
fi
log "run dir $RUN; load average at start $LOADAVG_START ($NPROC CPUs)"

# ------------------------------------------------------------------ Kafka, Redis
for port in "$KAFKA_PORT" "$CONTROLLER_PORT" "$REDIS_PORT" "$COORDINATOR_PORT"; do
  if port_open 127.0.0.1 "$port"; then
    die "port $port is in use (see: ss -ltnp 'sport = :$port'); stop it, or choose other BENCH_*_PORT values"
  fi
done
STARTED_KAFKA=1
"$KAFKA_SH" clean >/dev/null
"$KAFKA_SH" start 8>&-
STARTED_REDIS=1
"$REDIS_SH" start 8>&-
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"

# ------------------------------------------------------------------ helpers
ms_to_s() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }
fmt() { LC_ALL=C awk -v n="$1" 'BEGIN { s = sprintf("%d", n); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'; }
median() { # median of the numbers on stdin
  awk -v fmt="${1:-%.0f}" '{ for (i = 1; i <= NF; i++) v[++n] = $i }
    END { if (n == 0) { printf fmt "\n", 0; exit }
          for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
          printf fmt "\n", (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) }'
}
status_total() { "$BIN/slipstream-bench-status" --coordinator "127.0.0.1:$COORDINATOR_PORT" --timeout-ms 1000 --total 2>/dev/null; }
completed_checkpoints() { # completed checkpoints in a coordinator log
  grep -c 'checkpoint [0-9]* of job .* completed in' "$1" 2>/dev/null || true
}
# common_args DIR TOPIC: the configuration of one job run
common_args() {
  COMMON=(--config "$SLIPSTREAM_ROOT/conf/application.properties"
    "-Dkafka.bootstrap.servers=$BOOTSTRAP" "-Dkafka.topic=$2" "-Dkafka.dlq.topic=$2-dlq"
    "-Dkafka.group.id=$2-$(basename "$1")"
    "-Dredis.host=127.0.0.1" "-Dredis.port=$REDIS_PORT"
    "-Djobmanager.rpc.address=127.0.0.1" "-Djobmanager.rpc.port=$COORDINATOR_PORT"
    "-Dstate.checkpoints.dir=file://$1/checkpoints" "-Dstate.savepoints.dir=file://$1/savepoints"
    "-Dheartbeat.interval=200 ms" "-Dlog.level=info")
}
# start_coordinator DIR TOPIC [ARGS...]
start_coordinator() {
  local dir="$1" topic="$2" line i
  shift 2
  "$BIN/slipstream-coordinator" "${COMMON[@]}" "-Dstate.dir=$dir/state-coordinator" "$@" \
    ${EXTRA[@]+"${EXTRA[@]}"} >"$dir/coordinator.log" 2>&1 8>&- &
  COORDINATOR_PID=$!
  for ((i = 0; ; i++)); do
    pid_alive "$COORDINATOR_PID" || die "slipstream-coordinator exited (log: $dir/coordinator.log)"
    if line="$(status_total)"; then
      [[ "$(kv topic "$line")" == "$topic" ]] ||
        die "the coordinator on :$COORDINATOR_PORT serves another job ($line): is another benchmark running?"
      break
    fi
    ((i < 300)) || die "the coordinator did not answer GetJob within 30 s (log: $dir/coordinator.log)"
    sleep 0.1
  done
}
# start_worker DIR N: starts worker N (log worker-N.log, appended across restarts)
start_worker() {
  "$BIN/slipstream-worker" "${COMMON[@]}" "-Dstate.dir=$1/state-w$2" -Dkafka.starting-offsets=earliest \
    -Dtaskmanager.data.port=0 ${EXTRA[@]+"${EXTRA[@]}"} >>"$1/worker-$2.log" 2>&1 8>&- &
  WORKER_PIDS[$2]=$!
}
HEADER="Machine: $NPROC × $CPU_MODEL, $MEM_GIB GiB RAM, shared by Kafka, Redis, the generator, the coordinator and the workers (and other work on this machine). Build: $BUILD_TYPE, commit $COMMIT."

# ================================================================== part: kill
run_kill() {
  local dir="$RUN/kill" topic="$TOPIC_BASE-live" line state attempt current records_in lag wm
  mkdir -p "$dir"
  log "kill: live stream of $RATE records/s ($USERS users) into $topic; 2 workers, checkpoints every $INTERVAL"
  "$BIN/slipstream-gen" "-Dkafka.bootstrap.servers=$BOOTSTRAP" --topic "$topic" --partitions "$PARTITIONS" \
    --count 0 --rate "$RATE" --users "$USERS" --event-time-step "1 ms" --seed 7 \
    >"$dir/gen.log" 2>&1 8>&- &
  GEN_PID=$!
  common_args "$dir" "$topic"
  # The coordinator reads the topic's partitions: wait until the generator created it.
  local i
  for ((i = 0; ; i++)); do
    running "$GEN_PID" || die "slipstream-gen exited (log: $dir/gen.log)"
    grep -q 'created topic' "$dir/gen.log" 2>/dev/null && break
    ((i < 300)) || die "slipstream-gen did not create $topic within 30 s (log: $dir/gen.log)"
    sleep 0.1
  done
  start_coordinator "$dir" "$topic" -Dcluster.min-workers=2 "-Dexecution.checkpointing.interval=$INTERVAL"
  start_worker "$dir" 0
  start_worker "$dir" 1
  ROWS=()
  local k victim last_line="" before_completed ckpt_seen_ms kill_ms wm_before attempt_before lag_before
  local failover_ms deployed_ms running_ms resumed_ms caught_ms wm_back_ms max_lag progress_ms
  # wait_ready NEED_COMPLETED: until the job runs on 2 workers with a small
  # lag and the coordinator log shows at least NEED_COMPLETED checkpoints.
  wait_ready() {
    local need="$1" start_ms
    clock_ms
    start_ms=$NOW_MS
    while :; do
      running "$GEN_PID" || die "slipstream-gen exited (log: $dir/gen.log)"
      running "$COORDINATOR_PID" || die "the coordinator exited (log: $dir/coordinator.log)"
      if line="$(status_total)"; then
        last_line="$line"
        if [[ "$(kv state "$line")" == RUNNING && "$(kv current "$line")" == 2 && "$(kv lag "$line")" -ge 0 &&
          "$(kv lag "$line")" -le "$LAG_OK" && "$(completed_checkpoints "$dir/coordinator.log")" -ge "$need" ]]; then
          clock_ms
          READY_MS=$NOW_MS
          return
        fi
      fi
      clock_ms
      ((NOW_MS - start_ms < TIMEOUT * 1000)) ||
        die "not ready within ${TIMEOUT}s (need $need completed checkpoints, lag <= $LAG_OK): $last_line"
      sleep 0.1
    done
  }
  for ((k = 1; k <= KILLS; k++)); do
    before_completed="$(completed_checkpoints "$dir/coordinator.log")"
    wait_ready $((before_completed + 1))
    ckpt_seen_ms=$READY_MS
    log "kill $k/$KILLS: caught up, checkpoint $((before_completed + 1)) completed; killing in $KILL_AFTER"
    # Steady state until the kill: keep the last status (and its lag).
    clock_ms
    local lag_sum=0 lag_n=0
    while ((NOW_MS < ckpt_seen_ms + KILL_AFTER_MS)); do
      if line="$(status_total)"; then
        last_line="$line"
        lag_sum=$((lag_sum + $(kv lag "$line"))); lag_n=$((lag_n + 1))
      fi
      sleep 0.1
      clock_ms
    done
    [[ "$(kv state "$last_line")" == RUNNING ]] || die "the job is not running before kill $k: $last_line"
    wm_before="$(kv watermark_min_ms "$last_line")"
    attempt_before="$(kv attempt "$last_line")"
    lag_before=$((lag_n > 0 ? lag_sum / lag_n : 0))
    victim=$(((k - 1) % 2))
    local since_ckpt_ms=$((NOW_MS - ckpt_seen_ms))
    kill -KILL "${WORKER_PIDS[$victim]}"
    { wait "${WORKER_PIDS[$victim]}"; } 2>/dev/null || true  # reaped here: no "Killed" line from bash
    clock_ms
    kill_ms=$NOW_MS
    echo "=== $(date -u +%H:%M:%S) killed (SIGKILL) and restarted ===" >>"$dir/worker-$victim.log"
    start_worker "$dir" "$victim"
    failover_ms=""; deployed_ms=""; running_ms=""; resumed_ms=""; caught_ms=""; wm_back_ms=""; max_lag=0
    progress_ms=$kill_ms
    while [[ -z "$caught_ms" || -z "$wm_back_ms" ]]; do
      for i in 0 1; do
        running "${WORKER_PIDS[$i]}" || die "worker $i exited (log: $dir/worker-$i.log)"
      done
      if line="$(status_total)"; then
        clock_ms
        echo "$((NOW_MS - kill_ms)) $line" >>"$dir/status-kill-$k.log"
        state="$(kv state "$line")"
        attempt="$(kv attempt "$line")"
        current="$(kv current "$line")"
        records_in="$(kv records_in "$line")"
        lag="$(kv lag "$line")"
        wm="$(kv watermark_min_ms "$line")"
        if [[ -z "$failover_ms" && ("$state" != RUNNING || "$attempt" != "$attempt_before") ]]; then
          failover_ms=$((NOW_MS - kill_ms))
        fi
        if [[ "$state" == RUNNING && "$attempt" -gt "$attempt_before" && "$current" == 2 ]]; then
          [[ -n "$failover_ms" ]] || failover_ms=$((NOW_MS - kill_ms))
          [[ -n "$running_ms" ]] || running_ms=$((NOW_MS - kill_ms))
          if [[ -z "$resumed_ms" && "$records_in" -gt 0 ]]; then resumed_ms=$((NOW_MS - kill_ms)); fi
          if [[ -n "$resumed_ms" ]]; then
            ((lag > max_lag)) && max_lag=$lag
            if [[ -z "$caught_ms" && "$lag" -ge 0 && "$lag" -le "$LAG_OK" ]]; then caught_ms=$((NOW_MS - kill_ms)); fi
            if [[ -z "$wm_back_ms" && "$wm" -ge "$wm_before" ]]; then wm_back_ms=$((NOW_MS - kill_ms)); fi
          fi
        fi
      fi
      clock_ms
      if ((NOW_MS - progress_ms >= 5000)); then
        progress_ms=$NOW_MS
        log "  +$(ms_to_s $((NOW_MS - kill_ms)))s: ${line:-no status}"
      fi
      ((NOW_MS - kill_ms < TIMEOUT * 1000)) || die "kill $k: not caught up within ${TIMEOUT}s: $line"
      sleep 0.1
    done
    # The coordinator logs when it deploys the next attempt; the workers
    # report it (current = 2) once they have restored their state.
    local deploy_line deploy_epoch_ms
    deploy_line="$(grep -h "deploying attempt $((attempt_before + 1)) of job" "$dir/coordinator.log" | head -n 1 || true)"
    if [[ -n "$deploy_line" ]] && deploy_epoch_ms="$(date -d "${deploy_line:0:23}" +%s%3N 2>/dev/null)"; then
      deployed_ms=$((deploy_epoch_ms - kill_ms))
    else
      deployed_ms=0
      warn "kill $k: no 'deploying attempt $((attempt_before + 1))' line in $dir/coordinator.log"
    fi
    log "  kill $k (worker $victim, $(ms_to_s "$since_ckpt_ms") s after a checkpoint): failover $(ms_to_s "$failover_ms") s," \
      "deployed $(ms_to_s "$deployed_ms") s, tasks running $(ms_to_s "$running_ms") s, resumed $(ms_to_s "$resumed_ms") s, caught up $(ms_to_s "$caught_ms") s" \
      "(watermark back $(ms_to_s "$wm_back_ms") s), backlog $max_lag records"
    ROWS+=("| $(date -u +%H:%M:%S) | $k | $(ms_to_s "$since_ckpt_ms") | $(fmt "$lag_before") | $(ms_to_s "$failover_ms") | $(ms_to_s "$deployed_ms") | $(ms_to_s "$running_ms") | **$(ms_to_s "$resumed_ms")** | **$(ms_to_s "$caught_ms")** | $(ms_to_s "$wm_back_ms") | $(fmt "$max_lag") |")
    RESUMED_ALL+=("$resumed_ms")
    CAUGHT_ALL+=("$caught_ms")
  done
  stop_pid "$GEN_PID" "slipstream-gen" 10
  GEN_PID=""
  stop_job
  local users_line
  users_line="$(grep -h -o 'checkpoint [0-9]*: alignment .*' "$dir"/worker-*.log | tail -n 2 | tr '\n' ';' || true)"
  cat <<EOF

### $(date -u '+%Y-%m-%d %H:%M UTC'): recovery after kill -9 of a worker, \`--part kill --rate $RATE --users $USERS --interval "$INTERVAL" --kill-after "$KILL_AFTER" --kills $KILLS\`${EXTRA[@]+ ${EXTRA[*]}}

$HEADER Load average at start $LOADAVG_START, now $(cut -d' ' -f1-3 /proc/loadavg). 2 workers, $PARTITIONS partitions, a live stream of $(fmt "$RATE") records/s; a worker is killed $KILL_AFTER after a checkpoint completed and restarted at once; "caught up" = lag ≤ $(fmt "$LAG_OK") records. Times in seconds from the kill, from polls 100 ms apart (the workers report every 200 ms).

| time (UTC) | kill | s since the checkpoint | lag before (records) | failover | deployed | tasks running (state restored) | **resumed** | **caught up** | watermark back | backlog replayed (records) |
|---|---|---|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${ROWS[@]}")

Median: resumed **$(ms_to_s "$(printf '%s ' "${RESUMED_ALL[@]}" | median)") s** (target ≤ 5 s), caught up **$(ms_to_s "$(printf '%s ' "${CAUGHT_ALL[@]}" | median)") s**. Last checkpoints logged by the workers: ${users_line:-none}
EOF
}

# ================================================================== part: overhead
run_overhead() {
  local users topic dir mode rep w line first_ms done_ms expected done_wm start_ms event_time_start
  local -a results=()
  for users in ${OVERHEAD_USERS//,/ }; do
    topic="$TOPIC_BASE-$users"
    local now_ms step_ms=1 start_epoch_ms
    now_ms="$(date +%s%3N)"
    start_epoch_ms=$((now_ms - EVENTS * step_ms))
    event_time_start="$(date -u -d "@$((start_epoch_ms / 1000))" +%Y-%m-%dT%H:%M:%S).$(printf '%03d' $((start_epoch_ms % 1000)))Z"
    done_wm=$((start_epoch_ms + EVENTS * step_ms + 12 * 3600 * 1000))
    expected=$((EVENTS + PARTITIONS))
    log "overhead: preloading $EVENTS events ($users users, step 1 ms) into $topic"
    local gen_start
    gen_start="$(now_s)"
    "$BIN/slipstream-gen" "-Dkafka.bootstrap.servers=$BOOTSTRAP" --topic "$topic" --partitions "$PARTITIONS" \
      --count "$EVENTS" --users "$users" --event-time-step "1 ms" --event-time-start "$event_time_start" --seed 42 \
      --flush-watermark +1d --quiet >"$RUN/gen-$users.log" 2>&1 8>&- || die "slipstream-gen failed (log: $RUN/gen-$users.log)"
    log "$(grep '^produced' "$RUN/gen-$users.log" || true) [$(elapsed_since "$gen_start")]"
    for ((rep = 1; rep <= RUNS; rep++)); do
      for mode in without with; do
        dir="$RUN/overhead-$users-$mode-$rep"
        mkdir -p "$dir"
        redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null || die "redis-cli FLUSHALL failed"
        common_args "$dir" "$topic"
        local interval="1 d"
        [[ "$mode" == with ]] && interval="30 s"
        local loadavg
        loadavg="$(cut -d' ' -f1 /proc/loadavg)"
        log "overhead: $users users, run $rep/$RUNS $mode checkpoints (interval $interval; load $loadavg)"
        start_coordinator "$dir" "$topic" "-Dcluster.min-workers=$WORKERS" "-Dexecution.checkpointing.interval=$interval"
        WORKER_PIDS=()
        for ((w = 0; w < WORKERS; w++)); do start_worker "$dir" "$w"; done
        first_ms=""
        done_ms=""
        local cpu_first=0 cpu_done=0 last="" last_change_ms progress_ms records_in=0
        clock_ms
        last_change_ms=$NOW_MS
        progress_ms=$NOW_MS
        while :; do
          for ((w = 0; w < WORKERS; w++)); do
            running "${WORKER_PIDS[$w]}" || die "worker $w exited (log: $dir/worker-$w.log)"
          done
          if line="$(status_total)"; then
            clock_ms
            [[ "$(kv failures "$line")" == 0 ]] || die "the job failed over ($line); logs in $dir"
            records_in="$(kv records_in "$line")"
            if [[ -z "$first_ms" && "$records_in" -gt 0 ]]; then
              first_ms=$NOW_MS
              cpu_first=0
              for ((w = 0; w < WORKERS; w++)); do cpu_first=$((cpu_first + $(cpu_ticks "${WORKER_PIDS[$w]}"))); done
            fi
            if [[ "$(kv state "$line")" == RUNNING && "$(kv current "$line")" == "$WORKERS" &&
              "$records_in" -ge "$expected" && "$(kv redis_features_written "$line")" == "$(kv features_emitted "$line")" &&
              "$(kv watermark_min_ms "$line")" -ge "$done_wm" ]]; then
              done_ms=$NOW_MS
              for ((w = 0; w < WORKERS; w++)); do cpu_done=$((cpu_done + $(cpu_ticks "${WORKER_PIDS[$w]}"))); done
              break
            fi
            if [[ "$line" != "$last" ]]; then
              last="$line"
              last_change_ms=$NOW_MS
            fi
          fi
          clock_ms
          if ((NOW_MS - progress_ms >= 10000)); then
            progress_ms=$NOW_MS
            log "  $records_in / $expected records"
          fi
          ((NOW_MS - last_change_ms < TIMEOUT * 1000)) || die "no progress for ${TIMEOUT}s: ${last:-no status} (logs: $dir)"
          sleep 0.1
        done
        stop_job
        local secs rate cpu_per_m ckpts sync e2e
        secs="$(ms_to_s $((done_ms - first_ms)))"
        rate="$(awk -v n="$EVENTS" -v ms="$((done_ms - first_ms))" 'BEGIN { printf "%.0f", n * 1000 / ms }')"
        cpu_per_m="$(awk -v t="$((cpu_done - cpu_first))" -v k="$CLK_TCK" -v n="$EVENTS" 'BEGIN { printf "%.2f", t / k * 1000000 / n }')"
        ckpts="$(completed_checkpoints "$dir/coordinator.log")"
        sync="$(grep -h -o 'synchronous part [0-9]* ms' "$dir"/worker-*.log | grep -o '[0-9]*' | tr '\n' ',' | sed 's/,$//' || true)"
        e2e="$(grep -h -o 'completed in [0-9]* ms' "$dir/coordinator.log" | grep -o '[0-9]*' | tr '\n' ',' | sed 's/,$//' || true)"
        log "  $mode: $(fmt "$rate") events/s (${secs}s), worker CPU $cpu_per_m s per 1M events, $ckpts checkpoints (sync ms: ${sync:-none}; end to end ms: ${e2e:-none})"
        results+=("$users	$mode	$rep	$(date -u +%H:%M)	$loadavg	$rate	$secs	$cpu_per_m	$ckpts	${sync:--}	${e2e:--}")
      done
    done
  done
  cat <<EOF

### $(date -u '+%Y-%m-%d %H:%M UTC'): throughput with checkpoints every 30 s vs without, \`--part overhead --events $EVENTS --overhead-users $OVERHEAD_USERS --workers $WORKERS --runs $RUNS\`${EXTRA[@]+ ${EXTRA[*]}}

$HEADER Load average at start $LOADAVG_START, now $(cut -d' ' -f1-3 /proc/loadavg). $WORKERS worker(s), $PARTITIONS partitions, $(fmt "$EVENTS") events (step 1 ms) + $PARTITIONS flush records per topic; runs alternate between the modes. "without" = interval 1 d (no checkpoint within a run).

| time (UTC) | users | mode | run | load (1 min) | **events/s** | seconds | worker CPU s per 1M events | checkpoints | synchronous part (ms) | end to end (ms) |
|---|---|---|---|---|---|---|---|---|---|---|
$(for r in "${results[@]}"; do IFS=$'\t' read -r u m rp t l ra s c k sy e <<<"$r"; printf '| %s | %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %s |\n' "$t" "$(fmt "$u")" "$m" "$rp" "$l" "$(fmt "$ra")" "$s" "$c" "$k" "$sy" "$e"; done)

$(for users in ${OVERHEAD_USERS//,/ }; do
    with="$(for r in "${results[@]}"; do IFS=$'\t' read -r u m _ _ _ ra _ <<<"$r"; [[ "$u" == "$users" && "$m" == with ]] && printf '%s ' "$ra"; done | median)"
    without="$(for r in "${results[@]}"; do IFS=$'\t' read -r u m _ _ _ ra _ <<<"$r"; [[ "$u" == "$users" && "$m" == without ]] && printf '%s ' "$ra"; done | median)"
    cwith="$(for r in "${results[@]}"; do IFS=$'\t' read -r u m _ _ _ _ _ c _ <<<"$r"; [[ "$u" == "$users" && "$m" == with ]] && printf '%s ' "$c"; done | median %.2f)"
    cwithout="$(for r in "${results[@]}"; do IFS=$'\t' read -r u m _ _ _ _ _ c _ <<<"$r"; [[ "$u" == "$users" && "$m" == without ]] && printf '%s ' "$c"; done | median %.2f)"
    ratio="$(awk -v a="$with" -v b="$without" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')"
    printf -- '- %s users: median %s events/s with checkpoints every 30 s, %s without: ratio **%s** (target ≥ 0.90: %s); worker CPU per 1M events %s s with, %s s without.\n' \
      "$(fmt "$users")" "$(fmt "$with")" "$(fmt "$without")" "$ratio" "$(awk -v r="$ratio" 'BEGIN { print (r >= 0.90 ? "met" : "**not met**") }')" "$cwith" "$cwithout"
  done)
EOF
}

RESUMED_ALL=()
CAUGHT_ALL=()
# ================================================================== part: rescale
# log_ms FILE PATTERN: epoch ms of the first log line matching PATTERN (or "")
log_ms() {
  local line
  line="$(grep -h -m 1 -E "$2" "$1" 2>/dev/null || true)"
  [[ -n "$line" ]] || return 0
  date -d "${line:0:23}" +%s%3N 2>/dev/null || true
}
run_rescale() {
  local dir="$RUN/rescale" topic="$TOPIC_BASE-rescale" line state attempt current records_in lag
  mkdir -p "$dir"
  log "rescale: preloading $(fmt "$PRELOAD") records of $(fmt "$USERS") users into $topic"
  "$BIN/slipstream-gen" "-Dkafka.bootstrap.servers=$BOOTSTRAP" --topic "$topic" --partitions "$PARTITIONS" \
    --count "$PRELOAD" --users "$USERS" --event-time-step "1 ms" --seed 11 --quiet \
    >"$dir/gen-preload.log" 2>&1 8>&- || die "slipstream-gen failed (log: $dir/gen-preload.log)"
  log "rescale: then a live stream of $RATE records/s; 2 workers, checkpoints every $INTERVAL"
  "$BIN/slipstream-gen" "-Dkafka.bootstrap.servers=$BOOTSTRAP" --topic "$topic" --partitions "$PARTITIONS" \
    --count 0 --rate "$RATE" --users "$USERS" --event-time-step "1 ms" --seed 7 \
    >"$dir/gen.log" 2>&1 8>&- &
  GEN_PID=$!
  common_args "$dir" "$topic"
  start_coordinator "$dir" "$topic" -Dcluster.min-workers=2 -Dscheduler-mode=reactive \
    "-Dexecution.checkpointing.interval=$INTERVAL" "-Dcluster.stabilization-timeout=1 s"
  start_worker "$dir" 0
  start_worker "$dir" 1
  ROWS=()
  PAUSES=()
  local j n last_line="" start_ms join_ms attempt_before requested_ms ended_ms running_ms resumed_ms caught_ms
  local progress_ms max_lag ckpt_line
  for ((j = 1; j <= JOINS; j++)); do
    n=$((j + 1))  # workers before this join
    clock_ms
    start_ms=$NOW_MS
    progress_ms=$start_ms
    while :; do
      running "$GEN_PID" || die "slipstream-gen exited (log: $dir/gen.log)"
      running "$COORDINATOR_PID" || die "the coordinator exited (log: $dir/coordinator.log)"
      if line="$(status_total)"; then
        last_line="$line"
        if [[ "$(kv state "$line")" == RUNNING && "$(kv current "$line")" == "$n" && "$(kv lag "$line")" -ge 0 &&
          "$(kv lag "$line")" -le "$LAG_OK" && "$(completed_checkpoints "$dir/coordinator.log")" -ge "$j" ]]; then
          break
        fi
      fi
      clock_ms
      if ((NOW_MS - progress_ms >= 10000)); then
        progress_ms=$NOW_MS
        log "  waiting for $n workers to catch up: ${line:-no status}"
      fi
      ((NOW_MS - start_ms < TIMEOUT * 1000)) || die "not caught up on $n workers within ${TIMEOUT}s: $last_line"
      sleep 0.1
    done
    attempt_before="$(kv attempt "$last_line")"
    log "join $j/$JOINS: $n workers caught up (attempt $attempt_before); starting worker $n"
    clock_ms
    join_ms=$NOW_MS
    start_worker "$dir" "$n"
    running_ms=""; resumed_ms=""; caught_ms=""; max_lag=0
    progress_ms=$join_ms
    while [[ -z "$caught_ms" ]]; do
      running "${WORKER_PIDS[$n]}" || die "worker $n exited (log: $dir/worker-$n.log)"
      if line="$(status_total)"; then
        clock_ms
        echo "$((NOW_MS - join_ms)) $line" >>"$dir/status-join-$j.log"
        state="$(kv state "$line")"
        attempt="$(kv attempt "$line")"
        current="$(kv current "$line")"
        records_in="$(kv records_in "$line")"
        lag="$(kv lag "$line")"
        if [[ "$state" == RUNNING && "$attempt" -gt "$attempt_before" && "$current" == $((n + 1)) ]]; then
          [[ -n "$running_ms" ]] || running_ms=$((NOW_MS - join_ms))
          if [[ -z "$resumed_ms" && "$records_in" -gt 0 ]]; then resumed_ms=$((NOW_MS - join_ms)); fi
          if [[ -n "$resumed_ms" ]]; then
            ((lag > max_lag)) && max_lag=$lag
            if [[ "$lag" -ge 0 && "$lag" -le "$LAG_OK" ]]; then caught_ms=$((NOW_MS - join_ms)); fi
          fi
        fi
      fi
      clock_ms
      if ((NOW_MS - progress_ms >= 5000)); then
        progress_ms=$NOW_MS
        log "  +$(ms_to_s $((NOW_MS - join_ms)))s: ${line:-no status}"
      fi
      ((NOW_MS - join_ms < TIMEOUT * 1000)) || die "join $j: not caught up within ${TIMEOUT}s: $line"
      sleep 0.1
    done
    requested_ms="$(log_ms "$dir/coordinator.log" "rescale of job .* joined attempt $attempt_before ")"
    ended_ms="$(log_ms "$dir/coordinator.log" "attempt $attempt_before of job .* ended: rescale")"
    [[ -n "$requested_ms" && -n "$ended_ms" ]] ||
      die "join $j: no rescale lines for attempt $attempt_before in $dir/coordinator.log"
    requested_ms=$((requested_ms - join_ms))
    ended_ms=$((ended_ms - join_ms))
    ckpt_line="$(grep -h -o 'checkpoint [0-9]* of job [0-9a-f]* (attempt [0-9]*) completed in [0-9]* ms: [0-9]* bytes' \
      "$dir/coordinator.log" | tail -n 1 || true)"
    ckpt_line="${ckpt_line#checkpoint }"
    log "  join $j ($n -> $((n + 1)) workers): requested $(ms_to_s "$requested_ms") s, ended $(ms_to_s "$ended_ms") s," \
      "running $(ms_to_s "$running_ms") s, resumed $(ms_to_s "$resumed_ms") s (pause $(ms_to_s $((resumed_ms - ended_ms))) s)," \
      "caught up $(ms_to_s "$caught_ms") s, backlog $max_lag records; checkpoint $ckpt_line"
    ROWS+=("| $(date -u +%H:%M:%S) | $n → $((n + 1)) | $(ms_to_s "$requested_ms") | $(ms_to_s "$ended_ms") | $(ms_to_s "$running_ms") | $(ms_to_s "$resumed_ms") | **$(ms_to_s $((resumed_ms - ended_ms)))** | $(ms_to_s "$caught_ms") | $(fmt "$max_lag") | $ckpt_line |")
    PAUSES+=("$((resumed_ms - ended_ms))")
  done
  stop_pid "$GEN_PID" "slipstream-gen" 10
  GEN_PID=""
  local restore_lines
  # Per worker and attempt: the old task closing, the snapshot ingest, the
  # engine rebuild (worker log lines).
  restore_lines="$(grep -h -o -E 'attempt [0-9]+ stopped: .*task closed in [0-9]+ ms|ingested [0-9]+ snapshot file.* in [0-9]+ ms|restored [0-9]+ users and [0-9]+ timers of key groups \[[0-9-]*\] in [0-9]+ ms' \
    "$dir"/worker-*.log | sed -E 's/stopped: .*task closed in/closed in/' | tr '\n' ';' || true)"
  stop_job
  cat <<EOT

### $(date -u '+%Y-%m-%d %H:%M UTC'): rescale pause, \`--part rescale --users $USERS --preload $PRELOAD --rate $RATE --interval "$INTERVAL" --joins $JOINS\`${EXTRA[@]+ ${EXTRA[*]}}

$HEADER Load average at start $LOADAVG_START, now $(cut -d' ' -f1-3 /proc/loadavg). $PARTITIONS partitions, $(fmt "$PRELOAD") records of $(fmt "$USERS") users preloaded, then a live stream of $(fmt "$RATE") records/s; scheduler-mode=reactive, cluster.stabilization-timeout 1 s. Times in seconds from the start of the joining worker's process, from polls 100 ms apart; **pause** = old attempt ended → new attempt processes records.

| time (UTC) | workers | checkpoint requested | old attempt ended | tasks running (state restored) | resumed | **pause** | caught up | backlog replayed (records) | rescale checkpoint |
|---|---|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${ROWS[@]}")

Median pause **$(ms_to_s "$(printf '%s ' "${PAUSES[@]}" | median)") s** (target ≤ 5 s at 1M users). Restores logged by the workers: ${restore_lines:-none}
EOT
}

if [[ "$PART" == kill || "$PART" == all ]]; then run_kill; fi
if [[ "$PART" == overhead || "$PART" == all ]]; then run_overhead; fi
if [[ "$PART" == rescale || "$PART" == all ]]; then run_rescale; fi
