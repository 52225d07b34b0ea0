#!/usr/bin/env bash
# Run the full test suite against real servers (Kafka/tansu, Redis, SMTP sink):
# ensures cargo-nextest, starts the servers (deploy/servers.sh up), exports the
# ZHIDA_TEST_* variables, runs `cargo nextest run --workspace --no-fail-fast "$@"`,
# and stops the servers again on exit, keeping nextest's exit code.
#
# Usage: deploy/test.sh [extra nextest args...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export ZHIDA_CACHE=${ZHIDA_CACHE:-$HOME/.cache/zhida}
export PATH=$ZHIDA_CACHE/tools/bin:$PATH
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ZHIDA_CACHE/target}

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "[test] installing cargo-nextest into $ZHIDA_CACHE/tools" >&2
    cargo install cargo-nextest --locked --root "$ZHIDA_CACHE/tools"
fi

trap 'rc=$?; deploy/servers.sh down || true; exit $rc' EXIT
deploy/servers.sh up
eval "$(deploy/servers.sh env)"
cargo nextest run --workspace --no-fail-fast "$@"
