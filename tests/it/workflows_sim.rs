//! Runs the workflows' own `run:` scripts on this machine — admin-topup, orchestrator (plan,
//! shards, merge), publish — with the real binary and a fake GitHub, through the stand-in
//! runner of support/workflow_runner.rs, so the shell inside the YAML is tested, not only
//! linted; and plays the attacks a fork's pull request and a branch can make.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::check::assert_has;
use crate::support::fx::{platform_in, LEDGER_FILES};
use crate::support::workflow_expr::V;
use crate::support::workflow_runner::{
    files_under, load_workflow, Dispatch, JobResult, Runner, DEFAULT_BRANCH, STATE_TAG,
};
use crate::support::Transcript;
use std::collections::BTreeMap;

/// The inputs of an admin-topup.yml dispatch (method manual, no note).
fn topup_inputs(tenant: &str, amount: f64, reference: &str) -> Vec<(&'static str, V)> {
    vec![
        ("tenant_id", V::Str(tenant.into())),
        ("amount_credits", V::Num(amount)),
        ("topup_method_id", V::Str("manual".into())),
        ("reference", V::Str(reference.into())),
        ("note", V::Str(String::new())),
    ]
}

/// The inputs of an orchestrator.yml dispatch (up to 256 shards, failed steps not retried).
pub(crate) fn orchestrator_inputs(
    tenants_per_shard: f64,
    max_parallel: f64,
) -> Vec<(&'static str, V)> {
    vec![
        ("tenants_per_shard", V::Num(tenants_per_shard)),
        ("max_shards", V::Num(256.0)),
        ("max_parallel", V::Num(max_parallel)),
        ("retry_failed", V::Bool(false)),
    ]
}

/// The inputs of a publish.yml dispatch naming an orchestrator run.
fn publish_inputs(orchestrator_run_id: &str) -> Vec<(&'static str, V)> {
    vec![
        ("orchestrator_run_id", V::Str(orchestrator_run_id.into())),
        ("since", V::Str(String::new())),
    ]
}

/// The job did not run: its `if:` was false.
pub(crate) fn skipped(results: &BTreeMap<String, JobResult>, job: &str) {
    let log = &results[job].log;
    assert!(log.contains("job skipped"), "job {job}: {log}");
}

pub(crate) fn must(results: &BTreeMap<String, JobResult>, job: &str, success: bool) {
    let r = &results[job];
    assert_eq!(
        r.success, success,
        "job {job}: expected success={success}\n{}",
        r.log
    );
}

/// admin-topup, then the orchestrator workflow twice (the second run finds everything up to
/// date), then publish: the ledger on the (fake) state release ends up exactly as one
/// machine would have written it, and the failed work order fails the run only after its
/// records were pushed.
#[test]
fn topup_orchestrate_twice_and_publish_through_the_workflows() {
    let mut r = Runner::new();

    for (n, (tenant, amount)) in [("acme", 100.0), ("globex", 100.0), ("initech", 50.0)]
        .into_iter()
        .enumerate()
    {
        r.start_run(
            "workflow_dispatch",
            10 + n as u64,
            &topup_inputs(tenant, amount, &format!("seed-{tenant}")),
        );
        let res = r.run_workflow("admin-topup.yml");
        must(&res, "topup", true);
        assert!(res["topup"].summary.contains("admin-topup by `demo-admin`"));
    }
    assert_eq!(r.balance("acme"), 100);
    // Someone config/iam.yml does not know: denied (exit 3), and the denial is pushed.
    let audit_before = r.remote("audit.jsonl");
    r.start_run(
        "workflow_dispatch",
        20,
        &topup_inputs("acme", 1000.0, "free-money"),
    );
    r.github.insert("actor".into(), "mallory".into());
    let res = r.run_workflow("admin-topup.yml");
    must(&res, "topup", false);
    assert_eq!(r.balance("acme"), 100);
    let audit_after = r.remote("audit.jsonl");
    assert!(audit_after.len() > audit_before.len() && audit_after.starts_with(&audit_before));
    assert!(String::from_utf8_lossy(&audit_after).contains("mallory"));
    let billing_after_topups = r.remote("billing.jsonl");
    let snapshot: Vec<Vec<u8>> = LEDGER_FILES.iter().map(|f| r.remote(f)).collect();

    // Dispatched with 1 tenant per shard: three shards (acme on 1, globex and initech on 2,
    // none on 3), merged one at a time.
    r.env_overrides.insert("MERGE_BATCH".into(), "1".into());
    r.start_run("workflow_dispatch", 100, &orchestrator_inputs(1.0, 2.0));
    let res = r.run_workflow("orchestrator.yml");
    must(&res, "plan", true);
    assert_eq!(res["plan"].outputs["shards"], "[1,2,3]");
    assert_eq!(res["plan"].outputs["max_parallel"], "2");
    must(&res, "shard", true);
    // initech's work order failed: its records are pushed, then the merge job fails the run.
    must(&res, "merge", false);
    let log = &res["merge"].log;
    assert_has(log, "work orders failed or were invalid on shard(s)");
    assert_eq!(log.matches("merged 1 segment(s)").count(), 3, "{log}");
    let billing_run1 = r.remote("billing.jsonl");
    assert!(billing_run1.starts_with(&billing_after_topups));
    assert_eq!(r.balance("acme"), 100 - 13);
    assert_eq!(r.balance("globex"), 100 - 5);
    assert_eq!(r.balance("initech"), 50, "the failed step was refunded");
    // Batches gave the bytes of one merge: snapshot + segment per shard, all at once, into
    // the ledger as it was before the run.
    let check = r.root.path().join("check");
    let mut segments = Vec::new();
    for k in 1..=3 {
        let shard = check.join(format!("shard-{k}"));
        std::fs::create_dir_all(&shard).unwrap();
        for (f, base) in LEDGER_FILES.iter().zip(&snapshot) {
            let mut bytes = base.clone();
            let seg = r.artifacts().join(format!("shard-{k}/shard-{k}/{f}"));
            bytes.extend(std::fs::read(seg).unwrap_or_default());
            std::fs::write(shard.join(f), bytes).unwrap();
        }
        segments.push(shard);
    }
    let into = check.join("into");
    std::fs::create_dir_all(&into).unwrap();
    for (f, base) in LEDGER_FILES.iter().zip(&snapshot) {
        std::fs::write(into.join(f), base).unwrap();
    }
    platform_in(&check)
        .args(["ledger", "merge", "--into"])
        .arg(&into)
        .args(&segments)
        .output()
        .unwrap()
        .expect_ok();
    for f in LEDGER_FILES {
        assert_eq!(
            std::fs::read(into.join(f)).unwrap(),
            r.remote(f),
            "{f}: merging in batches gave other bytes than one merge"
        );
    }
    // weekly-digest runs once per ISO week of the plan job's clock, which every shard used.
    let now = chrono::DateTime::parse_from_rfc3339(&res["plan"].outputs["now"]).unwrap();
    let week = now.format("%G-W%V").to_string();
    let row = format!("| acme/weekly-digest | 1 | {week} | ✅ COMPLETED | 13 | 0 |");
    assert_has(&res["shard"].summary, &row);
    assert!(res["merge"]
        .summary
        .contains("### platform ledger merge into `state`"));

    // Re-running the merge job of that run (what "Re-run failed jobs" does) changes nothing.
    let evidence_run1 = r.remote("evidence.jsonl");
    let wf = load_workflow("orchestrator.yml");
    let again = r.run_job(&wf, "merge", &[]);
    assert!(!again.success, "still reports the failed work order");
    assert_eq!(r.remote("billing.jsonl"), billing_run1);
    assert_eq!(r.remote("evidence.jsonl"), evidence_run1);

    // Scheduled run: no inputs, so the defaults apply (25 tenants per shard: one shard).
    // Nothing is left to do: nothing is added.
    r.env_overrides.clear();
    r.start_run("schedule", 200, &[]);
    let res = r.run_workflow("orchestrator.yml");
    assert_eq!(res["plan"].outputs["shards"], "[1]");
    must(&res, "shard", true);
    must(&res, "merge", true);
    assert_eq!(
        r.remote("billing.jsonl"),
        billing_run1,
        "an up-to-date run billed"
    );
    // Segments carry only what a shard appended: nothing, here.
    let seg = r.artifacts().join("shard-1/shard-1/billing.jsonl");
    assert_eq!(std::fs::metadata(&seg).map(|m| m.len()).unwrap_or(0), 0);

    // A changed work order runs again (run 2); publish, triggered by that orchestrator run,
    // uploads the new deliverables from that run's runtime artifacts.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let started = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let wo = r
        .root
        .path()
        .join("repo/tenants/acme/workorders/weekly-digest.yml");
    let mut text = std::fs::read_to_string(&wo).unwrap();
    text.push_str("# changed: a new version runs as run 2\n");
    std::fs::write(&wo, text).unwrap();
    r.start_run("schedule", 300, &[]);
    let res = r.run_workflow("orchestrator.yml");
    must(&res, "shard", true);
    must(&res, "merge", true);
    assert_eq!(
        r.balance("acme"),
        100 - 13 - 13,
        "the changed work order ran again"
    );
    r.start_run("workflow_run", 301, &[]);
    for k in ["created_at", "run_started_at"] {
        r.github
            .insert(format!("event.workflow_run.{k}"), started.clone());
    }
    let res = r.run_workflow("publish.yml");
    must(&res, "publish", true);
    let published = r
        .fake
        .state()
        .releases
        .iter()
        .filter(|rel| rel.tag_name.starts_with("artifacts-acme-weekly-digest"))
        .count();
    assert!(published >= 1, "{}", res["publish"].log);
    r.platform_on_remote(&["integrity-validate"]);
}

/// A fork's pull request can run a workflow named `orchestrator`, which triggers publish.yml
/// with this repository's write token. Its artifacts are the attacker's: here a `platform`
/// that records that it ran. Neither the automatic trigger nor a dispatch naming that run
/// may run or read them. (On main, both ran the fork's binary with the token.)
#[test]
fn publish_never_runs_what_a_fork_pull_request_produced() {
    let mut r = Runner::new();
    let pwned = r.root.path().join("pwned");
    let fork_run = 500;
    let bin = r.artifacts_of(fork_run).join("platform-bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("platform"),
        format!(
            "#!/bin/sh\necho \"ran with token $GITHUB_TOKEN\" >> '{}'\n",
            pwned.display()
        ),
    )
    .unwrap();
    let runtime = r.artifacts_of(fork_run).join("runtime-1");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::write(runtime.join("planted.txt"), "from the fork").unwrap();
    let fork = serde_json::json!({
        "id": fork_run,
        "path": ".github/workflows/orchestrator.yml",
        "event": "pull_request",
        "head_branch": DEFAULT_BRANCH,
        "head_repository": {"full_name": "mallory/platform"},
        "status": "completed",
    });
    r.fake.state().workflow_runs.insert(fork_run, fork);

    // The automatic trigger, with the fork run's payload.
    r.start_run("workflow_run", 501, &[]);
    for (k, v) in [
        ("id", fork_run.to_string()),
        ("event", "pull_request".into()),
        ("head_repository.full_name", "mallory/platform".into()),
    ] {
        r.github.insert(format!("event.workflow_run.{k}"), v);
    }
    let res = r.run_workflow("publish.yml");
    skipped(&res, "publish");

    // A dispatch naming the fork run: the API says what it is, and the job stops there.
    r.start_run(
        "workflow_dispatch",
        502,
        &publish_inputs(&fork_run.to_string()),
    );
    let res = r.run_workflow("publish.yml");
    must(&res, "publish", false);
    let log = &res["publish"].log;
    assert_has(log, "orchestrator run 500 is not used");
    assert_has(log, "the schedule or a dispatch started it");
    assert_has(log, "it ran in acme/platform");

    assert!(
        !pwned.exists(),
        "the fork's binary ran: {}",
        std::fs::read_to_string(&pwned).unwrap_or_default()
    );
    assert_eq!(
        r.fake.writes(),
        Vec::<String>::new(),
        "a release was written"
    );
    for ws in files_under(r.root.path()) {
        assert!(
            !ws.ends_with("runtime/planted.txt"),
            "the fork's runtime artifact was downloaded: {}",
            ws.display()
        );
    }
}

/// Jobs that change billing or push the ledger run only from the default branch: a dispatch
/// on another branch skips them (the Environments' branch rules say the same on GitHub). So
/// does the orchestrator's plan, and with it every shard: until 2026-12-03 the shards of such
/// a dispatch ran every due work order (modules, deliveries, the SMTP secrets) and the merge,
/// default branch only, recorded none of it.
#[test]
fn ledger_writing_jobs_do_not_run_off_the_default_branch() {
    let mut r = Runner::new();
    let feature = "refs/heads/feature".to_string();
    r.start_run(
        "workflow_dispatch",
        10,
        &topup_inputs("acme", 100.0, "from-a-branch"),
    );
    r.github.insert("ref".into(), feature.clone());
    let res = r.run_workflow("admin-topup.yml");
    skipped(&res, "topup");

    r.start_run("workflow_dispatch", 20, &orchestrator_inputs(25.0, 1.0));
    r.github.insert("ref".into(), feature.clone());
    let before = std::fs::read_dir(r.root.path()).unwrap().count();
    let res = r.run_workflow("orchestrator.yml");
    for job in ["plan", "shard", "merge"] {
        skipped(&res, job);
    }
    assert_eq!(
        std::fs::read_dir(r.root.path()).unwrap().count(),
        before,
        "a job of the branch's run started (a workspace was made)"
    );
    let artifacts: Vec<_> = std::fs::read_dir(r.artifacts()).unwrap().collect();
    assert_eq!(artifacts.len(), 1, "only the build's binary: {artifacts:?}");

    r.start_run("workflow_dispatch", 21, &publish_inputs("20"));
    r.github.insert("ref".into(), feature);
    let res = r.run_workflow("publish.yml");
    skipped(&res, "publish");
    assert_eq!(
        r.fake.writes(),
        Vec::<String>::new(),
        "something was pushed"
    );
    assert!(r.fake.release(STATE_TAG).is_none());
}

/// admin-adjust.yml and rerun.yml run their scripts as admin-topup.yml does: a debit
/// (negative amount) reaches the ledger on the release, a rerun request makes the next
/// orchestrator run start a new run of an up-to-date work order, and an actor IAM does not
/// know is denied with the denial pushed.
#[test]
fn adjust_and_rerun_through_their_workflows() {
    let mut r = Runner::new();
    r.start_run(
        "workflow_dispatch",
        10,
        &topup_inputs("acme", 100.0, "seed"),
    );
    must(&r.run_workflow("admin-topup.yml"), "topup", true);
    let adjust = |amount: f64, reference: &str| {
        vec![
            ("tenant_id", V::Str("acme".into())),
            ("amount_credits", V::Num(amount)),
            ("reason_slug", V::Str("chargeback".into())),
            ("reference", V::Str(reference.into())),
            // Until 2026-12-04 a note or reason starting with '-' was refused by the parser.
            ("note", V::Str("-30 credits: disputed card payment".into())),
        ]
    };
    r.start_run("workflow_dispatch", 11, &adjust(-30.0, "DISPUTE-1"));
    let res = r.run_workflow("admin-adjust.yml");
    must(&res, "adjust", true);
    assert_has(&res["adjust"].summary, "admin-adjust by `demo-admin`");
    assert_eq!(r.balance("acme"), 70);
    assert_has(
        &String::from_utf8_lossy(&r.remote("billing.jsonl")),
        "\"note\":\"-30 credits: disputed card payment\"",
    );
    // Below zero: refused, nothing pushed but what was there.
    r.start_run("workflow_dispatch", 12, &adjust(-71.0, "DISPUTE-2"));
    must(&r.run_workflow("admin-adjust.yml"), "adjust", false);
    assert_eq!(r.balance("acme"), 70);

    r.start_run("workflow_dispatch", 20, &orchestrator_inputs(25.0, 1.0));
    must(&r.run_workflow("orchestrator.yml"), "shard", true);
    let after_first = r.balance("acme");
    let rerun = |actor: &str| {
        vec![
            ("tenant_id", V::Str("acme".into())),
            ("work_order_id", V::Str("weekly-digest".into())),
            ("reason", V::Str(format!("- asked by {actor}"))),
        ]
    };
    r.start_run("workflow_dispatch", 30, &rerun("mallory"));
    r.github.insert("actor".into(), "mallory".into());
    must(&r.run_workflow("rerun.yml"), "rerun", false);
    assert!(
        String::from_utf8_lossy(&r.remote("audit.jsonl")).contains("\"scope\":\"orders.rerun\"")
    );
    r.start_run("workflow_dispatch", 31, &rerun("ops"));
    let res = r.run_workflow("rerun.yml");
    must(&res, "rerun", true);
    assert_has(&res["rerun"].summary, "rerun requested");
    assert_has(
        &String::from_utf8_lossy(&r.remote("evidence.jsonl")),
        "\"reason\":\"- asked by ops\"",
    );
    r.start_run("workflow_dispatch", 40, &orchestrator_inputs(25.0, 1.0));
    must(&r.run_workflow("orchestrator.yml"), "shard", true);
    let evidence = String::from_utf8_lossy(&r.remote("evidence.jsonl")).into_owned();
    assert_has(&evidence, "\"rerun\":\"rerun/acme/weekly-digest/after-r1\"");
    assert!(r.balance("acme") < after_first, "the rerun was charged");
}

/// The inputs of an admin-adjust.yml dispatch for acme (a chargeback).
fn chargeback_inputs(amount: f64, reference: &str) -> Vec<(&'static str, V)> {
    vec![
        ("tenant_id", V::Str("acme".into())),
        ("amount_credits", V::Num(amount)),
        ("reason_slug", V::Str("chargeback".into())),
        ("reference", V::Str(reference.into())),
        ("note", V::Str(String::new())),
    ]
}

/// A chargeback dispatched while an orchestrator run is in flight (its plan has pulled the
/// snapshot the shards charge against) waits for that run: the merge keeps every tenant's
/// charges, refunds and runs, and the debit then meets the balance the pass left, so a debit
/// larger than that is refused (nothing written) and the same reference, resized, goes
/// through. Until 2026-12-03 the adjustment ran at once: acme went from 100 to 10, its shard
/// had spent 13 against the snapshot, and the merge refused every shard's records.
#[test]
fn a_debit_dispatched_during_an_orchestrator_run_waits_and_every_record_is_merged() {
    let mut r = Runner::new();
    for (n, (tenant, amount)) in [("acme", 100.0), ("globex", 100.0), ("initech", 50.0)]
        .into_iter()
        .enumerate()
    {
        r.start_run(
            "workflow_dispatch",
            10 + n as u64,
            &topup_inputs(tenant, amount, &format!("seed-{tenant}")),
        );
        must(&r.run_workflow("admin-topup.yml"), "topup", true);
    }

    r.start_run("workflow_dispatch", 100, &orchestrator_inputs(1.0, 2.0));
    let chargeback = Dispatch {
        file: "admin-adjust.yml",
        event: "workflow_dispatch",
        run_id: 101,
        inputs: chargeback_inputs(-90.0, "CB-1"),
    };
    let (res, adjust, waited) = r.run_workflow_dispatching("orchestrator.yml", "plan", &chargeback);
    must(&res, "shard", true);
    let merge = &res["merge"].log;
    assert!(!merge.contains("would break a billing rule"), "{merge}");
    // The merge job fails for initech's failed work order only, after pushing.
    assert_has(merge, "work orders failed or were invalid on shard(s)");
    assert!(
        waited,
        "the adjustment ran while the orchestrator run was in flight"
    );
    assert_eq!(
        r.balance("globex"),
        100 - 5,
        "globex's records were not merged"
    );
    assert_eq!(r.balance("initech"), 50, "initech's refunded step");
    let runs: Vec<serde_json::Value> =
        serde_json::from_str(&r.platform_on_remote(&["runs", "--json"])).unwrap();
    for tenant in ["acme", "globex", "initech"] {
        assert!(
            runs.iter().any(|run| run["tenant_id"] == tenant),
            "no run of {tenant} merged: {runs:?}"
        );
    }

    // The debit came after the pass: 90 of acme's 87 credits is refused, nothing written.
    must(&adjust, "adjust", false);
    assert_has(&adjust["adjust"].log, "not enough credits");
    assert_eq!(r.balance("acme"), 100 - 13);
    r.start_run("workflow_dispatch", 102, &chargeback_inputs(-87.0, "CB-1"));
    must(&r.run_workflow("admin-adjust.yml"), "adjust", true);
    assert_eq!(r.balance("acme"), 0);
    r.platform_on_remote(&["integrity-validate"]);
}

/// An RFC 3339 time of now, to the second (rounded down), as GitHub writes run times.
fn now_to_the_second() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Releases of published deliverables (not the state release).
fn artifact_releases(r: &Runner) -> usize {
    let state = r.fake.state();
    let published = state.releases.iter();
    published
        .filter(|rel| rel.tag_name.starts_with("artifacts-"))
        .count()
}

/// "Re-run failed jobs" after an orchestrator run whose merge could not push: the publish that
/// follows the second attempt publishes what the first attempt's shards bought. GitHub resets
/// `run_started_at` on a re-run, to a time after those purchases; the run's `created_at` is the
/// first attempt's. Until 2026-12-03 publish.yml selected from `run_started_at`, and no
/// automatic publish ever published them. Publishing again adds nothing.
#[test]
fn the_publish_after_a_re_run_publishes_what_the_first_attempt_bought() {
    let mut r = Runner::new();
    r.start_run(
        "workflow_dispatch",
        10,
        &topup_inputs("acme", 100.0, "seed"),
    );
    must(&r.run_workflow("admin-topup.yml"), "topup", true);
    let created = now_to_the_second();

    // Attempt 1: the shards charge and deliver; the merge's push fails.
    r.fake.state().fail_upload_of = Some(("billing.jsonl".into(), 500, false));
    r.start_run("schedule", 300, &[]);
    let res = r.run_workflow("orchestrator.yml");
    must(&res, "shard", true);
    must(&res, "merge", false);
    assert_eq!(r.balance("acme"), 100, "{}", res["merge"].log);

    // Attempt 2 re-runs the merge job alone: it pushes what attempt 1's shards recorded.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second_attempt = now_to_the_second();
    r.github.insert("run_attempt".into(), "2".into());
    let merge = r.run_job(&load_workflow("orchestrator.yml"), "merge", &[]);
    assert_eq!(r.balance("acme"), 100 - 13, "{}", merge.log);

    // The publish the completed second attempt triggers.
    let publish_after_attempt_2 = |r: &mut Runner, run_id: u64| {
        r.start_run("workflow_run", run_id, &[]);
        for (k, v) in [
            ("id", "300"),
            ("run_attempt", "2"),
            ("created_at", created.as_str()),
            ("run_started_at", second_attempt.as_str()),
        ] {
            r.github
                .insert(format!("event.workflow_run.{k}"), v.to_string());
        }
        r.run_workflow("publish.yml")
    };
    let res = publish_after_attempt_2(&mut r, 301);
    must(&res, "publish", true);
    assert!(
        artifact_releases(&r) >= 1,
        "attempt 1's purchases were not published:\n{}",
        res["publish"].log
    );
    let evidence = r.remote("evidence.jsonl");
    let releases = artifact_releases(&r);

    // The same publish again (a re-run of it, or another trigger): skipped, nothing recorded.
    let res = publish_after_attempt_2(&mut r, 302);
    must(&res, "publish", true);
    assert_has(&res["publish"].log, "already published");
    assert_eq!(r.remote("evidence.jsonl"), evidence);
    assert_eq!(artifact_releases(&r), releases);
    r.platform_on_remote(&["integrity-validate"]);
}

/// GitHub re-runs a workflow run with its first attempt's `github.actor` (and privileges);
/// `github.triggering_actor` is who re-ran it. A collaborator whom config/iam.yml grants
/// nothing re-runs demo-admin's rerun request, top-up and adjustment: each is denied as that
/// collaborator (exit 3), the denial names them, and no further run starts. Until 2026-12-03
/// the workflows passed `github.actor`: the re-run rerun request started (and charged) one more
/// run, audited as demo-admin.
#[test]
fn a_re_run_of_an_admin_workflow_acts_as_whoever_re_ran_it() {
    let mut r = Runner::new();
    let rerun = vec![
        ("tenant_id", V::Str("acme".into())),
        ("work_order_id", V::Str("weekly-digest".into())),
        ("reason", V::Str("asked by the tenant".into())),
    ];
    let adjust = vec![
        ("tenant_id", V::Str("acme".into())),
        ("amount_credits", V::Num(5.0)),
        ("reason_slug", V::Str("goodwill".into())),
        ("reference", V::Str("GOODWILL-1".into())),
        ("note", V::Str(String::new())),
    ];
    let dispatches = [
        (
            "admin-topup.yml",
            "topup",
            topup_inputs("acme", 100.0, "seed"),
        ),
        ("admin-adjust.yml", "adjust", adjust),
        ("rerun.yml", "rerun", rerun),
    ];
    // demo-admin dispatches each; the rerun is asked for after run 1 and run 2 happens. The
    // same request again would ask for run 3.
    let mut run_id = 10;
    for (file, job, inputs) in &dispatches {
        if *file == "rerun.yml" {
            r.start_run("workflow_dispatch", 20, &orchestrator_inputs(25.0, 1.0));
            must(&r.run_workflow("orchestrator.yml"), "shard", true);
        }
        run_id += 1;
        r.start_run("workflow_dispatch", run_id, inputs);
        must(&r.run_workflow(file), job, true);
    }
    r.start_run("workflow_dispatch", 21, &orchestrator_inputs(25.0, 1.0));
    must(&r.run_workflow("orchestrator.yml"), "shard", true);
    assert_has(
        &String::from_utf8_lossy(&r.remote("evidence.jsonl")),
        "\"rerun\":\"rerun/acme/weekly-digest/after-r1\"",
    );
    let billing = r.remote("billing.jsonl");
    let runs_before = String::from_utf8_lossy(&r.remote("evidence.jsonl"))
        .matches("\"rerun\":")
        .count();

    for (file, job, inputs) in &dispatches {
        run_id += 1;
        // The second attempt of the run demo-admin dispatched, started by `writer`.
        r.start_run("workflow_dispatch", run_id, inputs);
        r.github.insert("run_attempt".into(), "2".into());
        r.github.insert("triggering_actor".into(), "writer".into());
        let audit_before = r.remote("audit.jsonl");
        let res = r.run_workflow(file);
        must(&res, job, false);
        assert_has(&res[*job].log, "writer");
        assert_has(&res[*job].summary, "by `writer`");
        let audit = r.remote("audit.jsonl");
        assert!(audit.starts_with(&audit_before) && audit.len() > audit_before.len());
        let added = String::from_utf8_lossy(&audit[audit_before.len()..]).into_owned();
        assert_has(&added, "\"actor\":\"writer\"");
        assert!(!added.contains("demo-admin"), "{file}: {added}");
    }
    assert_eq!(
        r.remote("billing.jsonl"),
        billing,
        "a re-run changed billing"
    );

    r.start_run("workflow_dispatch", 40, &orchestrator_inputs(25.0, 1.0));
    must(&r.run_workflow("orchestrator.yml"), "shard", true);
    assert_eq!(
        r.remote("billing.jsonl"),
        billing,
        "another run was charged"
    );
    let runs_after = String::from_utf8_lossy(&r.remote("evidence.jsonl"))
        .matches("\"rerun\":")
        .count();
    assert_eq!(runs_after, runs_before, "another run was requested");
}

/// Tops up the three tenants through admin-topup.yml (runs 10..12).
pub(crate) fn seed_credits(r: &mut Runner) {
    for (n, (tenant, amount)) in [("acme", 100.0), ("globex", 100.0), ("initech", 50.0)]
        .into_iter()
        .enumerate()
    {
        r.start_run(
            "workflow_dispatch",
            10 + n as u64,
            &topup_inputs(tenant, amount, &format!("seed-{tenant}")),
        );
        must(&r.run_workflow("admin-topup.yml"), "topup", true);
    }
}

/// A scheduled orchestrator run (one shard) whose shard job ran but whose segment never
/// reached the merge (a runner lost before its upload); `now` replaces the plan's clock when
/// given. The merge pushes nothing and fails the run, naming the shard.
fn run_losing_the_shard(r: &mut Runner, run_id: u64, now: Option<&str>) {
    r.start_run("schedule", run_id, &[]);
    let res = r.run_workflow_calling("orchestrator.yml", &mut |r, job| match job {
        "plan" => {
            if let Some(now) = now {
                r.set_output("plan", "now", now);
            }
        }
        "shard" => std::fs::remove_dir_all(r.artifacts().join("shard-1")).unwrap(),
        _ => {}
    });
    must(&res, "shard", true);
    must(&res, "merge", false);
    assert_has(&res["merge"].log, "no ledger from shard(s) 1 of 1");
    assert_has(
        &res["merge"].log,
        "Re-run failed jobs does not run shards again",
    );
}

/// The stand-in's job workspaces (`ws-<n>-<job>`) that exist now.
fn workspaces(r: &Runner) -> Vec<std::path::PathBuf> {
    let mut all: Vec<_> = std::fs::read_dir(r.root.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("ws-"))
        .collect();
    all.sort();
    all
}

/// "Re-run failed jobs" of an orchestrator run: its shard job (one shard) and its merge job,
/// as attempt `attempt`; the plan job's outputs stay the first attempt's, as on GitHub. Returns
/// the two results and every file the shard job left in its workspace.
fn re_run_failed_jobs(r: &mut Runner, attempt: &str) -> (JobResult, JobResult, Vec<String>) {
    r.github.insert("run_attempt".into(), attempt.into());
    let wf = load_workflow("orchestrator.yml");
    let before = workspaces(r);
    let shard = r.run_job(&wf, "shard", &[("shard", "1")]);
    let mut left = Vec::new();
    for ws in workspaces(r).into_iter().filter(|w| !before.contains(w)) {
        for f in files_under(&ws) {
            let rel = f.strip_prefix(&ws).unwrap().to_string_lossy().into_owned();
            if !rel.starts_with('.') {
                left.push(rel);
            }
        }
    }
    let merge = r.run_job(&wf, "merge", &[]);
    (shard, merge, left)
}

/// docs/operations.md said to *Re-run failed jobs* when a shard's segment was missing. After
/// the next hourly run had merged (here in the next ISO week: the lost run's plan read its
/// clock a week earlier), the re-run shard started from its run's old snapshot with its old
/// clock: it ran acme's weekly digest again (modules and delivery) as run 1 of the old week,
/// and the merge refused the whole batch ("merge conflict … period"), so that work was never
/// recorded nor charged. Now a shard job runs only in the attempt whose plan pulled its
/// snapshot: the re-run runs nothing, the ledger stays as the later run left it, and the merge
/// job says why and what to do. Until 2026-12-03 the shard ran.
#[test]
fn a_shard_job_re_run_after_another_run_merged_runs_nothing() {
    let mut r = Runner::new();
    seed_credits(&mut r);
    let week_ago = (chrono::Utc::now() - chrono::Duration::days(7))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    run_losing_the_shard(&mut r, 100, Some(&week_ago));
    assert_eq!(
        r.balance("acme"),
        100,
        "the lost shard's records were pushed"
    );
    let lost_run = r.save_run();

    // The next scheduled run pulls the state and runs the lost shard's work orders.
    r.start_run("schedule", 200, &[]);
    let res = r.run_workflow("orchestrator.yml");
    must(&res, "shard", true);
    assert_eq!(r.balance("acme"), 100 - 13);
    let ledger: Vec<Vec<u8>> = LEDGER_FILES.iter().map(|f| r.remote(f)).collect();
    let writes = r.fake.writes().len();

    // The operator re-runs the first run's failed jobs.
    r.restore_run(lost_run);
    let (shard, merge, left) = re_run_failed_jobs(&mut r, "2");
    assert_has(&shard.log, "job skipped");
    assert_eq!(
        left,
        Vec::<String>::new(),
        "the re-run shard job ran (checked out, ran modules, delivered):\n{}",
        shard.log
    );
    assert!(!merge.success);
    assert_has(
        &merge.log,
        "shard(s) 1 of 1 did not run in this attempt: a re-run never runs shards on attempt 1's snapshot",
    );
    assert_has(
        &merge.log,
        "the next orchestrator run (hourly, or Run workflow now)",
    );
    assert!(!merge.log.contains("merge conflict"), "{}", merge.log);
    for (f, before) in LEDGER_FILES.iter().zip(&ledger) {
        assert_eq!(&r.remote(f), before, "{f} changed");
    }
    assert_eq!(
        r.fake.writes()[writes..].to_vec(),
        Vec::<String>::new(),
        "the re-run wrote to GitHub"
    );
    assert_eq!(r.balance("acme"), 100 - 13);
    r.platform_on_remote(&["integrity-validate"]);
}

/// With nothing run in between, *Re-run failed jobs* still runs no shard (the shard job cannot
/// read the draft state release to find out whether the state moved), and *Re-run all jobs*
/// re-plans: a fresh pull and clock, then the shard runs the work orders the lost segment left
/// unrecorded and the merge records and charges them.
#[test]
fn a_re_run_runs_shards_only_when_its_plan_pulls_again() {
    let mut r = Runner::new();
    seed_credits(&mut r);
    run_losing_the_shard(&mut r, 100, None);
    let ledger: Vec<Vec<u8>> = LEDGER_FILES.iter().map(|f| r.remote(f)).collect();

    let (shard, merge, left) = re_run_failed_jobs(&mut r, "2");
    assert_has(&shard.log, "job skipped");
    assert_eq!(left, Vec::<String>::new());
    assert_has(&merge.log, "did not run in this attempt");
    for (f, before) in LEDGER_FILES.iter().zip(&ledger) {
        assert_eq!(&r.remote(f), before, "{f} changed");
    }

    // Re-run all jobs: attempt 3, from the plan on.
    r.github.insert("run_attempt".into(), "3".into());
    let res = r.run_workflow("orchestrator.yml");
    must(&res, "plan", true);
    assert_eq!(res["plan"].outputs["attempt"], "3");
    must(&res, "shard", true);
    let log = &res["merge"].log;
    assert!(!log.contains("no ledger from shard"), "{log}");
    assert!(!log.contains("did not run in this attempt"), "{log}");
    // Only initech's failing work order fails the run, after its records were pushed.
    assert_has(log, "work orders failed or were invalid on shard(s) 1");
    assert_eq!(r.balance("acme"), 100 - 13);
    assert_eq!(r.balance("globex"), 100 - 5);
    let now = chrono::DateTime::parse_from_rfc3339(&res["plan"].outputs["now"]).unwrap();
    let week = now.format("%G-W%V").to_string();
    let row = format!("| acme/weekly-digest | 1 | {week} | ✅ COMPLETED | 13 | 0 |");
    assert_has(&res["shard"].summary, &row);
    r.platform_on_remote(&["integrity-validate"]);
}

/// *Re-run all jobs* re-plans: a fresh pull and clock. A shard lost in that attempt (its runner
/// gone before the upload) leaves in the run's store the artifact its shard uploaded in the
/// first attempt: artifacts outlive attempts. That segment was cut from the first attempt's
/// snapshot. Until 2026-12-03 the merge rebuilt it on the new snapshot and refused the batch,
/// so nothing of the re-run was pushed (here acme's charge for a new week, its digest
/// delivered). Segments now carry the attempt they were cut in: the merge leaves out one of
/// another attempt, pushes the others, and fails the run naming the shard.
#[test]
fn a_segment_left_by_an_earlier_attempt_is_left_out_and_the_others_are_pushed() {
    let mut r = Runner::new();
    seed_credits(&mut r);
    let week_ago = (chrono::Utc::now() - chrono::Duration::days(7))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    // Attempt 1, a week ago: three shards (acme on 1, globex and initech on 2, none on 3);
    // initech's failing work order fails the run after the push.
    r.start_run("workflow_dispatch", 100, &orchestrator_inputs(1.0, 2.0));
    let res = r.run_workflow_calling("orchestrator.yml", &mut |r, job| {
        if job == "plan" {
            r.set_output("plan", "now", &week_ago);
        }
    });
    must(&res, "shard", true);
    must(&res, "merge", false);
    assert_eq!(r.balance("acme"), 100 - 13);
    assert_eq!(r.balance("globex"), 100 - 5);
    let first = r.root.path().join("attempt-1-shard-2");
    crate::support::fx::copy_tree(&r.artifacts().join("shard-2"), &first);
    assert_eq!(
        std::fs::read_to_string(first.join("shard-2/ATTEMPT")).unwrap(),
        "1\n"
    );

    // Re-run all jobs: attempt 2, this week. Shard 2's upload is lost.
    r.github.insert("run_attempt".into(), "2".into());
    let res = r.run_workflow_calling("orchestrator.yml", &mut |r, job| {
        if job == "shard" {
            let artifact = r.artifacts().join("shard-2");
            std::fs::remove_dir_all(&artifact).unwrap();
            crate::support::fx::copy_tree(&first, &artifact);
        }
    });
    assert_eq!(res["plan"].outputs["attempt"], "2");
    must(&res, "shard", true);
    must(&res, "merge", false);
    let log = &res["merge"].log;
    assert!(!log.contains("merge conflict"), "{log}");
    assert_has(
        log,
        "shard(s) 2 of 3 delivered no ledger in attempt 2: the one found was cut in an earlier attempt",
    );
    assert!(!log.contains("work orders failed"), "{log}");
    assert_eq!(r.balance("acme"), 100 - 26, "acme's new week was pushed");
    assert_eq!(r.balance("globex"), 100 - 5);
    r.platform_on_remote(&["integrity-validate"]);
}
