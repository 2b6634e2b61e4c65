#!/usr/bin/env bash
# Project-local developer and CI tools, pinned, installed into .tools/ (git-ignored).
#
#   infra/tools.sh install    cargo-lambda + SAM CLI + cfn-lint (one venv), checkov (its own venv:
#                             its boto3 pin conflicts with SAM CLI's), the aarch64 Rust target and
#                             DynamoDB Local. Idempotent: a second run takes about a second.
#   infra/tools.sh path       prints the PATH to use (venv bin dirs first), for `export PATH=...`
#   infra/tools.sh versions   prints the installed versions
#
# Why a venv and not `cargo install cargo-lambda`: the PyPI package ships a prebuilt binary plus
# `ziglang` (the cross linker) in ~1 minute; compiling cargo-lambda takes ~20 minutes on 2 cores.
# SAM's rust-cargolambda builder needs `ziglang` importable by the first `python3` on PATH, so the
# venv's bin directory must come first on PATH (`make` and `.ci/run` do that).
set -euo pipefail

CARGO_LAMBDA_VERSION="1.9.2"
SAM_CLI_VERSION="1.170.0"
CFN_LINT_VERSION="1.58.0"
CHECKOV_VERSION="3.3.30"
RUST_CROSS_TARGET="aarch64-unknown-linux-gnu"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
VENV="$TOOLS/venv"
CHECKOV_VENV="$TOOLS/checkov-venv"
PYTHON="${PYTHON:-python3}"

log() { echo "tools: $*" >&2; }
die() {
  echo "tools: $*" >&2
  exit 1
}

# A venv is reused when its stamp records exactly the requested pins.
ensure_venv() {
  local dir="$1" stamp_text="$2"
  shift 2
  local stamp="$dir/.pins"
  if [ -x "$dir/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_text" ]; then
    return 0
  fi
  log "installing $* into ${dir#"$ROOT"/} (about a minute)"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir" || die "could not create a venv with $PYTHON (is python3-venv installed?)"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" ||
    die "pip install $* failed"
  echo "$stamp_text" >"$stamp"
}

cmd_install() {
  mkdir -p "$TOOLS"
  ensure_venv "$VENV" "cargo-lambda==$CARGO_LAMBDA_VERSION aws-sam-cli==$SAM_CLI_VERSION cfn-lint==$CFN_LINT_VERSION" \
    "cargo-lambda==$CARGO_LAMBDA_VERSION" "aws-sam-cli==$SAM_CLI_VERSION" "cfn-lint==$CFN_LINT_VERSION"
  ensure_venv "$CHECKOV_VENV" "checkov==$CHECKOV_VERSION" "checkov==$CHECKOV_VERSION"

  if command -v rustup >/dev/null; then
    if ! rustup target list --installed 2>/dev/null | grep -qx "$RUST_CROSS_TARGET"; then
      log "rustup target add $RUST_CROSS_TARGET"
      rustup target add "$RUST_CROSS_TARGET" >&2
    fi
  else
    log "rustup not found: make sure the $RUST_CROSS_TARGET std is installed for arm64 builds"
  fi

  "$ROOT/infra/dynamodb-local.sh" install >&2
}

cmd_path() {
  # checkov-venv last: its bin has its own python3, which must not shadow the main venv's.
  echo "$VENV/bin:$PATH:$CHECKOV_VENV/bin"
}

cmd_versions() {
  local p
  p="$(cmd_path)"
  PATH="$p" cargo lambda --version 2>/dev/null | head -n 1 || echo "cargo-lambda: not installed"
  PATH="$p" sam --version 2>/dev/null || echo "sam: not installed"
  PATH="$p" cfn-lint --version 2>/dev/null || echo "cfn-lint: not installed"
  echo "checkov $("$CHECKOV_VENV/bin/checkov" --version 2>/dev/null || echo 'not installed')"
  PATH="$p" python3 -c 'import ziglang, importlib.metadata as m; print("ziglang", m.version("ziglang"))' 2>/dev/null ||
    echo "ziglang: not importable by the first python3 on PATH"
}

case "${1:-}" in
install) cmd_install ;;
path) cmd_path ;;
versions) cmd_versions ;;
*)
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
  ;;
esac
