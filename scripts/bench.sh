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
#   BENCH_DIR=DIR         work directory (default: a temp dir, removed at the end); it decides
#                         which disk the fsyncs hit
#   BENCH_PACKAGE=1       also run scripts/bench-package.sh (1 GiB, ~3 GiB free needed)
#   BENCH_LEDGER=1        also run scripts/bench-ledger.sh (1,000,000 records)
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

if [ -n "${BENCH_DIR:-}" ]; then
    work="$BENCH_DIR"
    mkdir -p "$work"
else
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
fi
work="$(cd "$work" && pwd)"

(cd "$root" && cargo build --release --quiet --bin platform)
bin="$root/target/release/platform"
results="$work/results.tsv"
: >"$results"

# measure W LABEL RUNS SETUP CMD...: runs SETUP (untimed, a shell string) then CMD, RUNS
# times; appends "W label median min max peak_rss_kib runs" to $results.
measure() {
    local w="$1" label="$2" n="$3" setup="$4"
    shift 4
    local times=() rss=() i t0 t1 status
    for ((i = 0; i < n; i++)); do
        [ -z "$setup" ] || eval "$setup"
        t0=$(date +%s%N)
        status=0
        /usr/bin/time -f '%M' -o "$work/rss.txt" "$@" >"$work/out.txt" 2>"$work/err.txt" || status=$?
        t1=$(date +%s%N)
        if [ "$status" -ne 0 ]; then
            echo "FAILED ($status): $*" >&2
            tail -5 "$work/err.txt" "$work/out.txt" >&2
            exit 1
        fi
        times+=("$(((t1 - t0) / 1000))")
        rss+=("$(tail -1 "$work/rss.txt")")
    done
    local sorted median
    sorted=$(printf '%s\n' "${times[@]}" | sort -n)
    median=$(echo "$sorted" | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else print int((a[NR / 2] + a[NR / 2 + 1]) / 2)}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$label" "$median" \
        "$(echo "$sorted" | head -1)" "$(echo "$sorted" | tail -1)" \
        "$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)" "$n" >>"$results"
    printf '  %-28s median %10.3f s  (%s runs)\n' "$label" "$(echo "$median / 1000000" | bc -l)" "$n" >&2
}

# Spawn floor: the module's own command W times, with the variables the runner sets, from a
# minimal shell loop (fork + exec of run.sh, which is itself a /bin/sh script).
spawn_floor() {
    local repo="$1" w="$2" out="$3"
    mkdir -p "$out/outputs"
    env -i PATH="$PATH" PLATFORM_OUTPUTS_DIR="$out/outputs" PLATFORM_TENANT_ID=t001 \
        PLATFORM_WORK_ORDER_ID=wo PLATFORM_STEP_ID=note PLATFORM_INPUTS="$out/inputs.json" \
        PLATFORM_RESULT="$out/result.json" PLATFORM_MODULE_DIR="$repo/modules/write_note" \
        /bin/sh -c 'i=0; while [ "$i" -lt "$1" ]; do "$2"; i=$((i + 1)); done' \
        sh "$w" "$repo/modules/write_note/run.sh"
}
export -f spawn_floor

ledger_bytes() {
    cat "$1"/billing.jsonl "$1"/evidence.jsonl "$1"/audit.jsonl 2>/dev/null | wc -c
}

for w in "${sizes[@]}"; do
    dir="$work/w$w"
    rm -rf "$dir"
    mkdir -p "$dir"
    echo "W = $w: generating" >&2
    python3 "$root/scripts/gen-workload.py" "$dir/repo" --work-orders "$w" \
        --tenants "$tenants" --platform "$bin" --billing-state-dir "$dir/state0" >/dev/null
    repo="$dir/repo"

    # 1. First pass: from the topped-up ledger, an empty runtime dir each time.
    n="$first_runs"
    [ "$w" -le "$big" ] || n=1
    # The previous run's files are moved aside, not deleted, until this W is done: on ext4
    # without a journal (this VM's disk) every file created soon after a mass delete pays a
    # scan for recently freed inodes, which a CI runner's fresh checkout never sees.
    mkdir -p "$dir/trash"
    fresh="t=\$(date +%s%N); [ ! -e '$dir/state' ] || mv '$dir/state' '$dir/trash/s'\$t; [ ! -e '$dir/runtime' ] || mv '$dir/runtime' '$dir/trash/r'\$t; cp -a '$dir/state0' '$dir/state'; sync"
    if [ "$first_max" -eq 0 ] || [ "$w" -le "$first_max" ]; then
        measure "$w" "orchestrator first pass" "$n" "$fresh" \
            "$bin" --repo "$repo" orchestrator --billing-state-dir "$dir/state" \
            --runtime-dir "$dir/runtime"
        grep -q "$w run(s), 0 up to date, 0 invalid" "$work/out.txt" || {
            echo "first pass did not run all $w work orders:" >&2
            tail -3 "$work/out.txt" >&2
            exit 1
        }
    else
        echo "  first pass skipped (W > BENCH_FIRST_MAX); building the ledger once, untimed" >&2
        eval "$fresh"
        "$bin" --repo "$repo" orchestrator --billing-state-dir "$dir/state" \
            --runtime-dir "$dir/runtime" >/dev/null 2>&1
    fi
    measure "$w" "floor: spawn module W times" "$runs" "rm -rf '$dir/spawn'" \
        bash -c 'spawn_floor "$@"' _ "$repo" "$w" "$dir/spawn"

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
    measure "$w" "consistency-validate" "$runs" "" "$bin" --repo "$repo" consistency-validate
    measure "$w" "floor: cat YAML files" "$runs" "" \
        bash -c 'xargs -0 cat <"$1" >/dev/null' _ "$dir/yaml.list"

    # 4. integrity-validate (ledger + runtime records), next to sha256sum of the ledger.
    measure "$w" "integrity-validate" "$runs" "" \
        "$bin" --repo "$repo" integrity-validate --billing-state-dir "$dir/state" \
        --runtime-dir "$dir/runtime"
    measure "$w" "integrity-validate, ledger only" "$runs" "" \
        "$bin" --repo "$repo" integrity-validate --billing-state-dir "$dir/state" \
        --runtime-dir "$dir/no-runtime"
    measure "$w" "floor: sha256sum ledger" "$runs" "" \
        sha256sum "$dir/state/billing.jsonl" "$dir/state/evidence.jsonl" "$dir/state/audit.jsonl"
    echo "$w ledger_bytes $(ledger_bytes "$dir/state")" >>"$work/sizes.txt"

    # 5. The package bytes: zip -6 of what package_std packed, cp of what deliver_local copied.
    (cd "$dir/runtime" && find runs -path '*/note/outputs/note.txt' | sort >"$dir/notes.list")
    measure "$w" "floor: zip -6 package inputs" "$runs" "rm -f '$dir/floor.zip'" \
        bash -c 'cd "$1/runtime" && zip -6 -q -X "$2" -@ <"$3"' _ "$dir" "$dir/floor.zip" "$dir/notes.list"
    measure "$w" "floor: cp delivered files" "$runs" "rm -rf '$dir/cp'" \
        cp -r "$dir/runtime/deliveries" "$dir/cp"
    rm -rf "$dir/cp" "$dir/spawn" "$dir/floor.zip" "$dir/trash"
done

# The table: one row per measure, then the goals as derived figures.
python3 - "$results" "$work/sizes.txt" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
sizes = {}
for l in open(sys.argv[2]):
    w, _, b = l.split()
    sizes[int(w)] = int(b)
res = {}
print("| W | measure | median wall | min–max | per work order | peak RSS | runs |")
print("|---:|---|---:|---:|---:|---:|---:|")
for w, label, med, lo, hi, rss, n in rows:
    w, med, lo, hi, rss = int(w), int(med), int(lo), int(hi), int(rss)
    res[(w, label)] = (med, rss)
    print(f"| {w:,} | {label} | {med / 1e6:.3f} s | {lo / 1e6:.3f}–{hi / 1e6:.3f} s "
          f"| {med / 1e3 / w:.3f} ms | {rss / 1024:.1f} MiB | {n} |")
print()
print("| W | first pass per step | spawn floor per step | overhead per step above floor | no-op per 1,000 WO | integrity MB/s | sha256sum MB/s | ratio | ledger bytes |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for w in sorted({int(r[0]) for r in rows}):
    first = res.get((w, "orchestrator first pass"))
    spawn = res.get((w, "floor: spawn module W times"))
    noop = res.get((w, "orchestrator no-op pass"))
    iv = res.get((w, "integrity-validate, ledger only"))
    sha = res.get((w, "floor: sha256sum ledger"))
    b = sizes.get(w, 0)
    per_step = f"{first[0] / 1e3 / (3 * w):.3f} ms" if first else "—"
    # The spawn floor is one process per work order, spread over its 3 steps.
    floor = f"{spawn[0] / 1e3 / (3 * w):.3f} ms" if spawn else "—"
    over = f"{(first[0] - spawn[0]) / 1e3 / (3 * w):.3f} ms" if first and spawn else "—"
    nop = f"{noop[0] / 1e3 / w * 1000:.1f} ms" if noop else "—"
    ivr = b / (iv[0] / 1e6) / 1e6 if iv else 0
    shr = b / (sha[0] / 1e6) / 1e6 if sha else 0
    ratio = f"{100 * ivr / shr:.0f} %" if ivr and shr else "—"
    print(f"| {w:,} | {per_step} | {floor} | {over} | {nop} | {ivr:.0f} | {shr:.0f} | {ratio} | {b:,} |")
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
