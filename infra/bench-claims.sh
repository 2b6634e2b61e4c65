#!/usr/bin/env bash
# Pair-claim benchmark (`make bench-claims`): starts a fresh DynamoDB Local, runs infra/claim-bench
# (release build) with this project's store ("spread") and with the seed's Limit=1 strategy
# ("seed"), stops the server by PID, and prints one JSON line per run plus a summary JSON line
# last.
#
#   BENCH_PROFILE=debug   skip the release build (faster to build, slower to run)
#   BENCH_RUNS="spread:64:64:0 seed:64:64:0"   mode:claimers:pairs:hold_ms runs to make
#   BENCH_CALLS=200       calls per figure of the side-by-side suite (`claim-bench --suite`)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DDB="$ROOT/infra/dynamodb-local.sh"
PROFILE="${BENCH_PROFILE:-release}"
# 64 claimers on 64 pairs (the target: <= 1.3 write attempts per claim, no double claims), and
# 100 on 40 with each pair held 1 s so 60 claimers must be told "busy".
RUNS="${BENCH_RUNS:-spread:64:64:0 seed:64:64:0 spread:100:40:1000 seed:100:40:1000}"

"$DDB" install >/dev/null
name="bench-$$"
trap '"$DDB" stop "$name" >/dev/null; rm -f "$ROOT/.local/dynamodb-local/$name.log"' EXIT
"$DDB" start "$name" >/dev/null
eval "$("$DDB" env "$name")"
echo "bench-claims: DynamoDB Local at $AWS_ENDPOINT_URL_DYNAMODB" >&2

if [ "$PROFILE" = release ]; then
  cargo build -q --release -p claim-bench
  bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/claim-bench"
else
  cargo build -q -p claim-bench
  bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug/claim-bench"
fi

# Warm DynamoDB Local's JVM first (results discarded): otherwise whichever mode runs first pays
# for JIT compilation and looks several times slower than it is.
for mode in spread seed; do
  "$bin" --mode "$mode" --claimers 32 --pairs 32 >/dev/null 2>&1 || true
done

results=()
for run in $RUNS; do
  IFS=: read -r mode claimers pairs hold <<<"$run"
  line="$("$bin" --mode "$mode" --claimers "$claimers" --pairs "$pairs" --hold-ms "${hold:-0}" | tail -n 1)"
  echo "$line"
  results+=("$line")
done
# The whole-call figures side by side with the sample's strategy (warm claim latency, requests
# and write units per call, bursts as separate execution environments, 20 % throttling, cold
# start): infra/claim-bench/src/suite.rs.
suite="$("$bin" --suite --calls "${BENCH_CALLS:-200}" | tail -n 1)"
echo "$suite"
# Summary, last: every burst run as one JSON array, and the suite.
(
  IFS=,
  echo "{\"bench\":\"claims\",\"profile\":\"$PROFILE\",\"runs\":[${results[*]}],\"suite\":$suite}"
)
