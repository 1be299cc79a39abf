#!/usr/bin/env bash
# The main job on the repository's own example data, in a scratch copy: build, validate,
# seed credits for the example tenants (idempotent: the same reference twice is one top-up),
# run the orchestrator, then show the runs and balances. Run it again: the second pass finds
# everything up to date.
#
# The shipped config/iam.yml grants no privileged role to anyone, so the demo works on a copy
# of modules/, tenants/ and config/ under target/demo/ whose iam.yml is scripts/demo-iam.yml
# (it grants the actor demo-admin). The copy's example data is refreshed on every run; its
# ledger (.billing-state/) and runtime directory stay, so the second run is a no-op.
#
# PLATFORM_BIN=path   use this binary instead of building one (cargo build --release)
# DEMO_DIR=dir        work there instead of target/demo
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "${PLATFORM_BIN:-}" ]; then
  bin="$(cd "$(dirname "$PLATFORM_BIN")" && pwd)/$(basename "$PLATFORM_BIN")"
else
  (cd "$root" && cargo build --release --quiet)
  bin="${CARGO_TARGET_DIR:-$root/target}/release/platform"
  case "$bin" in /*) ;; *) bin="$root/$bin" ;; esac
fi
demo="${DEMO_DIR:-$root/target/demo}"
mkdir -p "$demo"
rm -rf "$demo/modules" "$demo/tenants" "$demo/config"
cp -R "$root/modules" "$root/tenants" "$root/config" "$demo/"
cp "$root/scripts/demo-iam.yml" "$demo/config/iam.yml"
cd "$demo"
# Inside GitHub Actions these would route the demo's output into the CI job's summary.
unset GITHUB_STEP_SUMMARY GITHUB_ACTOR
platform() { "$bin" "$@"; }

echo "== demo in $demo (a scratch copy of the example repository)"
echo "== consistency-validate"
platform consistency-validate
for tenant in $(ls tenants); do
  echo "== admin-topup $tenant (demo seed)"
  platform admin-topup --tenant-id "$tenant" --amount-credits 100 --topup-method-id manual \
    --reference "demo-seed-$tenant" --note "demo seed" --actor demo-admin
done
echo "== orchestrator"
status=0
platform orchestrator || status=$?
echo "== runs"
platform runs
for tenant in $(ls tenants); do
  platform balance --tenant-id "$tenant"
done
echo "== integrity-validate"
platform integrity-validate
echo "the ledger is in $demo/.billing-state/"
echo "deliveries are under $demo/runtime/deliveries/"
exit "$status"
