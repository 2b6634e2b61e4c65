#!/usr/bin/env bash
# `make fuzz`: the structure-aware fuzzer (infra/fuzz) over the SMA, Connect and Alexa parsers and
# decisions, mutating the events/ corpus. Prints progress on stderr and its figures as one JSON
# line, last, on stdout; exits non-zero on any panic or violated invariant (the first failing
# inputs are written to target/fuzz/).
#
#   FUZZ_INPUTS=200000      number of inputs (cases)
#   FUZZ_SEED=1             seed: case i of seed s is the same on every machine
#   FUZZ_THREADS=<cores>    worker threads
#   FUZZ_REPLAY=i           run case i alone and print its inputs and findings
#   FUZZ_PROFILE=release    cargo profile (CI uses dev: its dependencies are already built)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PROFILE="${FUZZ_PROFILE:-release}"
case "$PROFILE" in
dev | debug) PROFILE=dev DIR=debug ;;
*) DIR="$PROFILE" ;;
esac

cargo build --quiet --profile "$PROFILE" -p fuzz
exec "${CARGO_TARGET_DIR:-$ROOT/target}/$DIR/fuzz"
