#!/usr/bin/env bash
# `make provision-demo`: plan and apply infra/property.example.toml against the loopback fake of
# Login with Amazon and the ASP APIs (`asp fake-server`), then plan again. Ends with one JSON
# line: what the first apply created/updated/deleted and how many changes the second plan finds.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
property="${PROPERTY_FILE:-$root/infra/property.example.toml}"
cargo="${CARGO:-cargo}"

"$cargo" build -q -p asp
asp="$root/target/debug/asp"
work="$(mktemp -d)"
fake_pid=""
cleanup() {
  if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null || true; wait "$fake_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$asp" fake-server --addr-file "$work/addr" --polls-until-active 2 2>"$work/fake.log" &
fake_pid=$!
for _ in $(seq 1 100); do [ -s "$work/addr" ] && break; sleep 0.05; done
[ -s "$work/addr" ] || { echo "the fake did not start" >&2; cat "$work/fake.log" >&2; exit 1; }
url="$(cat "$work/addr")"

# The fake's demo credentials; never real ones.
export ASP_API_URL="$url" ASP_LWA_URL="$url/auth/o2/token"
export ASP_CLIENT_ID=demo-client ASP_CLIENT_SECRET=demo-secret ASP_REFRESH_TOKEN='Atzr|demo-refresh'
state="$work/property.state.json"

echo "== asp plan $(basename "$property")   (fake ASP APIs at $url)"
"$asp" plan "$property" --state "$state"
echo
echo "== asp apply --output json"
"$asp" apply "$property" --state "$state" --poll-interval 1 --output json | tee "$work/apply.json"
echo
echo "== asp plan (again)"
"$asp" plan "$property" --state "$state"
"$asp" --output json plan "$property" --state "$state" >"$work/plan2.json"
trunk="$(python3 -c 'import json,sys; print(next(iter(json.load(open(sys.argv[1]))["trunks"].values()))["trunk_id"])' "$state")"
echo
echo "== asp trunk wait $trunk"
"$asp" trunk wait "$trunk" --interval 1
echo
python3 - "$work/apply.json" "$work/plan2.json" <<'PY'
import json, sys
apply = json.load(open(sys.argv[1]))
plan = json.load(open(sys.argv[2]))
changes = plan["create"] + plan["update"] + plan["delete"]
print(json.dumps({"created": apply["created"], "updated": apply["updated"], "deleted": apply["deleted"],
                  "failed": apply["failed"], "second_plan_changes": changes}))
sys.exit(0 if apply["failed"] == 0 and changes == 0 else 1)
PY
