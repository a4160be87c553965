#!/usr/bin/env bash
# The whole pipeline end to end on one machine: installs what is missing,
# builds, starts Kafka and Redis, one coordinator and one worker, produces
# sample events with slipstream-gen and shows the features arriving in Redis.
#
# Usage: ./scripts/quickstart.sh [--events N] [--users N] [--keep-running]
#
# Processes started here log to $SLIPSTREAM_RUN_DIR/quickstart/*.log. Without
# --keep-running the coordinator and worker are stopped at the end (Kafka and
# Redis stay up; ./stop.sh stops them).
set -euo pipefail
SLIPSTREAM_TAG="quickstart"
# shellcheck source=scripts/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

EVENTS=200000
USERS=2000
KEEP_RUNNING=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) EVENTS="$2"; shift 2 ;;
    --users) USERS="$2"; shift 2 ;;
    --keep-running) KEEP_RUNNING=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

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

PIDS=()
cleanup() {
  if [[ "$KEEP_RUNNING" -eq 0 && ${#PIDS[@]} -gt 0 ]]; then
    log "stopping the worker and the coordinator"
    kill -TERM "${PIDS[@]}" 2>/dev/null || true
    wait "${PIDS[@]}" 2>/dev/null || true
  fi
}
trap cleanup EXIT

log "producing $EVENTS sample events for $USERS users to topic $TOPIC (4 partitions)"
"$BIN/slipstream-gen" "${COMMON[@]}" --partitions 4 --count "$EVENTS" --users "$USERS" \
  --malformed-fraction 0.001 --late-fraction 0.001 --flush-watermark +1d --quiet

log "starting the coordinator (gRPC :6123) and one worker"
"$BIN/slipstream-coordinator" "${COMMON[@]}" >"$RUN/coordinator.log" 2>&1 &
PIDS+=($!)
"$BIN/slipstream-worker" "${COMMON[@]}" -Dkafka.starting-offsets=earliest >"$RUN/worker.log" 2>&1 &
PIDS+=($!)

# Wait until the features stop changing (the worker has caught up).
previous=-1
for _ in $(seq 1 120); do
  sleep 1
  count=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'user_features:*' | wc -l)
  if [[ "$count" -gt 0 && "$count" -eq "$previous" ]]; then break; fi
  previous=$count
  for pid in "${PIDS[@]}"; do
    pid_alive "$pid" || { tail -n 20 "$RUN"/*.log; die "a process exited early (logs above)"; }
  done
done

users=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'user_features:*' | wc -l)
sessions=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'session_features:*' | wc -l)
grep -a "records in" "$RUN/worker.log" | tail -n 1 || true
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
  log "coordinator and worker keep running (pids ${PIDS[*]}); logs in $RUN"
fi
