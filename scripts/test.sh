#!/usr/bin/env bash
# Every test: installs what the tests need (a Python venv with aiosmtpd for the real SMTP
# server, actionlint for the workflows), then runs the whole cargo test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-deps.sh
cargo test --all-targets "$@"
