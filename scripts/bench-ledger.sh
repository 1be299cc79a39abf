#!/usr/bin/env bash
# Ledger throughput: single durable appends/s, batched appends/s, verify MB/s next to
# sha256sum on a ledger of 1,000,000 records (LEDGER_BENCH_RECORDS to change it). The temp
# ledgers go under LEDGER_BENCH_DIR (default: the system temp dir): put it on the disk you
# want to measure, since fsync latency decides the append figures.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test it -- --ignored --nocapture --test-threads 1 ledger_bench::ledger_throughput
