#!/usr/bin/env bash
# `make soak`: SOAK_CALLS calls (default 10000) through the real handlers and DynamoDB Local behind
# the soak's fault-injecting proxy (throttling, 500 before and after a write, latency beyond the
# budgets), with Chime SDK Voice API 429/5xx/timeouts, SMA re-deliveries, LEG-B hangup events in
# every order and Connect/caller hangup races, on a pool of 9 pairs (infra/soak). Prints a line
# per batch on stderr and the figures and invariants as one JSON line, last, on stdout; exits
# non-zero when an invariant failed.
#
#   SOAK_CALLS=10000  SOAK_SEED=1  SOAK_BATCH=1000  SOAK_RATE=0.4 (calls per virtual second)
#   SOAK_PROFILE=release   cargo profile (CI uses dev: its dependencies are already built)
#   SOAK_LOG=warn          handler logs on stderr (default off)
#
# Uses the DynamoDB Local at $AWS_ENDPOINT_URL_DYNAMODB when set (and leaves it running);
# otherwise starts its own and stops it by PID on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NAME="soak-$$"
STARTED=""
PROFILE="${SOAK_PROFILE:-release}"
case "$PROFILE" in
dev | debug) PROFILE=dev DIR=debug ;;
*) DIR="$PROFILE" ;;
esac

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

cargo build --quiet --profile "$PROFILE" -p soak
if [ -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]; then
  infra/dynamodb-local.sh install >/dev/null
  infra/dynamodb-local.sh start "$NAME" >/dev/null
  STARTED=1
  eval "$(infra/dynamodb-local.sh env "$NAME")"
fi
"${CARGO_TARGET_DIR:-$ROOT/target}/$DIR/soak"
