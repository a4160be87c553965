#!/usr/bin/env bash
# Starts Kafka and Redis for local work (installing what is missing first).
#
# Usage: ./start.sh        (stop them again with ./stop.sh)
#
# Ports: KAFKA_PORT=9092 (controller CONTROLLER_PORT=9093), REDIS_PORT=6379.
# Data and logs: $SLIPSTREAM_RUN_DIR (default /tmp/slipstream-run).
set -euo pipefail
SLIPSTREAM_TAG="slipstream"
# shellcheck source=scripts/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/scripts/lib.sh"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
  exit 0
fi

export KAFKA_PORT="${KAFKA_PORT:-9092}"
export CONTROLLER_PORT="${CONTROLLER_PORT:-9093}"
export REDIS_PORT="${REDIS_PORT:-6379}"

"$SLIPSTREAM_SCRIPTS/setup.sh"
"$SLIPSTREAM_SCRIPTS/kafka.sh" start
"$SLIPSTREAM_SCRIPTS/redis.sh" start

# Same default as kafka.sh: the listen host, or 127.0.0.1 when it is 0.0.0.0.
KAFKA_HOST="${KAFKA_ADVERTISED_HOST:-${KAFKA_LISTEN_HOST:-127.0.0.1}}"
if [[ "$KAFKA_HOST" == "0.0.0.0" ]]; then
  KAFKA_HOST=127.0.0.1
fi
cat <<INFO

[slipstream] Kafka:  bootstrap.servers=$KAFKA_HOST:$KAFKA_PORT   (log: ${KAFKA_DATA_DIR:-$SLIPSTREAM_RUN_DIR/kafka-$KAFKA_PORT}/kafka.log)
[slipstream] Redis:  redis://127.0.0.1:$REDIS_PORT
[slipstream] Stop both with ./stop.sh
INFO
