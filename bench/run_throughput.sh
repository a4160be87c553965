#!/usr/bin/env bash
# Throughput benchmark: how fast does one worker catch up on a preloaded topic,
# next to the ceiling (a bare librdkafka consumer reading the same topic).
#
# Usage: bench/run_throughput.sh [--events N] [--users N] [--step DURATION]
#                                [--ceiling-runs N] [--guarded] [--features FILE] [--perf] [--build]
#                                [--redis-cluster] [--slow-redis SECONDS] [--keep-logs]
#                                [-Dkey=value ...]
#
#   --events N        events to preload (default 2000000; 4 flush records follow)
#   --users N         distinct users (default 100000)
#   --step DURATION   event-time advance per event (default "1 ms"); a larger step
#                     spans more windows, so more features per event
#   --ceiling-runs N  bare-consumer runs; the best is the ceiling (default 2)
#   --guarded         every feature write goes through the sink's monotonic guard
#                     (the Lua script a replay uses where an earlier attempt may
#                     have written newer windows): a high-water mark above every
#                     window is set in slipstream:writers before the job starts.
#                     Without it the job starts from no marks: plain HSET + EXPIRE
#   --redis-cluster   write to a private Redis Cluster (3 masters + 3 replicas by default,
#                     scripts/redis-cluster.sh on ports $BENCH_REDIS_CLUSTER_PORT..+5,
#                     cluster bus +10000) instead of the single Redis: the
#                     coordinator and the worker get -Dredis.cluster.nodes=...,
#                     every master is flushed (FLUSHALL) before the job starts,
#                     Redis CPU is reported summed over the masters and over the
#                     replicas, and per node. The cluster is stopped at the end,
#                     unless it already ran (started by scripts/redis-cluster.sh
#                     with the same REDIS_CLUSTER_PORT / REDIS_CLUSTER_DIR): then
#                     it is only flushed and left running. Not with --guarded
#                     (its marks live in one writers key per shard)
#   --slow-redis SECONDS
#                     $BENCH_SLOW_REDIS_AFTER_MS (default 1000) ms after the
#                     first record is consumed, pause the writes of the single
#                     Redis, or of the first cluster master, for SECONDS
#                     (CLIENT PAUSE <ms> WRITE: writes and scripts wait, nothing
#                     fails, a cluster does not fail over) and report how the
#                     worker held back: its peak RSS and the largest sink
#                     backlog seen (redis_pending_features: queued + in flight,
#                     bounded by the sink's queue of 100,000 features + 2
#                     batches in flight). Keep SECONDS below redis.timeout
#                     (5 s) to measure a slow Redis rather than a reconnect
#   --features FILE   the feature definition the job computes (pipeline.features;
#                     default: conf/features.yaml, the shipped two groups);
#                     bench/features-4-groups.yaml is the 4-group, 20-feature load
#   --perf            also `perf record -g` the worker for $BENCH_PERF_SECONDS
#                     (default 5) once it consumes, and print its top 10 symbols
#                     by self time and its busiest threads (perf slows the run:
#                     use it for profiles, not for the numbers)
#   --build           run scripts/build.sh first (default: only if a binary is missing)
#   --keep-logs       keep the run directory (logs; state is always deleted)
#   -Dkey=value       extra configuration for the worker (repeatable), for tuning
#                     experiments, e.g. -Dkafka.queued.min.messages=500000;
#                     shown in the result block
#
# It starts its own Kafka (KRaft, fresh data dir) and Redis on dedicated ports,
# so it never touches the instances of ./start.sh or the tests (it refuses to
# run if anything listens on its ports, and only one run per port set runs at a
# time), preloads a new topic with slipstream-gen, measures the ceiling, then
# starts slipstream-coordinator and slipstream-worker
# (kafka.starting-offsets=earliest) and polls the coordinator's GetJob every
# 100 ms (bench/job_status.cc) until the worker has consumed every record and
# Redis has acknowledged every feature. It stops everything it started and
# prints a Markdown block for bench/RESULTS.md (the meaning of every row: bench/HISTORY.md, "What it measures").
#
# pipeline events/s = N / (time of the first poll that sees records_in > 0 ..
# time of the first poll that sees records_in = N + 4, the operator's
# watermark past the flush records' and redis_features_written =
# features_emitted).
#
# Environment (defaults): BENCH_KAFKA_PORT=29092 BENCH_CONTROLLER_PORT=29093
#   BENCH_REDIS_PORT=26379 BENCH_COORDINATOR_PORT=26123
#   BENCH_REDIS_CLUSTER_PORT=18000 (--redis-cluster: 18000..18005, bus 28000..28005:
#   all below the kernel's ephemeral ports (32768..), which an outgoing
#   connection could hold, and clear of the tests' clusters at 20000..22700)
#   BENCH_REDIS_CLUSTER_MASTERS=3 BENCH_REDIS_CLUSTER_REPLICAS=1 (0: masters only)
#   BENCH_SLOW_REDIS_AFTER_MS=1000 (--slow-redis: when the pause starts)
#   BENCH_TIMEOUT=600 (give up when the worker makes no progress for this many s)
#   BENCH_PERF_SECONDS=5 (with --perf; recording stops early when caught up)
#   SLIPSTREAM_RUN_DIR=/tmp/slipstream-run (Kafka data in bench-kafka, Redis in
#   bench-redis, a cluster in redis-cluster-<port>, logs of each run in
#   bench-<date>-<time>-XXXX, deleted after a successful run unless --keep-logs)
set -euo pipefail
# shellcheck disable=SC2034  # read by scripts/lib.sh
SLIPSTREAM_TAG="bench"
# shellcheck disable=SC1091 source=SCRIPTDIR/../scripts/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../scripts/lib.sh"
# shellcheck disable=SC1091 source=SCRIPTDIR/bench_lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/bench_lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

EVENTS=2000000
USERS=100000
STEP="1 ms"
CEILING_RUNS=2
PERF=0
GUARDED=0
BUILD=0
KEEP_LOGS=0
WORKER_EXTRA=()
FEATURES=""
REDIS_CLUSTER=0
SLOW_REDIS_S=0
need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) need_value "$@"; EVENTS="$2"; shift 2 ;;
    --users) need_value "$@"; USERS="$2"; shift 2 ;;
    --step) need_value "$@"; STEP="$2"; shift 2 ;;
    --ceiling-runs) need_value "$@"; CEILING_RUNS="$2"; shift 2 ;;
    --perf) PERF=1; shift ;;
    --guarded) GUARDED=1; shift ;;
    --features) need_value "$@"; FEATURES="$(readlink -f "$2")"; [[ -f "$FEATURES" ]] || die "--features: no file $2"; shift 2 ;;
    --build) BUILD=1; shift ;;
    --keep-logs) KEEP_LOGS=1; shift ;;
    --redis-cluster) REDIS_CLUSTER=1; shift ;;
    --slow-redis) need_value "$@"; SLOW_REDIS_S="$2"; shift 2 ;;
    -D?*=*) WORKER_EXTRA+=("$1"); shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[[ "$EVENTS" =~ ^[1-9][0-9]*$ ]] || die "--events must be a positive integer, got '$EVENTS'"
[[ "$USERS" =~ ^[1-9][0-9]*$ ]] || die "--users must be a positive integer, got '$USERS'"
[[ "$CEILING_RUNS" =~ ^[1-9][0-9]*$ ]] || die "--ceiling-runs must be a positive integer, got '$CEILING_RUNS'"
[[ "$SLOW_REDIS_S" =~ ^[0-9]+$ ]] || die "--slow-redis must be a whole number of seconds, got '$SLOW_REDIS_S'"
if [[ "$REDIS_CLUSTER" -eq 1 && "$GUARDED" -eq 1 ]]; then
  die "--guarded with --redis-cluster is not supported: each master keeps its high-water marks in its own writers key"
fi

PARTITIONS=4
export KAFKA_PORT="${BENCH_KAFKA_PORT:-29092}"
export CONTROLLER_PORT="${BENCH_CONTROLLER_PORT:-29093}"
export KAFKA_DATA_DIR="$SLIPSTREAM_RUN_DIR/bench-kafka"
export REDIS_PORT="${BENCH_REDIS_PORT:-26379}"
export REDIS_DIR="$SLIPSTREAM_RUN_DIR/bench-redis"
COORDINATOR_PORT="${BENCH_COORDINATOR_PORT:-26123}"
TIMEOUT="${BENCH_TIMEOUT:-600}"
PERF_SECONDS="${BENCH_PERF_SECONDS:-5}"
SLOW_REDIS_AFTER_MS="${BENCH_SLOW_REDIS_AFTER_MS:-1000}"
[[ "$SLOW_REDIS_AFTER_MS" =~ ^[0-9]+$ ]] || die "BENCH_SLOW_REDIS_AFTER_MS must be a whole number, got '$SLOW_REDIS_AFTER_MS'"
if [[ "$REDIS_CLUSTER" -eq 1 ]]; then
  export REDIS_CLUSTER_PORT="${BENCH_REDIS_CLUSTER_PORT:-18000}"
  export REDIS_CLUSTER_MASTERS="${BENCH_REDIS_CLUSTER_MASTERS:-3}"
  export REDIS_CLUSTER_REPLICAS="${BENCH_REDIS_CLUSTER_REPLICAS:-1}"
  export REDIS_CLUSTER_DIR="${REDIS_CLUSTER_DIR:-$SLIPSTREAM_RUN_DIR/redis-cluster-$REDIS_CLUSTER_PORT}"
  [[ "$REDIS_CLUSTER_PORT" =~ ^[1-9][0-9]*$ ]] || die "BENCH_REDIS_CLUSTER_PORT must be a port, got '$REDIS_CLUSTER_PORT'"
  CLUSTER_PORTS=()
  for ((i = 0; i < REDIS_CLUSTER_MASTERS * (1 + REDIS_CLUSTER_REPLICAS); i++)); do
    CLUSTER_PORTS+=($((REDIS_CLUSTER_PORT + i)))
  done
  read -r ephemeral_first _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || ephemeral_first=32768
  if ((CLUSTER_PORTS[-1] + 10000 >= ephemeral_first)); then
    warn "cluster bus ports up to $((CLUSTER_PORTS[-1] + 10000)) reach the ephemeral port range ($ephemeral_first..):" \
      "an outgoing connection of another program may hold one and the node fail to start"
  fi
fi
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "BENCH_TIMEOUT must be a positive integer, got '$TIMEOUT'"
[[ "$PERF_SECONDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_PERF_SECONDS must be a positive integer, got '$PERF_SECONDS'"
BIN="$SLIPSTREAM_BUILD_DIR/bin"
KAFKA_SH="$SLIPSTREAM_SCRIPTS/kafka.sh"
REDIS_SH="$SLIPSTREAM_SCRIPTS/redis.sh"
REDIS_CLUSTER_SH="$SLIPSTREAM_SCRIPTS/redis-cluster.sh"

# ------------------------------------------------------------------ build
BINARIES=(slipstream-gen slipstream-coordinator slipstream-worker slipstream-bench-consumer slipstream-bench-status)
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
RUN="$(mktemp -d "$SLIPSTREAM_RUN_DIR/bench-$(date +%Y%m%d-%H%M%S)-XXXX")"
TOPIC="bench-events-$(date +%s)-$$"
DLQ_TOPIC="$TOPIC-dlq"

STARTED_KAFKA=0
STARTED_REDIS=0
STARTED_REDIS_CLUSTER=0
COORDINATOR_PID=""
WORKER_PID=""
PERF_PID=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  if [[ -n "$PERF_PID" ]] && pid_alive "$PERF_PID"; then
    kill -INT "$PERF_PID" 2>/dev/null
    wait "$PERF_PID" 2>/dev/null
  fi
  if [[ -n "$WORKER_PID" ]]; then stop_pid "$WORKER_PID" "slipstream-worker" 60; fi
  if [[ -n "$COORDINATOR_PID" ]]; then stop_pid "$COORDINATOR_PID" "slipstream-coordinator" 20; fi
  bench_finish "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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
# The benchmark needs its own, fresh Kafka and Redis: never reuse (and never
# stop) something it did not start; the one exception is a Redis Cluster of
# scripts/redis-cluster.sh on the bench's cluster ports (below).
OWN_PORTS=("$KAFKA_PORT" "$CONTROLLER_PORT" "$COORDINATOR_PORT")
if [[ "$REDIS_CLUSTER" -eq 0 ]]; then OWN_PORTS+=("$REDIS_PORT"); fi
for port in "${OWN_PORTS[@]}"; do
  if port_open 127.0.0.1 "$port"; then
    die "port $port is in use (a benchmark run by an older script, or an interrupted one?" \
      "see: ss -ltnp 'sport = :$port'); stop it, or choose other BENCH_*_PORT values"
  fi
done
# A cluster of scripts/redis-cluster.sh on these ports (every node's pid file
# names a live redis-server) was started by the user: reuse it (flushed) and
# leave it running. Anything else on its ports: refuse.
cluster_node_pid() { # cluster_node_pid PORT: the pid of the node scripts/redis-cluster.sh started there
  local pid
  pid="$(read_pid "$REDIS_CLUSTER_DIR/redis-$1.pid")" && pid_alive "$pid" && pid_cmdline_has "$pid" "redis-server" &&
    printf '%s\n' "$pid"
}
if [[ "$REDIS_CLUSTER" -eq 1 ]]; then
  own_nodes=0
  for port in "${CLUSTER_PORTS[@]}"; do
    if cluster_node_pid "$port" >/dev/null; then own_nodes=$((own_nodes + 1)); fi
  done
  if ((own_nodes == ${#CLUSTER_PORTS[@]})); then
    log "reusing the Redis Cluster already running on 127.0.0.1:${CLUSTER_PORTS[0]}..${CLUSTER_PORTS[-1]} (left running at the end)"
  else
    for port in "${CLUSTER_PORTS[@]}"; do
      if port_open 127.0.0.1 "$port" || port_open 127.0.0.1 $((port + 10000)); then
        die "port $port or its cluster bus port $((port + 10000)) is in use (see: ss -ltnp 'sport = :$port');" \
          "stop it (REDIS_CLUSTER_PORT=$REDIS_CLUSTER_PORT scripts/redis-cluster.sh stop, if it is a partial cluster of that script)," \
          "or choose another BENCH_REDIS_CLUSTER_PORT"
      fi
    done
    STARTED_REDIS_CLUSTER=1
  fi
fi
STARTED_KAFKA=1
# A data dir left by an interrupted run: start from a fresh broker.
"$KAFKA_SH" clean >/dev/null
"$KAFKA_SH" start 8>&- # the broker and redis-server outlive a killed script: no lock for them
KAFKA_PID="$(read_pid "$KAFKA_DATA_DIR/kafka.pid" || true)"
REDIS_PID=""
MASTER_PORTS=()
MASTER_PIDS=()
REPLICA_PORTS=()
REPLICA_PIDS=()
if [[ "$REDIS_CLUSTER" -eq 0 ]]; then
  STARTED_REDIS=1
  "$REDIS_SH" start 8>&-
  REDIS_PID="$(read_pid "$REDIS_DIR/redis.pid" || true)"
else
  "$REDIS_CLUSTER_SH" start 8>&- >"$RUN/redis-cluster.log" 2>&1 ||
    die "scripts/redis-cluster.sh start failed (log: $RUN/redis-cluster.log)"
  CLUSTER_NODES="$("$REDIS_CLUSTER_SH" nodes)"
  for port in "${CLUSTER_PORTS[@]}"; do
    pid="$(cluster_node_pid "$port")" || die "no pid for the cluster node on :$port (dir $REDIS_CLUSTER_DIR)"
    role="$(redis-cli -p "$port" ROLE | head -n 1)"
    if [[ "$role" == "master" ]]; then
      MASTER_PORTS+=("$port")
      MASTER_PIDS+=("$pid")
    else
      REPLICA_PORTS+=("$port")
      REPLICA_PIDS+=("$pid")
    fi
  done
  ((${#MASTER_PORTS[@]} == REDIS_CLUSTER_MASTERS)) ||
    die "expected $REDIS_CLUSTER_MASTERS masters, found ${#MASTER_PORTS[@]} (${MASTER_PORTS[*]}): a failover in an earlier run?"
  log "Redis Cluster: masters ${MASTER_PORTS[*]}, replicas ${REPLICA_PORTS[*]}"
fi
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"

# ------------------------------------------------------------------ preload
log "preloading $EVENTS events ($USERS users, event-time step $STEP) into $TOPIC ($PARTITIONS partitions)"
gen_start="$(now_s)"
# Events end before the generator starts (default --event-time-start: now -
# count * step) and the flush records carry last base time + 1 d, so only the
# flush records move the operator's watermark past this threshold.
DONE_WATERMARK_MS=$(($(date +%s%3N) + 12 * 3600 * 1000))
"$BIN/slipstream-gen" "-Dkafka.bootstrap.servers=$BOOTSTRAP" --topic "$TOPIC" \
  --partitions "$PARTITIONS" --count "$EVENTS" --users "$USERS" --event-time-step "$STEP" \
  --flush-watermark +1d --quiet >"$RUN/gen.log" 2>&1 || die "slipstream-gen failed (log: $RUN/gen.log)"
log "$(cat "$RUN/gen.log") [$(elapsed_since "$gen_start")]"
EXPECTED=$((EVENTS + PARTITIONS))

# ------------------------------------------------------------------ ceiling
ms_to_s() { awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }'; }
CEILING=0
CEILING_ALL=()
for ((r = 1; r <= CEILING_RUNS; r++)); do
  line="$("$BIN/slipstream-bench-consumer" --bootstrap "$BOOTSTRAP" --topic "$TOPIC" 2>>"$RUN/consumer.log")" ||
    die "slipstream-bench-consumer failed (log: $RUN/consumer.log)"
  echo "$line" >>"$RUN/consumer.log"
  records="$(kv records "$line")"
  TOPIC_BYTES="$(kv bytes "$line")"
  rate="$(kv records_per_s "$line")"
  [[ "$records" -eq "$EXPECTED" ]] || die "the bare consumer read $records records, expected $EXPECTED"
  log "ceiling run $r: $line"
  CEILING_ALL+=("$rate")
  if ((rate > CEILING)); then CEILING="$rate"; fi
done

# ------------------------------------------------------------------ pipeline
COMMON=(--config "$SLIPSTREAM_ROOT/conf/application.properties"
  "-Dkafka.bootstrap.servers=$BOOTSTRAP" "-Dkafka.topic=$TOPIC" "-Dkafka.dlq.topic=$DLQ_TOPIC"
  "-Dredis.host=127.0.0.1" "-Dredis.port=$REDIS_PORT"
  "-Djobmanager.rpc.address=127.0.0.1" "-Djobmanager.rpc.port=$COORDINATOR_PORT"
  "-Dstate.dir=$RUN/state" "-Dstate.checkpoints.dir=file://$RUN/checkpoints"
  "-Dstate.savepoints.dir=file://$RUN/savepoints"
  "-Dheartbeat.interval=200 ms" "-Dlog.level=info"
  "-Dpipeline.features=${FEATURES:-$SLIPSTREAM_ROOT/conf/features.yaml}")
if [[ "$REDIS_CLUSTER" -eq 1 ]]; then COMMON+=("-Dredis.cluster.nodes=$CLUSTER_NODES"); fi
status_line() { "$BIN/slipstream-bench-status" --coordinator "127.0.0.1:$COORDINATOR_PORT" --timeout-ms 1000 2>/dev/null; }

# The sink's marks from an earlier run would make this one guarded: start
# from none, or (--guarded) from one above every window.
# A cluster (which may be reused) is flushed: every master's writers key and
# features of an earlier run go.
if [[ "$REDIS_CLUSTER" -eq 0 ]]; then
  redis-cli -p "$REDIS_PORT" DEL slipstream:writers >/dev/null
else
  for port in "${MASTER_PORTS[@]}"; do
    [[ "$(redis-cli -p "$port" FLUSHALL | tr -d '\r')" == "OK" ]] || die "FLUSHALL on the master :$port failed"
  done
fi
if [[ "$GUARDED" -eq 1 ]]; then
  redis-cli -p "$REDIS_PORT" HSET slipstream:writers high-water:bench-guarded:0 9223372036854775807 >/dev/null
fi

log "starting slipstream-coordinator on :$COORDINATOR_PORT"
"$BIN/slipstream-coordinator" "${COMMON[@]}" >"$RUN/coordinator.log" 2>&1 8>&- &
COORDINATOR_PID=$!
for ((i = 0; ; i++)); do
  pid_alive "$COORDINATOR_PID" || die "slipstream-coordinator exited (log: $RUN/coordinator.log)"
  if line="$(status_line)"; then
    [[ "$(kv topic "$line")" == "$TOPIC" ]] ||
      die "the coordinator on :$COORDINATOR_PORT serves another job ($line): is another benchmark running?"
    break
  fi
  ((i < 300)) || die "the coordinator did not answer GetJob within 30 s (log: $RUN/coordinator.log)"
  sleep 0.1
done

# The polling loop forks only the status tool (and sleep), so it keeps its
# 100 ms rhythm on a loaded machine: times are integer ms from $EPOCHREALTIME.
# cpu_snapshot NAME: remembers the CPU ticks of the worker, Redis, Kafka and the
# whole machine (busy, idle) in SNAP_<NAME>_* (no forks but the $(...) below).
cpu_snapshot() {
  local user nice system idle iowait irq softirq steal rest
  read -r _ user nice system idle iowait irq softirq steal rest </proc/stat
  printf -v "SNAP_$1_BUSY" '%s' $((user + nice + system + irq + softirq + steal))
  printf -v "SNAP_$1_IDLE" '%s' $((idle + iowait))
  printf -v "SNAP_$1_WORKER" '%s' "$(cpu_ticks "$WORKER_PID")"
  printf -v "SNAP_$1_REDIS" '%s' "$(cpu_ticks "${REDIS_PID:-0}")"
  local i
  for i in "${!MASTER_PIDS[@]}"; do printf -v "SNAP_$1_MASTER_$i" '%s' "$(cpu_ticks "${MASTER_PIDS[$i]}")"; done
  for i in "${!REPLICA_PIDS[@]}"; do printf -v "SNAP_$1_REPLICA_$i" '%s' "$(cpu_ticks "${REPLICA_PIDS[$i]}")"; done
  printf -v "SNAP_$1_KAFKA" '%s' "$(cpu_ticks "${KAFKA_PID:-0}")"
}
TASK_SCHEDSTAT_OK=1
task_sched() { # sets TASK_ON_NS, TASK_WAIT_NS: the task thread's on-CPU and runqueue-wait time
  local rest
  if ! read -r TASK_ON_NS TASK_WAIT_NS rest <"/proc/$WORKER_PID/task/$WORKER_PID/schedstat" 2>/dev/null; then
    TASK_SCHEDSTAT_OK=0
    TASK_ON_NS=0
    TASK_WAIT_NS=0
  fi
}

log "starting slipstream-worker (kafka.starting-offsets=earliest)"
clock_ms
WORKER_START_MS=$NOW_MS
"$BIN/slipstream-worker" "${COMMON[@]}" -Dkafka.starting-offsets=earliest ${WORKER_EXTRA[@]+"${WORKER_EXTRA[@]}"} \
  >"$RUN/worker.log" 2>&1 8>&- &
WORKER_PID=$!

FIRST_MS=""
FIRST_RECORDS=0
# The batch with the last flush record closes every open window at once; the
# worker publishes no counters until it has handed those features to the sink,
# so records_in stays at its last value before the total meanwhile. That value
# and the poll that first saw it split the run into ingest and the final
# firing + drain.
prev_records=0
prev_records_ms=""
prev_written=0
PEAK_PENDING=0
PEAK_PENDING_MS=""
SLOW_PORT=""
SLOW_AT_MS=""
SLOW_DONE=0
if [[ "$SLOW_REDIS_S" -gt 0 ]]; then
  if [[ "$REDIS_CLUSTER" -eq 1 ]]; then SLOW_PORT="${MASTER_PORTS[0]}"; else SLOW_PORT="$REDIS_PORT"; fi
fi
INGEST_MS=""
INGEST_RECORDS=0
INGEST_WRITTEN=0
DONE_MS=""
DONE_LINE=""
last=""
last_change_ms=$NOW_MS
progress_ms=$NOW_MS
records_in=0
emitted=0
written=0
pending=""
: >"$RUN/status.log"
while :; do
  running "$WORKER_PID" || die "slipstream-worker exited (log: $RUN/worker.log)"
  running "$COORDINATOR_PID" || die "slipstream-coordinator exited (log: $RUN/coordinator.log)"
  if line="$(status_line)" && [[ "$line" == *records_in=* ]]; then
    clock_ms # when the answer arrived
    if [[ "$(kv topic "$line")" != "$TOPIC" || "$line" == *$'\n'* ]]; then
      die "the coordinator on :$COORDINATOR_PORT answered for another job or several workers ($line): is another benchmark running?"
    fi
    records_in="$(kv records_in "$line")"
    emitted="$(kv features_emitted "$line")"
    written="$(kv redis_features_written "$line")"
    pending="$(kv redis_pending_features "$line")"
    if [[ -n "$pending" && "$pending" -gt "$PEAK_PENDING" ]]; then
      PEAK_PENDING="$pending"
      PEAK_PENDING_MS=$NOW_MS
    fi
    if [[ -n "$SLOW_PORT" && "$SLOW_DONE" -eq 0 && -n "$FIRST_MS" ]] && ((NOW_MS - FIRST_MS >= SLOW_REDIS_AFTER_MS)); then
      SLOW_DONE=1
      reply="$(redis-cli -p "$SLOW_PORT" CLIENT PAUSE $((SLOW_REDIS_S * 1000)) WRITE 2>&1 | tr -d '\r')"
      [[ "$reply" == "OK" ]] || die "CLIENT PAUSE on :$SLOW_PORT failed: $reply"
      clock_ms
      SLOW_AT_MS=$NOW_MS
      SLOW_AT_RECORDS="$records_in"
      SLOW_AT_PENDING="${pending:-?}"
      log "paused the writes of Redis :$SLOW_PORT for ${SLOW_REDIS_S}s (CLIENT PAUSE WRITE; $records_in records in, $written features written, ${pending:-?} pending)"
    fi
    if [[ -z "$FIRST_MS" && "$records_in" -gt 0 ]]; then
      FIRST_MS=$NOW_MS
      FIRST_RECORDS="$records_in"
      cpu_snapshot FIRST
      task_sched
      FIRST_TASK_ON=$TASK_ON_NS
      FIRST_TASK_WAIT=$TASK_WAIT_NS
      log "first records consumed ($records_in seen $(ms_to_s $((NOW_MS - WORKER_START_MS))) s after the worker started)"
      if [[ "$PERF" -eq 1 ]]; then
        perf record -g -o "$RUN/perf.data" -p "$WORKER_PID" -- sleep "$PERF_SECONDS" >"$RUN/perf.log" 2>&1 &
        PERF_PID=$!
      fi
    fi
    if [[ -z "$INGEST_MS" && "$records_in" -ge "$EXPECTED" ]]; then
      INGEST_MS="${prev_records_ms:-$NOW_MS}"
      INGEST_RECORDS="$prev_records"
      INGEST_WRITTEN="$prev_written"
    elif [[ "$records_in" -ne "$prev_records" ]]; then
      prev_records="$records_in"
      prev_records_ms=$NOW_MS
      prev_written="$written"
    fi
    # records_in is counted by the source thread, features by the window
    # operator thread: the watermark says the operator has taken the flush
    # records too (and fired what they close) before written = emitted counts.
    if [[ "$records_in" -ge "$EXPECTED" && "$written" -eq "$emitted" &&
      "$(kv watermark_ms "$line")" -ge "$DONE_WATERMARK_MS" ]]; then
      DONE_MS=$NOW_MS
      DONE_LINE="$line"
      cpu_snapshot DONE
      task_sched
      DONE_TASK_ON=$TASK_ON_NS
      DONE_TASK_WAIT=$TASK_WAIT_NS
      echo "$NOW_MS $line" >>"$RUN/status.log"
      break
    fi
    if [[ "$line" != "$last" ]]; then
      echo "$NOW_MS $line" >>"$RUN/status.log"
      last="$line"
      last_change_ms=$NOW_MS
    fi
  fi
  clock_ms
  if ((NOW_MS - progress_ms >= 5000)); then
    progress_ms=$NOW_MS
    log "  $records_in / $EXPECTED records, $written / $emitted features written, ${pending:-?} pending"
  fi
  if ((NOW_MS - last_change_ms >= TIMEOUT * 1000)); then
    die "no progress for ${TIMEOUT}s: ${last:-no status} (logs: $RUN)"
  fi
  sleep 0.1
done
PIPELINE_S="$(ms_to_s $((DONE_MS - FIRST_MS)))"
if ((DONE_MS - FIRST_MS < 2000)); then
  warn "caught up ${PIPELINE_S}s after the first record: too short to measure well (polls are 100 ms apart, counters up to 400 ms old); use more --events"
fi
TOTAL_S="$(ms_to_s $((DONE_MS - WORKER_START_MS)))"
INGEST_S="$(ms_to_s $((INGEST_MS - FIRST_MS)))"
DRAIN_S="$(ms_to_s $((DONE_MS - INGEST_MS)))"
INGEST_RATE="$(awk -v n="$INGEST_RECORDS" -v f="$FIRST_RECORDS" -v s="$INGEST_S" 'BEGIN { printf "%.0f", (s > 0 ? (n - f) / s : 0) }')"
PIPELINE_RATE="$(awk -v n="$EVENTS" -v s="$PIPELINE_S" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')"
INTERVAL_RATE="$(awk -v n="$EXPECTED" -v f="$FIRST_RECORDS" -v s="$PIPELINE_S" 'BEGIN { printf "%.0f", (s > 0 ? (n - f) / s : 0) }')"
RATIO="$(awk -v p="$PIPELINE_RATE" -v c="$CEILING" 'BEGIN { printf "%.2f", (c > 0 ? p / c : 0) }')"
# CPU the worker got over the same interval: on a shared machine this says how
# much of the wall time it actually ran (all threads, and the task thread).
ticks_s() { awk -v a="$1" -v b="$2" -v t="$CLK_TCK" 'BEGIN { printf "%.1f", (b - a) / t }'; }
CPU_S="$(ticks_s "$SNAP_FIRST_WORKER" "$SNAP_DONE_WORKER")"
CPU_REDIS_S="$(ticks_s "$SNAP_FIRST_REDIS" "$SNAP_DONE_REDIS")"
CPU_KAFKA_S="$(ticks_s "$SNAP_FIRST_KAFKA" "$SNAP_DONE_KAFKA")"
CPU_BUSY_S="$(ticks_s "$SNAP_FIRST_BUSY" "$SNAP_DONE_BUSY")"
CPU_IDLE_S="$(ticks_s "$SNAP_FIRST_IDLE" "$SNAP_DONE_IDLE")"
# A cluster: each node's CPU, and the sums over the masters and the replicas
# (CPU_REDIS_S becomes the sum over every node).
CPU_MASTERS_LIST=""
CPU_REPLICAS_LIST=""
CPU_MASTERS_S=0
CPU_REPLICAS_S=0
if [[ "$REDIS_CLUSTER" -eq 1 ]]; then
  # sum_role_cpu MASTER|REPLICA COUNT: sets CPU_<ROLE>S_LIST (per node) and
  # CPU_<ROLE>S_S (their sum) from the SNAP_FIRST_/SNAP_DONE_<ROLE>_<i> snapshots.
  sum_role_cpu() {
    local role="$1" count="$2" list="" sum=0 i a b c
    for ((i = 0; i < count; i++)); do
      a="SNAP_FIRST_${role}_$i" b="SNAP_DONE_${role}_$i"
      c="$(ticks_s "${!a}" "${!b}")"
      list+="${list:+ / }$c"
      sum="$(awk -v x="$sum" -v y="$c" 'BEGIN { printf "%.1f", x + y }')"
    done
    printf -v "CPU_${role}S_LIST" '%s' "$list"
    printf -v "CPU_${role}S_S" '%s' "$sum"
  }
  sum_role_cpu MASTER "${#MASTER_PIDS[@]}"
  sum_role_cpu REPLICA "${#REPLICA_PIDS[@]}"
  CPU_REDIS_S="$(awk -v x="$CPU_MASTERS_S" -v y="$CPU_REPLICAS_S" 'BEGIN { printf "%.1f", x + y }')"
fi
CPU_OTHER_S="$(awk -v b="$CPU_BUSY_S" -v w="$CPU_S" -v r="$CPU_REDIS_S" -v k="$CPU_KAFKA_S" 'BEGIN { o = b - w - r - k; printf "%.1f", (o > 0 ? o : 0) }')"
# The main thread (tid = pid) is the source since the scale-out change: Kafka
# polling, parsing and routing by key group (windows and RocksDB run on the
# operator thread, whose time is part of the worker's CPU above);
# schedstat splits its wall time into running, waiting for a CPU (the machine
# is busy) and blocked (sink backpressure, empty polls).
TASK_ON_S="$(awk -v a="$FIRST_TASK_ON" -v b="$DONE_TASK_ON" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')"
TASK_WAIT_S="$(awk -v a="$FIRST_TASK_WAIT" -v b="$DONE_TASK_WAIT" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')"
TASK_BLOCKED_S="$(awk -v w="$PIPELINE_S" -v on="$TASK_ON_S" -v q="$TASK_WAIT_S" 'BEGIN { b = w - on - q; printf "%.1f", (b > 0 ? b : 0) }')"
TASK_RATE="$(awk -v n="$EVENTS" -v a="$FIRST_TASK_ON" -v b="$DONE_TASK_ON" 'BEGIN { c = (b - a) / 1e9; printf "%.0f", (c > 0 ? n / c : 0) }')"
log "caught up: $DONE_LINE"
log "pipeline: $EVENTS events in ${PIPELINE_S}s = $PIPELINE_RATE events/s (worker start to caught up ${TOTAL_S}s)"

if [[ -n "$PERF_PID" ]]; then
  # Caught up before the recording ended: stop it now (perf writes its data on SIGINT).
  if running "$PERF_PID"; then kill -INT "$PERF_PID" 2>/dev/null || true; fi
  wait "$PERF_PID" || true
  PERF_PID=""
  [[ -s "$RUN/perf.data" ]] || warn "perf record wrote no data (log: $RUN/perf.log)"
fi

# ------------------------------------------------------------------ peak RSS, then stop
hwm_mib() { # VmHWM of a pid in MiB, or "?"
  local kb
  kb="$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)"
  if [[ -n "$kb" ]]; then awk -v k="$kb" 'BEGIN { printf "%.0f", k / 1024 }'; else echo "?"; fi
}
RSS_WORKER="$(hwm_mib "$WORKER_PID")"
RSS_COORDINATOR="$(hwm_mib "$COORDINATOR_PID")"
RSS_KAFKA="$(hwm_mib "${KAFKA_PID:-0}")"
RSS_REDIS="$(hwm_mib "${REDIS_PID:-0}")"
if [[ "$REDIS_CLUSTER" -eq 1 ]]; then
  RSS_REDIS="masters"
  for pid in "${MASTER_PIDS[@]}"; do RSS_REDIS+=" $(hwm_mib "$pid")"; done
  if ((${#REPLICA_PIDS[@]} > 0)); then
    RSS_REDIS+=", replicas"
    for pid in "${REPLICA_PIDS[@]}"; do RSS_REDIS+=" $(hwm_mib "$pid")"; done
  fi
fi
LOADAVG_END="$(cut -d' ' -f1-3 /proc/loadavg)"

PERF_TOP=""
PERF_THREADS=""
if [[ "$PERF" -eq 1 && -s "$RUN/perf.data" ]]; then
  perf_top() { # perf_top SORT N: the first N rows of perf report sorted by SORT
    perf report -i "$RUN/perf.data" --no-children --sort "$1" --stdio -g none 2>/dev/null |
      grep -v '^#' | grep -v '^[[:space:]]*$' | head -n "$2" |
      sed -E 's/([[:space:]]+-)*[[:space:]]*$//' | cut -c1-160 || true
  }
  PERF_TOP="$(perf_top symbol 10)"
  PERF_THREADS="$(perf_top pid 5)"
  printf '%s\n\n%s\n' "$PERF_TOP" "$PERF_THREADS" >"$RUN/perf-top.txt"
fi

TASK_TID="$WORKER_PID"
stop_pid "$WORKER_PID" "slipstream-worker" 60
WORKER_PID=""
stop_pid "$COORDINATOR_PID" "slipstream-coordinator" 20
COORDINATOR_PID=""

# ------------------------------------------------------------------ report
fmt() { LC_ALL=C awk -v n="$1" 'BEGIN { s = sprintf("%d", n); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'; }
met() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b ? "met" : "**not met**") }'; }
per_feature() { # per_feature CPU_S: µs of CPU per feature written
  awk -v c="$1" -v n="$(kv redis_features_written "$DONE_LINE")" 'BEGIN { printf "%.2f", (n > 0 ? c * 1e6 / n : 0) }'
}
REDIS_US="$(per_feature "$CPU_REDIS_S")"
if [[ "$REDIS_CLUSTER" -eq 1 ]]; then
  REDIS_DESC="a Redis Cluster of $REDIS_CLUSTER_MASTERS masters + $((REDIS_CLUSTER_MASTERS * REDIS_CLUSTER_REPLICAS)) replicas (masters :${MASTER_PORTS[*]}${REPLICA_PORTS[*]:+; replicas :${REPLICA_PORTS[*]}})"
  replicas_cpu="none" replicas_us="none"
  if [[ -n "$CPU_REPLICAS_LIST" ]]; then
    replicas_cpu="$CPU_REPLICAS_S s ($CPU_REPLICAS_LIST)"
    replicas_us="$(per_feature "$CPU_REPLICAS_S") µs"
  fi
  REDIS_CPU_DESC="Redis masters $CPU_MASTERS_S s ($CPU_MASTERS_LIST), replicas $replicas_cpu"
  REDIS_US_ROW="masters **$(per_feature "$CPU_MASTERS_S") µs**, replicas $replicas_us (CPU over the interval summed over the masters / replicas, / features written)"
else
  REDIS_DESC="one Redis"
  REDIS_CPU_DESC="Redis $CPU_REDIS_S s"
  REDIS_US_ROW="**$REDIS_US µs** (Redis CPU over the interval / features written); target ≤ 3 µs: $(awk -v u="$REDIS_US" 'BEGIN { print (u <= 3 ? "met" : "**not met**") }')"
fi
MODE=""
if [[ "$REDIS_CLUSTER" -eq 1 ]]; then MODE+=" --redis-cluster"; fi
if [[ "$GUARDED" -eq 1 ]]; then MODE+=" --guarded"; fi
if [[ "$SLOW_REDIS_S" -gt 0 ]]; then MODE+=" --slow-redis $SLOW_REDIS_S"; fi
MAX_PENDING_BOUND=""
# The sink's bound: its queue (max_queued, 100,000) + kMaxBatchesInFlight (2)
# batches of redis.batch-size (1,000 unless -Dredis.batch-size=).
batch_size=1000
for d in ${WORKER_EXTRA[@]+"${WORKER_EXTRA[@]}"}; do
  if [[ "$d" == -Dredis.batch-size=* ]]; then batch_size="${d#*=}"; fi
done
MAX_PENDING_BOUND=$((100000 + 2 * batch_size))
BACKLOG_ROW="$(fmt "$PEAK_PENDING") features$(if [[ -n "$PEAK_PENDING_MS" ]]; then echo " ($(ms_to_s $((PEAK_PENDING_MS - FIRST_MS))) s after the first record)"; fi); the sink's bound is $(fmt "$MAX_PENDING_BOUND") (queue of 100,000 + 2 batches of $(fmt "$batch_size") in flight)"
SLOW_ROW=""
if [[ -n "$SLOW_AT_MS" ]]; then
  SLOW_ROW=$'\n'"| slow Redis (--slow-redis) | \`CLIENT PAUSE $((SLOW_REDIS_S * 1000)) WRITE\` on :$SLOW_PORT$(if [[ "$REDIS_CLUSTER" -eq 1 ]]; then echo " (one master of $REDIS_CLUSTER_MASTERS)"; fi) $(ms_to_s $((SLOW_AT_MS - FIRST_MS))) s after the first record ($(fmt "$SLOW_AT_RECORDS") records in, $(fmt "$SLOW_AT_PENDING") features pending then) |"
elif [[ -n "$SLOW_PORT" ]]; then
  SLOW_ROW=$'\n'"| slow Redis (--slow-redis) | **never paused**: caught up within ${SLOW_REDIS_AFTER_MS} ms of the first record (use more --events) |"
fi
HALF_CEILING=$((CEILING / 2))
ceiling_list=""
for r in "${CEILING_ALL[@]}"; do ceiling_list+="${ceiling_list:+, }$(fmt "$r")"; done

cat <<EOF

### $(date -u '+%Y-%m-%d %H:%M UTC'): --events $EVENTS --users $USERS --step "$STEP"$MODE${FEATURES:+ --features $(basename "$FEATURES")}${WORKER_EXTRA[@]+ ${WORKER_EXTRA[*]}}

| | |
|---|---|
| machine | $NPROC × $CPU_MODEL, $MEM_GIB GiB RAM; Kafka and $REDIS_DESC on the same machine |
| load average (1/5/15 min) | at start $LOADAVG_START, at end $LOADAVG_END |
| build | $BUILD_TYPE, sanitizers ${SANITIZE:-OFF}, commit $COMMIT |
| topic | $(fmt "$EXPECTED") records ($EVENTS events + $PARTITIONS flush records), $PARTITIONS partitions, $(awk -v b="${TOPIC_BYTES:-0}" 'BEGIN { printf "%.1f", b / 1048576 }') MiB of payload |
| ceiling: bare librdkafka consumer | **$(fmt "$CEILING") events/s** (best of $CEILING_RUNS: $ceiling_list) |
| pipeline: one worker | **$(fmt "$PIPELINE_RATE") events/s** ($EVENTS events in $PIPELINE_S s, first record seen → caught up and sink drained; worker start → caught up $TOTAL_S s) |
| pipeline / ceiling | **$RATIO** |
| phases | ingest: $(fmt "$INGEST_RECORDS") records after $INGEST_S s ($(fmt "$INGEST_RATE") events/s, $(fmt "$INGEST_WRITTEN") features written by then); then the last batch, whose flush records fire every open window, and the sink's drain: $DRAIN_S s |
| CPU time over that interval | worker $CPU_S s, $REDIS_CPU_DESC, Kafka $CPU_KAFKA_S s, everything else on the machine $CPU_OTHER_S s, idle $CPU_IDLE_S s (of $NPROC × $PIPELINE_S s) |
| source thread (main) over that interval | $(if [[ "$TASK_SCHEDSTAT_OK" -eq 1 ]]; then echo "on a CPU $TASK_ON_S s, waiting for a CPU $TASK_WAIT_S s, blocked $TASK_BLOCKED_S s: $(fmt "$TASK_RATE") events per second of its CPU time"; else echo "(no /proc schedstat)"; fi) |
| features written to Redis | $(fmt "$(kv redis_features_written "$DONE_LINE")") ($(fmt "$(kv sliding_windows_fired "$DONE_LINE")") sliding windows, $(fmt "$(kv sessions_fired "$DONE_LINE")") sessions; redis errors $(kv redis_errors "$DONE_LINE"); late $(kv records_late "$DONE_LINE"), invalid $(kv records_invalid "$DONE_LINE")) |
| monotonic guard | $(if [[ "$GUARDED" -eq 1 ]]; then echo "**on for every write** (--guarded)"; else echo "off (no earlier writes: plain HSET + EXPIRE)"; fi): $(fmt "$(kv redis_features_guarded "$DONE_LINE")") features through the guard script, $(fmt "$(kv redis_features_kept_newer "$DONE_LINE")") kept out by it |
| Redis CPU per feature | $REDIS_US_ROW |
| peak RSS (VmHWM) | **worker $RSS_WORKER MiB**, coordinator $RSS_COORDINATOR MiB, Kafka $RSS_KAFKA MiB, Redis $RSS_REDIS MiB |
| largest sink backlog seen (redis_pending_features: queued + in flight; polls 100 ms apart) | $BACKLOG_ROW |${SLOW_ROW}
| target ≥ 250,000 events/s | $(met "$PIPELINE_RATE" 250000) |
| target ≥ ½ ceiling ($(fmt "$HALF_CEILING") events/s) | $(met "$PIPELINE_RATE" "$HALF_CEILING") |
EOF
echo
echo "(records_in was $FIRST_RECORDS at the first poll; rate over the polled interval $(fmt "$INTERVAL_RATE") events/s)"
if [[ -n "$PERF_TOP" ]]; then
  echo
  echo "perf record -g on the worker from the first record, up to ${PERF_SECONDS} s; top 10 symbols by self time"
  echo "(perf report --no-children --sort symbol --stdio -g none), then the busiest threads (--sort pid;"
  echo "tid $TASK_TID is the source thread: poll, parse, route; the busiest other slipstream-work is normally the window operator, then the Redis sink):"
  echo '```'
  echo "$PERF_TOP"
  echo
  echo "$PERF_THREADS"
  echo '```'
fi
