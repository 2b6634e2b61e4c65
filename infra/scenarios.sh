#!/usr/bin/env bash
# `make scenarios`: every scenario in events/scenarios/ through the real handlers, against
# DynamoDB Local and against the in-memory store. Exits non-zero when any outcome differs from
# what its scenario expects (or on any invalid SMA response, leaked pair, wrong-caller transfer).
#
#   infra/scenarios.sh              all scenarios, both stores
#   infra/scenarios.sh FILE...      only these
#   SCENARIOS_STORES=memory infra/scenarios.sh     skip DynamoDB Local
#
# Uses the DynamoDB Local at $AWS_ENDPOINT_URL_DYNAMODB when set (and leaves it running);
# otherwise starts its own and stops it by PID on exit. Extra emulator options via EMULATOR_ARGS
# (e.g. EMULATOR_ARGS=--json).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STORES="${SCENARIOS_STORES:-dynamodb memory}"
NAME="scenarios-$$"
STARTED=""

stop_server() {
  local status=$?
  if [ -n "$STARTED" ]; then
    infra/dynamodb-local.sh stop "$NAME" >/dev/null 2>&1 || true
    # Keep the server log only when something went wrong.
    [ "$status" -ne 0 ] || rm -f ".local/dynamodb-local/$NAME.log"
  fi
  exit "$status"
}
trap stop_server EXIT
trap 'exit 130' INT TERM

cargo build --quiet -p emulator
# shellcheck disable=SC2206
EXTRA=(${EMULATOR_ARGS:-})
status=0
for store in $STORES; do
  case "$store" in
  dynamodb)
    if [ -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]; then
      infra/dynamodb-local.sh start "$NAME" >/dev/null
      STARTED=1
      eval "$(infra/dynamodb-local.sh env "$NAME")"
    fi
    echo "==> scenarios against DynamoDB Local ($AWS_ENDPOINT_URL_DYNAMODB)"
    cargo run --quiet -p emulator -- --store dynamodb --summary "${EXTRA[@]}" "$@" || status=1
    ;;
  memory)
    echo "==> scenarios against the in-memory store"
    cargo run --quiet -p emulator -- --store memory --summary "${EXTRA[@]}" "$@" || status=1
    ;;
  *)
    echo "scenarios: unknown store '$store' (dynamodb, memory)" >&2
    exit 2
    ;;
  esac
done
exit "$status"
