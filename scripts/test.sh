#!/usr/bin/env bash
# Every test: installs what the tests need (a Python venv with aiosmtpd for the real SMTP
# server, actionlint for the workflows), then runs the whole cargo test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-deps.sh
# Twice as many test threads as cores: most tests wait on child processes, sockets and
# sleeps rather than the CPU (measured: 83 s with 2 threads, 62 s with 4 on 2 cores).
RUST_TEST_THREADS="${RUST_TEST_THREADS:-$(($(nproc) * 2))}"
export RUST_TEST_THREADS
cargo test --all-targets "$@"
