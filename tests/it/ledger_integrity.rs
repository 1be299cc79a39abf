//! Ledger integrity: torn tails at every byte offset are repaired by writers and only reported by readers; any edit, deletion, insertion or swap is found at its line.
// Tests fail by panicking; unwrap() and expect() are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::ledger_fixtures as fixtures;

use fixtures::*;
use platform::ledger::{self, Ledger, Stream};
use platform::records::billing::RUN_DELIVERABLE;
use platform::records::Payload;
use proptest::prelude::*;
use std::path::Path;

/// topup, a 3-record spend batch, a single spend, then a 3-record spend batch last.
fn sample(dir: &Path) -> (u64, u64) {
    let (mut l, _) = Ledger::open(dir).unwrap();
    start_runs(&mut l, &[("acme", "wo")]);
    l.append(Stream::Billing, vec![topup("acme", 100, "INV-1")])
        .unwrap();
    let batch = |step: &str| {
        vec![
            Payload::new(spend("acme", "wo", step, RUN_DELIVERABLE, 1)),
            Payload::new(spend("acme", "wo", step, "zip", 2)),
            Payload::new(spend("acme", "wo", step, "pdf\"quoted\"\n", 3)),
        ]
    };
    l.append_batch(Stream::Billing, "b1", batch("s1")).unwrap();
    l.append(
        Stream::Billing,
        vec![Payload::new(spend("acme", "wo", "s2", RUN_DELIVERABLE, 4))],
    )
    .unwrap();
    let start = std::fs::metadata(dir.join("billing.jsonl")).unwrap().len();
    l.append_batch(Stream::Billing, "b3", batch("s3")).unwrap();
    let end = std::fs::metadata(dir.join("billing.jsonl")).unwrap().len();
    (start, end)
}

#[test]
fn a_torn_last_batch_is_repaired_at_every_byte_offset() {
    let base = tempfile::tempdir().unwrap();
    let (start, end) = sample(base.path());
    let full = read(&base.path().join("billing.jsonl"));
    for cut in start..end {
        let dir = tempfile::tempdir().unwrap();
        copy_state(base.path(), dir.path());
        let file = dir.path().join("billing.jsonl");
        std::fs::write(&file, &full[..cut as usize]).unwrap();

        // Readers report and never modify.
        let report = ledger::verify(dir.path()).unwrap();
        let seen = ledger::for_each_line(dir.path(), Stream::Billing, |_, _| Ok(())).unwrap();
        assert_eq!(
            read(&file),
            &full[..cut as usize],
            "cut {cut}: a reader modified the file"
        );
        assert_eq!(seen.records, 5, "cut {cut}");
        if cut == start {
            assert!(report.ok(), "cut {cut}: {:?}", report.problems);
            assert!(seen.torn_tail.is_none());
            continue;
        }
        assert_eq!(report.problems.len(), 1, "cut {cut}: {:?}", report.problems);
        assert!(
            report.problems[0].message.starts_with("torn tail"),
            "{:?}",
            report.problems
        );
        let torn = seen.torn_tail.expect("torn tail reported");
        assert_eq!(torn.from_line, 6);
        assert_eq!(torn.bytes, cut - start);

        // The next writer removes it, says so, and carries on.
        let (mut l, repairs) = Ledger::open(dir.path()).unwrap();
        assert_eq!(repairs.len(), 1, "cut {cut}");
        assert_eq!(repairs[0].bytes_removed, cut - start);
        assert_eq!(repairs[0].from_line, 6);
        assert_eq!(read(&file), &full[..start as usize], "cut {cut}");
        assert_eq!(l.balance("acme"), 100 - 6 - 4);
        l.append(Stream::Billing, vec![topup("acme", 1, "INV-2")])
            .unwrap();
        assert!(ledger::verify(dir.path()).unwrap().ok(), "cut {cut}");
    }
}

#[test]
fn a_torn_single_record_is_repaired() {
    let base = tempfile::tempdir().unwrap();
    sample(base.path());
    let file = base.path().join("billing.jsonl");
    let good = read(&file);
    let (mut l, _) = Ledger::open(base.path()).unwrap();
    l.append(Stream::Billing, vec![topup("acme", 1, "INV-9")])
        .unwrap();
    let full = read(&file);
    for cut in good.len() + 1..full.len() {
        std::fs::write(&file, &full[..cut]).unwrap();
        let (_, repairs) = Ledger::open(base.path()).unwrap();
        assert_eq!(repairs.len(), 1);
        assert_eq!(repairs[0].lines_removed, 1);
        assert_eq!(read(&file), good);
    }
}

#[test]
fn a_writer_repairs_a_tail_torn_by_another_process_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut l, _) = Ledger::open(dir.path()).unwrap();
    l.append(Stream::Billing, vec![topup("acme", 5, "A")])
        .unwrap();
    let file = dir.path().join("billing.jsonl");
    let good = read(&file);
    // Another process crashed half-way through its write.
    let mut torn = good.clone();
    torn.extend_from_slice(b"{\"actor\":\"ops\",\"amount_cre");
    std::fs::write(&file, &torn).unwrap();
    let out = l
        .append(Stream::Billing, vec![topup("acme", 6, "B")])
        .unwrap();
    assert_eq!(out.repairs.len(), 1);
    assert_eq!(out.records[0].seq, 2);
    assert!(ledger::verify(dir.path()).unwrap().ok());
}

#[test]
fn damage_before_the_last_batch_stops_every_writer() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let file = dir.path().join("billing.jsonl");
    let mut bytes = read(&file);
    let first_nl = bytes.iter().position(|&b| b == b'\n').unwrap();
    let at = first_nl + 30; // inside line 2
    bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
    std::fs::write(&file, &bytes).unwrap();
    let err = Ledger::open(dir.path()).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.message.contains("damaged at line 2"), "{}", err.message);
    assert!(err.location.unwrap().ends_with("billing.jsonl:2"));
    assert_eq!(read(&file), bytes, "a damaged ledger is never modified");
    let err = ledger::for_each_line(dir.path(), Stream::Billing, |_, _| Ok(())).unwrap_err();
    assert!(err.message.contains("line 2"), "{}", err.message);
}

// ---- random ledgers, random damage -------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Topup(usize, i64),
    Charge(usize, usize, i64),
    Refund(usize),
    Evidence(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, 1..50i64).prop_map(|(t, a)| Op::Topup(t, a)),
        (0..3usize, 1..4usize, 1..9i64).prop_map(|(t, n, p)| Op::Charge(t, n, p)),
        (0..20usize).prop_map(Op::Refund),
        (0..3usize).prop_map(Op::Evidence),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Edit(usize, usize, u8),
    Delete(usize),
    Insert(usize, usize),
    Swap(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<usize>(), any::<u8>()).prop_map(|(l, p, b)| Mutation::Edit(l, p, b)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), any::<usize>()).prop_map(|(f, a)| Mutation::Insert(f, a)),
        any::<usize>().prop_map(Mutation::Swap),
    ]
}

/// Build a valid ledger from ops (skipping the ones the rules refuse).
fn build(dir: &Path, ops: &[Op]) {
    let (mut l, _) = Ledger::open(dir).unwrap();
    let tenants = ["acme", "beta", "gamma"];
    start_runs(&mut l, &[("acme", "wo"), ("beta", "wo"), ("gamma", "wo")]);
    let mut spends = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Topup(t, a) => {
                l.append(
                    Stream::Billing,
                    vec![topup(tenants[*t], *a, &format!("R{i}"))],
                )
                .unwrap();
            }
            Op::Charge(t, n, p) => {
                let step = format!("s{i}");
                let batch: Vec<_> = (0..*n)
                    .map(|d| spend(tenants[*t], "wo", &step, &format!("d{d}"), p + d as i64))
                    .collect();
                let id = batch[0].batch_id();
                let payloads = batch.iter().cloned().map(Payload::new).collect();
                if l.append_batch(Stream::Billing, &id, payloads).is_ok() {
                    spends.extend(batch);
                }
            }
            Op::Refund(k) => {
                if !spends.is_empty() {
                    let s = spends.remove(k % spends.len());
                    l.append(Stream::Billing, vec![refund(&s)]).unwrap();
                }
            }
            Op::Evidence(t) => {
                l.append(
                    Stream::Audit,
                    vec![audit_allowed(&format!("{}/{i}", tenants[*t]))],
                )
                .unwrap();
            }
        }
    }
}

fn split(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Where a mutation first shows: the first line that differs (1-based), or None when the
/// result is a shorter, still complete ledger (a removed last record: undetectable without
/// an outside anchor).
fn first_difference(orig: &[Vec<u8>], new: &[Vec<u8>]) -> Option<usize> {
    for (i, line) in new.iter().enumerate() {
        if orig.get(i) != Some(line) {
            return Some(i + 1);
        }
    }
    if new.len() < orig.len() {
        return Some(new.len() + 1);
    }
    None
}

/// A record that is a whole write by itself: no batch fields, or a batch of one.
fn stands_alone(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    !text.contains("\"batch\":")
        || text.contains("\"batch_len\":1,")
        || text.contains("\"batch_len\":1}")
}

fn apply(orig: &[Vec<u8>], m: &Mutation) -> Vec<u8> {
    let n = orig.len();
    let mut lines = orig.to_vec();
    match m {
        Mutation::Edit(l, p, b) => {
            let line = &mut lines[l % n];
            let p = p % line.len();
            line[p] = *b;
        }
        Mutation::Delete(l) => {
            lines.remove(l % n);
        }
        Mutation::Insert(from, at) => {
            let copy = lines[from % n].clone();
            lines.insert(at % (n + 1), copy);
        }
        Mutation::Swap(l) => {
            if n >= 2 {
                let l = l % (n - 1);
                lines.swap(l, l + 1);
            }
        }
    }
    lines.concat()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_damage_is_found_at_its_line(
        ops in proptest::collection::vec(op(), 2..14),
        mutations in proptest::collection::vec(mutation(), 1..12),
    ) {
        let base = tempfile::tempdir().unwrap();
        build(base.path(), &ops);
        let report = ledger::verify(base.path()).unwrap();
        prop_assert!(report.ok(), "{:?}", report.problems);
        for name in ["billing.jsonl", "evidence.jsonl", "audit.jsonl"] {
            let orig = split(&read(&base.path().join(name)));
            if orig.is_empty() {
                continue;
            }
            for m in &mutations {
                let bytes = apply(&orig, m);
                let new = split(&bytes);
                let dir = tempfile::tempdir().unwrap();
                copy_state(base.path(), dir.path());
                std::fs::write(dir.path().join(name), &bytes).unwrap();
                let report = ledger::verify(dir.path()).unwrap();
                let in_file: Vec<_> =
                    report.problems.iter().filter(|p| p.file.ends_with(name)).collect();
                match first_difference(&orig, &new) {
                    None => prop_assert!(report.ok(), "{m:?}: {:?}", report.problems),
                    Some(_) if new.len() + 1 == orig.len()
                        && new == orig[..new.len()]
                        && stands_alone(&orig[new.len()]) =>
                    {
                        // Removing a last record that stood alone (no batch, or a batch of
                        // one) leaves a valid, shorter file: only the rules across files
                        // (a run's records without its run_started, a TOPUP without its audit
                        // record) or an outside anchor (the pushed head) can tell.
                        prop_assert!(in_file.is_empty(), "{m:?}: {:?}", report.problems);
                    }
                    Some(line) => {
                        prop_assert!(!in_file.is_empty(), "{m:?} in {name} went unnoticed");
                        prop_assert_eq!(in_file[0].line as usize, line, "{:?}: {:?}", m, report.problems);
                    }
                }
                readers_agree_with_verify(dir.path(), &report)?;
            }
        }
    }
}

/// A reader prints figures only from a ledger that verifies (a torn tail set aside), and the
/// same figures as a writer.
fn readers_agree_with_verify(
    dir: &Path,
    report: &ledger::VerifyReport,
) -> Result<(), TestCaseError> {
    let damaged = report
        .problems
        .iter()
        .any(|p| !p.message.contains("incomplete write"));
    let balances = ledger::balances(dir);
    prop_assert_eq!(balances.is_err(), damaged, "{:?}", report.problems);
    if let Ok(b) = balances {
        let (l, _) = Ledger::open(dir).unwrap();
        prop_assert_eq!(b, l.balances());
    }
    Ok(())
}
