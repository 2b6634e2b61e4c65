#!/usr/bin/env bash
# Process benchmark (`make bench-calls`): the release `sma-handler` and a Python model of the
# sample's handler, each as a process behind a loopback Lambda Runtime API, against a fresh
# DynamoDB Local through one counting (and, for one run, throttling) proxy. Starts its own
# DynamoDB Local, stops it by PID on exit, and prints call-bench's JSON line last.
#
#   CALL_BENCH_COLD=10       fresh processes per side (cold start)
#   CALL_BENCH_CALLS=200     timed warm calls per side
#   CALL_BENCH_THROTTLED=1000   calls per side with 20 % of DynamoDB requests throttled
#   CALL_BENCH_FLAGS=...     more `call-bench` flags (`call-bench --help`)
#   PYTHON=python3           the interpreter for the sample's model (needs boto3; default: the
#                            first python3 on PATH outside the project's .tools/ venvs)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DDB="$ROOT/infra/dynamodb-local.sh"
# The machine's python3, not the one in the project's tool venvs that `make` puts first on PATH
# (SAM CLI's, with its own boto3 pin).
if [ -z "${PYTHON:-}" ]; then
  PYTHON="$(PATH="$(tr ':' '\n' <<<"$PATH" | grep -v "^$ROOT/.tools/" | paste -sd:)" command -v python3 || true)"
fi
PYTHON="${PYTHON:-python3}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

if ! "$PYTHON" -c 'import boto3' 2>/dev/null; then
  echo "bench-calls: the sample's model needs Python 3 with boto3; install it with:  pip install boto3" >&2
  exit 2
fi

# Separately: a joint build would unify dependency features over both packages and measure a
# handler built differently from the one `cargo lambda build -p sma-handler` deploys.
cargo build -q --release -p sma-handler
cargo build -q --release -p call-bench

"$DDB" install >/dev/null
name="bench-calls-$$"
trap '"$DDB" stop "$name" >/dev/null; rm -f "$ROOT/.local/dynamodb-local/$name.log"' EXIT
"$DDB" start "$name" >/dev/null
eval "$("$DDB" env "$name")"
echo "bench-calls: DynamoDB Local at $AWS_ENDPOINT_URL_DYNAMODB" >&2

bin="$TARGET/release/call-bench"
args=(--ours "$TARGET/release/sma-handler" --python "$PYTHON")

# Warm DynamoDB Local's JVM first (results discarded, about a minute): otherwise the cold
# starts pay for its JIT compilation of each request shape. Measured: our first answer took
# 20-46 ms after a short warm-up and 13-14 ms after this one, as against a long-running
# server. Real DynamoDB has no such warm-up to pay.
echo "bench-calls: warming DynamoDB Local (discarded run, about a minute)" >&2
"$bin" "${args[@]}" --cold 30 --calls 600 --throttled-calls 600 >/dev/null 2>&1 || true

# shellcheck disable=SC2086 # CALL_BENCH_FLAGS is a list of flags
"$bin" "${args[@]}" \
  --cold "${CALL_BENCH_COLD:-10}" \
  --calls "${CALL_BENCH_CALLS:-200}" \
  --throttled-calls "${CALL_BENCH_THROTTLED:-1000}" \
  ${CALL_BENCH_FLAGS:-} | tail -n 1
