//! Fuzzing of ledger line parsing and verification: random bytes, random lines and mutated
//! valid ledgers in billing.jsonl, evidence.jsonl and audit.jsonl. `verify` never panics and
//! always reports; the writer either opens (after removing a torn tail, which it reports) or
//! refuses and leaves the files untouched; and the two agree with each other. Truncation at
//! any offset always recovers to a valid prefix; a flipped bit is always detected.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::check::assert_has;
use crate::support::fuzz;
use crate::support::fx::temp_dir;
use crate::support::ledger_fixtures as lf;

use fuzz::{edit, fuzz_target, mutate, Edit};
use platform::ledger::{self, Ledger, Stream};
use platform::records::{Payload, RunStarted};
use proptest::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

const FILES: [&str; 3] = ["billing.jsonl", "evidence.jsonl", "audit.jsonl"];

/// A valid billing-state directory's three files: top-ups, a spend batch, single spends, a
/// refund, run records and audit records.
fn template() -> &'static [Vec<u8>; 3] {
    static CELL: OnceLock<[Vec<u8>; 3]> = OnceLock::new();
    CELL.get_or_init(|| {
        let dir = temp_dir();
        let (mut l, _) = Ledger::open(dir.path()).unwrap();
        lf::start_runs(&mut l, &[("acme", "wo"), ("beta", "wo")]);
        l.append(Stream::Billing, vec![lf::topup("acme", 100, "R1")])
            .unwrap();
        l.append(Stream::Billing, vec![lf::topup("beta", 7, "R2")])
            .unwrap();
        let batch: Vec<_> = (0..3)
            .map(|d| lf::spend("acme", "wo", "s1", &format!("d{d}"), 2 + d))
            .collect();
        let id = batch[0].batch_id();
        l.append_batch(
            Stream::Billing,
            &id,
            batch.iter().cloned().map(Payload::new).collect(),
        )
        .unwrap();
        let single = lf::spend("beta", "wo", "s2", "__run__", 3);
        l.append(Stream::Billing, vec![Payload::new(single.clone())])
            .unwrap();
        l.append(Stream::Billing, vec![lf::refund(&single)])
            .unwrap();
        l.append(Stream::Billing, vec![lf::refund(&batch[1])])
            .unwrap();
        for (i, t) in ["acme", "beta", "acme"].iter().enumerate() {
            let run_id = format!("run-{t}-{i}");
            l.append(
                Stream::Evidence,
                vec![Payload::new(RunStarted {
                    tenant_id: t.to_string(),
                    work_order_id: "wo".into(),
                    run: i as u64 + 1,
                    run_id: run_id.clone(),
                    work_order_sha256: "0".repeat(64),
                    correlation_id: run_id,
                    period: None,
                    rerun: None,
                })],
            )
            .unwrap();
            l.append(Stream::Audit, vec![lf::audit_allowed(&format!("{t}/{i}"))])
                .unwrap();
        }
        drop(l);
        assert!(ledger::verify(dir.path()).unwrap().ok());
        FILES.map(|f| std::fs::read(dir.path().join(f)).unwrap())
    })
}

/// What goes into one file: kept, mutated, random lines, or random bytes.
#[derive(Debug, Clone)]
enum Content {
    Keep,
    Mutated(Vec<Edit>),
    Lines(Vec<String>),
    Bytes(Vec<u8>),
    AppendGarbage(Vec<u8>),
    /// Edited, then re-chained as an attacker would (lines that are still JSON objects get a
    /// fresh seq, prev_hash and hash), so only the rules beyond the chain can tell.
    Rechained(Vec<Edit>),
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,80}",
        "\\{(\"[a-z_]{1,8}\":([0-9]{1,5}|\"[a-z0-9]{0,10}\"|null|true)\\,?){0,8}\\}",
        Just("{}".to_string()),
        Just("{\"v\":1,\"seq\":1,\"hash\":\"00\"}".to_string()),
        Just("[]".to_string()),
        Just(
            "{\"v\":1,\"seq\":18446744073709551615,\"amount_credits\":-9223372036854775808}"
                .to_string()
        ),
    ]
}

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        2 => Just(Content::Keep),
        4 => proptest::collection::vec(edit(), 1..6).prop_map(Content::Mutated),
        1 => proptest::collection::vec(line(), 0..6).prop_map(Content::Lines),
        1 => proptest::collection::vec(any::<u8>(), 0..400).prop_map(Content::Bytes),
        2 => proptest::collection::vec(any::<u8>(), 1..120).prop_map(Content::AppendGarbage),
        3 => proptest::collection::vec(edit(), 1..6).prop_map(Content::Rechained),
    ]
}

fn render(base: &[u8], c: &Content) -> Vec<u8> {
    match c {
        Content::Keep => base.to_vec(),
        Content::Mutated(edits) => mutate(&String::from_utf8_lossy(base), edits),
        Content::Lines(lines) => lines
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .into_bytes(),
        Content::Bytes(b) => b.clone(),
        Content::AppendGarbage(g) => [base, g.as_slice()].concat(),
        Content::Rechained(edits) => {
            let edited = mutate(&String::from_utf8_lossy(base), edits);
            // Lines that are still JSON objects the format can hold (no fractions, no numbers
            // beyond 64 bits): what an attacker can re-chain.
            let records: Vec<serde_json::Map<String, serde_json::Value>> = edited
                .split(|&b| b == b'\n')
                .filter_map(|l| serde_json::from_slice(l).ok())
                .filter(|r| platform::records::canonical::encode_object(r).is_ok())
                .collect();
            lf::rechain(&records)
        }
    }
}

fn read_all(dir: &Path) -> Vec<Vec<u8>> {
    FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap_or_default())
        .collect()
}

/// verify never panics and reports per file; the writer agrees with it: a clean report opens
/// without repairs, a report of repairable problems only (a torn tail, a missing audit
/// record) opens with repairs, an open that succeeds leaves a ledger that verifies, and a
/// refusal modifies nothing. Readers refuse whatever is not clean (a torn tail set aside).
fn check_files(contents: &[Content; 3]) {
    let dir = temp_dir();
    for (i, c) in contents.iter().enumerate() {
        std::fs::write(dir.path().join(FILES[i]), render(&template()[i], c)).unwrap();
    }
    let report = ledger::verify(dir.path()).unwrap();
    for p in &report.problems {
        assert!(!p.message.is_empty() && p.line >= 1, "{p:?}");
    }
    let torn_only = report
        .problems
        .iter()
        .all(|p| p.message.contains("incomplete write"));
    assert_eq!(ledger::balances(dir.path()).is_ok(), torn_only);
    for s in Stream::ALL {
        let _ = ledger::for_each_line(dir.path(), s, |line| line.entry().map(drop));
    }
    let before = read_all(dir.path());
    match Ledger::open(dir.path()) {
        Ok((l, repairs)) => {
            drop(l);
            if report.ok() {
                assert!(
                    repairs.is_empty(),
                    "a clean ledger was repaired: {repairs:?}"
                );
            } else {
                assert!(
                    report.only_repairable() && !repairs.is_empty(),
                    "opened despite {:?}",
                    report.problems
                );
            }
            let after = ledger::verify(dir.path()).unwrap();
            assert!(after.ok(), "after open: {:?}", after.problems);
            // A repair only ever cuts a tail, or adds audit records after what was there.
            for (i, (b, a)) in before.iter().zip(read_all(dir.path())).enumerate() {
                if FILES[i] == "audit.jsonl" {
                    let kept = repairs
                        .iter()
                        .filter(|r| r.kind == ledger::RepairKind::TornTail)
                        .all(|r| !r.file.ends_with(FILES[i]));
                    assert!(!kept || a.starts_with(b), "a repair rewrote audit.jsonl");
                } else {
                    assert!(b.starts_with(&a), "a repair rewrote more than the tail");
                }
            }
        }
        Err(e) => {
            assert!(
                !report.ok(),
                "verify passed but the writer refused: {}",
                e.message
            );
            assert!(!e.message.is_empty());
            let after = read_all(dir.path());
            let sizes = |v: &[Vec<u8>]| v.iter().map(Vec::len).collect::<Vec<_>>();
            assert!(
                after == before,
                "a refusing writer modified the files: {:?} -> {:?} bytes; {}; verify said {:?}",
                sizes(&before),
                sizes(&after),
                e.message,
                report.problems
            );
        }
    }
}

/// Found by `any_bytes_in_the_ledger_are_reported_never_a_panic`: a torn tail in one file
/// was removed (unreported) before the writer stopped on damage in another.
#[test]
fn a_writer_that_stops_on_damage_removes_no_torn_tail_elsewhere() {
    check_files(&[
        Content::Keep,
        Content::AppendGarbage(b"{\"torn".to_vec()),
        Content::Lines(vec!["not a record".into(), "{}".into()]),
    ]);
}

const FILE_CASES: u32 = 384;

fn files() -> impl Strategy<Value = [Content; 3]> {
    (content(), content(), content()).prop_map(|(a, b, c)| [a, b, c])
}

fuzz_target!(
    any_bytes_in_the_ledger_are_reported_never_a_panic,
    ledger_files_timed,
    "ledger_verify_open",
    FILE_CASES,
    files(),
    check_files
);

#[derive(Debug, Clone)]
enum Damage {
    /// Cut a file at a byte offset (a fraction of its length, in 1/65536).
    Truncate(usize, u16),
    /// Flip one bit.
    Flip(usize, u16, u8),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (0..3usize, any::<u16>()).prop_map(|(f, p)| Damage::Truncate(f, p)),
        (0..3usize, any::<u16>(), 0..8u8).prop_map(|(f, p, b)| Damage::Flip(f, p, b)),
    ]
}

fn check_damage(d: &Damage) {
    let dir = temp_dir();
    for (i, f) in FILES.iter().enumerate() {
        std::fs::write(dir.path().join(f), &template()[i]).unwrap();
    }
    let (file, orig) = match d {
        Damage::Truncate(f, _) | Damage::Flip(f, _, _) => {
            (dir.path().join(FILES[*f]), &template()[*f])
        }
    };
    match d {
        Damage::Truncate(f, p) => {
            let cut = (*p as usize * orig.len()) / 65536;
            std::fs::write(&file, &orig[..cut]).unwrap();
            let before = read_all(dir.path());
            match Ledger::open(dir.path()) {
                // A cut that loses a run's run_started is damage: the billing records of that
                // run name a run evidence.jsonl no longer has, and no writer goes on (SPEC §7).
                // So is a cut of billing.jsonl that loses a TOPUP whose audit record stays (a
                // crash never does: the TOPUP is written before its audit record).
                Err(e) => {
                    match FILES[*f] {
                        "evidence.jsonl" => assert_has(&e.message, "run_started is not in"),
                        "billing.jsonl" => assert_has(&e.message, "holds no such record"),
                        other => panic!("cut of {other} at {cut}: {}", e.message),
                    }
                    assert_eq!(read_all(dir.path()), before, "a refusing writer wrote");
                }
                // Any other cut recovers to a valid prefix of whole records (SPEC §4), and a
                // lost audit record is added back from its TOPUP.
                Ok((l, _)) => {
                    drop(l);
                    assert!(ledger::verify(dir.path()).unwrap().ok());
                    let now = std::fs::read(&file).unwrap();
                    if FILES[*f] == "audit.jsonl" {
                        // Audit records stand alone: the cut is taken back to its last whole
                        // line, then the lost audit records are appended again.
                        let kept = &orig[..cut];
                        let whole =
                            kept.len() - kept.iter().rev().take_while(|&&b| b != b'\n').count();
                        assert!(now.starts_with(&kept[..whole]), "cut at {cut}");
                    } else {
                        assert!(orig.starts_with(&now), "cut at {cut}");
                        assert!(now.is_empty() || now.ends_with(b"\n"), "cut at {cut}");
                    }
                }
            }
        }
        Damage::Flip(_, p, bit) => {
            let mut bytes = orig.clone();
            let at = (*p as usize * (bytes.len() - 1)) / 65536;
            bytes[at] ^= 1 << bit;
            std::fs::write(&file, &bytes).unwrap();
            let report = ledger::verify(dir.path()).unwrap();
            assert!(!report.ok(), "bit {bit} of byte {at} flipped unnoticed");
            match Ledger::open(dir.path()) {
                Ok((l, repairs)) => {
                    drop(l);
                    assert!(
                        !repairs.is_empty(),
                        "opened a damaged ledger without a repair"
                    );
                    assert!(ledger::verify(dir.path()).unwrap().ok());
                }
                Err(e) => assert!(e.message.contains("damaged"), "{}", e.message),
            }
        }
    }
}

const DAMAGE_CASES: u32 = 512;

fuzz_target!(
    every_cut_recovers_and_every_flipped_bit_is_detected,
    damage_timed,
    "ledger_truncate_flip",
    DAMAGE_CASES,
    damage(),
    check_damage
);
