#!/usr/bin/env bash
# A local single-node Apache Kafka broker (KRaft: broker + controller in one
# JVM), run straight from the jars on Maven Central: no tarball, no Docker.
#
# Usage: scripts/kafka.sh fetch|start|stop|restart|status|clean
#
#   fetch    download Kafka's jars into $SLIPSTREAM_CACHE/kafka-<version>/libs
#            (once; later calls return at once)
#   start    fetch if needed, format the data dir if new, start the broker in
#            the background and wait until it serves clients; does nothing if
#            our broker for this port is already running
#   stop     stop it (SIGTERM, then SIGKILL after $KAFKA_STOP_TIMEOUT s)
#   restart  stop, then start (keeps the data)
#   status   say whether it runs (exit 0 if it does, 1 if not)
#   clean    stop, then delete the data dir (topics, offsets, log)
#
# Environment (defaults):
#   KAFKA_PORT=9092  CONTROLLER_PORT=9093
#   KAFKA_LISTEN_HOST=127.0.0.1        address the client listener binds to
#   KAFKA_ADVERTISED_HOST=<listen host, or 127.0.0.1 for 0.0.0.0>
#   KAFKA_DATA_DIR=$SLIPSTREAM_RUN_DIR/kafka-$KAFKA_PORT  (run dir: /tmp/slipstream-run)
#   KAFKA_VERSION=3.9.1  SLIPSTREAM_CACHE=~/.cache/slipstream
#   KAFKA_HEAP_OPTS="-Xms256m -Xmx512m"  KAFKA_JVM_OPTS (extra JVM flags)
#   KAFKA_START_TIMEOUT=60  KAFKA_STOP_TIMEOUT=20
#   KAFKA_SASL_PORT (unset)  also serve a SASL_PLAINTEXT listener (mechanism
#                            PLAIN) on this port, for clients that log in as
#   KAFKA_SASL_USER=slipstream  KAFKA_SASL_PASSWORD=slipstream-secret
set -euo pipefail
SLIPSTREAM_TAG="slipstream kafka"
# shellcheck source=scripts/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
SCALA_BINARY_VERSION="2.13"
KAFKA_PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${CONTROLLER_PORT:-9093}"
KAFKA_LISTEN_HOST="${KAFKA_LISTEN_HOST:-127.0.0.1}"
if [[ "$KAFKA_LISTEN_HOST" == "0.0.0.0" ]]; then
  CHECK_HOST=127.0.0.1
else
  CHECK_HOST="$KAFKA_LISTEN_HOST"
fi
KAFKA_ADVERTISED_HOST="${KAFKA_ADVERTISED_HOST:-$CHECK_HOST}"
KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$SLIPSTREAM_RUN_DIR/kafka-$KAFKA_PORT}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-20}"
JAVA="${JAVA:-java}"
KAFKA_SASL_PORT="${KAFKA_SASL_PORT:-}"
KAFKA_SASL_USER="${KAFKA_SASL_USER:-slipstream}"
KAFKA_SASL_PASSWORD="${KAFKA_SASL_PASSWORD:-slipstream-secret}"
read -r -a HEAP_OPTS <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
read -r -a EXTRA_JVM_OPTS <<<"${KAFKA_JVM_OPTS:-}"

KAFKA_HOME="$SLIPSTREAM_CACHE/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
MARKER="$KAFKA_HOME/.fetched"
POM="$SLIPSTREAM_SCRIPTS/kafka/pom.xml"
LOG4J="$SLIPSTREAM_SCRIPTS/kafka/log4j.properties"

PROPS="$KAFKA_DATA_DIR/server.properties"
LOG_DIRS="$KAFKA_DATA_DIR/data"
LOGFILE="$KAFKA_DATA_DIR/kafka.log"
PIDFILE="$KAFKA_DATA_DIR/kafka.pid"
READY_LINE="Kafka Server started"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

# ---------------------------------------------------------------- fetch

fetched() {
  [[ -f "$MARKER" && -f "$LIBS/kafka_${SCALA_BINARY_VERSION}-${KAFKA_VERSION}.jar" ]]
}

cmd_fetch() {
  if fetched; then
    log "Kafka $KAFKA_VERSION already fetched ($LIBS)"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found: run scripts/setup.sh first"
  mkdir -p "$KAFKA_HOME"
  # Serialise concurrent fetches (e.g. start.sh and test.sh at once).
  exec 9>"$KAFKA_HOME/.lock"
  flock -w 900 9 || die "timed out waiting for another fetch ($KAFKA_HOME/.lock)"
  if fetched; then
    exec 9>&-
    log "Kafka $KAFKA_VERSION already fetched ($LIBS)"
    return 0
  fi
  local start tmp
  start="$(now_s)"
  tmp="$LIBS.tmp"
  rm -rf "$LIBS" "$tmp" "$MARKER"
  log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central (once; ~50 MB) ..."
  # The build directory goes into the cache too, so nothing lands in the repo.
  # mvn's output is shown only if it fails (it prints colour codes even with -q).
  local out
  if ! out="$(mvn -B -q -f "$POM" \
    -Dkafka.version="$KAFKA_VERSION" \
    -Dslipstream.build.dir="$KAFKA_HOME/mvn-target" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" </dev/null 2>&1)"; then
    printf '%s\n' "$out" | sed 's/\x1b\[[0-9;]*m//g' >&2
    rm -rf "$tmp"
    die "mvn could not resolve Kafka $KAFKA_VERSION (is Maven Central reachable?)"
  fi
  [[ -f "$tmp/kafka_${SCALA_BINARY_VERSION}-${KAFKA_VERSION}.jar" ]] ||
    die "mvn finished but $tmp has no kafka_${SCALA_BINARY_VERSION}-${KAFKA_VERSION}.jar"
  mv "$tmp" "$LIBS"
  rm -rf "$KAFKA_HOME/mvn-target"
  local n
  n="$(find "$LIBS" -maxdepth 1 -name '*.jar' | wc -l)"
  printf 'kafka %s: %s jars, fetched %s\n' "$KAFKA_VERSION" "$n" "$(date -u +%FT%TZ)" >"$MARKER"
  exec 9>&-
  log "fetched $n jars in $(elapsed_since "$start")"
}

# ---------------------------------------------------------------- broker

# Prints the pid of our broker for this data dir, if it runs.
broker_pid() {
  local pid
  if pid="$(read_pid "$PIDFILE")" && pid_alive "$pid" &&
    pid_cmdline_has "$pid" "kafka.Kafka" && pid_cmdline_has "$pid" "$PROPS"; then
    printf '%s\n' "$pid"
    return 0
  fi
  # Pid file lost or stale: look for a broker started with our properties file.
  local f
  while read -r f; do
    pid="${f#/proc/}"
    pid="${pid%/cmdline}"
    if pid_cmdline_has "$pid" "kafka.Kafka" && pid_alive "$pid"; then
      printf '%s\n' "$pid" 2>/dev/null >"$PIDFILE" || true
      printf '%s\n' "$pid"
      return 0
    fi
  done < <(grep -alsF -- "$PROPS" /proc/[0-9]*/cmdline || true)
  rm -f "$PIDFILE"
  return 1
}

write_properties() {
  local listeners="PLAINTEXT://${KAFKA_LISTEN_HOST}:${KAFKA_PORT},CONTROLLER://127.0.0.1:${CONTROLLER_PORT}"
  local advertised="PLAINTEXT://${KAFKA_ADVERTISED_HOST}:${KAFKA_PORT}"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [[ -n "$KAFKA_SASL_PORT" ]]; then
    listeners+=",SASL_PLAINTEXT://${KAFKA_LISTEN_HOST}:${KAFKA_SASL_PORT}"
    advertised+=",SASL_PLAINTEXT://${KAFKA_ADVERTISED_HOST}:${KAFKA_SASL_PORT}"
    protocols+=",SASL_PLAINTEXT:SASL_PLAINTEXT"
  fi
  cat >"$PROPS" <<EOF
# Generated by scripts/kafka.sh on every start; edits are overwritten.
# Single-node KRaft: this JVM is both broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${CONTROLLER_PORT}
controller.listener.names=CONTROLLER
listeners=${listeners}
advertised.listeners=${advertised}
listener.security.protocol.map=${protocols}
inter.broker.listener.name=PLAINTEXT

log.dirs=${LOG_DIRS}
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
delete.topic.enable=true

# Internal topics: one replica, and fewer partitions than the default 50 so the
# first consumer group / transaction on a fresh broker is ready quickly.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
group.initial.rebalance.delay.ms=0
EOF
  if [[ -n "$KAFKA_SASL_PORT" ]]; then
    # Brokers talk PLAINTEXT among themselves; only clients use SASL here.
    cat >>"$PROPS" <<EOF

# SASL_PLAINTEXT listener with PLAIN (KAFKA_SASL_PORT): one user.
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${KAFKA_SASL_USER}="${KAFKA_SASL_PASSWORD}";
EOF
  fi
}

java_opts() {
  JAVA_OPTS=(
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -Djava.awt.headless=true
    -Dlog4j.configuration="file:$LOG4J"
    -Dkafka.logs.dir="$KAFKA_DATA_DIR"
  )
  if [[ ${#EXTRA_JVM_OPTS[@]} -gt 0 ]]; then
    JAVA_OPTS+=("${EXTRA_JVM_OPTS[@]}")
  fi
}

format_storage() {
  if [[ -f "$LOG_DIRS/meta.properties" ]]; then
    return 0
  fi
  local uuid out
  java_opts
  uuid="$("$JAVA" "${JAVA_OPTS[@]}" -cp "$LIBS/*" kafka.tools.StorageTool random-uuid </dev/null | tail -n 1)"
  [[ "$uuid" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "StorageTool random-uuid printed '$uuid', not a cluster id"
  log "formatting $LOG_DIRS (cluster id $uuid)"
  if ! out="$("$JAVA" "${JAVA_OPTS[@]}" -cp "$LIBS/*" kafka.tools.StorageTool format \
    -t "$uuid" -c "$PROPS" </dev/null 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "formatting the storage failed"
  fi
}

tail_log() {
  if [[ -f "$LOGFILE" ]]; then
    echo "----- last 40 lines of $LOGFILE -----" >&2
    tail -n 40 "$LOGFILE" >&2 || true
    echo "-----" >&2
  fi
}

cmd_start() {
  local pid
  if pid="$(broker_pid)"; then
    log "already running (pid $pid) on $KAFKA_ADVERTISED_HOST:$KAFKA_PORT"
    return 0
  fi
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found: run scripts/setup.sh first"
  cmd_fetch
  local port
  for port in "$KAFKA_PORT" "$CONTROLLER_PORT" ${KAFKA_SASL_PORT:+"$KAFKA_SASL_PORT"}; do
    if port_open "$CHECK_HOST" "$port" || port_open 127.0.0.1 "$port"; then
      die "port $port is already in use by another process (see: ss -ltnp 'sport = :$port'); set KAFKA_PORT / CONTROLLER_PORT"
    fi
  done

  local start
  start="$(now_s)"
  mkdir -p "$KAFKA_DATA_DIR"
  write_properties
  format_storage
  if [[ -f "$LOGFILE" ]]; then
    mv -f "$LOGFILE" "$LOGFILE.prev"
  fi
  rm -f "$PIDFILE"

  java_opts
  log "starting broker on $KAFKA_ADVERTISED_HOST:$KAFKA_PORT (controller 127.0.0.1:$CONTROLLER_PORT, data $KAFKA_DATA_DIR)"
  # New session so the broker outlives this script and its terminal; the inner
  # shell writes its own pid (= the JVM's, after exec) to the pid file.
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' kafka-launch "$PIDFILE" \
    "$JAVA" "${HEAP_OPTS[@]}" "${JAVA_OPTS[@]}" -cp "$LIBS/*" kafka.Kafka "$PROPS" \
    </dev/null >"$LOGFILE" 2>&1 &

  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  pid=""
  while ((SECONDS < deadline)); do
    if [[ -z "$pid" ]]; then
      pid="$(read_pid "$PIDFILE" || true)"
    fi
    if [[ -n "$pid" ]]; then
      if ! pid_alive "$pid"; then
        tail_log
        rm -f "$PIDFILE"
        die "broker exited during startup (log: $LOGFILE)"
      fi
      if grep -q "$READY_LINE" "$LOGFILE" 2>/dev/null && port_open "$CHECK_HOST" "$KAFKA_PORT"; then
        log "ready in $(elapsed_since "$start") (pid $pid): bootstrap.servers=$KAFKA_ADVERTISED_HOST:$KAFKA_PORT"
        return 0
      fi
    fi
    sleep 0.25
  done
  tail_log
  if [[ -n "$pid" ]]; then
    stop_pid "$pid" "Kafka broker" "$KAFKA_STOP_TIMEOUT"
    rm -f "$PIDFILE"
  fi
  die "broker not ready after ${KAFKA_START_TIMEOUT}s (log: $LOGFILE)"
}

cmd_stop() {
  local pid
  if ! pid="$(broker_pid)"; then
    log "not running (port $KAFKA_PORT)"
    return 0
  fi
  stop_pid "$pid" "Kafka broker on port $KAFKA_PORT" "$KAFKA_STOP_TIMEOUT"
  rm -f "$PIDFILE"
  log "stopped"
}

cmd_status() {
  local pid
  if pid="$(broker_pid)"; then
    if port_open "$CHECK_HOST" "$KAFKA_PORT"; then
      log "running (pid $pid) on $KAFKA_ADVERTISED_HOST:$KAFKA_PORT, data $KAFKA_DATA_DIR"
    else
      log "process running (pid $pid) but port $KAFKA_PORT is not open yet; log: $LOGFILE"
    fi
    return 0
  fi
  log "not running (port $KAFKA_PORT, data $KAFKA_DATA_DIR)"
  return 1
}

cmd_clean() {
  cmd_stop
  if [[ ! -e "$KAFKA_DATA_DIR" ]]; then
    return 0
  fi
  # Refuse to delete a directory that is not one of ours.
  if [[ -f "$PROPS" || -d "$LOG_DIRS" || -z "$(ls -A "$KAFKA_DATA_DIR")" ]]; then
    rm -rf "$KAFKA_DATA_DIR"
    log "removed $KAFKA_DATA_DIR"
  else
    die "$KAFKA_DATA_DIR does not look like a Kafka data dir made by kafka.sh; not deleting it"
  fi
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart)
    cmd_stop
    cmd_start
    ;;
  status) cmd_status ;;
  clean) cmd_clean ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
