//! Crash recovery (SPEC §4) under a real `kill -9` at many moments of a pass and at every
//! failpoint hit: after each crash the ledger verifies (or shows only the torn tail that the
//! next writer removes), no key or charge appears twice, and recovery passes end every work
//! order exactly as an uninterrupted control run did — same runs, balances and payloads.
//!
//! Scale with RELIABILITY_KILL_POINTS (default 20). Figures go to stderr (`--nocapture`) and
//! into docs/reliability.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::fx::{Fx, Transcript};
use crate::support::reliability::*;

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An uninterrupted pass over a copy of the crash fixture, and what it left.
fn control(template: &Fx) -> (Snapshot, Duration) {
    let fx = template.fork();
    let t0 = Instant::now();
    let out = fx.run(&["orchestrator", "--json", "--jobs", JOBS]);
    let took = t0.elapsed();
    out.expect_ok();
    let want = snapshot(&fx);
    let statuses: Vec<(&str, &str)> = want
        .runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["work_order_id"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![("a", "COMPLETED"), ("b", "PARTIAL"), ("c", "COMPLETED")]
    );
    assert_eq!(
        recover(&fx).unwrap().0,
        0,
        "the control run leaves nothing to do"
    );
    for (tenant, credits) in &want.balances {
        assert_eq!(
            fx.balance_of(tenant),
            *credits,
            "platform balance agrees with the records"
        );
    }
    check_invariants(&fx).unwrap();
    (want, took)
}

/// After a crash: verify, check invariants, recover, and compare with the control run.
/// Returns whether the crash left a torn tail.
fn recover_and_compare(fx: &Fx, want: &Snapshot, what: &str) -> bool {
    let torn = integrity_after_crash(fx).unwrap_or_else(|e| panic!("{what}: {e}"));
    check_invariants(fx).unwrap_or_else(|e| panic!("{what}, after the crash: {e}"));
    let (_, notes) = recover(fx).unwrap_or_else(|e| panic!("{what}: {e}"));
    if torn {
        assert!(
            notes.iter().any(|n| n.starts_with("repaired")),
            "{what}: the torn tail was removed without a report: {notes:?}"
        );
    }
    fx.integrity()
        .unwrap_or_else(|e| panic!("{what}, after recovery: {e}"));
    check_invariants(fx).unwrap_or_else(|e| panic!("{what}, after recovery: {e}"));
    let got = snapshot(fx);
    assert!(
        got == *want,
        "{what}: recovery differs from the control run:\n{}",
        diff(want, &got)
    );
    torn
}

#[test]
fn kill_minus_nine_at_many_moments_then_recovery_matches_the_control_run() {
    let points = env_usize("RELIABILITY_KILL_POINTS", 20).max(1);
    let template = crash_fixture(120);
    let (want, pass) = control(&template);
    // Two at a time: a trial mostly waits (on the module's sleep, fsync, child processes).
    let trials = pool((0..points).collect(), 2, |i| {
        let fx = template.fork();
        let at = pass * (2 * i as u32 + 1) / (2 * points as u32);
        let what = format!("kill -9 at {at:?} (point {i})");
        let mut landed_at = Vec::new();
        if kill_after(&fx, at) {
            landed_at.push(landed(&fx));
        }
        let mut orphans = kill_orphans(fx.root());
        if i % 2 == 1 {
            // A second crash, during the recovery pass.
            integrity_after_crash(&fx).unwrap_or_else(|e| panic!("{what}: {e}"));
            check_invariants(&fx).unwrap_or_else(|e| panic!("{what}: {e}"));
            if kill_after(&fx, at / 2 + Duration::from_millis(30)) {
                landed_at.push(format!("(recovery) {}", landed(&fx)));
            }
            orphans += kill_orphans(fx.root());
        }
        recover_and_compare(&fx, &want, &what);
        (landed_at, orphans)
    });
    let mut kills = 0;
    let mut orphans = 0;
    let mut landed_at: BTreeMap<String, usize> = BTreeMap::new();
    for (places, o) in trials {
        kills += places.len();
        orphans += o;
        for p in places {
            *landed_at.entry(p).or_default() += 1;
        }
    }
    eprintln!(
        "reliability: {kills} kill -9 survived ({points} kill points over a {:.2} s pass, half of them killed again during recovery; {orphans} orphaned module processes killed too)",
        pass.as_secs_f64()
    );
    for (k, n) in &landed_at {
        eprintln!("reliability:   {n:3} landed {k}");
    }
    assert!(
        kills >= points / 2,
        "most kill points should hit a running pass: {kills} of {points}"
    );
}

/// Every failpoint of execute.rs, at each of its hits in a pass.
const ORCHESTRATOR_FAILPOINTS: &[&str] = &[
    "after_run_started",
    "before_spend",
    "after_spend",
    "after_step_started",
    "after_module",
    "after_step_outcome",
    "before_refund",
    "after_refund",
    "before_run_ended",
    "after_run_ended",
];

/// The ledger writer's: before a batch is written, half-written (torn), written and flushed.
const LEDGER_FAILPOINTS: &[&str] = &[
    "ledger_before_write",
    "ledger_torn_write",
    "ledger_after_write",
];

/// How often a pass over the crash fixture reaches each failpoint, counted from the records
/// the control pass wrote (one ledger write per batch, or per record outside a batch).
fn expected_hits(fx: &Fx, template: &Fx) -> BTreeMap<String, usize> {
    let mut writes = 0;
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    let mut batches = std::collections::BTreeSet::new();
    for file in ["billing.jsonl", "evidence.jsonl", "audit.jsonl"] {
        let before = template.records(file).len();
        for r in fx.records(file).into_iter().skip(before) {
            let ty = r["type"].as_str().unwrap().to_string();
            let write = match r["batch"].as_str() {
                Some(b) => batches.insert(b.to_string()),
                None => true,
            };
            if write {
                writes += 1;
                *by_type.entry(format!("{ty} write")).or_default() += 1;
            }
            *by_type.entry(ty).or_default() += 1;
        }
    }
    let writes = writes - ends_sharing_a_write(fx, template);
    let n = |k: &str| by_type.get(k).copied().unwrap_or(0);
    let mut hits = BTreeMap::new();
    for (name, count) in [
        ("after_run_started", n("run_started")),
        ("before_spend", n("SPEND write")),
        ("after_spend", n("SPEND write")),
        ("after_step_started", n("step_started")),
        ("after_module", n("step_started")),
        ("after_step_outcome", n("step_outcome")),
        ("before_refund", n("REFUND write")),
        ("after_refund", n("REFUND write")),
        ("before_run_ended", n("run_ended")),
        ("after_run_ended", n("run_ended")),
        ("ledger_before_write", writes),
        ("ledger_torn_write", writes),
        ("ledger_after_write", writes),
    ] {
        hits.insert(name.to_string(), count);
    }
    hits
}

/// Runs whose end shared one write of evidence.jsonl with their last outcome: a run's end
/// is queued behind that outcome (orchestrator/execute.rs), so with one work order at a
/// time both go in one group unless a refund of that outcome was written between them (the
/// fixture has no metered usage, whose charge would do the same).
fn ends_sharing_a_write(fx: &Fx, template: &Fx) -> usize {
    let new = |file: &str| {
        let before = template.records(file).len();
        fx.records(file)
            .into_iter()
            .skip(before)
            .collect::<Vec<_>>()
    };
    let text = |r: &Value, k: &str| r[k].as_str().unwrap_or_default().to_string();
    let of_step = |r: &Value| (text(r, "run_id"), text(r, "step_id"), r["attempt"].as_u64());
    let refunded: std::collections::BTreeSet<_> = new("billing.jsonl")
        .iter()
        .filter(|r| r["type"] == "REFUND")
        .map(of_step)
        .collect();
    let mut last_outcome = BTreeMap::new();
    let mut shared = 0;
    for r in new("evidence.jsonl") {
        match r["type"].as_str() {
            Some("step_outcome") => {
                last_outcome.insert(text(&r, "run_id"), of_step(&r));
            }
            Some("run_ended")
                if last_outcome
                    .get(&text(&r, "run_id"))
                    .is_some_and(|o| !refunded.contains(o)) =>
            {
                shared += 1;
            }
            _ => {}
        }
    }
    shared
}

/// Crash at `name@1` ... `name@N` for each of the N hits a pass makes, each on its own copy of
/// the fixture, then check that `name@N+1` is not reached. Returns the crashes per name.
/// One work order at a time: with more, group commits share writes as timing decides, so
/// the N-th hit is not the same place twice (the kill -9 trials cover `--jobs` > 1).
fn every_hit_of(names: &[&str]) -> BTreeMap<String, usize> {
    const JOBS: &str = "1";
    let template = crash_fixture(0);
    let (want, _) = control(&template);
    let hits = {
        let fx = template.fork();
        fx.run(&["orchestrator", "--jobs", JOBS]).expect_ok();
        expected_hits(&fx, &template)
    };
    let mut jobs = Vec::new();
    for name in names {
        let count = hits[*name];
        assert!(count > 0, "{name}: the fixture never reaches it");
        jobs.extend((1..=count + 1).map(|n| (*name, n, n == count + 1)));
    }
    let results = pool(jobs, 3, |(name, n, beyond)| {
        let fx = template.fork();
        let armed = format!("{name}@{n}");
        let out = fx.run_env(
            &["orchestrator", "--jobs", JOBS],
            &[("PLATFORM_FAILPOINT", &armed)],
        );
        if beyond {
            assert!(
                out.status.code().is_some(),
                "{armed}: more hits than the records show: {}",
                out.text()
            );
            return 0;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code().is_none() && stderr.contains(&format!("failpoint {name}: aborting")),
            "{armed}: {}",
            out.text()
        );
        kill_orphans(fx.root());
        let torn = recover_and_compare(&fx, &want, &armed);
        assert_eq!(
            torn,
            name == "ledger_torn_write",
            "{armed}: torn tail expected only after a torn write"
        );
        1
    });
    let mut done = BTreeMap::new();
    for name in names {
        done.insert(name.to_string(), hits[*name]);
    }
    assert_eq!(results.iter().sum::<usize>(), done.values().sum::<usize>());
    done
}

#[test]
fn a_crash_at_every_orchestrator_failpoint_recovers_to_the_control_run() {
    let hits = every_hit_of(ORCHESTRATOR_FAILPOINTS);
    let total: usize = hits.values().sum();
    eprintln!("reliability: {total} failpoint crashes in the orchestrator survived: {hits:?}");
    assert!(hits["after_step_started"] >= 9 && hits["before_refund"] >= 1);
}

#[test]
fn a_crash_around_every_ledger_write_recovers_to_the_control_run() {
    let hits = every_hit_of(LEDGER_FAILPOINTS);
    let total: usize = hits.values().sum();
    eprintln!("reliability: {total} failpoint crashes in the ledger writer survived (torn writes included): {hits:?}");
    // Every write of the pass was torn once, and each was repaired.
    assert_eq!(hits["ledger_torn_write"], hits["ledger_before_write"]);
    assert_eq!(hits["ledger_after_write"], hits["ledger_before_write"]);
}

#[test]
fn a_torn_top_up_is_removed_and_reported_and_its_retry_posts_it_once() {
    let fx = Fx::new();
    fx.topup(10, "first");
    let out = fx
        .topup_cmd("25", "second")
        .env("PLATFORM_FAILPOINT", "ledger_torn_write")
        .output()
        .unwrap();
    assert!(out.status.code().is_none(), "{}", out.text());
    assert!(
        integrity_after_crash(&fx).unwrap(),
        "a torn tail is reported"
    );
    // Readers report and never modify: the balance ignores the torn tail.
    assert_eq!(fx.balance(), 10);
    let retry = fx.topup_as("t1", 25, "second", "tester");
    retry.expect_ok();
    let said = String::from_utf8_lossy(&retry.stderr).to_string()
        + &String::from_utf8_lossy(&retry.stdout);
    assert!(
        said.contains("repaired"),
        "the writer reports the repair: {said}"
    );
    fx.integrity().unwrap();
    check_invariants(&fx).unwrap();
    assert_eq!(fx.balance(), 35);
    assert_eq!(fx.records("billing.jsonl").len(), 2);
}
