//! The compact ledger index keeps key ids and offsets only: what a check needs from an earlier record (a REFUND's SPEND, a key posted again) is read back from its line, and a line changed under an open writer is never trusted.
// Tests fail by panicking; unwrap() and expect() are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::ledger_fixtures::*;
use platform::ledger::{self, Ledger, Stream};
use platform::records::{Payload, Refund};

/// A SPEND raised from 4 to 9 credits in place, under a writer that indexed it: neither a
/// refund of 9 nor one of 4 is posted on its word, a replay of the SPEND is not answered
/// from it, and `verify` names the line.
#[test]
fn a_spend_edited_under_an_open_writer_is_not_trusted_by_its_refund() {
    let (dir, mut l) = acme_with(10);
    let s = spend("acme", "wo", "s1", "zip", 4);
    l.append(Stream::Billing, vec![Payload::new(s.clone())])
        .unwrap();
    let path = dir.path().join("billing.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let forged = text.replacen("\"amount_credits\":-4,", "\"amount_credits\":-9,", 1);
    assert_ne!(forged, text);
    assert_eq!(
        forged.len(),
        text.len(),
        "edited in place: the writer sees no growth"
    );
    std::fs::write(&path, forged).unwrap();

    let mut nine = Refund::reversing(&s, "timeout");
    nine.amount_credits = 9;
    refused(
        &mut l,
        vec![Payload::new(nine)],
        "changed after it was read",
    );
    refused(&mut l, vec![refund(&s)], "changed after it was read");
    assert_eq!(l.spend(&s.key()), None);
    let replay = l
        .append(Stream::Billing, vec![Payload::new(s.clone())])
        .unwrap_err();
    assert!(
        replay.message.contains("changed after it was read"),
        "{}",
        replay.message
    );
    assert_eq!(l.balance("acme"), 6, "nothing was posted");
    let report = ledger::verify(dir.path()).unwrap();
    let problem = &report.problems[0];
    assert!(
        problem.file.ends_with("billing.jsonl") && problem.line == 2,
        "{problem}"
    );
    assert!(problem.message.contains("hash mismatch"), "{problem}");
}

/// REFUNDs find their SPEND by reading its line back: posted by another writer (caught up),
/// in the same batch, after reopening; readers and `verify` agree on every figure.
#[test]
fn refunds_read_their_spend_back_wherever_it_was_posted() {
    let (dir, mut a) = acme_with(20);
    let (mut b, _) = Ledger::open(dir.path()).unwrap();
    let s1 = spend("acme", "wo", "s1", "zip", 6);
    a.append(Stream::Billing, vec![Payload::new(s1.clone())])
        .unwrap();
    // b indexed the ledger before s1: it reads s1's line back after catching up.
    let mut part = Refund::reversing(&s1, "timeout");
    part.amount_credits = 2;
    assert!(b
        .append(Stream::Billing, vec![Payload::new(part)])
        .unwrap()
        .appended());
    let s2 = spend("acme", "wo", "s2", "zip", 5);
    let both = vec![Payload::new(s2.clone()), refund(&s2)];
    assert!(b.append(Stream::Billing, both).unwrap().appended());

    let (mut c, _) = Ledger::open(dir.path()).unwrap();
    let info = c.spend(&s1.key()).unwrap();
    assert_eq!((info.amount_credits, info.refunded_credits), (-6, 2));
    assert_eq!(c.spend(&s2.key()).unwrap().refunded_credits, 5);
    let s3 = spend("acme", "wo", "s3", "zip", 3);
    c.append(Stream::Billing, vec![Payload::new(s3.clone())])
        .unwrap();
    // a indexed neither s3 nor the refunds: it catches up and reads s3's line back.
    let mut over = Refund::reversing(&s3, "timeout");
    over.amount_credits = 4;
    refused(&mut a, vec![Payload::new(over)], "refund over spend");
    assert!(a
        .append(Stream::Billing, vec![refund(&s3)])
        .unwrap()
        .appended());
    assert_eq!(a.spend(&s3.key()).unwrap().refunded_credits, 3);
    assert_eq!(a.balance("acme"), 16);
    assert_eq!(ledger::balance(dir.path(), "acme").unwrap(), 16);
    assert!(ledger::verify(dir.path()).unwrap().ok());
}
