#!/usr/bin/env bash
# A local Redis Cluster for Slipstream's quickstarts and benchmarks: 3 masters
# and 3 replicas (one per master) on 127.0.0.1, no persistence (--save ''
# --appendonly no). Point the sink at it with redis.cluster.nodes (start
# prints the value).
#
# Usage: scripts/redis-cluster.sh start|stop|restart|status|nodes
#
#   start    start the nodes on ports $REDIS_CLUSTER_PORT.. (cluster bus on
#            port + 10000), create the cluster (redis-cli --cluster create),
#            wait until every node says cluster_state:ok, print the seed list;
#            if this script's cluster already runs and is ok, reuse it
#   stop     stop the nodes this script started and forget the cluster (each
#            node's directory <dir>/<port> with its nodes.conf): the next
#            start creates a fresh one
#   status   each node's role and cluster state (exit 0 if all say ok)
#   nodes    print the seed list only ("127.0.0.1:7000,...")
#
# Environment (defaults):
#   REDIS_CLUSTER_PORT=7000        first port: 7000..7005 for 3 + 3 nodes
#   REDIS_CLUSTER_MASTERS=3  REDIS_CLUSTER_REPLICAS=1   (replicas per master)
#   REDIS_CLUSTER_NODE_TIMEOUT=5000   cluster-node-timeout in ms: how long a
#                                  master may be silent before a failover
#   REDIS_CLUSTER_DIR=$SLIPSTREAM_RUN_DIR/redis-cluster-$REDIS_CLUSTER_PORT
#   REDIS_CLUSTER_START_TIMEOUT=60  REDIS_STOP_TIMEOUT=20   (seconds)
set -euo pipefail
SLIPSTREAM_TAG="slipstream redis-cluster"
# shellcheck source=scripts/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

REDIS_CLUSTER_PORT="${REDIS_CLUSTER_PORT:-7000}"
REDIS_CLUSTER_MASTERS="${REDIS_CLUSTER_MASTERS:-3}"
REDIS_CLUSTER_REPLICAS="${REDIS_CLUSTER_REPLICAS:-1}"
REDIS_CLUSTER_NODE_TIMEOUT="${REDIS_CLUSTER_NODE_TIMEOUT:-5000}"
REDIS_CLUSTER_DIR="${REDIS_CLUSTER_DIR:-$SLIPSTREAM_RUN_DIR/redis-cluster-$REDIS_CLUSTER_PORT}"
REDIS_CLUSTER_START_TIMEOUT="${REDIS_CLUSTER_START_TIMEOUT:-60}"
REDIS_STOP_TIMEOUT="${REDIS_STOP_TIMEOUT:-20}"

NODE_COUNT=$((REDIS_CLUSTER_MASTERS * (1 + REDIS_CLUSTER_REPLICAS)))
PORTS=()
for ((i = 0; i < NODE_COUNT; i++)); do
  PORTS+=($((REDIS_CLUSTER_PORT + i)))
done

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

need_tools() {
  command -v redis-server >/dev/null 2>&1 || die "redis-server not found: run scripts/setup.sh first"
  command -v redis-cli >/dev/null 2>&1 || die "redis-cli not found: run scripts/setup.sh first"
}

pidfile() { printf '%s/redis-%s.pid\n' "$REDIS_CLUSTER_DIR" "$1"; }
logfile() { printf '%s/redis-%s.log\n' "$REDIS_CLUSTER_DIR" "$1"; }

cli() {
  local port="$1"
  shift
  timeout 2 redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null
}

answers_ping() { [[ "$(cli "$1" ping)" == "PONG" ]]; }

# cluster_info PORT FIELD: one field of CLUSTER INFO (empty if none).
cluster_info() {
  cli "$1" cluster info | tr -d '\r' | sed -n "s/^$2://p"
}

# Prints the pid of the node on PORT that this script started, if it runs.
our_pid() {
  local pid
  if pid="$(read_pid "$(pidfile "$1")")" && pid_alive "$pid" && pid_cmdline_has "$pid" "redis-server"; then
    printf '%s\n' "$pid"
    return 0
  fi
  return 1
}

seed_list() {
  local out="" port
  for port in "${PORTS[@]}"; do
    out+="${out:+,}127.0.0.1:$port"
  done
  printf '%s\n' "$out"
}

# Every node knows every other and says ok, and every replica has synced
# with its master (so a failover can happen at once).
all_ok() {
  local port
  for port in "${PORTS[@]}"; do
    [[ "$(cluster_info "$port" cluster_state)" == "ok" ]] || return 1
    [[ "$(cluster_info "$port" cluster_known_nodes)" == "$NODE_COUNT" ]] || return 1
    if [[ "$(cli "$port" role | head -n 1)" == "slave" ]]; then
      cli "$port" info replication | tr -d '\r' | grep -qx 'master_link_status:up' || return 1
    fi
  done
}

print_seeds() {
  log "ready: $REDIS_CLUSTER_MASTERS masters + $((REDIS_CLUSTER_MASTERS * REDIS_CLUSTER_REPLICAS)) replicas (dir $REDIS_CLUSTER_DIR)"
  log "redis.cluster.nodes=$(seed_list)"
  log "e.g. slipstream-worker ... -Dredis.cluster.nodes=$(seed_list)"
}

start_node() {
  local port="$1"
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes \
    --cluster-enabled yes --cluster-config-file nodes.conf \
    --cluster-node-timeout "$REDIS_CLUSTER_NODE_TIMEOUT" \
    --repl-diskless-sync-delay 0 \
    --save '' --appendonly no \
    --dir "$REDIS_CLUSTER_DIR/$port" --pidfile "$(pidfile "$port")" --logfile "$(logfile "$port")" \
    </dev/null >/dev/null
}

show_log_tail() {
  local file="$1"
  if [[ -f "$file" ]]; then
    echo "----- last 20 lines of $file -----" >&2
    tail -n 20 "$file" >&2 || true
    echo "-----" >&2
  fi
}

cmd_start() {
  need_tools
  (( REDIS_CLUSTER_MASTERS >= 3 )) || die "REDIS_CLUSTER_MASTERS=$REDIS_CLUSTER_MASTERS: redis-cli --cluster create needs at least 3 masters"
  local port running=0 start
  start="$(now_s)"
  for port in "${PORTS[@]}"; do
    if our_pid "$port" >/dev/null; then
      running=$((running + 1))
    elif port_open 127.0.0.1 "$port" || port_open 127.0.0.1 $((port + 10000)); then
      die "port $port or its cluster bus port $((port + 10000)) is in use by something this script did not start (see: ss -ltnp 'sport = :$port'); set REDIS_CLUSTER_PORT"
    fi
  done
  if ((running == NODE_COUNT)) && all_ok; then
    log "already running on 127.0.0.1:${PORTS[0]}..${PORTS[-1]}"
    print_seeds
    return 0
  fi
  ((running == 0)) || die "$running of $NODE_COUNT nodes run but they do not form a healthy cluster: run '$0 stop' first"

  mkdir -p "$REDIS_CLUSTER_DIR"
  # One directory per node: a replica's full sync leaves a dump.rdb behind,
  # which a node sharing the directory would load at its next start.
  for port in "${PORTS[@]}"; do
    rm -rf "${REDIS_CLUSTER_DIR:?}/$port"
    mkdir -p "$REDIS_CLUSTER_DIR/$port"
    rm -f "$(pidfile "$port")"
    start_node "$port"
  done
  log "started $NODE_COUNT redis-server nodes on 127.0.0.1:${PORTS[0]}..${PORTS[-1]} (dir $REDIS_CLUSTER_DIR)"

  local i
  for port in "${PORTS[@]}"; do
    for ((i = 0; i < 100; i++)); do
      answers_ping "$port" && break
      sleep 0.1
    done
    answers_ping "$port" || { show_log_tail "$(logfile "$port")"; die "node $port did not answer PING within 10s"; }
  done

  local nodes=()
  for port in "${PORTS[@]}"; do
    nodes+=("127.0.0.1:$port")
  done
  if ! redis-cli --cluster create "${nodes[@]}" --cluster-replicas "$REDIS_CLUSTER_REPLICAS" --cluster-yes \
    </dev/null >"$REDIS_CLUSTER_DIR/create.log" 2>&1; then
    show_log_tail "$REDIS_CLUSTER_DIR/create.log"
    die "redis-cli --cluster create failed (log: $REDIS_CLUSTER_DIR/create.log)"
  fi

  for ((i = 0; i < REDIS_CLUSTER_START_TIMEOUT * 10; i++)); do
    if all_ok; then
      log "cluster_state:ok on every node, replicas in sync, after $(elapsed_since "$start")"
      print_seeds
      return 0
    fi
    sleep 0.1
  done
  cmd_status >&2 || true
  die "the cluster did not reach cluster_state:ok on every node within ${REDIS_CLUSTER_START_TIMEOUT}s"
}

cmd_stop() {
  local port pid stopped=0
  for port in "${PORTS[@]}"; do
    if pid="$(our_pid "$port")"; then
      timeout 5 redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
      local i
      for ((i = 0; i < 50; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
      done
      stop_pid "$pid" "redis-server :$port" "$REDIS_STOP_TIMEOUT"
      stopped=$((stopped + 1))
    fi
    rm -f "$(pidfile "$port")"
    rm -rf "${REDIS_CLUSTER_DIR:?}/$port"
  done
  if ((stopped == 0)); then
    log "not running (ports ${PORTS[0]}..${PORTS[-1]})"
  else
    log "stopped $stopped node(s)"
  fi
}

cmd_status() {
  local port pid ok=0 role state
  for port in "${PORTS[@]}"; do
    if ! answers_ping "$port"; then
      log "127.0.0.1:$port: not answering"
      ok=1
      continue
    fi
    role="$(cli "$port" role | head -n 1)"
    state="$(cluster_info "$port" cluster_state)"
    if pid="$(our_pid "$port")"; then
      log "127.0.0.1:$port: ${role:-?}, cluster_state:${state:-?} (pid $pid)"
    else
      log "127.0.0.1:$port: ${role:-?}, cluster_state:${state:-?} (not started by this script)"
    fi
    [[ "$state" == "ok" ]] || ok=1
  done
  ((ok == 0)) && log "redis.cluster.nodes=$(seed_list)"
  return "$ok"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart)
    cmd_stop
    cmd_start
    ;;
  status) cmd_status ;;
  nodes) seed_list ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
