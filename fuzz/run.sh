#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (CI: `.ci/run`), or the ones named:
#   fuzz/run.sh [seconds] [target…]      (default 60 s each, every target)
# Needs only a stable toolchain: RUSTC_BOOTSTRAP=1 lets it take the nightly flags
# cargo-fuzz passes. cargo-fuzz is installed into $ZHIDA_CACHE/tools on first use; the build
# lives in $ZHIDA_CACHE/fuzz-target, and what the fuzzer learns in $ZHIDA_CACHE/fuzz-corpus,
# so the seeds in fuzz/corpus/<target> (and the regression cases kept there) stay as
# committed. A crash stops the run with the input in $ZHIDA_CACHE/fuzz-artifacts/<target>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

CACHE=${ZHIDA_CACHE:-$HOME/.cache/zhida}
export PATH=$CACHE/tools/bin:$PATH
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=$CACHE/fuzz-target
seconds=${1:-60}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(audience_rule event_decode profile_validate)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "[fuzz] installing cargo-fuzz into $CACHE/tools" >&2
    cargo install cargo-fuzz --locked --root "$CACHE/tools"
fi
# Release with debug assertions and overflow checks, AddressSanitizer (the default).
flags=(-O -a --target-dir "$CARGO_TARGET_DIR")
cargo fuzz build "${flags[@]}"
for target in "${targets[@]}"; do
    corpus=$CACHE/fuzz-corpus/$target
    artifacts=$CACHE/fuzz-artifacts/$target
    mkdir -p "$corpus" "$artifacts"
    echo "[fuzz] $target for ${seconds}s"
    log=$artifacts/last-run.log
    # -rss_limit_mb: a rule or event that makes a consumer allocate gigabytes is a finding.
    status=0
    cargo fuzz run "${flags[@]}" "$target" "$corpus" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb|#[0-9]+ +DONE)' "$log" || true
    if ((status != 0)); then
        tail -n 60 "$log" >&2
        echo "[fuzz] $target FAILED (exit $status): the input is in $artifacts/, the log in $log" >&2
        exit 1
    fi
done
