#!/usr/bin/env bash
# The main job on the repository's own example data: build, validate, seed credits for the
# example tenants (idempotent: the same reference twice is one top-up), run the orchestrator,
# then show the runs and balances. Run it again: the second pass finds everything up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
platform() { ./target/release/platform "$@"; }

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
echo "deliveries are under runtime/deliveries/; the ledger is in .billing-state/"
exit "$status"
