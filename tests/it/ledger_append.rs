//! Ledger append path: idempotency, conflicts, billing rules, batches, durability shape.
// Tests fail by panicking; unwrap() and expect() are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::check::assert_has;
use crate::support::fx::temp_dir;
use crate::support::ledger_fixtures as fixtures;

use fixtures::*;
use platform::ledger::{self, AppendStatus, Ledger, Stream};
use platform::records::billing::{MAX_CREDITS, RUN_DELIVERABLE};
use platform::records::Payload;

#[test]
fn replaying_a_topup_is_a_no_op() {
    let dir = temp_dir();
    let (mut l, repairs) = Ledger::open(dir.path()).unwrap();
    assert!(repairs.is_empty());
    let first = l
        .append(Stream::Billing, vec![topup("acme", 100, "INV-1")])
        .unwrap();
    assert_eq!(first.status, AppendStatus::Appended);
    let before = read(&dir.path().join("billing.jsonl"));
    let again = l
        .append(Stream::Billing, vec![topup("acme", 100, "INV-1")])
        .unwrap();
    assert_eq!(again.status, AppendStatus::AlreadyRecorded);
    assert_eq!(again.records[0].seq, 1);
    assert_eq!(again.records[0].recorded_at, first.records[0].recorded_at);
    assert_eq!(again.records[0].hash, first.records[0].hash);
    assert_eq!(read(&dir.path().join("billing.jsonl")), before);
    // A second writer (another process, in effect) sees the same.
    let (mut other, _) = Ledger::open(dir.path()).unwrap();
    let third = other
        .append(Stream::Billing, vec![topup("acme", 100, "INV-1")])
        .unwrap();
    assert_eq!(third.status, AppendStatus::AlreadyRecorded);
    assert_eq!(l.balance("acme"), 100);
    assert_eq!(ledger::balance(dir.path(), "acme").unwrap(), 100);
}

#[test]
fn a_conflicting_topup_writes_nothing_and_names_the_field() {
    let (dir, mut l) = open_fresh();
    l.append(Stream::Billing, vec![topup("acme", 100, "INV-1")])
        .unwrap();
    let before = read(&dir.path().join("billing.jsonl"));
    let err = l
        .append(Stream::Billing, vec![topup("acme", 200, "INV-1")])
        .unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert_has(&err.message, "conflict");
    assert_has(&err.message, "topup/acme/INV-1");
    assert!(
        err.message
            .contains("amount_credits (recorded 100, posted 200)"),
        "{}",
        err.message
    );
    assert_eq!(read(&dir.path().join("billing.jsonl")), before);
    assert_eq!(l.balance("acme"), 100);
}

#[test]
fn balance_never_goes_below_zero() {
    let (dir, mut l) = acme_with(10);
    let run = spend("acme", "wo", "s1", RUN_DELIVERABLE, 6);
    let zip = spend("acme", "wo", "s1", "zip", 5);
    let before = read(&dir.path().join("billing.jsonl"));
    let err = l
        .append_batch(
            Stream::Billing,
            &run.batch_id(),
            vec![Payload::new(run.clone()), Payload::new(zip.clone())],
        )
        .unwrap_err();
    assert_has(&err.message, "not enough credits");
    assert_has(&err.message, "balance of 4");
    assert_eq!(
        read(&dir.path().join("billing.jsonl")),
        before,
        "all or nothing"
    );
    assert_eq!(l.balance("acme"), 10);
    // The run charge alone fits.
    let ok = l
        .append_batch(
            Stream::Billing,
            &run.batch_id(),
            vec![Payload::new(run.clone())],
        )
        .unwrap();
    assert!(ok.appended());
    assert_eq!(l.balance("acme"), 4);
}

#[test]
fn refunds_never_exceed_their_spend() {
    let (dir, mut l) = acme_with(10);
    l.append(Stream::Billing, vec![topup("beta", 10, "INV-1")])
        .unwrap();
    let s = spend("acme", "wo", "s1", "zip", 4);
    l.append(Stream::Billing, vec![Payload::new(s.clone())])
        .unwrap();
    assert_eq!(l.spend(&s.key()).unwrap().amount_credits, -4);

    let mut over = platform::records::Refund::reversing(&s, "timeout");
    over.amount_credits = 5;
    refused(&mut l, vec![Payload::new(over)], "refund over spend");

    let mut ghost = platform::records::Refund::reversing(&s, "timeout");
    ghost.refunds = "spend/acme/nope".into();
    refused(&mut l, vec![Payload::new(ghost)], "names no recorded SPEND");

    let mut other = platform::records::Refund::reversing(&s, "timeout");
    other.tenant_id = "beta".into();
    refused(
        &mut l,
        vec![Payload::new(other)],
        "reverses a SPEND of tenant acme",
    );

    let full = l.append(Stream::Billing, vec![refund(&s)]).unwrap();
    assert!(full.appended());
    assert_eq!(l.spend(&s.key()).unwrap().refunded_credits, 4);
    assert_eq!(l.balance("acme"), 10);
    assert!(ledger::verify(dir.path()).unwrap().ok());
}

#[test]
fn signs_and_ranges_are_enforced() {
    let (dir, mut l) = open_fresh();
    start_runs(&mut l, &[("acme", "wo")]);
    for amount in [0, -1, MAX_CREDITS + 1, i64::MAX] {
        let err = l
            .append(Stream::Billing, vec![topup("acme", amount, "INV-0")])
            .unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(
            err.message
                .contains("TOPUP amount_credits must be 1..=1000000000000"),
            "{}",
            err.message
        );
    }
    assert!(read(&dir.path().join("billing.jsonl")).is_empty());
    l.append(Stream::Billing, vec![topup("acme", 5, "INV-1")])
        .unwrap();
    let free = spend("acme", "wo", "s1", "zip", 0);
    refused(&mut l, vec![Payload::new(free)], "must be negative");
}

#[test]
fn a_batch_is_all_or_nothing_and_replays_as_a_whole() {
    let (dir, mut l) = acme_with(50);
    let a = spend("acme", "wo", "s1", RUN_DELIVERABLE, 1);
    let b = spend("acme", "wo", "s1", "zip", 2);
    let batch = || vec![Payload::new(a.clone()), Payload::new(b.clone())];
    let out = l
        .append_batch(Stream::Billing, &a.batch_id(), batch())
        .unwrap();
    assert_eq!(
        out.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [2, 3]
    );
    let text = String::from_utf8(read(&dir.path().join("billing.jsonl"))).unwrap();
    assert_eq!(
        text.matches("\"batch\":\"spend/acme/wo/r1/s1/a1\",\"batch_len\":2")
            .count(),
        2
    );
    let again = l
        .append_batch(Stream::Billing, &a.batch_id(), batch())
        .unwrap();
    assert_eq!(again.status, AppendStatus::AlreadyRecorded);
    let c = spend("acme", "wo", "s1", "pdf", 3);
    let err = l
        .append_batch(
            Stream::Billing,
            &a.batch_id(),
            vec![Payload::new(a.clone()), Payload::new(c)],
        )
        .unwrap_err();
    assert_has(&err.message, "conflict");
    assert_eq!(l.balance("acme"), 47);
}

#[test]
fn records_go_to_their_own_file_and_chain_there() {
    let (dir, mut l) = open_fresh();
    let err = l
        .append(Stream::Evidence, vec![topup("acme", 1, "x")])
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    // The allowed audit record of a TOPUP nobody posted is refused: the ledger writes one
    // after its record, never alone.
    let err = l
        .append(Stream::Audit, vec![audit_allowed("topup/acme/x")])
        .unwrap_err();
    assert!(
        err.message.contains("which is not in billing.jsonl"),
        "{err}"
    );
    l.append(Stream::Audit, vec![audit_allowed("grant/acme/x")])
        .unwrap();
    let denied = platform::records::Audit {
        decision: platform::records::Decision::Denied,
        ..match audit_allowed("t").record {
            platform::records::Record::Audit(a) => a,
            _ => unreachable!(),
        }
    };
    let d1 = l.audit(denied.clone()).unwrap();
    let d2 = l.audit(denied).unwrap();
    assert!(d1.appended() && d2.appended());
    assert_ne!(d1.records[0].idempotency_key, d2.records[0].idempotency_key);
    assert!(d1.records[0]
        .idempotency_key
        .starts_with("audit/denied/billing.topup/"));
    assert_eq!(l.head(Stream::Audit).seq, 3);
    let report = ledger::verify(dir.path()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}

#[test]
fn lines_are_canonical_with_hash_last() {
    let (dir, mut l) = open_fresh();
    l.append(Stream::Billing, vec![topup("acme", 7, "INV-1")])
        .unwrap();
    let text = String::from_utf8(read(&dir.path().join("billing.jsonl"))).unwrap();
    let line = text.trim_end();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let hash = v["hash"].as_str().unwrap();
    assert!(line.ends_with(&format!(",\"hash\":\"{hash}\"}}")));
    assert!(line.starts_with("{\"actor\":\"ops\",\"amount_credits\":7,\"idempotency_key\":\"topup/acme/INV-1\",\"prev_hash\":\"0000"));
    let at = v["recorded_at"].as_str().unwrap();
    assert_eq!(at.len(), 24, "{at}");
    assert!(at.ends_with('Z'));
    let mut without = v.as_object().unwrap().clone();
    without.remove("hash");
    let canonical = platform::records::canonical::encode_object(&without).unwrap();
    let mut msg = b"platform-ledger/v1\n".to_vec();
    msg.extend_from_slice(&canonical);
    assert_eq!(platform::digest::sha256_hex(&msg), hash);
}

#[test]
fn another_writers_appends_are_picked_up() {
    let dir = temp_dir();
    let (mut a, _) = Ledger::open(dir.path()).unwrap();
    let (mut b, _) = Ledger::open(dir.path()).unwrap();
    a.append(Stream::Billing, vec![topup("acme", 5, "A")])
        .unwrap();
    b.append(Stream::Billing, vec![topup("acme", 6, "B")])
        .unwrap();
    a.append(Stream::Billing, vec![topup("acme", 7, "C")])
        .unwrap();
    assert_eq!(a.balance("acme"), 18);
    assert_eq!(b.balance("acme"), 11);
    b.refresh().unwrap();
    assert_eq!(b.balance("acme"), 18);
    assert!(ledger::verify(dir.path()).unwrap().ok());
}

#[test]
fn a_writer_open_across_a_merge_appends_after_it() {
    let dir = temp_dir();
    let state = dir.path().join("state");
    let seg = dir.path().join("seg");
    let (mut writer, _) = Ledger::open(&state).unwrap();
    writer
        .append(Stream::Billing, vec![topup("acme", 5, "A")])
        .unwrap();
    copy_state(&state, &seg);
    {
        let (mut s, _) = Ledger::open(&seg).unwrap();
        s.append(Stream::Billing, vec![topup("acme", 6, "B")])
            .unwrap();
    }
    let report = ledger::merge(&state, std::slice::from_ref(&seg)).unwrap();
    assert_eq!(report.files[0].added, 1);
    // The merge replaced the file (rename): the open writer must notice, not write to the
    // old inode.
    let out = writer
        .append(Stream::Billing, vec![topup("acme", 7, "C")])
        .unwrap();
    assert_eq!(out.records[0].seq, 3);
    assert_eq!(writer.balance("acme"), 18);
    assert!(ledger::verify(&state).unwrap().ok());
    assert_eq!(ledger::balance(&state, "acme").unwrap(), 18);
}

#[test]
fn a_record_of_a_run_needs_its_run_started_first() {
    let (dir, mut l) = open_fresh();
    l.append(Stream::Billing, vec![topup("acme", 10, "INV-1")])
        .unwrap();
    let s = spend("acme", "wo", "s1", "zip", 4);
    let before = read(&dir.path().join("billing.jsonl"));
    let err = l
        .append(Stream::Billing, vec![Payload::new(s.clone())])
        .unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(
        err.message
            .contains("names run acme-wo-r1, whose run_started is not in evidence.jsonl"),
        "{}",
        err.message
    );
    assert_eq!(read(&dir.path().join("billing.jsonl")), before);
    // Another process records the run meanwhile: the writer catches up and accepts it.
    let (mut other, _) = Ledger::open(dir.path()).unwrap();
    start_runs(&mut other, &[("acme", "wo")]);
    l.append(Stream::Billing, vec![Payload::new(s)]).unwrap();
    assert!(ledger::verify(dir.path()).unwrap().ok());
}

#[test]
fn a_privileged_record_is_audited_with_it() {
    let (dir, mut l) = open_fresh();
    let out = l
        .append(Stream::Billing, vec![topup("acme", 10, "INV-1")])
        .unwrap();
    assert!(out.repairs.is_empty());
    let audit = lines(&dir.path().join("audit.jsonl"));
    assert_eq!(audit.len(), 1);
    let a: serde_json::Value = serde_json::from_slice(&audit[0]).unwrap();
    assert_eq!(a["idempotency_key"], "audit/billing.topup/topup/acme/INV-1");
    assert_eq!(a["actor"], "ops");
    assert_eq!(a["tenant_id"], "acme");
    assert_eq!(a["decision"], "allowed");
    // A replay adds nothing to either file.
    let before = read(&dir.path().join("audit.jsonl"));
    l.append(Stream::Billing, vec![topup("acme", 10, "INV-1")])
        .unwrap();
    assert_eq!(read(&dir.path().join("audit.jsonl")), before);
    // A TOPUP without an actor could never be audited: refused before anything is written.
    let mut anonymous = platform::records::Topup::new("acme", 1, "bank", "INV-2", None, "");
    anonymous.actor.clear();
    let err = l
        .append(Stream::Billing, vec![Payload::new(anonymous)])
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_has(&err.message, "needs an actor");
}
