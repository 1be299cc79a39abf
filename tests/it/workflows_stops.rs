//! Orchestrator passes stopped mid-way on a (stand-in) runner — a step past its time, a run a person cancels, a shard that stops with an error — keep what they recorded: it is uploaded, merged and pushed, and reported for what it is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::check::assert_has;
use crate::support::fx::crate_root;
use crate::support::workflow_runner::{Interrupt, Runner, Stop};
use crate::workflows_sim::{must, orchestrator_inputs, seed_credits, skipped};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// globex gets a second work order, `stuck`, whose module never ends on its own (1 credit to
/// start it); its plan may run it.
fn add_a_stuck_work_order(r: &Runner) {
    let repo = r.root.path().join("repo");
    let module = repo.join("modules/stuck");
    std::fs::create_dir_all(&module).unwrap();
    std::fs::write(
        module.join("module.yml"),
        "module_id: stuck\nversion: \"1.0.0\"\nkind: transform\nrunner:\n  command: [\"./run.py\"]\noutputs:\n  - {id: out_txt, type: file, path: out.txt}\npricing:\n  run_credits: 1\ntimeout_seconds: 3600\n",
    )
    .unwrap();
    std::fs::write(
        module.join("run.py"),
        "#!/usr/bin/env python3\nimport time\ntime.sleep(600)\n",
    )
    .unwrap();
    std::fs::set_permissions(
        module.join("run.py"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let catalog = repo.join("config/catalog.yml");
    let text = std::fs::read_to_string(&catalog).unwrap();
    let text = text.replacen("  basic:\n", "  basic:\n    - stuck\n", 1);
    std::fs::write(&catalog, text).unwrap();
    std::fs::write(
        repo.join("tenants/globex/workorders/stuck.yml"),
        "work_order_id: stuck\nsteps:\n  - step_id: wait\n    module_id: stuck\n    kind: transform\n",
    )
    .unwrap();
}

/// True once the ledger in `dir` (of a job's workspace) records `ended` ended runs and the
/// stuck work order's step has started: what the pass did before it got stuck is recorded.
fn stuck_after(dir: &'static str, ended: usize) -> Box<dyn Fn(&Path) -> bool> {
    Box::new(move |ws| {
        let text = std::fs::read_to_string(ws.join(dir).join("evidence.jsonl")).unwrap_or_default();
        let records: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let count = |t: &str| records.iter().filter(|r| r["type"] == t).count();
        let stuck = records
            .iter()
            .any(|r| r["type"] == "step_started" && r["work_order_id"] == "stuck");
        count("run_ended") >= ended && stuck
    })
}

/// Shard 2 of 3 (globex and initech) stops while globex's `stuck` runs, after globex's
/// memo-pack and initech's tps ended.
fn stop_shard_2(r: &Runner, by: Stop) {
    *r.interrupt.borrow_mut() = Some(Interrupt {
        job: "shard",
        shard: Some("2"),
        step: "orchestrator",
        when: stuck_after("shard-2", 2),
        by,
    });
}

/// The next scheduled run, once the stuck work order is gone: what the stopped shard
/// recorded is up to date (memo-pack does not run, nor charge, again) and the stuck run is
/// closed as superseded, its credit refunded.
fn next_run_finds_the_stopped_shards_work_recorded(r: &mut Runner, run_id: u64) {
    let repo = r.root.path().join("repo");
    std::fs::remove_file(repo.join("tenants/globex/workorders/stuck.yml")).unwrap();
    r.start_run("schedule", run_id, &[]);
    let res = r.run_workflow("orchestrator.yml");
    must(&res, "shard", true);
    assert_eq!(
        r.balance("globex"),
        100 - 5,
        "memo-pack ran and charged again"
    );
    assert_eq!(r.balance("acme"), 100 - 13);
    r.platform_on_remote(&["integrity-validate"]);
}

/// A shard whose work runs past its time (a module that hangs). GitHub cancels a job that
/// reaches its `timeout-minutes`, and its `!cancelled()` steps are skipped: until 2026-12-03
/// the shard uploaded no segment, so what it had charged and delivered (globex's memo-pack)
/// was never merged and ran, and was delivered, again on the next run. The orchestrator step
/// now has its own `timeout-minutes`, below the job's: the step fails, and the segment is
/// cut, uploaded and merged ("crashed or stopped").
#[test]
fn a_shard_that_runs_past_its_time_has_its_records_merged() {
    let mut r = Runner::new();
    seed_credits(&mut r);
    add_a_stuck_work_order(&r);
    r.start_run("workflow_dispatch", 100, &orchestrator_inputs(1.0, 2.0));
    stop_shard_2(&r, Stop::Timeout);
    let res = r.run_workflow("orchestrator.yml");
    assert_has(&res["shard"].log, "The action has timed out");
    must(&res, "shard", false);
    let merge = &res["merge"].log;
    must(&res, "merge", false);
    assert!(!merge.contains("no ledger from shard"), "{merge}");
    assert_has(merge, "shard(s) 2 crashed or stopped");
    assert_eq!(
        r.balance("globex"),
        100 - 5 - 1,
        "memo-pack's charges and stuck's run credit were not merged"
    );
    assert_eq!(r.balance("acme"), 100 - 13);
    r.platform_on_remote(&["integrity-validate"]);
    next_run_finds_the_stopped_shards_work_recorded(&mut r, 200);
}

/// A person cancels the run while shard 2 runs. The shard's record-keeping steps run under
/// `always()` (GitHub runs those in a cancelled job), and so does the merge job: what shard 1
/// and shard 2 recorded is merged and pushed; shard 3 never started. The publish that follows
/// the cancelled run publishes what it bought. Until 2026-12-03 nothing of a cancelled run was
/// merged, nor published: its deliveries ran again on the next run.
#[test]
fn a_cancelled_run_still_merges_and_publishes_what_its_shards_recorded() {
    let mut r = Runner::new();
    seed_credits(&mut r);
    add_a_stuck_work_order(&r);
    r.start_run("workflow_dispatch", 100, &orchestrator_inputs(1.0, 2.0));
    stop_shard_2(&r, Stop::CancelRun);
    let res = r.run_workflow("orchestrator.yml");
    assert!(res["shard"].cancelled, "{}", res["shard"].log);
    assert_has(&res["shard"].log, "=== shard 3\njob skipped");
    let merge = &res["merge"].log;
    assert!(!merge.contains("job skipped"), "the merge did not run");
    must(&res, "merge", false);
    assert_has(merge, "shard(s) 2 crashed or stopped");
    assert_has(merge, "no ledger from shard(s) 3 of 3");
    assert_eq!(r.balance("acme"), 100 - 13, "shard 1 was not merged");
    assert_eq!(r.balance("globex"), 100 - 5 - 1, "shard 2 was not merged");

    r.start_run("workflow_run", 101, &[]);
    r.github
        .insert("event.workflow_run.conclusion".into(), "cancelled".into());
    let res = r.run_workflow("publish.yml");
    must(&res, "publish", true);
    let published = r
        .fake
        .state()
        .releases
        .iter()
        .filter(|rel| rel.tag_name.starts_with("artifacts-acme-weekly-digest"))
        .count();
    assert_eq!(published, 1, "{}", res["publish"].log);
    next_run_finds_the_stopped_shards_work_recorded(&mut r, 200);
}

/// The single-job orchestrator.yml that `platform init` writes. Its job's `if:` compared
/// `github.ref` with the event's default branch, which a scheduled run's event does not carry:
/// until 2026-12-03 every hourly run was skipped. And a pass that ran past the job's
/// `timeout-minutes` had its job cancelled and its `state push` skipped, so nothing it charged
/// or delivered was recorded. Now the orchestrator step times out first and the push runs.
#[test]
fn the_init_template_runs_hourly_and_pushes_a_pass_that_ran_past_its_time() {
    let mut r = Runner::new();
    seed_credits(&mut r);
    add_a_stuck_work_order(&r);
    r.workflows = crate_root().join("src/init/template/dot-github/workflows");
    r.start_run("schedule", 100, &[]);
    *r.interrupt.borrow_mut() = Some(Interrupt {
        job: "run",
        shard: None,
        step: "orchestrator",
        when: stuck_after("state", 3),
        by: Stop::Timeout,
    });
    let res = r.run_workflow("orchestrator.yml");
    let log = &res["run"].log;
    assert_has(log, "The action has timed out");
    must(&res, "run", false);
    assert_eq!(
        r.balance("acme"),
        100 - 13,
        "the pass was not pushed: {log}"
    );
    assert_eq!(r.balance("globex"), 100 - 5 - 1);
    r.platform_on_remote(&["integrity-validate"]);

    // A dispatch on another branch runs nothing.
    r.start_run("workflow_dispatch", 101, &[]);
    r.github
        .insert("ref".into(), "refs/heads/feature".to_string());
    skipped(&r.run_workflow("orchestrator.yml"), "run");
}

/// A shard whose orchestrator stops with an error document of exit code 1 (here
/// `ledger_damaged`: its copy of the snapshot changed after the plan's integrity-validate)
/// planned nothing. Until 2026-12-03 the workflow took exit 1 for "a work order failed", kept
/// the job green and advised a dispatch with retry_failed; now the job fails saying the
/// orchestrator stopped with an error, the segment says `error-1`, and the merge job reports
/// such a shard apart from failed work orders.
#[test]
fn a_shard_that_stops_with_an_error_is_not_reported_as_a_failed_work_order() {
    let mut r = Runner::new();
    seed_credits(&mut r);
    r.start_run("schedule", 100, &[]);
    let res = r.run_workflow_calling("orchestrator.yml", &mut |r, job| {
        if job == "plan" {
            let billing = r.artifacts().join("state-base/billing.jsonl");
            let text = std::fs::read_to_string(&billing).unwrap();
            let damaged = text.replacen("\"tenant_id\":\"acme\"", "\"tenant_id\":\"acmf\"", 1);
            assert_ne!(damaged, text);
            std::fs::write(&billing, damaged).unwrap();
        }
    });
    let shard = &res["shard"];
    must(&res, "shard", false);
    assert_has(
        &shard.log,
        "the orchestrator stopped with an error (exit code 1)",
    );
    assert!(!shard.log.contains("a work order failed"), "{}", shard.log);
    let exit = r.artifacts().join("shard-1/shard-1/EXIT_CODE");
    assert_eq!(std::fs::read_to_string(exit).unwrap(), "error-1\n");

    // The merge job's report, on a clean run whose shard reported such an error.
    r.start_run("schedule", 200, &[]);
    let res = r.run_workflow_calling("orchestrator.yml", &mut |r, job| {
        if job == "shard" {
            let exit = r.artifacts().join("shard-1/shard-1/EXIT_CODE");
            std::fs::write(exit, "error-1\n").unwrap();
        }
    });
    let merge = &res["merge"].log;
    must(&res, "merge", false);
    assert_has(
        merge,
        "the orchestrator of shard(s) 1 stopped with an error",
    );
    assert!(!merge.contains("retry_failed"), "{merge}");
}
