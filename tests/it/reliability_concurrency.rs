//! Concurrency (SPEC §3 lock, §4 "concurrent processes lose and duplicate nothing"): several
//! orchestrators and many top-ups at once on one billing-state directory end with exact
//! balances and no lost or duplicated record; a second orchestrator waits for the lock, or
//! with `--lock-timeout 0|1` refuses with a message naming the lock, and never corrupts.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::fx::{Fx, Topup, Transcript};
use crate::support::pause::run_paused;
use crate::support::reliability::*;

use serde_json::Value;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn spawn<S: AsRef<std::ffi::OsStr>>(fx: &Fx, args: &[S]) -> Child {
    fx.command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn topup_args(tenant: &str, amount: i64, reference: &str) -> Vec<String> {
    Topup::new(tenant, &amount.to_string(), reference).args()
}

/// A control pass over the fixture: what one orchestrator alone leaves.
fn control(template: &Fx) -> Snapshot {
    let fx = template.fork();
    fx.run(&["orchestrator", "--jobs", JOBS]).expect_ok();
    snapshot(&fx)
}

#[test]
fn orchestrators_and_top_ups_at_once_lose_and_duplicate_nothing() {
    let template = crash_fixture(40);
    let want = control(&template);
    let rounds = 3;
    let mut processes = 0;
    for round in 0..rounds {
        let fx = template.fork();
        let mut orchestrators = Vec::new();
        let mut topups = Vec::new();
        let mut extra = std::collections::BTreeMap::<&str, i64>::new();
        for i in 0..3 {
            orchestrators.push(spawn(
                &fx,
                &[
                    "orchestrator",
                    "--json",
                    "--lock-timeout",
                    "120",
                    "--jobs",
                    JOBS,
                ],
            ));
            // Top-ups land before, during and after the runs; each reference is posted twice.
            for tenant in ["t1", "t2"] {
                for copy in 0..2 {
                    let reference = format!("r{round}-{i}");
                    topups.push(spawn(&fx, &topup_args(tenant, 1 + i as i64, &reference)));
                    if copy == 0 {
                        *extra.entry(tenant).or_default() += 1 + i as i64;
                    }
                }
            }
        }
        let mut ran = 0;
        let mut up_to_date = 0;
        for child in orchestrators {
            let out = child.wait_with_output().unwrap();
            processes += 1;
            assert_eq!(out.status.code(), Some(0), "round {round}: {}", out.text());
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            ran += v["runs"].as_array().unwrap().len();
            up_to_date += v["up_to_date"].as_array().unwrap().len();
        }
        for child in topups {
            let out = child.wait_with_output().unwrap();
            processes += 1;
            assert!(out.status.success(), "round {round}: {}", out.text());
        }
        assert_eq!(ran, 3, "each work order ran once in all");
        assert_eq!(
            up_to_date, 6,
            "the two that waited found everything up to date"
        );
        fx.integrity().unwrap();
        check_invariants(&fx).unwrap();
        let got = snapshot(&fx);
        assert_eq!(got.runs, want.runs);
        for (tenant, credits) in &want.balances {
            let expected = credits + extra[tenant.as_str()];
            assert_eq!(got.balances[tenant], expected, "round {round}: {tenant}");
            assert_eq!(fx.balance_of(tenant), expected, "round {round}: {tenant}");
        }
        // Everything but the extra top-ups is exactly what one orchestrator alone wrote.
        let not_extra = |v: &Vec<String>| -> Vec<String> {
            v.iter()
                .filter(|p| {
                    !p.contains(&format!("\"topup/t1/r{round}-"))
                        && !p.contains(&format!("\"topup/t2/r{round}-"))
                })
                .cloned()
                .collect()
        };
        assert_eq!(not_extra(&got.billing), want.billing, "round {round}");
        assert_eq!(
            got.billing.len(),
            want.billing.len() + 6,
            "round {round}: one TOPUP per reference"
        );
        assert_eq!(got.evidence, want.evidence, "round {round}");
        let audits = fx.records("audit.jsonl").len();
        assert_eq!(audits, 2 + 6, "round {round}: one audit record per top-up");
    }
    eprintln!("reliability: {rounds} rounds of 3 orchestrators and 12 top-ups at once ({processes} processes): exact balances, nothing lost or duplicated");
}

/// Readers take no writer lock: each measures the three files under a shared hold of the
/// ledger lock, then reads up to there, so the rules between files hold in what it reads. An
/// `admin-topup` (its TOPUP, then its audit record) while a reader is between billing.jsonl
/// and audit.jsonl is not half seen. Until 2026-12-04 the reader took the audit record of a
/// TOPUP it had not read for a removed record: integrity-validate FAILED and a pass refused
/// the ledger as damaged (`orchestrators_and_top_ups_at_once_...` saw it now and then).
#[test]
fn a_top_up_while_a_reader_is_between_files_is_read_whole_or_not_at_all() {
    let fx = Fx::new();
    fx.topup(10, "r1");
    let readers: [&[&str]; 4] = [
        &["integrity-validate"],
        &["balance", "--tenant-id", "t1", "--json"],
        &["orchestrator", "--dry-run"],
        &["orchestrator", "--json"],
    ];
    for (n, args) in readers.iter().enumerate() {
        let before = fx.balance();
        let out = run_paused(&fx, args, "ledger_reader_between_files@1", || {
            fx.topup(5, &format!("mid-{n}"));
        });
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", out.text());
        if args[0] == "balance" {
            // As of the cut: the top-up came after it.
            assert_eq!(out.json()["balance_credits"], before, "{}", out.text());
        }
        assert_eq!(fx.balance(), before + 5);
    }
    fx.run(&["integrity-validate"]).expect_ok();
}

/// A reader waits at most 10 s for a writer's hold of the ledger lock (a `state pull` or
/// `push` holds it through its transfer), then reads without it and says so. A command that
/// reads twice waits once: until 2026-12-04 `integrity-validate` with a runtime directory
/// waited 10 s for its check and 10 s more for the runtime comparison.
#[test]
fn a_reader_behind_a_long_writer_hold_waits_once_and_says_so() {
    let fx = Fx::new();
    fx.topup(10, "r1");
    std::fs::create_dir_all(fx.path("runtime/runs")).unwrap();
    let state = fx.path(".billing-state");
    let lock = platform::ledger::lock::DirLock::acquire(
        &state,
        platform::ledger::lock::LEDGER_LOCK,
        Duration::ZERO,
        |_| {},
    )
    .unwrap();
    let out = fx.run(&["integrity-validate", "--runtime-dir", "runtime"]);
    drop(lock);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let said = "for over 10 s: reading the ledger without waiting for it";
    assert_eq!(out.stderr_text().matches(said).count(), 1, "{}", out.text());
}

#[test]
fn one_reference_with_two_amounts_at_once_is_one_top_up_and_one_conflict() {
    for round in 0..5 {
        let fx = Fx::new();
        let a = topup_args("t1", 10, "same");
        let b = topup_args("t1", 20, "same");
        let ca = spawn(&fx, &a);
        let cb = spawn(&fx, &b);
        let oa = ca.wait_with_output().unwrap();
        let ob = cb.wait_with_output().unwrap();
        let codes = [oa.status.code(), ob.status.code()];
        assert!(
            codes.contains(&Some(0)) && codes.contains(&Some(1)),
            "round {round}: {}\n{}",
            oa.text(),
            ob.text()
        );
        let loser = if oa.status.code() == Some(1) {
            &oa
        } else {
            &ob
        };
        assert!(
            String::from_utf8_lossy(&loser.stderr).contains("conflict"),
            "{}",
            loser.text()
        );
        let bal = fx.balance_of("t1");
        assert!(bal == 10 || bal == 20, "{bal}");
        assert_eq!(fx.records("billing.jsonl").len(), 1);
        fx.integrity().unwrap();
    }
}

/// Wait until the running orchestrator has started its first run (it holds the lock then).
fn wait_for_first_run(fx: &Fx) {
    let t0 = Instant::now();
    while !fx
        .records("evidence.jsonl")
        .iter()
        .any(|r| r["type"] == "run_started")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the first orchestrator never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_second_orchestrator_that_will_not_wait_fails_naming_the_lock_and_corrupts_nothing() {
    // Slow enough that the first pass still holds the lock after the second waited 1 s,
    // with its work orders running at once (--jobs).
    let template = crash_fixture(900);
    let want = control(&template);
    for timeout in ["0", "1"] {
        let fx = template.fork();
        let first = spawn(&fx, &["orchestrator", "--json", "--jobs", JOBS]);
        let pid = first.id();
        wait_for_first_run(&fx);
        let t0 = Instant::now();
        let out = fx.run(&["orchestrator", "--json", "--lock-timeout", timeout]);
        let waited = t0.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        out.expect_code(1);
        assert!(
            stderr.contains(".orchestrator.lock"),
            "names the lock: {stderr}"
        );
        assert!(
            stderr.contains(&format!("pid {pid}")),
            "names the holder: {stderr}"
        );
        assert!(stderr.contains("help:"), "says what to do: {stderr}");
        if timeout == "1" {
            assert!(waited >= Duration::from_millis(950), "waited {waited:?}");
        }
        let first = first.wait_with_output().unwrap();
        first.expect_code(0);
        fx.integrity().unwrap();
        check_invariants(&fx).unwrap();
        let got = snapshot(&fx);
        assert!(
            got == want,
            "--lock-timeout {timeout}:\n{}",
            diff(&want, &got)
        );
    }
}
