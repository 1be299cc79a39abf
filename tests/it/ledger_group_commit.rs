//! Group commit (SPEC §8) as a property: any mix of top-ups, SPENDs and replays posted by
//! several threads at once through one `SharedLedger` leaves a ledger that verifies, in which
//! every batch answered "written" is recorded exactly once, every refused one is absent, no
//! balance goes below zero at any line of billing.jsonl, and the writer's balances are the
//! file's.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::fuzz::config;
use crate::support::fx::temp_dir;
use crate::support::ledger_fixtures as lf;
use platform::ledger::{self, Ledger, Refusal, SharedLedger, Stream};
use platform::records::Payload;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const TENANTS: [&str; 2] = ["acme", "beta"];

#[derive(Debug, Clone)]
enum Op {
    Topup {
        tenant: usize,
        amount: i64,
    },
    Spend {
        tenant: usize,
        amount: i64,
    },
    /// Post operation `n` (of any thread) again: a no-op when it was written.
    Replay(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, 1..8i64).prop_map(|(tenant, amount)| Op::Topup { tenant, amount }),
        4 => (0..2usize, 1..8i64).prop_map(|(tenant, amount)| Op::Spend { tenant, amount }),
        1 => (0..64usize).prop_map(Op::Replay),
    ]
}

/// The payload of operation `n`: a replay is the payload it names (or a fresh top-up).
fn payload(ops: &[Op], n: usize) -> Payload {
    match &ops[n] {
        Op::Topup { tenant, amount } => lf::topup(TENANTS[*tenant], *amount, &format!("R{n}")),
        Op::Spend { tenant, amount } => Payload::new(lf::spend(
            TENANTS[*tenant],
            "wo",
            &format!("s{n}"),
            "d",
            *amount,
        )),
        Op::Replay(m) if *m < n => payload(ops, *m),
        Op::Replay(_) => lf::topup("acme", 1, &format!("R{n}")),
    }
}

/// Running balances over billing.jsonl in file order; Err at the first negative one.
fn balances_in_file_order(dir: &std::path::Path) -> Result<BTreeMap<String, i64>, String> {
    let text = std::fs::read_to_string(dir.join("billing.jsonl")).unwrap();
    let mut balances = BTreeMap::new();
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let b = balances
            .entry(r["tenant_id"].as_str().unwrap().to_string())
            .or_insert(0i64);
        *b += r["amount_credits"].as_i64().unwrap();
        if *b < 0 {
            return Err(format!("negative balance at {line}"));
        }
    }
    Ok(balances)
}

fn check(ops: &(usize, Vec<Op>)) {
    let (threads, ops) = (ops.0, &ops.1);
    let dir = temp_dir();
    let (mut l, _) = Ledger::open(dir.path()).unwrap();
    lf::start_runs(&mut l, &[("acme", "wo"), ("beta", "wo")]);
    let shared = SharedLedger::new(l);
    // Operation n goes to thread n % threads; each thread posts its own in order.
    let answers: Vec<(usize, Result<bool, Refusal>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let shared = &shared;
                s.spawn(move || {
                    (t..ops.len())
                        .step_by(threads)
                        .map(|n| {
                            let p = payload(ops, n);
                            (
                                n,
                                shared
                                    .append(Stream::Billing, None, vec![p])
                                    .map(|o| o.appended()),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let report = ledger::verify(dir.path()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let keys: Vec<String> = std::fs::read_to_string(dir.path().join("billing.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["idempotency_key"].as_str().unwrap().to_string()
        })
        .collect();
    let unique: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "a key written twice");
    for (n, answer) in &answers {
        let key = payload(ops, *n).idempotency_key;
        match answer {
            Ok(_) => assert!(
                unique.contains(&key),
                "{n}: answered written, not in the file"
            ),
            Err(Refusal::NotEnoughCredits(_)) => {
                // Refused now; a replay of the same SPEND may have been written.
                assert!(matches!(ops[*n], Op::Spend { .. } | Op::Replay(_)), "{n}")
            }
            Err(Refusal::Other(e)) => panic!("{n}: {e:?}"),
        }
    }
    let file = balances_in_file_order(dir.path()).unwrap();
    for t in TENANTS {
        let held = shared.with(|l| l.balance(t)).unwrap();
        assert_eq!(held, file.get(t).copied().unwrap_or(0), "{t}");
    }
}

proptest! {
    #![proptest_config(config(24))]
    #[test]
    fn concurrent_posts_through_one_shared_writer_keep_every_ledger_rule(
        ops in (1..6usize, prop::collection::vec(op(), 1..48))
    ) {
        check(&ops);
    }
}
