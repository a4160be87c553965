#!/usr/bin/env bash
# The test command: installs what is missing, builds, starts a throw-away Kafka
# and Redis, runs the whole ctest suite, and stops them again.
#
# Usage: scripts/test.sh [--unit] [extra ctest args, e.g. -L unit or -R window]
#
#   --unit       only the tests labelled "unit" (ctest -L unit), no Kafka/Redis
#   --sanitize   build with AddressSanitizer + UndefinedBehaviorSanitizer into
#                build-asan/ and run the suite there (slower; not part of CI)
#
# The tests find the services and binaries through:
#   SLIPSTREAM_TEST_KAFKA=127.0.0.1:19092  SLIPSTREAM_TEST_REDIS=127.0.0.1:16379
#   SLIPSTREAM_BIN_DIR=<root>/build/bin    SLIPSTREAM_SOURCE_DIR=<root>
#   SLIPSTREAM_TEST_KAFKA_SASL=127.0.0.1:19094 (the same broker's SASL_PLAINTEXT
#   listener, PLAIN) with SLIPSTREAM_TEST_KAFKA_SASL_USER / _PASSWORD
# The test Kafka starts from an empty data dir on every run; its log stays in
# $SLIPSTREAM_RUN_DIR/test-kafka-19092/kafka.log after the run.
#
# Environment: SLIPSTREAM_TEST_KAFKA_PORT=19092 SLIPSTREAM_TEST_CONTROLLER_PORT=19093
#   SLIPSTREAM_TEST_KAFKA_SASL_PORT=<Kafka port + 2> SLIPSTREAM_TEST_REDIS_PORT=16379,
#   plus what scripts/build.sh reads.
set -euo pipefail
SLIPSTREAM_TAG="slipstream test"
# shellcheck source=scripts/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

START="$(now_s)"
UNIT_ONLY=0
CTEST_ARGS=()
SANITIZE_ARGS=()
for arg in "$@"; do
  case "$arg" in
    --unit) UNIT_ONLY=1 ;;
    --sanitize)
      export SLIPSTREAM_BUILD_DIR="$SLIPSTREAM_ROOT/build-asan"
      SANITIZE_ARGS=(-DSLIPSTREAM_SANITIZE=ON -DSLIPSTREAM_BUILD_BENCH=OFF)
      ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
      exit 0
      ;;
    *) CTEST_ARGS+=("$arg") ;;
  esac
done

TEST_KAFKA_PORT="${SLIPSTREAM_TEST_KAFKA_PORT:-19092}"
TEST_CONTROLLER_PORT="${SLIPSTREAM_TEST_CONTROLLER_PORT:-19093}"
TEST_KAFKA_SASL_PORT="${SLIPSTREAM_TEST_KAFKA_SASL_PORT:-$((TEST_KAFKA_PORT + 2))}"
TEST_KAFKA_SASL_USER="slipstream-test"
TEST_KAFKA_SASL_PASSWORD="slipstream-test-secret"
TEST_REDIS_PORT="${SLIPSTREAM_TEST_REDIS_PORT:-16379}"
TEST_KAFKA_DIR="$SLIPSTREAM_RUN_DIR/test-kafka-$TEST_KAFKA_PORT"
TEST_REDIS_DIR="$SLIPSTREAM_RUN_DIR/test-redis-$TEST_REDIS_PORT"

test_kafka() {
  KAFKA_PORT="$TEST_KAFKA_PORT" CONTROLLER_PORT="$TEST_CONTROLLER_PORT" KAFKA_SASL_PORT="$TEST_KAFKA_SASL_PORT" \
    KAFKA_SASL_USER="$TEST_KAFKA_SASL_USER" KAFKA_SASL_PASSWORD="$TEST_KAFKA_SASL_PASSWORD" \
    KAFKA_LISTEN_HOST=127.0.0.1 KAFKA_ADVERTISED_HOST=127.0.0.1 \
    KAFKA_DATA_DIR="$TEST_KAFKA_DIR" "$SLIPSTREAM_SCRIPTS/kafka.sh" "$@"
}
test_redis() {
  REDIS_PORT="$TEST_REDIS_PORT" REDIS_DIR="$TEST_REDIS_DIR" "$SLIPSTREAM_SCRIPTS/redis.sh" "$@"
}

SERVICES_STARTED=0
# shellcheck disable=SC2317  # called through the EXIT trap
on_exit() {
  local rc=$?
  trap - EXIT
  if [[ "$SERVICES_STARTED" == "1" ]]; then
    test_kafka stop || warn "could not stop the test Kafka"
    test_redis stop || warn "could not stop the test Redis"
  fi
  if [[ "$rc" -eq 0 ]]; then
    log "OK; total time $(elapsed_since "$START")"
  else
    log "FAILED (exit $rc); total time $(elapsed_since "$START")"
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$SLIPSTREAM_SCRIPTS/setup.sh" --with-ui-test
SLIPSTREAM_SKIP_SETUP=1 "$SLIPSTREAM_SCRIPTS/build.sh" "${SANITIZE_ARGS[@]}"

export SLIPSTREAM_BIN_DIR="$SLIPSTREAM_BUILD_DIR/bin"
export SLIPSTREAM_SOURCE_DIR="$SLIPSTREAM_ROOT"
# The web UI test's playwright-core (scripts/setup.sh --with-ui-test put it there); its
# screenshot goes to $SLIPSTREAM_BUILD_DIR/test-artifacts/ui.png.
export SLIPSTREAM_UI_TEST_MODULES="$SLIPSTREAM_CACHE/ui-test"

# --no-tests=error: a filter that matches nothing (or an empty suite) fails
# instead of passing silently.
CTEST=(ctest --test-dir "$SLIPSTREAM_BUILD_DIR" --output-on-failure -j2 --timeout 900 --no-tests=error)

if [[ "$UNIT_ONLY" == "1" ]]; then
  log "running unit tests only (no Kafka/Redis)"
  CTEST+=(-L unit)
else
  SERVICES_STARTED=1
  # Every run starts from an empty broker and an empty Redis.
  test_kafka clean
  test_kafka start
  test_redis stop
  test_redis start
  export SLIPSTREAM_TEST_KAFKA="127.0.0.1:$TEST_KAFKA_PORT"
  export SLIPSTREAM_TEST_REDIS="127.0.0.1:$TEST_REDIS_PORT"
  export SLIPSTREAM_TEST_KAFKA_SASL="127.0.0.1:$TEST_KAFKA_SASL_PORT"
  export SLIPSTREAM_TEST_KAFKA_SASL_USER="$TEST_KAFKA_SASL_USER"
  export SLIPSTREAM_TEST_KAFKA_SASL_PASSWORD="$TEST_KAFKA_SASL_PASSWORD"
  log "SLIPSTREAM_TEST_KAFKA=$SLIPSTREAM_TEST_KAFKA SLIPSTREAM_TEST_REDIS=$SLIPSTREAM_TEST_REDIS"
fi
if [[ ${#CTEST_ARGS[@]} -gt 0 ]]; then
  CTEST+=("${CTEST_ARGS[@]}")
fi

log "${CTEST[*]}"
set +e
"${CTEST[@]}"
rc=$?
set -e
if [[ "$rc" -ne 0 && "$UNIT_ONLY" != "1" ]]; then
  log "test Kafka log: $TEST_KAFKA_DIR/kafka.log; test Redis log: $TEST_REDIS_DIR/redis.log"
fi
exit "$rc"
