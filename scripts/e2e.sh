#!/usr/bin/env bash
# End-to-end: the original README's sequence on a temporary copy of the example repository
# (validate, a top-up denied by the shipped iam.yml, then with the demo's grants: integrity
# on an empty ledger, top-ups, orchestrator twice, publish --no-publish),
# then checks that chaining worked, that the second pass billed and ran nothing, that the
# ledger verifies and that SHA256SUMS matches. Ends with "e2e: N passed, M failed"; exits
# non-zero on any failure.
#
# PLATFORM_BIN=path   use this binary instead of building one
# E2E_PROFILE=release build with --release (default: the debug build, which the test suite
#                     has already made when .ci/run gets here)
# E2E_KEEP=1          keep the temporary directory and print where it is
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Where cargo puts its builds: CARGO_TARGET_DIR when set (relative to the root), else target/.
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac

if [ -n "${PLATFORM_BIN:-}" ]; then
    bin="$(cd "$(dirname "$PLATFORM_BIN")" && pwd)/$(basename "$PLATFORM_BIN")"
elif [ "${E2E_PROFILE:-debug}" = release ]; then
    (cd "$root" && cargo build --release --quiet) || exit 1
    bin="$target/release/platform"
else
    (cd "$root" && cargo build --quiet) || exit 1
    bin="$target/debug/platform"
fi
[ -x "$bin" ] || { echo "e2e: no platform binary at $bin" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/platform-e2e.XXXXXX")"
if [ -n "${E2E_KEEP:-}" ]; then
    echo "e2e: keeping $work"
else
    trap 'rm -rf "$work"' EXIT
fi
cp -R "$root/modules" "$root/tenants" "$root/config" "$work/"
cd "$work" || exit 1
# Inside GitHub Actions these would route the demo's output into the CI job's own summary
# and act as the CI user; the script sets what it needs explicitly.
unset GITHUB_STEP_SUMMARY GITHUB_ACTOR

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
log="$work/.e2e-logs"
mkdir -p "$log"
step=0

# expect CODE NAME -- COMMAND...: run it, keep its output, compare the exit code.
expect() {
    local want="$1" name="$2"
    shift 3
    step=$((step + 1))
    local out="$log/$step.out"
    "$@" >"$out" 2>&1
    local got=$?
    if [ "$got" = "$want" ]; then
        pass "$name"
    else
        fail "$name (exit $got, expected $want): $*"
        sed 's/^/     | /' "$out" | tail -n 20
    fi
    last_out="$out"
}

p() { "$bin" "$@"; }
tenants="acme globex"
state=.billing-state

echo "== e2e on a copy of the example repository in $work"
expect 0 "consistency-validate" -- p consistency-validate
mkdir -p "$state"
# As shipped, config/iam.yml grants nobody: a top-up is denied (exit 3, audited). The rest
# runs with the demo's grants (scripts/demo-iam.yml), as scripts/demo.sh does.
expect 3 "the shipped config/iam.yml grants nobody" -- p admin-topup --tenant-id acme \
    --amount-credits 1 --topup-method-id manual --reference e2e-denied --actor demo-admin \
    --billing-state-dir "$work/denied-state"
cp "$root/scripts/demo-iam.yml" config/iam.yml
expect 0 "integrity-validate on an empty ledger" -- p integrity-validate --billing-state-dir "$state"

for t in $tenants; do
    expect 0 "admin-topup $t" -- p admin-topup --tenant-id "$t" --amount-credits 100 \
        --topup-method-id manual --reference "e2e-seed-$t" --note "e2e seed" --actor demo-admin
done
expect 0 "admin-topup again with the same reference" -- p admin-topup --tenant-id acme \
    --amount-credits 100 --topup-method-id manual --reference e2e-seed-acme --actor demo-admin
balance_json="$(p balance --tenant-id acme --json 2>/dev/null)"
if [ "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["balance_credits"])' <<<"$balance_json" 2>/dev/null)" = 100 ]; then
    pass "the same reference twice is one top-up"
else
    fail "the same reference twice is one top-up (balance: $balance_json)"
fi

# publish --since: only what this run records (RFC 3339, whole seconds, taken before the pass).
since="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
expect 0 "orchestrator, first pass" -- p orchestrator

billing_bytes_1="$(wc -c <"$state/billing.jsonl")"
runs_1="$(p runs --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
if [ "$runs_1" -ge 2 ]; then pass "first pass recorded $runs_1 runs"; else fail "first pass recorded $runs_1 runs"; fi

summary="$work/step-summary.md"
: >"$summary"
expect 0 "orchestrator, second pass" -- env GITHUB_STEP_SUMMARY="$summary" "$bin" orchestrator
billing_bytes_2="$(wc -c <"$state/billing.jsonl")"
runs_2="$(p runs --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
if [ "$billing_bytes_1" = "$billing_bytes_2" ]; then
    pass "second pass appended nothing to billing.jsonl ($billing_bytes_2 bytes)"
else
    fail "second pass changed billing.jsonl: $billing_bytes_1 -> $billing_bytes_2 bytes"
fi
if [ "$runs_1" = "$runs_2" ]; then pass "second pass added no run"; else fail "second pass added runs: $runs_1 -> $runs_2"; fi
if grep -q "up to date" "$last_out"; then pass "second pass reports up to date"; else fail "second pass does not say up to date"; fi
if grep -q "\*\*2\*\* up to date" "$summary"; then
    pass "job summary written (GITHUB_STEP_SUMMARY)"
else
    fail "job summary: $(head -c 300 "$summary")"
fi

# Chaining: the delivered package holds the report rendered from the stats step's output.
if python3 - "$work" <<'PY'
import glob, json, sys, zipfile
work = sys.argv[1]
z = zipfile.ZipFile(f"{work}/runtime/deliveries/acme/weekly-digest/deliver/package.zip")
names = set(z.namelist())
assert {"report.md", "data/stats.json"} <= names, names
report = z.read("report.md").decode()
outputs = glob.glob(f"{work}/runtime/runs/acme/weekly-digest/*/stats/outputs/stats.json")
assert len(outputs) == 1, outputs
with open(outputs[0], encoding="utf-8") as f:
    stats = json.load(f)
top = stats["top_words"][0]
for line in (f"- words: {stats['word_count']}",
             f"- distinct words: {stats['unique_words']}",
             f"- most frequent: {top['word']} ({top['count']} times)"):
    assert line in report, f"{line!r} not in report.md:\n{report}"
with open(f"{work}/tenants/acme/assets/headline.txt", encoding="utf-8") as f:
    headline = f.read().strip().upper()
assert headline in report, f"headline {headline!r} not in report.md"
assert json.loads(z.read("data/stats.json")) == stats
PY
then
    pass "chaining: acme's package.zip holds the report built from the stats step's output"
else
    fail "chaining: acme's package.zip"
fi

expect 0 "publish --no-publish" -- p publish --billing-state-dir "$state" --runtime-dir runtime \
    --since "$since" --dist-dir dist --no-publish --actor demo-admin
evidence_bytes="$(wc -c <"$state/evidence.jsonl")"
expect 0 "publish --no-publish again" -- p publish --billing-state-dir "$state" --runtime-dir runtime \
    --since "$since" --dist-dir dist --no-publish --actor demo-admin
if [ "$evidence_bytes" = "$(wc -c <"$state/evidence.jsonl")" ]; then
    pass "a second publish appends no evidence"
else
    fail "a second publish appended evidence"
fi
if [ -s dist/SHA256SUMS ] && (cd dist && sha256sum -c --quiet SHA256SUMS) >"$log/sums.out" 2>&1; then
    pass "dist/SHA256SUMS verifies with sha256sum -c ($(wc -l <dist/SHA256SUMS) file(s))"
else
    fail "dist/SHA256SUMS: $(cat "$log/sums.out" 2>/dev/null)"
fi

expect 0 "integrity-validate" -- p integrity-validate --billing-state-dir "$state" --runtime-dir runtime

echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
