//! The harness's extension for the reliability suites (crash, concurrency, hostile input,
//! secrets): the crash fixture, ledger invariants, payloads normalised for comparison with a
//! control run, recovery passes and the cleanup of module processes a killed orchestrator left.

use super::fx::{Fx, Transcript};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The crash fixture: t1/a (two slow steps, a package, a local delivery: COMPLETED),
/// t1/b (a refunded failure, a skipped step and an independent one: PARTIAL) and t2/c
/// (one slow step, packaged and delivered). Every module is POSIX sh or built in, so a pass
/// with `delay_ms` 0 takes a few tens of milliseconds.
pub fn crash_fixture(delay_ms: u64) -> Fx {
    let fx = Fx::new();
    fx.add_tenant("t2");
    let slow = |id: &str, text: &str, extra: &str| {
        format!(
            "  - step_id: {id}\n    module_id: slow\n    kind: transform\n    inputs: {{text: \"{text}\", delay_ms: {delay_ms}{extra}}}\n    deliverables: [result]\n"
        )
    };
    let a = format!(
        "work_order_id: a\nartifacts_requested: true\nsteps:\n{}{}  - step_id: pack\n    module_id: package_std\n    kind: packaging\n    inputs:\n      bound_outputs:\n        - {{from_step: s1, output_id: out, as_path: one/out.txt}}\n        - {{from_step: s2, output_id: out, as_path: two/out.txt}}\n    deliverables: [package]\n  - step_id: deliver\n    module_id: deliver_local\n    kind: delivery\n    inputs:\n      package_zip: {{from_step: pack, output_id: package_zip}}\n      manifest_json: {{from_step: pack, output_id: manifest_json}}\n",
        slow("s1", "first", ""),
        slow("s2", "second", ""),
    );
    let b = format!(
        "work_order_id: b\nsteps:\n{}{}  - step_id: after\n    module_id: slow\n    kind: transform\n    inputs:\n      text: {{from_step: bad, from_file: out.txt, selector: text}}\n      delay_ms: {delay_ms}\n{}",
        slow("s1", "b-one", ""),
        slow("bad", "b-bad", ", fail: true"),
        slow("s2", "b-two", ""),
    );
    let c = format!(
        "work_order_id: c\nartifacts_requested: true\nsteps:\n{}  - step_id: pack\n    module_id: package_std\n    kind: packaging\n    inputs:\n      bound_outputs:\n        - {{from_step: s1, output_id: out, as_path: out.txt}}\n  - step_id: deliver\n    module_id: deliver_local\n    kind: delivery\n    inputs:\n      package_zip: {{from_step: pack, output_id: package_zip}}\n",
        slow("s1", "c-one", ""),
    );
    fx.workorder("a", &a);
    fx.workorder("b", &b);
    fx.workorder_for("t2", "c", &c);
    for (tenant, amount) in [("t1", 100), ("t2", 50)] {
        fx.fund(tenant, amount, "initial");
    }
    fx
}

/// Run `f` over `items` on `workers` threads (crash trials wait on fsync and child processes
/// more than on the CPU). Results come back in the order of `items`.
pub fn pool<T: Send, R: Send>(items: Vec<T>, workers: usize, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let queue = std::sync::Mutex::new(items.into_iter().enumerate().collect::<Vec<_>>());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                let next = queue.lock().unwrap().pop();
                let Some((i, item)) = next else { break };
                let r = f(item);
                results.lock().unwrap().push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

pub const TENANTS: &[&str] = &["t1", "t2"];

/// `--jobs` of the crash and concurrency suites' passes: more work orders at once than the
/// fixture has, so every interleaving SPEC §8 allows can happen (records of different work
/// orders interleave, group commits share writes).
pub const JOBS: &str = "4";

/// What a pass left behind, in a form that does not depend on where the fixture lives or
/// when records were written: the runs, balances and every record's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub runs: Value,
    pub balances: BTreeMap<String, i64>,
    /// Payloads (records without seq, recorded_at, prev_hash, hash), sorted.
    pub billing: Vec<String>,
    pub evidence: Vec<String>,
}

fn payloads(fx: &Fx, file: &str) -> Vec<String> {
    let roots = roots(fx.root());
    let mut out: Vec<String> = fx
        .records(file)
        .into_iter()
        .map(|mut r| {
            let m = r.as_object_mut().unwrap();
            for k in ["seq", "recorded_at", "prev_hash", "hash"] {
                m.remove(k);
            }
            let mut s = r.to_string();
            for root in &roots {
                s = s.replace(root.as_str(), "<ROOT>");
            }
            s
        })
        .collect();
    out.sort();
    out
}

/// The fixture root as written in records (as given and canonical).
fn roots(root: &Path) -> Vec<String> {
    let mut v = vec![root.display().to_string()];
    if let Ok(c) = root.canonicalize() {
        v.push(c.display().to_string());
    }
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    v
}

pub fn snapshot(fx: &Fx) -> Snapshot {
    Snapshot {
        runs: runs_in_order(fx.runs()),
        balances: balances_of(fx),
        billing: payloads(fx, "billing.jsonl"),
        evidence: payloads(fx, "evidence.jsonl"),
    }
}

/// `runs --json` in tenant, work order, run order: work orders run at once (SPEC §8)
/// interleave their records, so the ledger's order of runs is not part of the outcome, and
/// neither is when a run started (`started_at`).
pub fn runs_in_order(runs: Value) -> Value {
    let mut list = runs.as_array().cloned().unwrap_or_default();
    for run in &mut list {
        if let Some(obj) = run.as_object_mut() {
            obj.remove("started_at");
        }
    }
    list.sort_by_key(|r| {
        (
            r["tenant_id"].as_str().unwrap_or_default().to_string(),
            r["work_order_id"].as_str().unwrap_or_default().to_string(),
            r["run"].as_u64().unwrap_or_default(),
        )
    });
    Value::Array(list)
}

/// Balances summed from billing.jsonl (the control run checks them against `platform balance`).
pub fn balances_of(fx: &Fx) -> BTreeMap<String, i64> {
    let mut out: BTreeMap<String, i64> = TENANTS.iter().map(|t| (t.to_string(), 0)).collect();
    for r in fx.records("billing.jsonl") {
        let tenant = r["tenant_id"].as_str().unwrap_or_default().to_string();
        *out.entry(tenant).or_default() += r["amount_credits"].as_i64().unwrap_or_default();
    }
    out
}

/// Differences between two snapshots, for a readable failure.
pub fn diff(want: &Snapshot, got: &Snapshot) -> String {
    let mut out = String::new();
    if want.runs != got.runs {
        out.push_str(&format!(
            "runs:\n  want {}\n  got  {}\n",
            want.runs, got.runs
        ));
    }
    if want.balances != got.balances {
        out.push_str(&format!(
            "balances: want {:?}, got {:?}\n",
            want.balances, got.balances
        ));
    }
    for (name, w, g) in [
        ("billing", &want.billing, &got.billing),
        ("evidence", &want.evidence, &got.evidence),
    ] {
        let ws: BTreeSet<&String> = w.iter().collect();
        let gs: BTreeSet<&String> = g.iter().collect();
        for missing in ws.difference(&gs) {
            out.push_str(&format!("{name}: missing {missing}\n"));
        }
        for extra in gs.difference(&ws) {
            out.push_str(&format!("{name}: extra {extra}\n"));
        }
        if w.len() != g.len() {
            out.push_str(&format!("{name}: {} records, want {}\n", g.len(), w.len()));
        }
    }
    out
}

/// SPEC §4 invariants that hold after any crash, before or after recovery: no idempotency key
/// twice in a file, at most one SPEND per (run, step, attempt, deliverable), every REFUND
/// reverses one recorded SPEND in full, no balance below zero.
pub fn check_invariants(fx: &Fx) -> Result<(), String> {
    let mut problems = Vec::new();
    for file in ["billing.jsonl", "evidence.jsonl", "audit.jsonl"] {
        let mut seen = BTreeSet::new();
        for r in fx.records(file) {
            let key = r["idempotency_key"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if !seen.insert(key.clone()) {
                problems.push(format!("{file}: key {key} appears twice"));
            }
        }
    }
    let billing = fx.records("billing.jsonl");
    let mut charged = BTreeSet::new();
    let mut spends: BTreeMap<String, i64> = BTreeMap::new();
    let mut balances: BTreeMap<String, i64> = BTreeMap::new();
    for r in &billing {
        let tenant = r["tenant_id"].as_str().unwrap_or_default().to_string();
        let amount = r["amount_credits"].as_i64().unwrap_or_default();
        *balances.entry(tenant.clone()).or_default() += amount;
        if balances[&tenant] < 0 {
            problems.push(format!("balance of {tenant} went below zero"));
        }
        match r["type"].as_str() {
            Some("SPEND") => {
                let slot = format!(
                    "{}/{}/a{}/{}",
                    r["run_id"], r["step_id"], r["attempt"], r["deliverable_id"]
                );
                if !charged.insert(slot.clone()) {
                    problems.push(format!("charged twice: {slot}"));
                }
                spends.insert(
                    r["idempotency_key"].as_str().unwrap_or_default().into(),
                    amount,
                );
            }
            Some("REFUND") => {
                let of = r["refunds"].as_str().unwrap_or_default();
                match spends.get(of) {
                    Some(spent) if *spent == -amount => {}
                    Some(spent) => {
                        problems.push(format!("refund of {of}: {amount} for a spend of {spent}"))
                    }
                    None => problems.push(format!("refund of {of}, which is not an earlier SPEND")),
                }
            }
            _ => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// `integrity-validate` right after a crash: either clean, or only the torn tail that the next
/// writer removes (SPEC §4: a crash can leave only an incomplete last batch or a torn line).
/// Returns whether a torn tail was reported.
pub fn integrity_after_crash(fx: &Fx) -> Result<bool, String> {
    let out = fx.run(&["integrity-validate", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("integrity-validate printed no JSON ({e}): {}", out.text()))?;
    if v["ok"] == true && out.status.success() {
        return Ok(false);
    }
    let problems = v["problems"].as_array().cloned().unwrap_or_default();
    let torn_only = !problems.is_empty()
        && problems.iter().all(|p| {
            p["message"]
                .as_str()
                .is_some_and(|m| m.contains("incomplete write that the next writer removes"))
        });
    if torn_only && problems.len() == 1 {
        Ok(true)
    } else {
        Err(format!("integrity-validate after a crash: {}", out.text()))
    }
}

/// Run orchestrator passes until one runs nothing (everything up to date). Returns the number
/// of passes that ran something, and the notes (repairs) they reported.
pub fn recover(fx: &Fx) -> Result<(usize, Vec<String>), String> {
    let mut notes = Vec::new();
    for pass in 0..5 {
        let out = fx.run(&["orchestrator", "--json", "--jobs", JOBS]);
        let v: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("recovery pass {pass}: not JSON ({e}): {}", out.text()))?;
        if out.status.code().is_none() || out.status.code() == Some(2) {
            return Err(format!(
                "recovery pass {pass} did not finish: {}",
                out.text()
            ));
        }
        for n in v["notes"].as_array().into_iter().flatten() {
            notes.push(n.as_str().unwrap_or_default().to_string());
        }
        if v["runs"].as_array().is_none_or(|r| r.is_empty()) {
            return Ok((pass, notes));
        }
    }
    Err("still running work after 5 recovery passes".into())
}

/// Every process whose working directory lies under `root`: module processes that a killed
/// orchestrator left running (they have their own process group, so kill -9 of the
/// orchestrator does not reach them). Killing them too models a machine that went down.
pub fn kill_orphans(root: &Path) -> usize {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut killed = 0;
    // A module may be starting a child while we look: repeat until none is left.
    for _ in 0..20 {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if pid == std::process::id() as i32 {
                continue;
            }
            if let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) {
                if cwd.starts_with(&root) {
                    found.push(pid);
                }
            }
        }
        if found.is_empty() {
            break;
        }
        for pid in &found {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).output();
            killed += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    killed
}

/// Peak resident memory (VmHWM, KiB) of a running process so far.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Start the orchestrator, SIGKILL it after `delay` (if still running); whether it was killed.
pub fn kill_after(fx: &Fx, delay: Duration) -> bool {
    let mut child = fx
        .command()
        .args(["orchestrator", "--jobs", JOBS])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if t0.elapsed() >= delay {
            break;
        }
        std::thread::sleep(Duration::from_millis(1).min(delay.saturating_sub(t0.elapsed())));
    }
    // std's Child::kill sends SIGKILL on Unix.
    let killed = child.kill().is_ok();
    let status = child.wait().unwrap();
    killed && status.code().is_none()
}

/// Where a crash left the work, read from the ledger: which step had started without an
/// outcome, or which record came last.
pub fn landed(fx: &Fx) -> String {
    let ev = fx.records("evidence.jsonl");
    let mut open: BTreeMap<String, String> = BTreeMap::new();
    for r in &ev {
        let key = format!("{}/{}", r["run_id"], r["step_id"]);
        match r["type"].as_str() {
            Some("step_started") => {
                open.insert(key, r["module_id"].as_str().unwrap_or_default().to_string());
            }
            Some("step_outcome") => {
                open.remove(&key);
            }
            _ => {}
        }
    }
    if let Some(module) = open.values().next() {
        return format!("during a {module} step");
    }
    let started: BTreeSet<String> = ev
        .iter()
        .filter(|r| r["type"] == "step_started")
        .map(|r| format!("{}/{}/{}", r["run_id"], r["step_id"], r["attempt"]))
        .collect();
    let charged_only = fx.records("billing.jsonl").iter().any(|r| {
        r["type"] == "SPEND"
            && !started.contains(&format!(
                "{}/{}/{}",
                r["run_id"], r["step_id"], r["attempt"]
            ))
    });
    if charged_only {
        return "after a charge, before its step started".into();
    }
    match ev.last().and_then(|r| r["type"].as_str()) {
        None => "before the first run".into(),
        Some("evidence_bundle") if ev.iter().filter(|r| r["type"] == "run_ended").count() == 3 => {
            "after the last run".into()
        }
        Some("evidence_bundle") => "between runs".into(),
        Some("step_outcome" | "evidence_item" | "delivery_receipt") => "between steps".into(),
        Some(other) => format!("after {other}"),
    }
}
