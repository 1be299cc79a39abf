#!/usr/bin/env bash
# `orchestrator --jobs N` (SPEC §8), as a Markdown table:
#   1. W_SLEEP work orders whose module sleeps 0.2 s (gen-workload.py --sleep-ms 200): the
#      first pass with --jobs 1 and with --jobs 16 (tests/it/orchestrator_jobs.rs checks that
#      the results are identical; here the summaries and balances are compared too);
#   2. the two-step workload at W_TWO (gen-workload.py --steps 2: two command steps per work
#      order): the first pass with --jobs 1, 2 and 4, next to the sequential spawn floor of
#      its module commands (the module's run.sh 2 W times from a sh loop), interleaved.
#
# Usage: scripts/bench-jobs.sh
# Environment:
#   BENCH_SLEEP_W=600     work orders of the sleeping workload (0: skip it)
#   BENCH_TWO_W=1000      work orders of the two-step workload (0: skip it)
#   BENCH_RUNS=3          runs per measure of the two-step workload (the median is reported)
#   BENCH_DIR=DIR         where to work (default: a temp dir, removed at the end)
#   BENCH_PLATFORM=PATH   measure this binary instead of building target/release/platform
#   BENCH_RUNTIME_DIR=DIR where the passes' runtime folders go (default: beside their
#                         ledgers in the work directory); the ledgers stay on BENCH_DIR's disk
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
w_sleep="${BENCH_SLEEP_W:-600}"
w_two="${BENCH_TWO_W:-1000}"
runs="${BENCH_RUNS:-3}"
[ -x /usr/bin/time ] || { echo "bench-jobs.sh needs GNU time (/usr/bin/time)" >&2; exit 2; }

# shellcheck source=scripts/bench-setup.sh
. "$root/scripts/bench-setup.sh"
bench_setup jobs
if [ -n "${BENCH_RUNTIME_DIR:-}" ]; then mkdir -p "$BENCH_RUNTIME_DIR"; fi
warn_unjournaled "${BENCH_RUNTIME_DIR:-$work}"
results="$work/results.tsv"
: >"$results"

# timed LABEL CMD...: run CMD once; append "label wall_us cpu_us peak_rss_kib" to $results.
timed() {
    local label="$1"
    shift
    local t0 t1
    t0=$(date +%s%N)
    /usr/bin/time -f '%M %U %S' -o "$work/time.txt" "$@" >"$work/out.txt" 2>"$work/err.txt" || {
        echo "FAILED: $*" >&2
        tail -5 "$work/err.txt" >&2
        exit 1
    }
    t1=$(date +%s%N)
    read -r rss user sys <"$work/time.txt"
    python3 -c 'import sys; l, w, u, s, r = sys.argv[1:]; print(f"{l}\t{int(w) // 1000}\t{int((float(u) + float(s)) * 1e6)}\t{r}")' \
        "$label" "$((t1 - t0))" "$user" "$sys" "$rss" >>"$results"
}

# pass REPO STATE0 DIR JOBS: a first pass from a copy of the topped-up STATE0, empty runtime.
pass() {
    local repo="$1" state0="$2" dir="$3" jobs="$4" runtime
    runtime="${BENCH_RUNTIME_DIR:+$BENCH_RUNTIME_DIR/$(basename "$dir")}"
    runtime="${runtime:-$dir/runtime}"
    rm -rf "$dir" "$runtime" && mkdir -p "$dir" && cp -a "$state0" "$dir/state" && sync
    timed "$5" "$bin" --repo "$repo" orchestrator --jobs "$jobs" --json \
        --billing-state-dir "$dir/state" --runtime-dir "$runtime"
    cp "$work/out.txt" "$dir/summary.json"
}

# The module's own command 2 W times, one after the other (what one step at a time cannot
# go below): spawn_floor of bench-setup.sh.
export -f spawn_floor

# What a pass left, order and times aside: each run's status and credits, and the number of
# records of each ledger file.
outcome() {
    python3 - "$1/summary.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
print(sorted((r["tenant_id"], r["work_order_id"], r["status"], r["charged_credits"], r["refunded_credits"]) for r in s["runs"]))
EOF
    wc -l <"$1/state/billing.jsonl"
    wc -l <"$1/state/evidence.jsonl"
}

if [ "$w_sleep" -gt 0 ]; then
    echo "sleeping workload: $w_sleep work orders, 0.2 s each" >&2
    python3 "$root/scripts/gen-workload.py" "$work/sleep" -w "$w_sleep" --sleep-ms 200 \
        --platform "$bin" --billing-state-dir "$work/sleep-state0" >/dev/null
    for jobs in 16 1; do
        pass "$work/sleep" "$work/sleep-state0" "$work/sleep-j$jobs" "$jobs" "sleep: --jobs $jobs"
        grep -q "\"status\": \"FAILED\"" "$work/sleep-j$jobs/summary.json" && {
            echo "a run FAILED with --jobs $jobs" >&2
            exit 1
        }
    done
    if [ "$(outcome "$work/sleep-j1")" != "$(outcome "$work/sleep-j16")" ]; then
        echo "--jobs 1 and --jobs 16 left different results" >&2
        exit 1
    fi
    rm -rf "$work/sleep-j1/runtime" "$work/sleep-j16/runtime" \
        ${BENCH_RUNTIME_DIR:+"$BENCH_RUNTIME_DIR/sleep-j1" "$BENCH_RUNTIME_DIR/sleep-j16"}
fi

if [ "$w_two" -gt 0 ]; then
    echo "two-step workload: $w_two work orders, $runs runs per measure" >&2
    python3 "$root/scripts/gen-workload.py" "$work/two" -w "$w_two" --steps 2 \
        --platform "$bin" --billing-state-dir "$work/two-state0" >/dev/null
    # The floor's module writes its outputs where the passes' modules do (their runtime
    # folders): the same file system, or the comparison measures the disks.
    spawn_out="${BENCH_RUNTIME_DIR:-$work}/spawn"
    for ((i = 0; i < runs; i++)); do
        rm -rf "$spawn_out"
        timed "two-step: sequential spawn floor (2 W module runs)" \
            bash -c 'spawn_floor "$@"' _ "$work/two" "$((2 * w_two))" "$spawn_out"
        for jobs in 1 2 4 16; do
            pass "$work/two" "$work/two-state0" "$work/two-j$jobs" "$jobs" "two-step: first pass --jobs $jobs"
        done
    done
    if [ -n "${BENCH_RUNTIME_DIR:-}" ]; then
        rm -rf "$spawn_out" "$BENCH_RUNTIME_DIR/two-j1" "$BENCH_RUNTIME_DIR/two-j2" "$BENCH_RUNTIME_DIR/two-j4" "$BENCH_RUNTIME_DIR/two-j16"
    fi
fi

python3 - "$results" "$w_sleep" "$w_two" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, wall, cpu, rss = line.rstrip("\n").split("\t")
    rows.setdefault(label, []).append((int(wall) / 1e6, int(cpu) / 1e6, int(rss) / 1024))
print("| measure | runs | median wall | min–max | CPU (user+sys) | peak RSS |")
print("|---|---:|---:|---:|---:|---:|")
for label, xs in rows.items():
    walls = [x[0] for x in xs]
    print(f"| {label} | {len(xs)} | {statistics.median(walls):.2f} s | {min(walls):.2f}–{max(walls):.2f} s "
          f"| {statistics.median(x[1] for x in xs):.2f} s | {max(x[2] for x in xs):.1f} MiB |")
med = {k: statistics.median(x[0] for x in v) for k, v in rows.items()}
if "sleep: --jobs 1" in med and "sleep: --jobs 16" in med:
    print(f"\nsleeping workload (W = {sys.argv[2]}): --jobs 16 is {med['sleep: --jobs 1'] / med['sleep: --jobs 16']:.1f}x faster than --jobs 1")
floor = med.get("two-step: sequential spawn floor (2 W module runs)")
for j in (1, 2, 4, 16):
    k = f"two-step: first pass --jobs {j}"
    if floor and k in med:
        print(f"two-step (W = {sys.argv[3]}): --jobs {j} first pass = {med[k] / floor:.2f}x the sequential spawn floor")
EOF
