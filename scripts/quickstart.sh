#!/usr/bin/env bash
# The whole pipeline end to end on one machine: installs what is missing,
# builds, starts Kafka and Redis, one coordinator and N workers (default 1,
# through scripts/start-cluster.sh), produces sample events with
# slipstream-gen and shows the features arriving in Redis.
#
# Usage: ./scripts/quickstart.sh [--events N] [--users N] [--workers N] [--keep-running]
#
# Processes started here log to $SLIPSTREAM_RUN_DIR/quickstart/*.log
# (coordinator.log, worker-1.log, ...). Without --keep-running the coordinator
# and the workers are stopped at the end (Kafka and Redis stay up; ./stop.sh
# stops them); with it, stop them later with
#   scripts/start-cluster.sh --stop --run-dir $SLIPSTREAM_RUN_DIR/quickstart
set -euo pipefail
SLIPSTREAM_TAG="quickstart"
# shellcheck source=scripts/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

EVENTS=200000
USERS=2000
WORKERS=1
KEEP_RUNNING=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) EVENTS="$2"; shift 2 ;;
    --users) USERS="$2"; shift 2 ;;
    --workers) WORKERS="$2"; shift 2 ;;
    --keep-running) KEEP_RUNNING=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || die "--workers must be a positive integer, not '$WORKERS'"

export KAFKA_PORT="${KAFKA_PORT:-9092}" CONTROLLER_PORT="${CONTROLLER_PORT:-9093}" REDIS_PORT="${REDIS_PORT:-6379}"
"$SLIPSTREAM_SCRIPTS/build.sh"
"$SLIPSTREAM_SCRIPTS/kafka.sh" start
"$SLIPSTREAM_SCRIPTS/redis.sh" start

BIN="$SLIPSTREAM_BUILD_DIR/bin"
RUN="$SLIPSTREAM_RUN_DIR/quickstart"
mkdir -p "$RUN"
TOPIC="quickstart-events-$(date +%s)"
COMMON=(--config "$SLIPSTREAM_ROOT/conf/application.properties"
        "-Dkafka.bootstrap.servers=127.0.0.1:$KAFKA_PORT" "-Dkafka.topic=$TOPIC" "-Dkafka.dlq.topic=$TOPIC-dlq"
        "-Dredis.port=$REDIS_PORT" "-Dstate.dir=$RUN/state" "-Dstate.checkpoints.dir=file://$RUN/checkpoints")

CLUSTER=("$SLIPSTREAM_SCRIPTS/start-cluster.sh" --run-dir "$RUN")
STARTED=0
cleanup() {
  if [[ "$KEEP_RUNNING" -eq 0 && "$STARTED" -eq 1 ]]; then
    log "stopping the workers and the coordinator"
    "${CLUSTER[@]}" --stop || true
  fi
}
trap cleanup EXIT

log "producing $EVENTS sample events for $USERS users to topic $TOPIC (4 partitions)"
"$BIN/slipstream-gen" "${COMMON[@]}" --partitions 4 --count "$EVENTS" --users "$USERS" \
  --malformed-fraction 0.001 --late-fraction 0.001 --flush-watermark +1d --quiet

# start-cluster.sh gives every process the same overrides; only the workers
# read kafka.starting-offsets. It returns once the coordinator listens and the
# workers have started; it stops what it started if that fails.
STARTED=1
"${CLUSTER[@]}" --workers "$WORKERS" "${COMMON[@]}" -Dkafka.starting-offsets=earliest

# Wait until the features stop changing (the workers have caught up).
previous=-1
for _ in $(seq 1 120); do
  sleep 1
  count=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'user_features:*' | wc -l)
  if [[ "$count" -gt 0 && "$count" -eq "$previous" ]]; then break; fi
  previous=$count
  "${CLUSTER[@]}" --status >/dev/null || { tail -n 20 "$RUN"/*.log; die "a process exited early (logs above)"; }
done

users=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'user_features:*' | wc -l)
sessions=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'session_features:*' | wc -l)
for f in "$RUN"/worker-*.log; do
  grep -a "records in" "$f" | tail -n 1 || true
done
log "Redis now holds $users user_features:* keys and $sessions session_features:* keys"
log "for example:"
echo "> redis-cli HGETALL user_features:1"
redis-cli -p "$REDIS_PORT" HGETALL user_features:1
echo "> redis-cli TTL user_features:1"
redis-cli -p "$REDIS_PORT" TTL user_features:1
key=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'session_features:1:*' | head -n 1)
if [[ -n "$key" ]]; then
  echo "> redis-cli HGETALL $key"
  redis-cli -p "$REDIS_PORT" HGETALL "$key"
fi
[[ "$users" -gt 0 ]] || die "no features arrived in Redis (logs: $RUN)"
if [[ "$KEEP_RUNNING" -eq 1 ]]; then
  log "coordinator and $WORKERS worker(s) keep running; logs in $RUN"
  log "stop them with: scripts/start-cluster.sh --stop --run-dir $RUN"
fi
