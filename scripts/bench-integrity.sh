#!/usr/bin/env bash
# integrity-validate on 1,000,000 realistic records (LEDGER_BENCH_RECORDS to change it):
# this build against a baseline binary built from BASELINE_COMMIT (default ecbae1f, main
# before issue #12's cross-file checks; the issue's budget is at most 15 % slower), timed
# interleaved, best of five, with sha256sum of the same files beside them. The temp ledger
# goes under LEDGER_BENCH_DIR (default: the system temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
commit="${BASELINE_COMMIT:-ecbae1f}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone --quiet . "$work/src"
git -C "$work/src" checkout --quiet "$commit"
target="${BASELINE_TARGET_DIR:-$work/target}"
(cd "$work/src" && CARGO_TARGET_DIR="$target" cargo build --release --quiet --bin platform)
cp "$target/release/platform" "$work/platform-baseline"
PLATFORM_BASELINE_BIN="$work/platform-baseline" \
    cargo test --release --test it -- --ignored --nocapture --test-threads 1 \
    ledger_bench::integrity_validate_against_a_baseline
