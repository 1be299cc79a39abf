//! Ledger throughput figures (not a timed test: ignored by default, prints numbers only).
//! Run with `scripts/bench-ledger.sh` (release build, 1,000,000 records).
// Tests fail by panicking; unwrap() and expect() are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::ledger_fixtures as fixtures;

use fixtures::*;
use platform::ledger::{self, Ledger, Stream};
use platform::records::billing::{MAX_CREDITS, RUN_DELIVERABLE};
use platform::records::Payload;
use std::time::Instant;

fn records() -> usize {
    std::env::var("LEDGER_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

#[test]
#[ignore = "benchmark: run scripts/bench-ledger.sh"]
fn ledger_throughput() {
    let dir = match std::env::var("LEDGER_BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d).unwrap(),
        Err(_) => tempfile::tempdir().unwrap(),
    };

    // 1. Single durable appends: one record, one write, one fdatasync each (a run record: a
    // TOPUP is two, the TOPUP and its audit record).
    let single = dir.path().join("single");
    let (mut l, _) = Ledger::open(&single).unwrap();
    let n = 2000;
    let t = Instant::now();
    for i in 0..n {
        start_runs(&mut l, &[("acme", &format!("wo{i}"))]);
    }
    let single_rate = n as f64 / t.elapsed().as_secs_f64();

    // 2. Batched: 100 records per write + fdatasync (one step's charges, scaled up).
    let (mut l, _) = Ledger::open(&dir.path().join("batched")).unwrap();
    start_runs(&mut l, &[("acme", "wo")]);
    l.append(Stream::Billing, vec![topup("acme", MAX_CREDITS, "FUND")])
        .unwrap();
    let batches = 200;
    let t = Instant::now();
    for b in 0..batches {
        let step = format!("s{b}");
        let batch: Vec<Payload> = (0..100)
            .map(|d| Payload::new(spend("acme", "wo", &step, &format!("d{d}"), 1)))
            .collect();
        l.append_batch(Stream::Billing, &step, batch).unwrap();
    }
    let batched_rate = (batches * 100) as f64 / t.elapsed().as_secs_f64();

    // 3. Verify a large ledger, next to sha256sum of the same file.
    let big = dir.path().join("big");
    let (mut l, _) = Ledger::open(&big).unwrap();
    start_runs(&mut l, &[("acme", "wo")]);
    l.append(Stream::Billing, vec![topup("acme", MAX_CREDITS, "FUND")])
        .unwrap();
    let total = records();
    let t = Instant::now();
    let mut written = 1;
    let mut b = 0;
    while written < total {
        let step = format!("s{b}");
        let n = 1000.min(total - written);
        let batch: Vec<Payload> = (0..n)
            .map(|d| {
                let deliverable = if d == 0 {
                    RUN_DELIVERABLE.to_string()
                } else {
                    format!("d{d}")
                };
                Payload::new(spend("acme", "wo", &step, &deliverable, 1 + (d % 7) as i64))
            })
            .collect();
        l.append_batch(Stream::Billing, &step, batch).unwrap();
        written += n;
        b += 1;
    }
    let build = t.elapsed().as_secs_f64();
    drop(l);
    let file = big.join("billing.jsonl");
    let bytes = std::fs::metadata(&file).unwrap().len() as f64;
    let mb = bytes / 1e6;
    // Warm the page cache so both readers measure CPU, not the disk.
    let _ = read(&file);

    // Best of three, interleaved: other work on the machine slows both alike.
    let mut verify_s = f64::MAX;
    let mut sha_s = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let report = ledger::verify(&big).unwrap();
        verify_s = verify_s.min(t.elapsed().as_secs_f64());
        assert!(
            report.ok(),
            "{:?}",
            &report.problems[..report.problems.len().min(3)]
        );

        let t = Instant::now();
        let out = std::process::Command::new("sha256sum")
            .arg(&file)
            .output()
            .unwrap();
        sha_s = sha_s.min(t.elapsed().as_secs_f64());
        assert!(out.status.success());
    }

    let rss_before = rss_kib();
    let t = Instant::now();
    let (l, _) = Ledger::open(&big).unwrap();
    let open_s = t.elapsed().as_secs_f64();
    let index_bytes = (rss_kib().saturating_sub(rss_before) * 1024) as f64;
    assert_eq!(l.head(Stream::Billing).seq as usize, total);

    let t = Instant::now();
    let balances = ledger::balances(&big).unwrap();
    let bal_s = t.elapsed().as_secs_f64();
    assert!(balances["acme"] > 0);

    println!(
        "ledger benchmark ({} records, {:.1} MB, {:.0} bytes/record)",
        total,
        mb,
        bytes / total as f64
    );
    println!(
        "  single durable appends:        {single_rate:>10.0} records/s (1 write + fdatasync each)"
    );
    println!("  batched appends (100/batch):   {batched_rate:>10.0} records/s");
    println!("  building the ledger (1000/batch): {:>7.1} s", build);
    println!(
        "  verify:                        {:>10.1} MB/s ({:.2} s, {:.0} records/s)",
        mb / verify_s,
        verify_s,
        total as f64 / verify_s
    );
    println!(
        "  sha256sum of the same file:    {:>10.1} MB/s ({:.2} s)",
        mb / sha_s,
        sha_s
    );
    println!(
        "  verify / sha256sum:            {:>10.0} %  (best of 3 each)",
        100.0 * sha_s / verify_s
    );
    println!(
        "  Ledger::open (index + repair): {:>10.1} MB/s ({:.2} s)",
        mb / open_s,
        open_s
    );
    println!(
        "  writer index in memory:        {:>10.1} MB ({:.0} bytes/record, VmRSS delta)",
        index_bytes / 1e6,
        index_bytes / total as f64
    );
    println!(
        "  balances (reader):             {:>10.1} MB/s ({:.2} s)",
        mb / bal_s,
        bal_s
    );
}

/// Resident set size of this process in KiB (Linux), 0 elsewhere.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}
