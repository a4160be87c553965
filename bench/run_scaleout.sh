#!/usr/bin/env bash
# Scale-out benchmark: catch-up throughput of 1 and 2 workers on the same
# events, and the cost of the shuffle between workers (all key groups local vs
# spread).
#
# Usage: bench/run_scaleout.sh [--events N] [--users N] [--step DURATION] [--runs N]
#                              [--configs LIST] [--partitions N] [--perf] [--build]
#                              [--keep-logs] [-Dkey=value ...]
#
#   --events N        events per topic (default 1000000; one flush record per
#                     partition follows)
#   --users N         distinct users (default 100000)
#   --step DURATION   event-time advance per event (default "1 ms"; ms, s, min, h, d)
#   --runs N          runs of every configuration, interleaved (default 3)
#   --configs LIST    comma-separated WORKERS:PARTITIONING (default
#                     "1:spread,2:spread,2:local"); PARTITIONING is
#                       spread  Kafka's keyed partitioning (murmur2 of user_id),
#                               as in production: with N workers about (N-1)/N
#                               of the events are read by a worker that does not
#                               own their key group and cross the shuffle
#                       local   slipstream-gen --partition-for-workers N: every
#                               user's events (and each partition's flush record)
#                               are in a partition read by the worker that owns
#                               the user's key group, so nothing crosses
#   --partitions N    partitions per topic (default 4)
#   --perf            `perf record -g` all workers of the first run of every
#                     configuration for $BENCH_PERF_SECONDS (default 8) from the
#                     first record; prints the top symbols (perf slows the run:
#                     those runs are marked and left out of the summary)
#   --build           run scripts/build.sh first (default: only if a binary is missing)
#   --keep-logs       keep the run directory (logs; state is always deleted)
#   -Dkey=value       extra configuration for the workers (repeatable)
#
# Both topics (spread, and local for each worker count that needs one) are
# written by slipstream-gen with the same --seed and --event-time-start, so
# they hold the same events; only the partition of each event differs. Like
# bench/run_throughput.sh it starts its own Kafka (KRaft, fresh data dir) and
# Redis on dedicated ports, refuses to run if anything listens on them, and
# takes the same lock. Every run starts a fresh coordinator
# (-Dcluster.min-workers=N, so it deploys once all N registered) and N workers
# (-Dtaskmanager.data.port=0, kafka.starting-offsets=earliest, own state dirs),
# flushes Redis first, and polls the coordinator's GetJob every 100 ms
# (slipstream-bench-status --total: counters summed over the attempt's workers)
# until
#   records_in (sum) = events + flush records, every worker's operator
#   watermark has passed the flush records' (so the final firing is done),
#   and redis_features_written = features_emitted (sum).
# Then it reads VmHWM of the coordinator and every worker, stops them (SIGTERM)
# and moves on. It prints one Markdown table of all runs, then a summary.
#
# events/s = events / (time of the first poll that sees records_in > 0 ..
# time of the first poll that sees the condition above), the definition of
# bench/run_throughput.sh. "crossed" = records the workers sent to each other
# over the shuffle (sum of the outbound channels' records).
#
# Environment (defaults): BENCH_KAFKA_PORT=29092 BENCH_CONTROLLER_PORT=29093
#   BENCH_REDIS_PORT=26379 BENCH_COORDINATOR_PORT=26123
#   BENCH_TIMEOUT=300 (give up on a run that makes no progress for this many s)
#   BENCH_PERF_SECONDS=8 (with --perf)
#   BENCH_PERF_ARGS="-g" (with --perf: perf record's options, e.g. "--call-graph dwarf")
#   SLIPSTREAM_RUN_DIR=/tmp/slipstream-run (Kafka data in bench-kafka, Redis in
#   bench-redis, logs in scaleout-<date>-<time>-XXXX, deleted after a
#   successful run unless --keep-logs)
set -euo pipefail
# shellcheck disable=SC2034  # read by scripts/lib.sh
SLIPSTREAM_TAG="bench scaleout"
# shellcheck disable=SC1091 source=SCRIPTDIR/../scripts/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../scripts/lib.sh"
# shellcheck disable=SC1091 source=SCRIPTDIR/bench_lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/bench_lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

EVENTS=1000000
USERS=100000
STEP="1 ms"
RUNS=3
CONFIGS="1:spread,2:spread,2:local"
PARTITIONS=4
PERF=0
BUILD=0
KEEP_LOGS=0
WORKER_EXTRA=()
need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) need_value "$@"; EVENTS="$2"; shift 2 ;;
    --users) need_value "$@"; USERS="$2"; shift 2 ;;
    --step) need_value "$@"; STEP="$2"; shift 2 ;;
    --runs) need_value "$@"; RUNS="$2"; shift 2 ;;
    --configs) need_value "$@"; CONFIGS="$2"; shift 2 ;;
    --partitions) need_value "$@"; PARTITIONS="$2"; shift 2 ;;
    --perf) PERF=1; shift ;;
    --build) BUILD=1; shift ;;
    --keep-logs) KEEP_LOGS=1; shift ;;
    -D?*=*) WORKER_EXTRA+=("$1"); shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
for v in EVENTS USERS RUNS PARTITIONS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v,,} must be a positive integer, got '${!v}'"
done
# duration_ms TEXT: Flink-style duration ("1 ms", "5 s", "2 min", "1 h", "1 d", bare = ms) in ms.
duration_ms() {
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
STEP_MS="$(duration_ms "$STEP")" || die "--step: expected a duration like '1 ms' or '2 s', got '$STEP'"

# Configurations: "W:P" entries, validated; local topics needed per W.
declare -a CFG_WORKERS=() CFG_PART=() CFG_NAME=()
declare -A LOCAL_FOR=()
IFS=',' read -r -a cfg_list <<<"$CONFIGS"
for c in "${cfg_list[@]}"; do
  [[ "$c" =~ ^([1-9][0-9]*):(spread|local)$ ]] || die "--configs: expected WORKERS:spread|local, got '$c'"
  w="${BASH_REMATCH[1]}"
  p="${BASH_REMATCH[2]}"
  ((w <= PARTITIONS)) || die "--configs $c: $w workers need at least $w partitions (--partitions $PARTITIONS)"
  CFG_WORKERS+=("$w")
  CFG_PART+=("$p")
  if ((w > 1)); then CFG_NAME+=("$w workers, $p"); else CFG_NAME+=("1 worker, $p"); fi
  if [[ "$p" == local ]]; then LOCAL_FOR[$w]=1; fi
done
((${#CFG_WORKERS[@]} > 0)) || die "--configs is empty"

export KAFKA_PORT="${BENCH_KAFKA_PORT:-29092}"
export CONTROLLER_PORT="${BENCH_CONTROLLER_PORT:-29093}"
export KAFKA_DATA_DIR="$SLIPSTREAM_RUN_DIR/bench-kafka"
export REDIS_PORT="${BENCH_REDIS_PORT:-26379}"
export REDIS_DIR="$SLIPSTREAM_RUN_DIR/bench-redis"
COORDINATOR_PORT="${BENCH_COORDINATOR_PORT:-26123}"
TIMEOUT="${BENCH_TIMEOUT:-300}"
PERF_SECONDS="${BENCH_PERF_SECONDS:-8}"
read -r -a PERF_ARGS <<<"${BENCH_PERF_ARGS:--g}"
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "BENCH_TIMEOUT must be a positive integer, got '$TIMEOUT'"
[[ "$PERF_SECONDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_PERF_SECONDS must be a positive integer, got '$PERF_SECONDS'"
BIN="$SLIPSTREAM_BUILD_DIR/bin"
KAFKA_SH="$SLIPSTREAM_SCRIPTS/kafka.sh"
REDIS_SH="$SLIPSTREAM_SCRIPTS/redis.sh"

# ------------------------------------------------------------------ build
BINARIES=(slipstream-gen slipstream-coordinator slipstream-worker slipstream-bench-status)
bench_build "$BUILD" "${BINARIES[@]}"
for tool in redis-cli awk; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/setup.sh first"
done
if [[ "$PERF" -eq 1 ]]; then
  command -v perf >/dev/null 2>&1 || die "--perf needs perf (apt-get install linux-perf)"
fi

# ------------------------------------------------------------------ one run at a time
bench_lock

# ------------------------------------------------------------------ run dir, cleanup
mkdir -p "$SLIPSTREAM_RUN_DIR"
RUN="$(mktemp -d "$SLIPSTREAM_RUN_DIR/scaleout-$(date +%Y%m%d-%H%M%S)-XXXX")"
TOPIC_BASE="bench-scaleout-$(date +%s)-$$"
DLQ_TOPIC="$TOPIC_BASE-dlq"

STARTED_KAFKA=0
STARTED_REDIS=0
COORDINATOR_PID=""
WORKER_PIDS=()
PERF_PID=""
# stop_run: stops this run's processes (workers first, all at once, then the coordinator).
stop_run() {
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
  if [[ -n "$PERF_PID" ]] && pid_alive "$PERF_PID"; then
    kill -INT "$PERF_PID" 2>/dev/null
    wait "$PERF_PID" 2>/dev/null
  fi
  stop_run
  bench_finish "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A copy of the binaries: every run uses the same ones, even when the build
# tree is rebuilt meanwhile (a worker started while ninja relinks it fails).
mkdir -p "$RUN/bin"
for b in "${BINARIES[@]}"; do
  cp "$BIN/$b" "$RUN/bin/$b" || die "cannot copy $BIN/$b"
  "$RUN/bin/$b" --help >/dev/null 2>&1 || die "$BIN/$b does not run (being rebuilt? try again)"
done
BIN="$RUN/bin"
[[ "$("$BIN/slipstream-gen" --help 2>&1 || true)" == *--partition-for-workers* ]] ||
  die "slipstream-gen has no --partition-for-workers: rebuild (--build)"
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
    die "port $port is in use (a benchmark run by an older script, or an interrupted one?" \
      "see: ss -ltnp 'sport = :$port'); stop it, or choose other BENCH_*_PORT values"
  fi
done
STARTED_KAFKA=1
"$KAFKA_SH" clean >/dev/null
"$KAFKA_SH" start 8>&-
KAFKA_PID="$(read_pid "$KAFKA_DATA_DIR/kafka.pid" || true)"
STARTED_REDIS=1
"$REDIS_SH" start 8>&-
REDIS_PID="$(read_pid "$REDIS_DIR/redis.pid" || true)"
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"

# ------------------------------------------------------------------ preload
# One fixed start, seed and user count: every topic holds the same events.
NOW_EPOCH_MS="$(date +%s%3N)"
START_MS=$((NOW_EPOCH_MS - EVENTS * STEP_MS))
EVENT_TIME_START="$(date -u -d "@$((START_MS / 1000))" +%Y-%m-%dT%H:%M:%S).$(printf '%03d' $((START_MS % 1000)))Z"
# The flush records carry last base time + 1 d; the operator's watermark only
# passes this threshold once it has taken them (events end at START + N * step).
DONE_WATERMARK_MS=$((START_MS + EVENTS * STEP_MS + 12 * 3600 * 1000))
EXPECTED=$((EVENTS + PARTITIONS))
declare -A TOPIC_OF=()
preload() { # preload NAME [GEN ARGS...]
  local name="$1" topic="$TOPIC_BASE-$1" start
  shift
  log "preloading $EVENTS events ($USERS users, step $STEP, start $EVENT_TIME_START) into $topic ($PARTITIONS partitions, $name)"
  start="$(now_s)"
  "$BIN/slipstream-gen" "-Dkafka.bootstrap.servers=$BOOTSTRAP" --topic "$topic" \
    --partitions "$PARTITIONS" --count "$EVENTS" --users "$USERS" --event-time-step "$STEP" \
    --event-time-start "$EVENT_TIME_START" --seed 42 --flush-watermark +1d "$@" \
    >"$RUN/gen-$name.log" 2>&1 || die "slipstream-gen failed (log: $RUN/gen-$name.log)"
  log "$(grep '^produced' "$RUN/gen-$name.log") [$(elapsed_since "$start")]"
  TOPIC_OF[$name]="$topic"
}
for i in "${!CFG_PART[@]}"; do
  if [[ "${CFG_PART[$i]}" == spread && -z "${TOPIC_OF[spread]:-}" ]]; then preload spread; fi
done
for w in "${!LOCAL_FOR[@]}"; do
  preload "local$w" --partition-for-workers "$w"
done

# ------------------------------------------------------------------ helpers
ms_to_s() { awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }'; }
# cpu_snapshot: "busy idle kafka redis coordinator w1 w2 ..." in ticks.
cpu_snapshot() {
  local user nice system idle iowait irq softirq steal rest out pid
  read -r _ user nice system idle iowait irq softirq steal rest </proc/stat
  out="$((user + nice + system + irq + softirq + steal)) $((idle + iowait))"
  out+=" $(cpu_ticks "${KAFKA_PID:-0}") $(cpu_ticks "${REDIS_PID:-0}") $(cpu_ticks "$COORDINATOR_PID")"
  for pid in "${WORKER_PIDS[@]}"; do out+=" $(cpu_ticks "$pid")"; done
  echo "$out"
}
hwm_mib() { # VmHWM of a pid in MiB, or "?"
  local kb
  kb="$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)"
  if [[ -n "$kb" ]]; then awk -v k="$kb" 'BEGIN { printf "%.0f", k / 1024 }'; else echo "?"; fi
}
fmt() { LC_ALL=C awk -v n="$1" 'BEGIN { s = sprintf("%d", n); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'; }

# ------------------------------------------------------------------ one run
# run_one INDEX REP: runs configuration INDEX once; appends a row to $RUN/results.tsv.
RESULTS="$RUN/results.tsv"
: >"$RESULTS"
run_one() {
  local idx="$1" rep="$2" workers="${CFG_WORKERS[$1]}" part="${CFG_PART[$1]}"
  local topic dir name w line first_ms="" done_ms="" done_line="" last="" last_change_ms
  local progress_ms snap_first="" snap_done="" perf_this=0 loadavg
  if [[ "$part" == spread ]]; then topic="${TOPIC_OF[spread]}"; else topic="${TOPIC_OF[local$workers]}"; fi
  name="${workers}w-$part"
  dir="$RUN/run$rep-$name"
  mkdir -p "$dir"
  loadavg="$(cut -d' ' -f1 /proc/loadavg)"
  [[ "$PERF" -eq 1 && "$rep" -eq 1 ]] && perf_this=1
  log "run $rep/$RUNS: ${CFG_NAME[$idx]} (topic $topic; load $loadavg)$([[ $perf_this -eq 1 ]] && echo '; with perf')"
  redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null || die "redis-cli FLUSHALL failed"
  local common=(--config "$SLIPSTREAM_ROOT/conf/application.properties"
    "-Dkafka.bootstrap.servers=$BOOTSTRAP" "-Dkafka.topic=$topic" "-Dkafka.dlq.topic=$DLQ_TOPIC"
    "-Dkafka.group.id=$TOPIC_BASE-$rep-$name"
    "-Dredis.host=127.0.0.1" "-Dredis.port=$REDIS_PORT"
    "-Djobmanager.rpc.address=127.0.0.1" "-Djobmanager.rpc.port=$COORDINATOR_PORT"
    "-Dstate.checkpoints.dir=file://$dir/checkpoints" "-Dstate.savepoints.dir=file://$dir/savepoints"
    "-Dheartbeat.interval=200 ms" "-Dlog.level=info")
  status_total() { "$BIN/slipstream-bench-status" --coordinator "127.0.0.1:$COORDINATOR_PORT" --timeout-ms 1000 --total 2>/dev/null; }

  "$BIN/slipstream-coordinator" "${common[@]}" "${WORKER_EXTRA[@]}" "-Dstate.dir=$dir/state-coordinator" \
    "-Dcluster.min-workers=$workers" >"$dir/coordinator.log" 2>&1 8>&- &
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
  clock_ms
  local start_ms=$NOW_MS
  for ((w = 1; w <= workers; w++)); do
    "$BIN/slipstream-worker" "${common[@]}" "-Dstate.dir=$dir/state-w$w" -Dkafka.starting-offsets=earliest \
      -Dtaskmanager.data.port=0 ${WORKER_EXTRA[@]+"${WORKER_EXTRA[@]}"} >"$dir/worker-$w.log" 2>&1 8>&- &
    WORKER_PIDS+=($!)
  done

  clock_ms
  last_change_ms=$NOW_MS
  progress_ms=$NOW_MS
  local records_in=0 written=0 emitted=0 wm state current
  while true; do
    for ((w = 0; w < workers; w++)); do
      running "${WORKER_PIDS[$w]}" || die "worker $((w + 1)) exited (log: $dir/worker-$((w + 1)).log)"
    done
    running "$COORDINATOR_PID" || die "the coordinator exited (log: $dir/coordinator.log)"
    if line="$(status_total)"; then
      clock_ms
      [[ "$(kv topic "$line")" == "$topic" ]] || die "status of another job: $line"
      state="$(kv state "$line")"
      if [[ "$(kv failures "$line")" != 0 || "$state" == RESTARTING ]]; then
        die "the job failed over ($line); logs in $dir"
      fi
      current="$(kv current "$line")"
      records_in="$(kv records_in "$line")"
      written="$(kv redis_features_written "$line")"
      emitted="$(kv features_emitted "$line")"
      wm="$(kv watermark_min_ms "$line")"
      if [[ -z "$first_ms" && "$records_in" -gt 0 ]]; then
        first_ms=$NOW_MS
        snap_first="$(cpu_snapshot)"
        echo "$NOW_MS $line" >>"$dir/status.log"
        if [[ "$perf_this" -eq 1 ]]; then
          local pids
          pids="$(IFS=,; echo "${WORKER_PIDS[*]}")"
          perf record "${PERF_ARGS[@]}" -o "$dir/perf.data" -p "$pids" -- sleep "$PERF_SECONDS" >"$dir/perf.log" 2>&1 8>&- &
          PERF_PID=$!
        fi
      fi
      if [[ "$state" == RUNNING && "$current" -eq "$workers" && "$records_in" -ge "$EXPECTED" &&
        "$written" -eq "$emitted" && "$wm" -ge "$DONE_WATERMARK_MS" ]]; then
        done_ms=$NOW_MS
        done_line="$line"
        snap_done="$(cpu_snapshot)"
        echo "$NOW_MS $line" >>"$dir/status.log"
        break
      fi
      if [[ "$line" != "$last" ]]; then
        echo "$NOW_MS $line" >>"$dir/status.log"
        last="$line"
        last_change_ms=$NOW_MS
      fi
    fi
    clock_ms
    if ((NOW_MS - progress_ms >= 5000)); then
      progress_ms=$NOW_MS
      log "  $records_in / $EXPECTED records, $written / $emitted features written"
    fi
    ((NOW_MS - last_change_ms < TIMEOUT * 1000)) || die "no progress for ${TIMEOUT}s: ${last:-no status} (logs: $dir)"
    sleep 0.1
  done
  if [[ -n "$PERF_PID" ]]; then
    if running "$PERF_PID"; then kill -INT "$PERF_PID" 2>/dev/null || true; fi
    wait "$PERF_PID" || true
    PERF_PID=""
  fi
  # Peak RSS just before stopping.
  local rss_coord rss_workers="" rss_kafka rss_redis
  rss_coord="$(hwm_mib "$COORDINATOR_PID")"
  for pid in "${WORKER_PIDS[@]}"; do rss_workers+="${rss_workers:+ / }$(hwm_mib "$pid")"; done
  rss_kafka="$(hwm_mib "${KAFKA_PID:-0}")"
  rss_redis="$(hwm_mib "${REDIS_PID:-0}")"
  stop_run

  local secs rate cpu
  secs="$(ms_to_s $((done_ms - first_ms)))"
  if ((done_ms - first_ms < 2000)); then
    warn "caught up ${secs}s after the first record: too short to measure well; use more --events"
  fi
  rate="$(awk -v n="$EVENTS" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')"
  # CPU seconds over the measured interval: workers (each), coordinator, Kafka, Redis, idle.
  cpu="$(awk -v a="$snap_first" -v b="$snap_done" -v t="$CLK_TCK" 'BEGIN {
      n = split(a, x, " "); split(b, y, " ");
      idle = (y[2] - x[2]) / t; kafka = (y[3] - x[3]) / t; redis = (y[4] - x[4]) / t;
      ws = ""; for (i = 6; i <= n; i++) ws = ws (i > 6 ? " + " : "") sprintf("%.1f", (y[i] - x[i]) / t);
      printf "%s\t%.1f\t%.1f\t%.1f", ws, kafka, redis, idle }')"
  local crossed_out crossed_in
  crossed_out="$(kv channel_records_out "$done_line")"
  crossed_in="$(kv channel_records_in "$done_line")"
  log "  $name run $rep: $(fmt "$rate") events/s ($EVENTS events in ${secs}s; worker start → done $(ms_to_s $((done_ms - start_ms)))s);" \
    "crossed $(fmt "$crossed_out") records (sources: $(kv records_shuffled_out "$done_line") out, operators: $(kv records_shuffled_in "$done_line") in); records_in by worker $(kv records_in_by_worker "$done_line");" \
    "peak RSS MiB coordinator $rss_coord, workers $rss_workers"
  printf '%s\n' "$(date -u +%H:%M)	$rep	$idx	$perf_this	$loadavg	$rate	$secs	$crossed_out	$crossed_in	$(kv records_in_by_worker "$done_line")	$(kv redis_features_written "$done_line")	$(kv records_late "$done_line")	$(kv records_invalid "$done_line")	$(kv backpressure_ms "$done_line")	$rss_coord	$rss_workers	$rss_kafka	$rss_redis	$cpu" >>"$RESULTS"

  if [[ "$perf_this" -eq 1 && -s "$dir/perf.data" ]]; then
    {
      echo "perf record ${PERF_ARGS[*]} -p <all workers> for up to ${PERF_SECONDS}s from the first record, ${CFG_NAME[$idx]}:"
      echo "top symbols by self time (perf report --no-children --sort symbol):"
      perf report -i "$dir/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
        grep -v '^#' | grep -v '^[[:space:]]*$' | head -n 20 | sed -E 's/([[:space:]]+-)*[[:space:]]*$//' | cut -c1-150
      echo "by shared object (--sort dso):"
      perf report -i "$dir/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null |
        grep -v '^#' | grep -v '^[[:space:]]*$' | head -n 8 | sed -E 's/([[:space:]]+-)*[[:space:]]*$//' | cut -c1-150
      echo "busiest threads (--sort pid):"
      perf report -i "$dir/perf.data" --no-children --sort pid --stdio -g none 2>/dev/null |
        grep -v '^#' | grep -v '^[[:space:]]*$' | head -n 8 | sed -E 's/([[:space:]]+-)*[[:space:]]*$//' | cut -c1-150
    } >"$RUN/perf-$name.txt" || true
  fi
}

# ------------------------------------------------------------------ runs
for ((rep = 1; rep <= RUNS; rep++)); do
  for idx in "${!CFG_WORKERS[@]}"; do
    run_one "$idx" "$rep"
  done
done
LOADAVG_END="$(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------------ report
median() { # median [FORMAT]: median of the numbers on stdin (separated by blanks), 0 if none
  awk -v fmt="${1:-%.0f}" '{ for (i = 1; i <= NF; i++) v[++n] = $i }
    END { if (n == 0) { printf fmt "\n", 0; exit }
          for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
          printf fmt "\n", (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) }'
}
declare -A MEDIAN=()
cat <<EOF

### $(date -u '+%Y-%m-%d %H:%M UTC'): scale-out, --events $EVENTS --users $USERS --step "$STEP" --partitions $PARTITIONS${WORKER_EXTRA[@]+ ${WORKER_EXTRA[*]}}

Machine: $NPROC × $CPU_MODEL, $MEM_GIB GiB RAM, shared by Kafka, Redis, the coordinator and the workers; load average at start $LOADAVG_START, at end $LOADAVG_END. Build: $BUILD_TYPE, sanitizers ${SANITIZE:-OFF}, commit $COMMIT. Each topic: $(fmt "$EXPECTED") records ($EVENTS events + $PARTITIONS flush records), the same events in every topic.

| time (UTC) | run | configuration | load (1 min) | **events/s** | seconds | records crossed (out / in), sender waiting for credit | records_in by worker | features written | peak RSS MiB: coordinator / workers | CPU s: workers | CPU s: Kafka / Redis / idle |
|---|---|---|---|---|---|---|---|---|---|---|---|
EOF
while IFS=$'\t' read -r t rep idx perfed load rate secs cout cin byw feat late inval bp rc rw _ _ cw ck cr ci; do
  printf '| %s | %s | %s%s | %s | **%s** | %s | %s / %s, %s s | %s | %s | %s / %s | %s | %s / %s / %s |\n' \
    "$t" "$rep" "${CFG_NAME[$idx]}" "$([[ $perfed -eq 1 ]] && echo ' (perf)')" "$load" "$(fmt "$rate")" "$secs" \
    "$(fmt "$cout")" "$(fmt "$cin")" "$(ms_to_s "$bp")" "${byw//,/ + }" "$(fmt "$feat")" "$rc" "$rw" "$cw" "$ck" "$cr" "$ci"
  [[ "$late" == 0 && "$inval" == 0 ]] || warn "run $rep of ${CFG_NAME[$idx]}: late $late, invalid $inval"
done <"$RESULTS"
echo
echo "Kafka / Redis peak RSS at the end: $(cut -f17 "$RESULTS" | tail -n 1) / $(cut -f18 "$RESULTS" | tail -n 1) MiB."
echo
echo "Summary (median of the runs without perf):"
echo
echo "| configuration | runs | median events/s | all runs | median worker CPU s (all workers) per 1M events |"
echo "|---|---|---|---|---|"
for idx in "${!CFG_WORKERS[@]}"; do
  rates="$(awk -F'\t' -v i="$idx" '$3 == i && $4 == 0 { printf "%s ", $6 }' "$RESULTS")"
  n="$(wc -w <<<"$rates")"
  MEDIAN[$idx]="$(median <<<"$rates")"
  list=""
  for r in $rates; do list+="${list:+, }$(fmt "$r")"; done
  # Worker CPU over the measured interval, summed over the workers: less
  # sensitive to what else runs on the machine than the wall-clock rate.
  cpus="$(awk -F'\t' -v i="$idx" -v n="$EVENTS" '$3 == i && $4 == 0 { k = split($19, c, " [+] "); t = 0; for (j = 1; j <= k; j++) t += c[j]; printf "%.2f ", t * 1000000 / n }' "$RESULTS")"
  echo "| ${CFG_NAME[$idx]} | $n | **$(fmt "${MEDIAN[$idx]}")** | $list | $(median %.1f <<<"$cpus") |"
done
echo
# Ratios that the configurations allow.
for idx in "${!CFG_WORKERS[@]}"; do
  w="${CFG_WORKERS[$idx]}"
  [[ "${CFG_PART[$idx]}" == spread ]] || continue
  for jdx in "${!CFG_WORKERS[@]}"; do
    if [[ "${CFG_WORKERS[$jdx]}" == "$w" && "${CFG_PART[$jdx]}" == local && "${MEDIAN[$jdx]}" -gt 0 ]]; then
      ratio="$(awk -v a="${MEDIAN[$idx]}" -v b="${MEDIAN[$jdx]}" 'BEGIN { printf "%.2f", a / b }')"
      echo "- $w workers, spread / local: **$ratio** (target ≥ 0.75: $(awk -v r="$ratio" 'BEGIN { print (r >= 0.75 ? "met" : "**not met**") }'))"
    fi
  done
done
for idx in "${!CFG_WORKERS[@]}"; do
  [[ "${CFG_WORKERS[$idx]}" -gt 1 ]] || continue
  for jdx in "${!CFG_WORKERS[@]}"; do
    if [[ "${CFG_WORKERS[$jdx]}" == 1 && "${CFG_PART[$jdx]}" == spread && "${MEDIAN[$jdx]}" -gt 0 ]]; then
      echo "- ${CFG_NAME[$idx]} / 1 worker: **$(awk -v a="${MEDIAN[$idx]}" -v b="${MEDIAN[$jdx]}" 'BEGIN { printf "%.2f", a / b }')**"
    fi
  done
done
for f in "$RUN"/perf-*.txt; do
  [[ -f "$f" ]] || continue
  echo
  echo '```'
  cat "$f"
  echo '```'
done
