# Sourced by the benchmark scripts (bench.sh, bench-jobs.sh): `bench_setup PREFIX` sets
# $work, a new folder (BENCH_DIR/PREFIX-<time>, kept; or a temp dir removed at exit), and
# $bin, the binary measured (BENCH_PLATFORM, or a release build of this tree, found under
# CARGO_TARGET_DIR when that is set). Needs $root, the repository. `spawn_floor REPO N OUT`
# runs the workload module's own command N times, with the variables the runner sets, from a
# minimal shell loop (fork + exec of run.sh, itself a /bin/sh script): the spawn floor.
# `warn_unjournaled DIR` says so on stderr when DIR is on ext4 without a journal.
bench_setup() {
    if [ -n "${BENCH_DIR:-}" ]; then
        work="$BENCH_DIR/$1-$(date +%Y%m%d-%H%M%S)"
        mkdir -p "$work"
        echo "work directory: $work (not removed)" >&2
    else
        work="$(mktemp -d)"
        trap 'rm -rf "$work"' EXIT
    fi
    work="$(cd "$work" && pwd)"
    if [ -n "${BENCH_PLATFORM:-}" ]; then
        bin="$(cd "$(dirname "$BENCH_PLATFORM")" && pwd)/$(basename "$BENCH_PLATFORM")"
    else
        (cd "$root" && cargo build --release --quiet --bin platform)
        bin="${CARGO_TARGET_DIR:-$root/target}/release/platform"
    fi
}

spawn_floor() {
    local repo="$1" n="$2" out="$3"
    mkdir -p "$out/outputs"
    env -i PATH="$PATH" PLATFORM_OUTPUTS_DIR="$out/outputs" PLATFORM_TENANT_ID=t001 \
        PLATFORM_WORK_ORDER_ID=wo PLATFORM_STEP_ID=note PLATFORM_INPUTS="$out/inputs.json" \
        PLATFORM_RESULT="$out/result.json" PLATFORM_MODULE_DIR="$repo/modules/write_note" \
        /bin/sh -c 'i=0; while [ "$i" -lt "$1" ]; do "$2"; i=$((i + 1)); done' \
        sh "$n" "$repo/modules/write_note/run.sh"
}

# On ext4 without a journal, the inode allocator skips every inode deleted in the last 5 s
# (300 s while its inode-table block is dirty), a buffer lookup each: a pass that creates
# thousands of files right after a benchmark deleted thousands spends most of its CPU there
# (docs/performance.md, "Where a two-step pass's CPU goes"). Figures taken there measure
# the disk as much as the platform.
warn_unjournaled() {
    local dev
    dev="$(df --output=source "$1" 2>/dev/null | tail -1)" || return 0
    dev="${dev##*/}"
    if [ -n "$dev" ] && [ "$(cat "/sys/fs/ext4/$dev/journal_task" 2>/dev/null)" = "<none>" ]; then
        echo "note: $1 is on ext4 without a journal ($dev): creating files right after deleting many is slow there; BENCH_RUNTIME_DIR can put the runtime folders elsewhere" >&2
    fi
}
