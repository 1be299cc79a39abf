#!/usr/bin/env bash
# Measures build_package throughput and peak RSS on ~1 GiB of mixed files, next to `zip -6 -r`.
# Usage: scripts/bench-package.sh [WORK_DIR]   (needs ~3 GiB free; WORK_DIR is kept if given)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -ge 1 ]; then
    work="$1"
    mkdir -p "$work"
else
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
fi
data="$work/data"

if [ ! -f "$work/.generated" ]; then
    rm -rf "$data"
    mkdir -p "$data/random" "$data/text" "$data/small"
    # 512 MiB that deflate cannot shrink (like media or archives under a neutral name).
    for i in $(seq -w 1 256); do
        head -c $((2 * 1024 * 1024)) /dev/urandom >"$data/random/blob-$i.bin"
    done
    # 512 MiB of CSV-like text, and 2,000 small JSON files: the usual step outputs.
    python3 - "$data" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
words = ["alpha", "beta", "gamma", "delta", "invoice", "paid", "pending", "eu-west", "us-east", "ok"]
for f in range(64):
    lines = []
    for i in range(8 * 1024 * 1024 // 30):
        lines.append(f"{f * 1000000 + i},{rng.choice(words)},{rng.randint(0, 10**6)},{rng.random():.6f}\n")
    text = "".join(lines).encode()[: 8 * 1024 * 1024]
    with open(os.path.join(root, "text", f"table-{f:02}.csv"), "wb") as fh:
        fh.write(text)
for i in range(2000):
    d = os.path.join(root, "small", f"{i % 50:02}")
    os.makedirs(d, exist_ok=True)
    body = "{" + ",".join(f'"k{j}": {rng.randint(0, 999)}' for j in range(rng.randint(50, 800))) + "}\n"
    with open(os.path.join(d, f"item-{i:04}.json"), "w") as fh:
        fh.write(body)
PY
    touch "$work/.generated"
fi

(cd "$root" && cargo build --release --quiet --example bench_package)
bench="$root/target/release/examples/bench_package"
input_bytes=$(find "$data" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
files=$(find "$data" -type f | wc -l)
echo "input: $files files, $input_bytes bytes"

# Warm the page cache so both tools read from memory, not from the disk.
find "$data" -type f -exec cat {} + >/dev/null

measure() {
    local label="$1" out="$2"
    shift 2
    rm -f "$out"
    /usr/bin/time -v "$@" 2>"$work/time.txt" >"$work/stdout.txt"
    local secs rss
    secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$work/time.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
    printf '%-18s %7.2f s  %7.1f MB/s  peak RSS %6.1f MiB  zip %s bytes\n' \
        "$label" "$secs" "$(echo "$input_bytes / 1000000 / $secs" | bc -l)" \
        "$(echo "$rss / 1024" | bc -l)" "$(stat -c %s "$out")"
}

measure "build_package" "$work/ours.zip" "$bench" "$data" "$work/ours.zip"
cat "$work/stdout.txt"
(cd "$work" && measure "zip -6 -r -X" "$work/zip.zip" zip -6 -r -q -X zip.zip data)
unzip -tq "$work/ours.zip"
