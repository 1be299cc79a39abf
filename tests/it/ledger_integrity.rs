//! Ledger integrity: torn tails at every byte offset are repaired by writers and only reported by readers; any edit, deletion, insertion or swap is found at its line.
// Tests fail by panicking; unwrap() and expect() are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::check::assert_has;
use crate::support::fx::{platform_in, temp_dir};
use crate::support::ledger_fixtures as fixtures;
use crate::support::Transcript;

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
    let base = temp_dir();
    let (start, end) = sample(base.path());
    let full = read(&base.path().join("billing.jsonl"));
    for cut in start..end {
        let dir = temp_dir();
        copy_state(base.path(), dir.path());
        let file = dir.path().join("billing.jsonl");
        std::fs::write(&file, &full[..cut as usize]).unwrap();

        // Readers report and never modify.
        let report = ledger::verify(dir.path()).unwrap();
        let seen = ledger::for_each_line(dir.path(), Stream::Billing, |_| Ok(())).unwrap();
        assert_eq!(
            read(&file),
            &full[..cut as usize],
            "cut {cut}: a reader modified the file"
        );
        assert_eq!(seen.records, 5, "cut {cut}");
        // A reader's figures leave the whole torn batch out, as the writer that removes it:
        // one whose complete lines committed (the cut took only the last newline) counted
        // them.
        assert_eq!(
            ledger::balance(dir.path(), "acme").unwrap(),
            100 - 6 - 4,
            "cut {cut}: a reader counted part of an interrupted write"
        );
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
fn balance_leaves_out_a_last_batch_that_lost_only_its_newline() {
    // The crash that cuts the fewest bytes: every line of the batch is there and verifies,
    // the last one without its `\n`. The command counted the batch (84 credits, not 90)
    // while its note said it was not counted.
    let dir = temp_dir();
    let (_, end) = sample(dir.path());
    let file = dir.path().join("billing.jsonl");
    let cut = read(&file)[..end as usize - 1].to_vec();
    std::fs::write(&file, &cut).unwrap();
    let state = dir.path().to_str().unwrap();
    let out = platform_in(dir.path())
        .args([
            "balance",
            "--tenant-id",
            "acme",
            "--json",
            "--billing-state-dir",
            state,
        ])
        .output()
        .unwrap();
    out.expect_ok();
    assert_eq!(out.json()["balance_credits"], 100 - 6 - 4);
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("interrupted write") && note.contains("not counted"),
        "{note}"
    );
    assert_eq!(read(&file), cut, "a reader modified the file");
}

#[test]
fn a_torn_single_record_is_repaired() {
    let base = temp_dir();
    sample(base.path());
    let file = base.path().join("billing.jsonl");
    let good = read(&file);
    let audit = base.path().join("audit.jsonl");
    let audit_before = read(&audit);
    let (mut l, _) = Ledger::open(base.path()).unwrap();
    l.append(Stream::Billing, vec![topup("acme", 1, "INV-9")])
        .unwrap();
    // A crash tears the TOPUP's line before its audit record is written.
    std::fs::write(&audit, &audit_before).unwrap();
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
    let (dir, mut l) = open_fresh();
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
    let dir = temp_dir();
    sample(dir.path());
    let file = dir.path().join("billing.jsonl");
    let mut bytes = read(&file);
    let first_nl = bytes.iter().position(|&b| b == b'\n').unwrap();
    let at = first_nl + 30; // inside line 2
    bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
    std::fs::write(&file, &bytes).unwrap();
    let err = Ledger::open(dir.path()).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert_has(&err.message, "damaged at line 2");
    assert!(err.location.unwrap().ends_with("billing.jsonl:2"));
    assert_eq!(read(&file), bytes, "a damaged ledger is never modified");
    let err = ledger::for_each_line(dir.path(), Stream::Billing, |_| Ok(())).unwrap_err();
    assert_has(&err.message, "line 2");
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

/// One append that succeeded while building: what a retry after a crash posts again.
#[derive(Debug, Clone)]
struct Posted {
    stream: Stream,
    batch: Option<String>,
    records: Vec<Payload>,
}

/// Build a valid ledger from ops (skipping the ones the rules refuse); every append that
/// succeeded, in order, and each file's length after it.
fn build(dir: &Path, ops: &[Op]) -> Vec<(Posted, [u64; 3])> {
    let (mut l, _) = Ledger::open(dir).unwrap();
    let tenants = ["acme", "beta", "gamma"];
    let lens = || Stream::ALL.map(|s| read(&dir.join(s.file_name())).len() as u64);
    let mut done = Vec::new();
    let mut post = |l: &mut Ledger, p: Posted| {
        let out = match &p.batch {
            Some(id) => l.append_batch(p.stream, id, p.records.clone()),
            None => l.append(p.stream, p.records.clone()),
        };
        let ok = out.is_ok();
        if ok {
            done.push((p, lens()));
        }
        ok
    };
    for t in tenants {
        let one = |stream, records| Posted {
            stream,
            batch: None,
            records,
        };
        post(&mut l, one(Stream::Evidence, vec![run_started(t, "wo")]));
    }
    let mut spends = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let (stream, batch, records) = match op {
            Op::Topup(t, a) => (
                Stream::Billing,
                None,
                vec![topup(tenants[*t], *a, &format!("R{i}"))],
            ),
            Op::Charge(t, n, p) => {
                let step = format!("s{i}");
                let batch: Vec<_> = (0..*n)
                    .map(|d| spend(tenants[*t], "wo", &step, &format!("d{d}"), p + d as i64))
                    .collect();
                let id = batch[0].batch_id();
                let payloads = batch.iter().cloned().map(Payload::new).collect();
                let posted = Posted {
                    stream: Stream::Billing,
                    batch: Some(id),
                    records: payloads,
                };
                if post(&mut l, posted) {
                    spends.extend(batch);
                }
                continue;
            }
            Op::Refund(k) => {
                if spends.is_empty() {
                    continue;
                }
                let s = spends.remove(k % spends.len());
                (Stream::Billing, None, vec![refund(&s)])
            }
            Op::Evidence(t) => (
                Stream::Audit,
                None,
                vec![audit_allowed(&format!("{}/{i}", tenants[*t]))],
            ),
        };
        assert!(post(
            &mut l,
            Posted {
                stream,
                batch,
                records
            }
        ));
    }
    done
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
        let base = temp_dir();
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
                let dir = temp_dir();
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

// ---- re-chained forgeries ------------------------------------------------------------------

type Rec = serde_json::Map<String, serde_json::Value>;

/// Edits an attacker makes before re-chaining the file (so every line's own hash, seq and
/// prev_hash are right), each one a rule of SPEC §4/§7 must catch.
#[derive(Debug, Clone)]
enum Forgery {
    /// Copy a line of a file to another place in it: a second charge, a second top-up.
    Duplicate(usize, usize, usize),
    /// Drop the run_started of a run that has records.
    DropRunStarted(usize),
    /// Cut evidence.jsonl before the run_started of a run that has records.
    CutEvidence(usize),
    /// Drop the audit record of a TOPUP.
    DropAudit(usize),
    /// Give a TOPUP an amount outside 1..=10^12.
    TopupAmount(usize, i64),
    /// Make a SPEND a credit.
    SpendSign(usize),
    /// Append a TOPUP nobody audited.
    ForgeTopup(i64),
    /// Append a SPEND of a run that never started.
    ForgeRun,
    /// Append a SPEND larger than the balance.
    Overdraw,
    /// Move a billing record into evidence.jsonl.
    MoveToEvidence(usize),
}

fn forgery() -> impl Strategy<Value = Forgery> {
    prop_oneof![
        (0..3usize, any::<usize>(), any::<usize>())
            .prop_map(|(f, l, a)| Forgery::Duplicate(f, l, a)),
        any::<usize>().prop_map(Forgery::DropRunStarted),
        any::<usize>().prop_map(Forgery::CutEvidence),
        any::<usize>().prop_map(Forgery::DropAudit),
        (
            any::<usize>(),
            prop_oneof![
                Just(0i64),
                Just(-5),
                Just(1_000_000_000_001),
                Just(i64::MAX)
            ]
        )
            .prop_map(|(k, a)| Forgery::TopupAmount(k, a)),
        any::<usize>().prop_map(Forgery::SpendSign),
        (1..1_000_000i64).prop_map(Forgery::ForgeTopup),
        Just(Forgery::ForgeRun),
        Just(Forgery::Overdraw),
        any::<usize>().prop_map(Forgery::MoveToEvidence),
    ]
}

fn of_type(records: &[Rec], ty: &str) -> Vec<usize> {
    (0..records.len())
        .filter(|&i| records[i]["type"] == ty)
        .collect()
}

/// Index of the k-th (mod count) record of type `ty`; there is always one in `forged_base`.
fn pick(records: &[Rec], ty: &str, k: usize) -> usize {
    let all = of_type(records, ty);
    all[k % all.len()]
}

/// Apply a forgery to the three files (as records); true when only an audit record is
/// missing, which the next writer repairs rather than refuses (a stated limit: only signed
/// heads tell that repair from a forgery).
fn apply_forgery(files: &mut [Vec<Rec>; 3], f: &Forgery, balance_of_acme: i64) -> bool {
    let [billing, evidence, audit] = files;
    let spend = || billing[pick(billing, "SPEND", 0)].clone();
    match f {
        Forgery::Duplicate(file, line, at) => {
            let recs = &mut files[*file];
            let copy = recs[line % recs.len()].clone();
            let at = (at % (recs.len() + 1)).max(line % recs.len() + 1);
            recs.insert(at, copy);
        }
        Forgery::DropRunStarted(k) | Forgery::CutEvidence(k) => {
            // A run with charges (acme's always has some): losing its run_started is damage.
            let mut charged: Vec<&str> = of_type(billing, "SPEND")
                .into_iter()
                .map(|i| billing[i]["run_id"].as_str().unwrap())
                .collect();
            charged.dedup();
            let run = charged[k % charged.len()];
            let at = evidence.iter().position(|r| r["run_id"] == run).unwrap();
            if matches!(f, Forgery::DropRunStarted(_)) {
                evidence.remove(at);
            } else {
                evidence.truncate(at);
            }
        }
        Forgery::DropAudit(k) => {
            let topups: Vec<String> = of_type(billing, "TOPUP")
                .into_iter()
                .map(|i| billing[i]["idempotency_key"].as_str().unwrap().to_string())
                .collect();
            let key = &topups[k % topups.len()];
            audit.retain(|a| a["target"] != key.as_str());
            return true;
        }
        Forgery::TopupAmount(k, a) => {
            let i = pick(billing, "TOPUP", *k);
            billing[i].insert("amount_credits".into(), (*a).into());
        }
        Forgery::SpendSign(k) => {
            let i = pick(billing, "SPEND", *k);
            let a = billing[i]["amount_credits"].as_i64().unwrap();
            billing[i].insert("amount_credits".into(), (-a).into());
        }
        Forgery::ForgeTopup(a) => {
            let mut t = billing[pick(billing, "TOPUP", 0)].clone();
            t.insert("amount_credits".into(), (*a).into());
            t.insert("reference".into(), "FORGED".into());
            t.insert("idempotency_key".into(), "topup/acme/FORGED".into());
            billing.push(t);
            return true;
        }
        Forgery::ForgeRun | Forgery::Overdraw => {
            let mut s = spend();
            for k in ["batch", "batch_len"] {
                s.remove(k);
            }
            s.insert(
                "idempotency_key".into(),
                "spend/acme/wo/r1/x/a1/forged".into(),
            );
            s.insert("tenant_id".into(), "acme".into());
            if matches!(f, Forgery::ForgeRun) {
                s.insert("run_id".into(), "acme-never-r9".into());
                s.insert("amount_credits".into(), (-1).into());
            } else {
                s.insert("run_id".into(), "acme-wo-r1".into());
                s.insert("amount_credits".into(), (-balance_of_acme - 1).into());
            }
            billing.push(s);
        }
        Forgery::MoveToEvidence(k) => {
            let i = k % billing.len();
            let r = billing.remove(i);
            evidence.push(r);
        }
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// SPEC §7: random edits, re-chained as an attacker would, are refused by verify
    /// (integrity-validate) and by every reader; a writer refuses them too, except a missing
    /// audit record, which it adds back (and reports).
    #[test]
    fn any_rechained_forgery_is_refused(
        ops in proptest::collection::vec(op(), 0..10),
        f in forgery(),
    ) {
        let base = temp_dir();
        let mut all = vec![Op::Topup(0, 40), Op::Charge(0, 2, 3)];
        all.extend(ops);
        build(base.path(), &all);
        let balance = ledger::balance(base.path(), "acme").unwrap();
        let mut files = Stream::ALL.map(|s| records_of(&base.path().join(s.file_name())));
        let repairable = apply_forgery(&mut files, &f, balance);
        let dir = temp_dir();
        for (s, recs) in Stream::ALL.iter().zip(&files) {
            std::fs::write(dir.path().join(s.file_name()), rechain(recs)).unwrap();
        }
        let report = ledger::verify(dir.path()).unwrap();
        prop_assert!(!report.ok(), "{f:?} went unnoticed");
        prop_assert_eq!(report.only_repairable(), repairable, "{:?}: {:?}", f, report.problems);
        prop_assert!(ledger::balances(dir.path()).is_err(), "{f:?}: a reader printed figures");
        let before = Stream::ALL.map(|s| read(&dir.path().join(s.file_name())));
        match Ledger::open(dir.path()) {
            Ok((_, repairs)) => {
                prop_assert!(repairable, "{f:?}: a writer went on");
                prop_assert!(repairs.iter().all(|r| r.kind == ledger::RepairKind::AuditAdded));
                prop_assert!(ledger::verify(dir.path()).unwrap().ok());
            }
            Err(e) => {
                prop_assert!(!repairable, "{f:?}: {}", e.message);
                prop_assert_eq!(e.exit_code(), 1);
                let after = Stream::ALL.map(|s| read(&dir.path().join(s.file_name())));
                prop_assert!(after == before, "a refusing writer wrote");
            }
        }
    }
}

// ---- crashes at any point --------------------------------------------------------------------

/// The files as a crash inside append `n` leaves them: the appends before it whole, then the
/// writes of append `n` (its billing or evidence batch, then a TOPUP's audit record) cut at
/// byte `cut` of all they would have written.
fn crashed(control: &Path, done: &[(Posted, [u64; 3])], n: usize, cut: u64, into: &Path) {
    let before = if n == 0 { [0; 3] } else { done[n - 1].1 };
    let after = done[n].1;
    let mut budget = cut;
    for s in [Stream::Billing, Stream::Evidence, Stream::Audit] {
        let i = s.index();
        let wrote = after[i] - before[i];
        let kept = before[i] + budget.min(wrote);
        budget -= budget.min(wrote);
        let full = read(&control.join(s.file_name()));
        std::fs::write(into.join(s.file_name()), &full[..kept as usize]).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// SPEC §4/§7: whatever byte a crash stops at, the next writer repairs what it left (and
    /// says so), every record acknowledged before it is still there, and posting everything
    /// again (as a resumed pass does) charges nothing twice and ends where an uninterrupted
    /// run ends.
    #[test]
    fn any_crash_point_loses_nothing_and_charges_nothing_twice(
        ops in proptest::collection::vec(op(), 1..12),
        at in any::<usize>(),
        frac in 0..=1000u64,
    ) {
        let control = temp_dir();
        let done = build(control.path(), &ops);
        let n = at % done.len();
        let before = if n == 0 { [0; 3] } else { done[n - 1].1 };
        let total: u64 = (0..3).map(|i| done[n].1[i] - before[i]).sum();
        let cut = total * frac / 1000;
        let dir = temp_dir();
        crashed(control.path(), &done, n, cut, dir.path());

        let (mut l, repairs) = Ledger::open(dir.path())
            .map_err(|e| TestCaseError::fail(format!("append {n}, cut {cut}: {}", e.message)))?;
        prop_assert_eq!(repairs.is_empty(), cut == 0 || cut == total, "{:?}", repairs);
        for s in Stream::ALL {
            let now = read(&dir.path().join(s.file_name()));
            let acked = &read(&control.path().join(s.file_name()))[..before[s.index()] as usize];
            prop_assert!(now.starts_with(acked), "append {n}, cut {cut}: {s} lost a record");
        }
        for (p, _) in &done {
            let out = match &p.batch {
                Some(id) => l.append_batch(p.stream, id, p.records.clone()),
                None => l.append(p.stream, p.records.clone()),
            };
            prop_assert!(out.is_ok(), "replaying {p:?}: {}", out.unwrap_err().message);
        }
        drop(l);
        prop_assert!(ledger::verify(dir.path()).unwrap().ok());
        prop_assert_eq!(
            ledger::balances(dir.path()).unwrap(),
            ledger::balances(control.path()).unwrap()
        );
        for s in Stream::ALL {
            let keys = |d: &Path| {
                let mut k: Vec<String> = records_of(&d.join(s.file_name()))
                    .iter()
                    .map(|r| r["idempotency_key"].as_str().unwrap().to_string())
                    .collect();
                k.sort();
                k
            };
            prop_assert_eq!(keys(dir.path()), keys(control.path()), "{}", s);
        }
    }
}
