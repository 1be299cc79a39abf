//! The GitHub Actions workflows: actionlint accepts every file, and the rules that actionlint does not know hold (SHA pins, one ledger writer, secrets only in step env).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::workflows::{
    actionlint, jobs, load, name, root, run_text, runs_any, steps, template_workflow_files,
    workflow_files,
};
use serde_json::Value;
use std::process::Command;

/// The group every job that writes the release-backed ledger joins.
const LEDGER_GROUP: &str = "platform-ledger-${{ github.repository }}";

/// The linter is the check: it fails, never skips, when it is not installed.
#[test]
fn actionlint_accepts_every_workflow() {
    let bin = actionlint();
    assert!(
        bin.exists(),
        "actionlint not found at {}: run scripts/setup-test-deps.sh (it installs actionlint into .ci/venv)",
        bin.display()
    );
    let files = workflow_files();
    let out = Command::new(&bin)
        .arg("-no-color")
        .args(&files)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "actionlint found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tag can be moved to other code; a full commit SHA cannot. The comment names the version
/// so that a reader (and an updater) knows what the SHA stands for.
#[test]
fn third_party_actions_are_pinned_by_full_sha_with_a_version_comment() {
    for path in workflow_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let t = line.trim_start().trim_start_matches("- ");
            let Some(reference) = t.strip_prefix("uses:") else {
                continue;
            };
            let reference = reference.trim();
            if reference.starts_with("./") {
                continue;
            }
            let (action_and_sha, comment) = reference.split_once('#').unwrap_or((reference, ""));
            let sha = action_and_sha.trim().rsplit_once('@').map(|(_, s)| s);
            let pinned =
                sha.is_some_and(|s| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(
                pinned && comment.trim().starts_with('v'),
                "{}:{}: `{}` must be pinned as owner/action@<40-hex SHA> # vX.Y.Z",
                name(&path),
                i + 1,
                reference
            );
        }
    }
}

/// Every job that pushes the ledger, merges it or tops it up waits for the others: the same
/// group, never cancelled mid-write. So does every job that pulls it: a push uploads its files
/// one by one, heads.json last, and a pull in between is refused (until 2026-12-04 the
/// orchestrator's plan job pulled outside the group, and a top-up's push could fail the run).
/// The same holds for the workflows `platform init` writes.
#[test]
fn ledger_writers_share_one_concurrency_group() {
    let mut writers = 0;
    for path in workflow_files()
        .into_iter()
        .chain(template_workflow_files())
    {
        let wf = load(&path);
        for (id, job) in jobs(&wf) {
            let writes = runs_any(job, &["state push", "ledger merge", "state pull"]);
            if !writes {
                continue;
            }
            writers += 1;
            let c = job.get("concurrency");
            assert_eq!(
                c.and_then(|c| c.get("group")).and_then(Value::as_str),
                Some(LEDGER_GROUP),
                "{}: job {id} writes the ledger outside the group {LEDGER_GROUP}",
                name(&path)
            );
            assert_eq!(
                c.and_then(|c| c.get("cancel-in-progress")),
                Some(&Value::Bool(false)),
                "{}: job {id}: a ledger write must never be cancelled halfway",
                name(&path)
            );
        }
    }
    // shipped: orchestrator merge, publish, admin-topup, admin-adjust, rerun; the template's
    // orchestrator, admin-topup, admin-adjust, rerun
    assert!(
        writers >= 9,
        "expected at least 9 ledger-writing jobs, found {writers}"
    );
}

/// The ledger-group concurrency blocks of a workflow (workflow-level and per job), by where
/// they are.
fn ledger_blocks(wf: &Value) -> Vec<(String, Value)> {
    let mut blocks = vec![("workflow".to_string(), wf.get("concurrency"))];
    for (id, job) in jobs(wf) {
        blocks.push((format!("job {id}"), job.get("concurrency")));
    }
    blocks
        .into_iter()
        .filter_map(|(at, c)| Some((at, c?.clone())))
        .filter(|(_, c)| c.get("group").and_then(Value::as_str) == Some(LEDGER_GROUP))
        .collect()
}

/// GitHub's default queue keeps one pending job per group and cancels it when another one
/// arrives: a pending orchestrator merge (whose shards had charged and delivered), publish or
/// top-up would be cancelled by any newer entrant. `queue: max` keeps up to 100 waiting, in
/// order. Until 2026-12-03 no ledger group had it.
#[test]
fn every_ledger_group_queues_its_waiting_jobs_instead_of_replacing_them() {
    for (files, at_least) in [(workflow_files(), 5), (template_workflow_files(), 4)] {
        let mut found = 0;
        for path in files {
            for (at, c) in ledger_blocks(&load(&path)) {
                found += 1;
                assert_eq!(
                    c.get("queue").and_then(Value::as_str),
                    Some("max"),
                    "{}: {at}: the ledger group needs `queue: max`, or a newer entrant cancels a waiting job",
                    name(&path)
                );
                assert_eq!(
                    c.get("cancel-in-progress"),
                    Some(&Value::Bool(false)),
                    "{}: {at}",
                    name(&path)
                );
            }
        }
        assert!(
            found >= at_least,
            "expected at least {at_least} ledger-group blocks, found {found}"
        );
    }
}

/// A debit (`admin-adjust` with a negative amount) must not reach the ledger between the
/// orchestrator's pull of the snapshot its shards charge against and the pull its merge job
/// makes: the merge would find the tenant short of what the shards spent and refuse every
/// shard's records. An orchestrator that pulls, runs and pushes in one job holds the ledger
/// group throughout (the init template); one that pulls in several jobs (the shipped plan →
/// shards → merge) must share its workflow-level group, `queue: max`, with admin-adjust.yml,
/// so a waiting adjustment is never replaced. Until 2026-12-03 admin-adjust.yml joined only
/// the ledger group, and a debit during a pass lost the whole pass's records.
#[test]
fn a_debit_waits_for_the_orchestrator_run_in_flight() {
    let mut split = 0;
    for files in [workflow_files(), template_workflow_files()] {
        let find = |file: &str| {
            let path = files.iter().find(|p| name(p) == file);
            load(path.unwrap_or_else(|| panic!("no {file} beside {files:?}")))
        };
        let (orchestrator, adjust) = (find("orchestrator.yml"), find("admin-adjust.yml"));
        let touching: Vec<String> = jobs(&orchestrator)
            .into_iter()
            .filter(|(_, job)| runs_any(job, &["state pull", "state push"]))
            .map(|(id, _)| id)
            .collect();
        if touching.len() == 1 {
            continue;
        }
        split += 1;
        let group = orchestrator.get("concurrency").cloned();
        let group_name = group
            .as_ref()
            .and_then(|c| c.get("group"))
            .and_then(Value::as_str);
        assert!(
            group_name.is_some_and(|g| g.contains("${{ github.repository }}")),
            "orchestrator.yml pulls and pushes in jobs {touching:?}: it needs a workflow-level group per repository"
        );
        assert_eq!(
            adjust.get("concurrency"),
            group.as_ref(),
            "admin-adjust.yml must join orchestrator.yml's workflow-level group, or a debit lands between the plan's pull and the merge"
        );
        let c = group.unwrap();
        assert_eq!(
            c.get("queue").and_then(Value::as_str),
            Some("max"),
            "a waiting adjustment would be replaced by the next scheduled run"
        );
        assert_eq!(c.get("cancel-in-progress"), Some(&Value::Bool(false)));
    }
    assert_eq!(split, 1, "the shipped orchestrator pulls in plan and merge");
}

/// The value of `ACTOR` for every step that passes `--actor "$ACTOR"` or `--actor="$ACTOR"`
/// (from the step's, the job's or the workflow's `env:`), by job.
fn actor_values(wf: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (id, job) in jobs(wf) {
        for step in steps(job) {
            let run = run_text(step);
            if !run.contains("--actor \"$ACTOR\"") && !run.contains("--actor=\"$ACTOR\"") {
                continue;
            }
            let value = [step.get("env"), job.get("env"), wf.get("env")]
                .into_iter()
                .flatten()
                .find_map(|env| env.get("ACTOR"))
                .and_then(Value::as_str)
                .unwrap_or("");
            out.push((id.clone(), value.to_string()));
        }
    }
    out
}

/// A re-run keeps `github.actor` as the person who dispatched the first attempt, with their
/// privileges; `github.triggering_actor` is whoever started this attempt. IAM must check (and
/// the audit name) that person, or anyone with write access re-runs an admin's run as the
/// admin. Until 2026-12-03 the workflows passed `github.actor`.
#[test]
fn privileged_commands_act_as_the_person_who_started_the_attempt() {
    for (files, at_least) in [(workflow_files(), 4), (template_workflow_files(), 3)] {
        let mut found = 0;
        for path in files {
            for (id, value) in actor_values(&load(&path)) {
                found += 1;
                assert!(
                    value.contains("github.triggering_actor")
                        && !value.replace("github.triggering_actor", "").contains("github.actor"),
                    "{}: job {id}: --actor must be the person who started this attempt (github.triggering_actor), not `{value}`",
                    name(&path)
                );
            }
        }
        assert!(
            found >= at_least,
            "expected at least {at_least} steps passing --actor, found {found}"
        );
    }
}

/// The workflows `platform init` writes join the ledger group and pass the actor exactly as
/// this repository's own workflows of the same name do.
#[test]
fn the_init_template_joins_the_ledger_group_and_names_the_actor_as_shipped() {
    let mut compared = 0;
    for template in template_workflow_files() {
        let shipped = root().join(".github/workflows").join(name(&template));
        let (t, s) = (load(&template), load(&shipped));
        let blocks = |wf: &Value| -> Vec<Value> {
            let mut v: Vec<Value> = ledger_blocks(wf).into_iter().map(|(_, c)| c).collect();
            v.dedup();
            v
        };
        let actors = |wf: &Value| -> Vec<String> {
            let mut v: Vec<String> = actor_values(wf).into_iter().map(|(_, a)| a).collect();
            v.dedup();
            v
        };
        if blocks(&t).is_empty() && actors(&t).is_empty() {
            continue;
        }
        compared += 1;
        assert_eq!(blocks(&t), blocks(&s), "{}: ledger group", name(&template));
        assert_eq!(actors(&t), actors(&s), "{}: ACTOR", name(&template));
    }
    assert!(
        compared >= 4,
        "orchestrator, admin-topup, admin-adjust and rerun of the template"
    );
}

/// Secrets reach only the steps that need them: never workflow- or job-wide env, and module
/// secrets (PLATFORM_SECRET_*) only in the step that runs the orchestrator.
#[test]
fn secrets_are_step_scoped() {
    for path in workflow_files() {
        let wf = load(&path);
        let wide = |env: Option<&Value>, at: &str| {
            let text = env.map(|e| e.to_string()).unwrap_or_default();
            assert!(
                !text.contains("secrets.") && !text.contains("PLATFORM_SECRET_"),
                "{}: {at} env holds a secret; move it to the step that needs it",
                name(&path)
            );
        };
        wide(wf.get("env"), "workflow");
        for (id, job) in jobs(&wf) {
            wide(job.get("env"), &format!("job {id}"));
            for step in steps(job) {
                let env = step.get("env").map(|e| e.to_string()).unwrap_or_default();
                if env.contains("PLATFORM_SECRET_") {
                    assert!(
                        run_text(step).contains("platform orchestrator"),
                        "{}: job {id}: PLATFORM_SECRET_* given to a step that does not run the orchestrator",
                        name(&path)
                    );
                }
            }
        }
    }
}

/// Least privilege: read-only by default, `contents: write` only on jobs that talk to the
/// release-backed state, publish deliverables, or create the platform's own release.
#[test]
fn write_permission_only_where_needed() {
    for path in workflow_files() {
        let wf = load(&path);
        let top = wf
            .get("permissions")
            .map(Value::to_string)
            .unwrap_or_default();
        assert!(
            !top.contains("write"),
            "{}: workflow-level permissions must be read-only, got {top}",
            name(&path)
        );
        for (id, job) in jobs(&wf) {
            let perms = job
                .get("permissions")
                .map(Value::to_string)
                .unwrap_or_default();
            if !perms.contains("\"contents\":\"write\"") {
                continue;
            }
            let needs_it = runs_any(
                job,
                &[
                    "state pull",
                    "state push",
                    "platform publish",
                    "gh release create",
                ],
            );
            assert!(
                needs_it,
                "{}: job {id} has contents: write but neither uses the release-backed state, publishes, nor creates a release",
                name(&path)
            );
        }
    }
}

/// The orchestrator workflow fans out over at most 256 shards (GitHub's matrix cap) and
/// each shard runs the orchestrator on its own billing-state directory.
#[test]
fn orchestrator_workflow_shards_and_merges() {
    let path = root().join(".github/workflows/orchestrator.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("--shard \"$SHARD/$SHARDS\""));
    assert!(text.contains("--billing-state-dir \"shard-$SHARD\""));
    assert!(text.contains("256"), "the plan must cap the matrix at 256");
    let wf = load(&path);
    let js = jobs(&wf);
    let ids: Vec<&str> = js.iter().map(|(k, _)| k.as_str()).collect();
    for want in ["plan", "shard", "merge"] {
        assert!(
            ids.contains(&want),
            "orchestrator.yml has no job {want}: {ids:?}"
        );
    }
    let shard = js.iter().find(|(k, _)| k == "shard").unwrap().1;
    assert_eq!(
        shard.pointer("/strategy/fail-fast"),
        Some(&Value::Bool(false)),
        "one shard's failure must not cancel the others"
    );
}

/// CI runs the same entry point as a developer.
#[test]
fn ci_runs_dot_ci_run() {
    let wf = load(&root().join(".github/workflows/ci.yml"));
    let runs_it = jobs(&wf)
        .iter()
        .any(|(_, j)| steps(j).iter().any(|s| run_text(s).contains(".ci/run")));
    assert!(runs_it, "ci.yml must run .ci/run");
}

/// The Environment a ledger-writing job runs in: `billing` for a person's request that
/// changes billing (admin-*.yml, rerun.yml; required reviewers), `ledger` for the rest.
fn expected_environment(workflow: &str) -> &'static str {
    if workflow.starts_with("admin-") || workflow == "rerun.yml" {
        "billing"
    } else {
        "ledger"
    }
}

fn environment(job: &Value) -> Option<&str> {
    match job.get("environment") {
        Some(Value::String(s)) => Some(s),
        Some(v) => v.get("name").and_then(Value::as_str),
        None => None,
    }
}

/// Every job of every workflow: (file name, job id, job).
fn all_jobs() -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for path in workflow_files() {
        let wf = load(&path);
        for (id, job) in jobs(&wf) {
            out.push((name(&path), id, job.clone()));
        }
    }
    out
}

fn job_if(job: &Value) -> &str {
    job.get("if").and_then(Value::as_str).unwrap_or("")
}

/// The default-branch condition (a scheduled run always is on it, and its event carries no
/// repository, so `schedule` may stand in for it).
const ON_DEFAULT_BRANCH: &str =
    "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)";

/// Jobs that push the ledger, publish or change billing on request run only from the default
/// branch, in their Environment (SPEC §6 "Workflows").
#[test]
fn ledger_writers_run_on_the_default_branch_in_their_environment() {
    let mut checked = 0;
    for (file, id, job) in &all_jobs() {
        let writes = runs_any(job, &["state push", "platform publish"]);
        if !writes {
            continue;
        }
        checked += 1;
        assert_eq!(
            environment(job),
            Some(expected_environment(file)),
            "{file}: job {id} writes the ledger outside its Environment"
        );
        assert!(
            job_if(job).contains(ON_DEFAULT_BRANCH),
            "{file}: job {id} writes the ledger without the default-branch condition `{ON_DEFAULT_BRANCH}`: if: {}",
            job_if(job)
        );
    }
    assert!(
        checked >= 3,
        "expected at least 3 ledger writers, found {checked}"
    );
}

/// The signing key reaches exactly the steps that push state, and only in jobs of the ledger
/// or billing Environment (whose secret it is).
#[test]
fn the_signing_key_reaches_state_push_steps_only() {
    for (file, id, job) in &all_jobs() {
        for step in steps(job) {
            let env = step.get("env").map(Value::to_string).unwrap_or_default();
            let has_key = env.contains("PLATFORM_LEDGER_SIGNING_KEY");
            let pushes = run_text(step).contains("state push");
            assert_eq!(
                has_key, pushes,
                "{file}: job {id}: the signing key goes to the steps that run `state push`, and only to them"
            );
            if has_key {
                assert!(
                    matches!(environment(job), Some("ledger" | "billing")),
                    "{file}: job {id}: the signing key outside the ledger/billing Environment"
                );
            }
        }
    }
}

/// A step that downloads another run's artifacts (`run-id`) takes only runtime evidence,
/// never a binary, and only in a job that checks where that run came from: this repository,
/// the default branch, no pull request. A step asks the API too (a dispatch names the run).
#[test]
fn artifacts_of_other_runs_are_guarded_and_never_executed() {
    let mut guarded = 0;
    for (file, id, job) in &all_jobs() {
        let all = steps(job);
        let Some(first) = all.iter().position(|s| s.pointer("/with/run-id").is_some()) else {
            continue;
        };
        guarded += 1;
        let cond = job_if(job);
        for must in [
            ON_DEFAULT_BRANCH,
            "github.event.workflow_run.event == 'schedule'",
            "github.event.workflow_run.head_branch == github.event.repository.default_branch",
            "github.event.workflow_run.head_repository.full_name == github.repository",
        ] {
            assert!(cond.contains(must), "{file}: job {id}: if: lacks `{must}`");
        }
        assert!(
            !cond.contains("pull_request"),
            "{file}: job {id}: a pull request's run must never qualify"
        );
        let asked = all[..first].iter().any(|s| {
            let r = run_text(s);
            r.contains("actions/runs/$RUN_ID") && r.contains("head_repository")
        });
        assert!(
            asked,
            "{file}: job {id}: no step checks the run through the API before downloading from it"
        );
        for step in &all {
            if step.pointer("/with/run-id").is_none() {
                continue;
            }
            let what = step
                .pointer("/with/name")
                .or_else(|| step.pointer("/with/pattern"))
                .and_then(Value::as_str)
                .unwrap_or("");
            assert!(
                what.starts_with("runtime-"),
                "{file}: job {id} downloads `{what}` from another run; only runtime evidence may come from there"
            );
        }
    }
    assert!(
        guarded >= 1,
        "publish.yml downloads the orchestrator run's evidence"
    );
}

/// Module secrets reach the orchestrator through `exec`: no shell stays behind as its parent
/// with the secrets in its environment (SPEC §6).
#[test]
fn the_orchestrator_is_started_with_exec() {
    let mut found = 0;
    for (file, id, job) in &all_jobs() {
        for step in steps(job) {
            let r = run_text(step);
            if !r.contains("platform orchestrator") {
                continue;
            }
            found += 1;
            let command = r
                .lines()
                .map(str::trim)
                .find(|l| !l.starts_with('#') && l.contains("platform orchestrator"))
                .unwrap_or("");
            assert!(
                command.starts_with("exec bin/platform orchestrator"),
                "{file}: job {id}: start the orchestrator with `exec bin/platform orchestrator ...`, not `{command}`"
            );
        }
    }
    assert!(found >= 1);
}

/// Every workflow, shipped and `platform init`'s: (file name, parsed).
fn every_workflow() -> Vec<(String, Value)> {
    workflow_files()
        .into_iter()
        .chain(template_workflow_files())
        .map(|p| (name(&p), load(&p)))
        .collect()
}

/// A scheduled run's event carries no repository, so the default-branch comparison alone is
/// false on every scheduled run: a job of a scheduled workflow that has it must let the
/// schedule through (scheduled runs are always on the default branch). Until 2026-12-03 the
/// `platform init` orchestrator.yml skipped every hourly run.
#[test]
fn scheduled_workflows_let_their_schedule_through_the_default_branch_condition() {
    let mut checked = 0;
    for (file, wf) in every_workflow() {
        if wf.pointer("/on/schedule").is_none() {
            continue;
        }
        for (id, job) in jobs(&wf) {
            if !job_if(job).contains(ON_DEFAULT_BRANCH) {
                continue;
            }
            checked += 1;
            assert!(
                job_if(job).contains("github.event_name == 'schedule' ||"),
                "{file}: job {id}: `{ON_DEFAULT_BRANCH}` is false on a scheduled run; allow `github.event_name == 'schedule' ||` it: if: {}",
                job_if(job)
            );
        }
    }
    assert!(
        checked >= 3,
        "orchestrator plan and merge, the template's run"
    );
}

/// A job that runs the orchestrator (modules, deliveries, module secrets) runs only where its
/// records are merged and pushed: from the default branch. Its own `if:`, or that of a job it
/// needs (directly or not), carries the default-branch condition. Until 2026-12-03 a dispatch
/// on another branch ran every shard of the shipped workflow, and only the merge was skipped.
#[test]
fn the_orchestrator_runs_only_from_the_default_branch() {
    let mut checked = 0;
    for (file, wf) in every_workflow() {
        for (id, job) in jobs(&wf) {
            if !runs_any(job, &["platform orchestrator"]) {
                continue;
            }
            checked += 1;
            let mut todo = vec![id.clone()];
            let mut seen = Vec::new();
            let mut guarded = false;
            while let Some(j) = todo.pop() {
                let def = &wf["jobs"][&j];
                guarded |= job_if(def).contains(ON_DEFAULT_BRANCH);
                let needs = match def.get("needs") {
                    Some(Value::String(s)) => vec![s.clone()],
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect(),
                    _ => vec![],
                };
                seen.push(j);
                todo.extend(needs.into_iter().filter(|n| !seen.contains(n)));
            }
            assert!(
                guarded,
                "{file}: job {id} runs the orchestrator on any branch: give it, or a job it needs, `{ON_DEFAULT_BRANCH}`"
            );
        }
    }
    assert_eq!(
        checked, 2,
        "the shipped shard job and the template's run job"
    );
}

/// Minutes a job keeps after its orchestrator step's own timeout, for the steps around it.
const AFTER_THE_PASS: f64 = 10.0;

/// A pass that runs too long (a module that hangs) or is cancelled has run and delivered what
/// it recorded, so its records are kept: the step that runs the orchestrator times out before
/// its job does (a job that reaches its timeout is cancelled), and the steps after it that
/// upload a segment or push the state run under `always()`, after a cancel too. The merge job
/// of the shipped workflow runs after a cancel as well. (Until 2026-12-03 they were
/// `!cancelled()`, and a timed-out shard or pass lost everything.) The stand-in runner plays
/// both (`workflows_stops`).
#[test]
fn a_pass_past_its_time_or_cancelled_keeps_its_records() {
    let mut checked = 0;
    for (file, wf) in every_workflow() {
        for (id, job) in jobs(&wf) {
            let all = steps(job);
            let Some(at) = all
                .iter()
                .position(|s| run_text(s).contains("platform orchestrator"))
            else {
                continue;
            };
            checked += 1;
            let minutes = |v: &Value| v.get("timeout-minutes").and_then(Value::as_f64);
            let job_minutes = minutes(job).unwrap_or(360.0);
            let own = minutes(all[at]).unwrap_or_else(|| {
                panic!("{file}: job {id}: the orchestrator step has no timeout-minutes of its own")
            });
            assert!(
                own + AFTER_THE_PASS <= job_minutes,
                "{file}: job {id}: the orchestrator step's timeout-minutes ({own}) must leave the job ({job_minutes}) {AFTER_THE_PASS} minutes for the steps around it"
            );
            let keeps: Vec<&Value> = all[at + 1..]
                .iter()
                .copied()
                .filter(|s| {
                    let uses = s.get("uses").and_then(Value::as_str).unwrap_or("");
                    uses.starts_with("actions/upload-artifact")
                        || run_text(s).contains("state push")
                        || run_text(s).contains("segment")
                })
                .collect();
            assert!(
                !keeps.is_empty(),
                "{file}: job {id}: nothing keeps the records"
            );
            for s in keeps {
                let cond = s.get("if").and_then(Value::as_str).unwrap_or("");
                assert!(
                    cond.contains("always()"),
                    "{file}: job {id}: step {:?} keeps the pass's records and must run under always(): if: {cond}",
                    s.get("name").or_else(|| s.get("uses"))
                );
            }
        }
        if let Some(merge) = wf.pointer("/jobs/merge") {
            assert!(
                job_if(merge).contains("always()"),
                "{file}: the merge job must run after a cancel too: if: {}",
                job_if(merge)
            );
        }
    }
    assert_eq!(
        checked, 2,
        "the shipped shard job and the template's run job"
    );
}
