//! Ledger throughput figures (not a timed test: ignored by default, prints numbers only).
//! Run with `scripts/bench-ledger.sh` (release build, 1,000,000 records).
// Tests fail by panicking; unwrap() and expect() are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::ledger_fixtures as fixtures;

use fixtures::*;
use platform::ledger::{self, Ledger, Stream};
use platform::records::billing::RUN_DELIVERABLE;
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

    // 1. Single durable appends: one record, one write, one fdatasync each.
    let single = dir.path().join("single");
    let (mut l, _) = Ledger::open(&single).unwrap();
    let n = 2000;
    let t = Instant::now();
    for i in 0..n {
        l.append(Stream::Billing, vec![topup("acme", 1, &format!("S{i}"))])
            .unwrap();
    }
    let single_rate = n as f64 / t.elapsed().as_secs_f64();

    // 2. Batched: 100 records per write + fdatasync (one step's charges, scaled up).
    let (mut l, _) = Ledger::open(&dir.path().join("batched")).unwrap();
    l.append(Stream::Billing, vec![topup("acme", i64::MAX / 4, "FUND")])
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
    l.append(Stream::Billing, vec![topup("acme", i64::MAX / 4, "FUND")])
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
    signed_heads_cost(&big, mb);
}

/// integrity-validate's work with heads.json (verify + signature + standing) against verify
/// alone, at the head and with half the records not yet pushed; one sign and one verify.
fn signed_heads_cost(big: &std::path::Path, mb: f64) {
    use platform::heads::{
        check_local, generate, key_id_of, Heads, SignedHeads, Signer, TrustedKey,
    };
    let key = generate().unwrap();
    let signer = Signer::from_secret(&key.private_key).unwrap();
    let trusted = [TrustedKey {
        key_id: key.key_id.clone(),
        public_key: signer.public_key().to_vec(),
    }];
    assert_eq!(key_id_of(signer.public_key()), key.key_id);
    let report = ledger::verify(big).unwrap();
    let mut heads = Heads::of_report(&report, "acme/bench", "billing-state-v1", signer.key_id());
    let t = Instant::now();
    let signed = SignedHeads::sign(heads.clone(), &signer).unwrap();
    let sign_us = t.elapsed().as_secs_f64() * 1e6;
    let t = Instant::now();
    signed.verify(&trusted).unwrap();
    let verify_us = t.elapsed().as_secs_f64() * 1e6;

    let half = report.files[0].head_seq / 2;
    let billing = big.join("billing.jsonl");
    let f = heads.files.get_mut("billing.jsonl").unwrap();
    f.seq = half;
    f.hash = platform::heads::standing::hash_at(&billing, half)
        .unwrap()
        .unwrap();
    let behind = SignedHeads::sign(heads, &signer).unwrap();
    // Interleaved rounds, best of three each: load on the machine slows every variant alike.
    let variants = [None, Some(&signed), Some(&behind)];
    let mut best = [f64::MAX; 3];
    for _ in 0..3 {
        for (i, heads) in variants.iter().enumerate() {
            let path = big.join("heads.json");
            match heads {
                Some(h) => std::fs::write(&path, h.to_bytes().unwrap()).unwrap(),
                None => {
                    let _ = std::fs::remove_file(&path);
                }
            }
            let t = Instant::now();
            let report = ledger::verify(big).unwrap();
            let (local, problems) = check_local(big, &report, &trusted).unwrap();
            best[i] = best[i].min(t.elapsed().as_secs_f64());
            assert!(problems.is_empty(), "{problems:?}");
            assert_eq!(local.is_some(), heads.is_some());
        }
    }
    let [without, at_head, half_pushed] = best;
    let _ = std::fs::remove_file(big.join("heads.json"));
    println!("  heads.json: sign {sign_us:.0} us, verify {verify_us:.0} us (Ed25519, ring)");
    println!(
        "  integrity-validate work, no heads.json:      {:>7.1} MB/s ({:.2} s)",
        mb / without,
        without
    );
    println!(
        "  ... heads.json at the head:                  {:>7.1} MB/s ({:.2} s, {:+.1} %)",
        mb / at_head,
        at_head,
        100.0 * (at_head - without) / without
    );
    println!(
        "  ... half the records not yet pushed:         {:>7.1} MB/s ({:.2} s, {:+.1} %)",
        mb / half_pushed,
        half_pushed,
        100.0 * (half_pushed - without) / without
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
