#!/usr/bin/env bash
# CI wall time as a fresh machine sees it: `.ci/run` from a clean clone of each REV (default
# HEAD) with an empty target directory, one after the other; prints one line per REV.
# Alternate the revisions compared (A B A B) on a shared machine: its speed drifts.
#
# Usage: scripts/bench-ci.sh [REV ...]
# Environment:
#   BENCH_DIR=DIR   where the clones, target dirs and logs go (default: a temp dir, removed)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${BENCH_DIR:-}" ]; then
    work="$BENCH_DIR/ci-$(date +%Y%m%d-%H%M%S)"
    mkdir -p "$work"
else
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
fi
[ "$#" -gt 0 ] || set -- HEAD
n=0
for rev in "$@"; do
    n=$((n + 1))
    sha="$(git -C "$root" rev-parse --verify "$rev^{commit}")"
    clone="$work/clone-$n"
    git clone --quiet "$root" "$clone"
    git -C "$clone" checkout --quiet "$sha"
    start=$(date +%s)
    rc=0
    CARGO_TARGET_DIR="$work/target-$n" "$clone/.ci/run" >"$work/ci-$n.log" 2>&1 || rc=$?
    echo "$rev (${sha:0:7}): $(($(date +%s) - start)) s, exit code $rc, log $work/ci-$n.log"
    rm -rf "$work/target-$n" "$clone"
done
