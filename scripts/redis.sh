#!/usr/bin/env bash
# A local Redis for Slipstream (no persistence: --save '' --appendonly no).
#
# Usage: scripts/redis.sh start|stop|restart|status
#
#   start    start redis-server on 127.0.0.1:$REDIS_PORT and wait for PONG; if
#            something already answers PING on that port, reuse it
#   stop     stop the Redis this script started (one it reused is left alone)
#   status   say whether Redis answers (exit 0 if it does, 1 if not)
#
# Environment (defaults):
#   REDIS_PORT=6379
#   REDIS_DIR=$SLIPSTREAM_RUN_DIR/redis-$REDIS_PORT  (run dir: /tmp/slipstream-run)
#   REDIS_START_TIMEOUT=20  REDIS_STOP_TIMEOUT=20
set -euo pipefail
SLIPSTREAM_TAG="slipstream redis"
# shellcheck source=scripts/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_DIR="${REDIS_DIR:-$SLIPSTREAM_RUN_DIR/redis-$REDIS_PORT}"
REDIS_START_TIMEOUT="${REDIS_START_TIMEOUT:-20}"
REDIS_STOP_TIMEOUT="${REDIS_STOP_TIMEOUT:-20}"
PIDFILE="$REDIS_DIR/redis.pid"
LOGFILE="$REDIS_DIR/redis.log"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

need_tools() {
  command -v redis-server >/dev/null 2>&1 || die "redis-server not found: run scripts/setup.sh first"
  command -v redis-cli >/dev/null 2>&1 || die "redis-cli not found: run scripts/setup.sh first"
}

answers_ping() {
  [[ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]
}

# Prints the pid of the redis-server this script started, if it still runs.
our_pid() {
  local pid
  if pid="$(read_pid "$PIDFILE")" && pid_alive "$pid" && pid_cmdline_has "$pid" "redis-server"; then
    printf '%s\n' "$pid"
    return 0
  fi
  return 1
}

cmd_start() {
  need_tools
  local pid
  if pid="$(our_pid)"; then
    if answers_ping; then
      log "already running (pid $pid) on 127.0.0.1:$REDIS_PORT"
      return 0
    fi
  elif answers_ping; then
    log "reusing the Redis that already answers on 127.0.0.1:$REDIS_PORT (not started by this script; stop.sh leaves it alone)"
    return 0
  else
    if port_open 127.0.0.1 "$REDIS_PORT"; then
      die "port $REDIS_PORT is in use by something that does not answer Redis PING (see: ss -ltnp 'sport = :$REDIS_PORT'); set REDIS_PORT"
    fi
    mkdir -p "$REDIS_DIR"
    rm -f "$PIDFILE"
    log "starting redis-server on 127.0.0.1:$REDIS_PORT (dir $REDIS_DIR)"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes \
      --save '' --appendonly no \
      --dir "$REDIS_DIR" --pidfile "$PIDFILE" --logfile "$LOGFILE" </dev/null >/dev/null
  fi

  local i
  for ((i = 0; i < REDIS_START_TIMEOUT * 10; i++)); do
    if answers_ping; then
      log "ready: redis://127.0.0.1:$REDIS_PORT"
      return 0
    fi
    sleep 0.1
  done
  if [[ -f "$LOGFILE" ]]; then
    echo "----- last 20 lines of $LOGFILE -----" >&2
    tail -n 20 "$LOGFILE" >&2 || true
    echo "-----" >&2
  fi
  die "redis on port $REDIS_PORT did not answer PING within ${REDIS_START_TIMEOUT}s"
}

cmd_stop() {
  local pid
  if ! pid="$(our_pid)"; then
    rm -f "$PIDFILE"
    if command -v redis-cli >/dev/null 2>&1 && answers_ping; then
      log "a Redis answers on port $REDIS_PORT but was not started by this script; leaving it running"
    else
      log "not running (port $REDIS_PORT)"
    fi
    return 0
  fi
  log "stopping redis-server (pid $pid, port $REDIS_PORT)"
  timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  local i
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  stop_pid "$pid" "redis-server" "$REDIS_STOP_TIMEOUT"
  rm -f "$PIDFILE"
  log "stopped"
}

cmd_status() {
  local pid
  if answers_ping; then
    if pid="$(our_pid)"; then
      log "running (pid $pid) on 127.0.0.1:$REDIS_PORT"
    else
      log "a Redis not started by this script answers on 127.0.0.1:$REDIS_PORT"
    fi
    return 0
  fi
  log "not running (port $REDIS_PORT)"
  return 1
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart)
    cmd_stop
    cmd_start
    ;;
  status) cmd_status ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
