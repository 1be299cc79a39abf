//! Sixteen processes appending to one billing-state directory at once lose and duplicate nothing.
// Tests fail by panicking; unwrap() and expect() are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::fx::temp_dir;
use crate::support::ledger_fixtures as fixtures;

use crate::support::fx::Topup;
use crate::support::{Fx, Transcript};
use fixtures::*;
use platform::ledger::{self, Ledger, Stream};
use platform::records::billing::RUN_DELIVERABLE;
use platform::records::{Payload, RecordType};
use std::process::Command;

const PROCESSES: usize = 16;
const ROUNDS: usize = 20;

/// Not a test on its own: the body of each child process of
/// `sixteen_processes_lose_and_duplicate_nothing`, which runs it with `--ignored --exact`
/// (ignored, so an ordinary run does not count it as a test that passed).
#[test]
#[ignore = "the body of the child processes of sixteen_processes_lose_and_duplicate_nothing"]
fn child_writer() {
    let (Ok(dir), Ok(id)) = (
        std::env::var("LEDGER_CHILD_DIR"),
        std::env::var("LEDGER_CHILD_ID"),
    ) else {
        panic!("run only by sixteen_processes_lose_and_duplicate_nothing (LEDGER_CHILD_DIR, LEDGER_CHILD_ID)");
    };
    let id: usize = id.parse().unwrap();
    let tenant = format!("t{}", id % 4);
    let (mut l, _) = Ledger::open(dir.as_ref()).unwrap();
    // Four processes share each tenant's run: its run_started is recorded once.
    start_runs(&mut l, &[(&tenant, "wo")]);
    for i in 0..ROUNDS {
        l.append(
            Stream::Billing,
            vec![topup(&tenant, 3, &format!("c{id}-{i}"))],
        )
        .unwrap();
        // Every process posts the same shared top-up: recorded once.
        l.append(Stream::Billing, vec![topup("shared", 1, &format!("s{i}"))])
            .unwrap();
        let step = format!("p{id}-s{i}");
        let run = spend(&tenant, "wo", &step, RUN_DELIVERABLE, 1);
        let zip = spend(&tenant, "wo", &step, "zip", 1);
        l.append_batch(
            Stream::Billing,
            &run.batch_id(),
            vec![Payload::new(run), Payload::new(zip)],
        )
        .unwrap();
        if i % 5 == 0 {
            // A fresh writer now and then, as separate commands would be.
            l = Ledger::open(dir.as_ref()).unwrap().0;
        }
    }
}

#[test]
fn sixteen_processes_lose_and_duplicate_nothing() {
    let dir = temp_dir();
    Ledger::open(dir.path()).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|id| {
            Command::new(&exe)
                .args([
                    "ledger_concurrency::child_writer",
                    "--ignored",
                    "--exact",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env("LEDGER_CHILD_DIR", dir.path())
                .env("LEDGER_CHILD_ID", id.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let report = ledger::verify(dir.path()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let mut topups = 0;
    let mut spends = 0;
    let mut keys = std::collections::HashSet::new();
    ledger::for_each_line(dir.path(), Stream::Billing, |line| {
        let entry = line.entry()?;
        assert!(keys.insert(entry.envelope.idempotency_key));
        match line.record_type {
            RecordType::Topup => topups += 1,
            RecordType::Spend => spends += 1,
            t => panic!("{t:?}"),
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(topups, PROCESSES * ROUNDS + ROUNDS);
    assert_eq!(spends, PROCESSES * ROUNDS * 2);
    let balances = ledger::balances(dir.path()).unwrap();
    for t in 0..4 {
        // Four processes per tenant, each topping up 3 and spending 2 per round.
        assert_eq!(balances[&format!("t{t}")], (PROCESSES / 4 * ROUNDS) as i64);
    }
    assert_eq!(balances["shared"], ROUNDS as i64);
    // Every top-up has its one audit record, however many processes posted it.
    assert_eq!(lines(&dir.path().join("audit.jsonl")).len(), topups);
}

#[test]
fn sixteen_admin_topups_at_once() {
    let fx = Fx::empty();
    fx.write("tenants/acme/tenant.yml", "tenant_id: acme\n");
    fx.write(
        "config/iam.yml",
        "roles:\n  admin: [billing.topup]\nactors:\n  - id: ops\n    roles: [admin]\n",
    );
    let state = fx.path("state");
    let children: Vec<_> = (0..PROCESSES)
        .map(|i| {
            // Pairs of processes post the same reference: one top-up each pair.
            let reference = format!("INV-{}", i / 2);
            let topup = Topup {
                method: "bank",
                ..Topup::new("acme", "10", &reference).by("ops")
            };
            fx.command()
                .args(topup.args())
                .arg("--billing-state-dir")
                .arg(&state)
                .output_async()
        })
        .collect();
    for c in children {
        c.wait_with_output().unwrap().expect_ok();
    }
    assert!(ledger::verify(&state).unwrap().ok());
    assert_eq!(lines(&state.join("billing.jsonl")).len(), PROCESSES / 2);
    assert_eq!(lines(&state.join("audit.jsonl")).len(), PROCESSES / 2);
    assert_eq!(
        ledger::balance(&state, "acme").unwrap(),
        10 * (PROCESSES / 2) as i64
    );
}

trait SpawnCaptured {
    fn output_async(&mut self) -> std::process::Child;
}

impl SpawnCaptured for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}
