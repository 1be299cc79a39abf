#!/usr/bin/env bash
# The no-op pass (SPEC §8) on the bench workload at W work orders, on a fresh ledger and with
# NOOP_BENCH_OLDER (1,000,000) older records behind the same workload, next to its floors
# measured in the same run: `cat` of the work-order YAML and `sha256sum` of each ledger.
# Prints one Markdown table: median wall (min-max), user CPU and peak RSS per measure.
#   scripts/bench-noop.sh [W]     (default 10000; BENCH_RUNS=5, BENCH_DIR=/tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-10000}
RUNS=${BENCH_RUNS:-5}
OUT=${BENCH_DIR:-/tmp}/noop-$(date +%Y%m%d-%H%M%S)
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/release/platform
mkdir -p "$OUT"
cargo build --release -q
# The older records are data, written by the test build (no release build of the tests).
NOOP_BENCH_STATE=$OUT/older/state cargo test -q --test it -- --ignored --exact \
  noop_cache::write_older_records >/dev/null
for k in fresh older; do
  scripts/gen-workload.py "$OUT/$k/repo" -w "$W" --platform "$BIN" \
    --billing-state-dir "$OUT/$k/state" >/dev/null
done
# One line per measure: name wall user rss_kib.
measure() {
  local name=$1
  shift
  /usr/bin/time -f '%e %U %M' -o "$OUT/time" "$@" >/dev/null 2>&1 || true
  echo "$name $(tail -1 "$OUT/time")" >>"$OUT/samples"
}
# The orchestrator on workload $2 (a command line, so /usr/bin/time can run it).
pass() {
  measure "$1" "$BIN" orchestrator --repo "$OUT/$2/repo" --billing-state-dir "$OUT/$2/state" \
    --runtime-dir "$OUT/$2/rt"
}
for k in fresh older; do
  pass "first-pass-$k" "$k"
done
for _ in $(seq "$RUNS"); do
  for k in fresh older; do
    pass "noop-pass-$k" "$k"
    measure "floor-sha256sum-ledger-$k" sh -c "sha256sum '$OUT/$k'/state/*.jsonl"
  done
  measure "floor-cat-yaml" sh -c "cat '$OUT/fresh'/repo/tenants/*/workorders/*.yml"
done
python3 - "$OUT/samples" "$W" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, wall, user, rss = line.split()
    rows.setdefault(name, []).append((float(wall), float(user), int(rss)))
w = int(sys.argv[2])
print(f"| W = {w:,} | median wall | min-max | per 1,000 work orders | user CPU | peak RSS |")
print("|---|---:|---:|---:|---:|---:|")
for name, s in rows.items():
    walls = [x[0] for x in s]
    med = statistics.median(walls)
    print(f"| {name} | {med:.3f} s | {min(walls):.3f}-{max(walls):.3f} s | "
          f"{med * 1000 / w * 1000:.1f} ms | {statistics.median(x[1] for x in s):.2f} s | "
          f"{max(x[2] for x in s) / 1024:.1f} MiB |")
PY
echo "(samples in $OUT)"
