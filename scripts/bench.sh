#!/usr/bin/env bash
# Orchestrator, validation and ledger-reading costs at several sizes W (work orders of 3
# steps), next to the physical floors measured in the same run, as a Markdown table.
#
# Usage: scripts/bench.sh [W ...]            (default: 100 1000 2000 10000)
# Environment:
#   BENCH_RUNS=5          runs per measure (the median wall time is reported)
#   BENCH_FIRST_RUNS=3    runs of the first pass up to W = BENCH_BIG (it rewrites the ledger)
#   BENCH_BIG=5000        above this W the first pass runs once...
#   BENCH_FIRST_MAX=0     ...and not at all above this W (0: no limit); the no-op pass and the
#                         validators then run on a ledger built by a first pass anyway, so
#                         set it only to skip the slow part on a slow disk
#   BENCH_TENANTS=10      tenants per workload (work orders are spread evenly)
#   BENCH_DIR=DIR         where to work (default: a temp dir, removed at the end; with
#                         BENCH_DIR a new DIR/run-<time> is made and kept); it decides which
#                         disk the fsyncs hit
#   BENCH_PACKAGE=1       also run scripts/bench-package.sh (1 GiB, ~3 GiB free needed)
#   BENCH_LEDGER=1        also run scripts/bench-ledger.sh (1,000,000 records)
#   BENCH_JOBS=1          also run scripts/bench-jobs.sh (--jobs: 600 sleeping work orders,
#                         the two-step workload at W = 1,000 against its spawn floor)
#   BENCH_PLATFORM=PATH   measure this binary instead of building target/release/platform
#                         (e.g. an older build, for a before/after comparison)
# Wall times are taken with date +%s%N around `/usr/bin/time -f %M` (peak RSS, KiB); the
# machine may be shared, so read the medians with the spread (min-max) next to them.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 1000 2000 10000)
runs="${BENCH_RUNS:-5}"
first_runs="${BENCH_FIRST_RUNS:-3}"
big="${BENCH_BIG:-5000}"
first_max="${BENCH_FIRST_MAX:-0}"
tenants="${BENCH_TENANTS:-10}"

if [ ! -x /usr/bin/time ]; then
    echo "installing GNU time (apt-get)" >&2
    apt-get update -qq && apt-get install -y -qq time >/dev/null
fi
for tool in zip sha256sum python3; do
    command -v "$tool" >/dev/null || { echo "bench.sh needs $tool" >&2; exit 2; }
done

# Nothing is deleted while measuring: on ext4 without a journal (this VM's disk) every file
# created within minutes of a mass delete pays a scan for recently freed inodes (kernel CPU in
# recently_deleted), which made the floors and the first pass after a cleanup up to 10x
# slower. A CI runner's fresh checkout never sees that, so runs and floors only move their
# old files aside, and everything goes at exit (or stays, under BENCH_DIR, for you to remove).
# shellcheck source=scripts/bench-setup.sh
. "$root/scripts/bench-setup.sh"
bench_setup run
results="$work/results.tsv"
: >"$results"

# sample W LABEL SETUP CMD...: runs SETUP (untimed, a shell string), then CMD once, and
# appends "W label wall_us peak_rss_kib cpu_us" to $results (CPU = user + system of CMD and
# its children, at /usr/bin/time's 10 ms resolution). The report takes medians per label.
sample() {
    local w="$1" label="$2" setup="$3"
    shift 3
    local t0 t1 status=0
    [ -z "$setup" ] || eval "$setup"
    t0=$(date +%s%N)
    /usr/bin/time -f '%M %U %S' -o "$work/rss.txt" "$@" >"$work/out.txt" 2>"$work/err.txt" || status=$?
    t1=$(date +%s%N)
    if [ "$status" -ne 0 ]; then
        echo "FAILED ($status): $*" >&2
        tail -5 "$work/err.txt" "$work/out.txt" >&2
        exit 1
    fi
    tail -1 "$work/rss.txt" | awk -v w="$w" -v l="$label" -v us="$(((t1 - t0) / 1000))" \
        '{printf "%s\t%s\t%s\t%s\t%d\n", w, l, us, $1, ($2 + $3) * 1000000}' >>"$results"
}

# measure W LABEL RUNS SETUP CMD...: RUNS samples in a row.
measure() {
    local w="$1" label="$2" n="$3" setup="$4" i
    shift 4
    for ((i = 0; i < n; i++)); do
        sample "$w" "$label" "$setup" "$@"
    done
    echo "  $label: $n run(s)" >&2
}

# Spawn floor (bench-setup.sh): the module's own command W times, from a minimal loop.
export -f spawn_floor

ledger_bytes() {
    cat "$1"/billing.jsonl "$1"/evidence.jsonl "$1"/audit.jsonl 2>/dev/null | wc -c
}

for w in "${sizes[@]}"; do
    dir="$work/w$w"
    mkdir -p "$dir/trash"
    echo "W = $w: generating" >&2
    python3 "$root/scripts/gen-workload.py" "$dir/repo" --work-orders "$w" \
        --tenants "$tenants" --platform "$bin" --billing-state-dir "$dir/state0" >/dev/null
    repo="$dir/repo"

    # 1. First pass: from the topped-up ledger, an empty runtime dir each time.
    n="$first_runs"
    [ "$w" -le "$big" ] || n=1
    fresh="t=\$(date +%s%N); [ ! -e '$dir/state' ] || mv '$dir/state' '$dir/trash/s'\$t; [ ! -e '$dir/runtime' ] || mv '$dir/runtime' '$dir/trash/r'\$t; cp -a '$dir/state0' '$dir/state'; sync"
    if [ "$first_max" -ne 0 ] && [ "$w" -gt "$first_max" ]; then
        echo "  first pass skipped (W > BENCH_FIRST_MAX); building the ledger once, untimed" >&2
        n=0
        eval "$fresh"
        "$bin" --repo "$repo" orchestrator --billing-state-dir "$dir/state" \
            --runtime-dir "$dir/runtime" >/dev/null 2>&1
    fi
    # Durability floor: a pass makes 16 flushes per work order (11 ledger appends: run start,
    # per step SPEND batch, step-started, outcome; run end; and 5 files of package_std and
    # deliver_local). Timed for min(16 W, 4,000) small appends + fdatasync on the same disk,
    # the figure is scaled to 16 W.
    flushes=$((16 * w))
    nsync=$((flushes < 4000 ? flushes : 4000))
    echo "$w fsync_scale $flushes $nsync" >>"$work/sizes.txt"
    # Interleaved with the floors it is compared with, so that all see the same machine.
    for ((i = 0; i < (n > runs ? n : runs); i++)); do
        if [ "$i" -lt "$n" ]; then
            sample "$w" "orchestrator first pass" "$fresh" \
                "$bin" --repo "$repo" orchestrator --billing-state-dir "$dir/state" \
                --runtime-dir "$dir/runtime"
            grep -q "$w run(s), 0 up to date, 0 invalid" "$work/out.txt" || {
                echo "first pass did not run all $w work orders:" >&2
                tail -3 "$work/out.txt" >&2
                exit 1
            }
        fi
        sample "$w" "floor: spawn module W times" "rm -rf '$dir/spawn'" \
            bash -c 'spawn_floor "$@"' _ "$repo" "$w" "$dir/spawn"
        sample "$w" "floor: 16 W fdatasync (sampled)" "rm -f '$dir/fsync.bin'" \
            python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
line = b"x" * 600 + b"\n"
for _ in range(int(sys.argv[2])):
    os.write(fd, line)
    os.fdatasync(fd)' "$dir/fsync.bin" "$nsync"
    done
    echo "  first pass ($n) and its floors ($runs)" >&2

    # 2. The no-op pass over the same ledger: everything up to date, nothing appended.
    measure "$w" "orchestrator no-op pass" "$runs" "" \
        "$bin" --repo "$repo" orchestrator --billing-state-dir "$dir/state" \
        --runtime-dir "$dir/runtime"
    grep -q "0 run(s), $w up to date" "$work/out.txt" || {
        echo "no-op pass was not a no-op:" >&2
        tail -3 "$work/out.txt" >&2
        exit 1
    }

    # 3. consistency-validate, next to reading the same YAML files.
    find "$repo" -name '*.yml' -print0 | sort -z >"$dir/yaml.list"
    for ((i = 0; i < runs; i++)); do
        sample "$w" "consistency-validate" "" "$bin" --repo "$repo" consistency-validate
        sample "$w" "floor: cat YAML files" "" \
            bash -c 'xargs -0 cat <"$1" >/dev/null' _ "$dir/yaml.list"
    done

    # 4. integrity-validate (ledger + runtime records), next to sha256sum of the ledger.
    measure "$w" "integrity-validate" "$runs" "" \
        "$bin" --repo "$repo" integrity-validate --billing-state-dir "$dir/state" \
        --runtime-dir "$dir/runtime"
    # Interleaved, so that both see the same machine (their ratio is a goal).
    for ((i = 0; i < runs; i++)); do
        sample "$w" "integrity-validate, ledger only" "" \
            "$bin" --repo "$repo" integrity-validate --billing-state-dir "$dir/state" \
            --runtime-dir "$dir/no-runtime"
        sample "$w" "floor: sha256sum ledger" "" \
            sha256sum "$dir/state/billing.jsonl" "$dir/state/evidence.jsonl" "$dir/state/audit.jsonl"
    done
    echo "$w ledger_bytes $(ledger_bytes "$dir/state")" >>"$work/sizes.txt"

    # 5. The package bytes: zip -6 of what package_std packed, cp of what deliver_local copied.
    (cd "$dir/runtime" && find runs -path '*/note/outputs/note.txt' | sort >"$dir/notes.list")
    measure "$w" "floor: zip -6 package inputs" "$runs" "rm -f '$dir/floor.zip'" \
        bash -c 'cd "$1/runtime" && zip -6 -q -X "$2" -@ <"$3"' _ "$dir" "$dir/floor.zip" "$dir/notes.list"
    measure "$w" "floor: cp delivered files" "$runs" \
        "[ ! -e '$dir/cp' ] || mv '$dir/cp' '$dir/trash/cp'\$(date +%s%N)" \
        cp -r "$dir/runtime/deliveries" "$dir/cp"
done

# The table: one row per measure, then the goals as derived figures.
python3 - "$results" "$work/sizes.txt" <<'PY'
import sys
import statistics
samples = {}
order = []
for l in open(sys.argv[1]):
    if not l.strip():
        continue
    w, label, us, rss, cpu = l.rstrip("\n").split("\t")
    key = (w, label)
    if key not in samples:
        order.append(key)
        samples[key] = []
    samples[key].append((int(us), int(rss), int(cpu)))
rows = []
for w, label in order:
    v = samples[(w, label)]
    walls = sorted(x[0] for x in v)
    rows.append((w, label, int(statistics.median(walls)), walls[0], walls[-1],
                 max(x[1] for x in v), len(v), int(statistics.median(x[2] for x in v))))
sizes, scale = {}, {}
for l in open(sys.argv[2]):
    f = l.split()
    if f[1] == "ledger_bytes":
        sizes[int(f[0])] = int(f[2])
    elif f[1] == "fsync_scale":
        scale[int(f[0])] = int(f[2]) / int(f[3])
res = {}
print("| W | measure | median wall | min–max | wall per work order | CPU (user+sys) | peak RSS | runs |")
print("|---:|---|---:|---:|---:|---:|---:|---:|")
for w, label, med, lo, hi, rss, n, cpu in rows:
    w, med, lo, hi, rss, cpu = int(w), int(med), int(lo), int(hi), int(rss), int(cpu)
    k = scale.get(w, 1) if label.startswith("floor: 16 W fdatasync") else 1
    med, lo, hi, cpu = med * k, lo * k, hi * k, cpu * k
    res[(w, label)] = (med, rss, cpu)
    shown = label + (f" (×{k:.1f})" if k != 1 else "")
    print(f"| {w:,} | {shown} | {med / 1e6:.3f} s | {lo / 1e6:.3f}–{hi / 1e6:.3f} s "
          f"| {med / 1e3 / w:.3f} ms | {cpu / 1e6:.2f} s | {rss / 1024:.1f} MiB | {n} |")
print()
print("Per step (3 steps per work order), from the medians above:")
print()
print("| W | first pass | CPU | spawn floor | fsync floor | above spawn floor | above spawn + fsync floors | no-op per 1,000 WO | integrity (ledger) vs sha256sum | ledger bytes |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for w in sorted({int(r[0]) for r in rows}):
    g = lambda label: res.get((w, label))
    first, spawn, fs = g("orchestrator first pass"), g("floor: spawn module W times"), g("floor: 16 W fdatasync (sampled)")
    noop, iv, sha = g("orchestrator no-op pass"), g("integrity-validate, ledger only"), g("floor: sha256sum ledger")
    step = lambda us: f"{us / 1e3 / (3 * w):.3f} ms"
    b = sizes.get(w, 0)
    ivr = b / (iv[0] / 1e6) / 1e6 if iv else 0
    shr = b / (sha[0] / 1e6) / 1e6 if sha else 0
    print("| {:,} | {} | {} | {} | {} | {} | {} | {} | {} | {:,} |".format(
        w,
        step(first[0]) if first else "—",
        step(first[2]) if first else "—",
        step(spawn[0]) if spawn else "—",
        step(fs[0]) if fs else "—",
        step(first[0] - spawn[0]) if first and spawn else "—",
        step(first[0] - spawn[0] - fs[0]) if first and spawn and fs else "—",
        f"{noop[0] / 1e3 / w * 1000:.0f} ms" if noop else "—",
        f"{ivr:.0f} vs {shr:.0f} MB/s = {100 * ivr / shr:.0f} %" if ivr and shr else "—",
        b,
    ))
PY

if [ "${BENCH_PACKAGE:-0}" = 1 ]; then
    echo
    echo "package_std, 1 GiB (scripts/bench-package.sh):"
    "$root/scripts/bench-package.sh"
fi
if [ "${BENCH_LEDGER:-0}" = 1 ]; then
    echo
    echo "ledger (scripts/bench-ledger.sh):"
    "$root/scripts/bench-ledger.sh"
fi
if [ "${BENCH_JOBS:-0}" = 1 ]; then
    echo
    echo "--jobs (scripts/bench-jobs.sh):"
    BENCH_PLATFORM="$bin" "$root/scripts/bench-jobs.sh"
fi
