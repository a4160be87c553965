#!/usr/bin/env bash
# Stops the Kafka and Redis that ./start.sh started (data is kept; use
# scripts/kafka.sh clean to delete Kafka's topics).
#
# Usage: ./stop.sh
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

rc=0
"$SLIPSTREAM_SCRIPTS/kafka.sh" stop || rc=1
"$SLIPSTREAM_SCRIPTS/redis.sh" stop || rc=1
exit "$rc"
