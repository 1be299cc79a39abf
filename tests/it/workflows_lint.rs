//! The GitHub Actions workflows: actionlint accepts every file, and the rules that actionlint does not know hold (SHA pins, one ledger writer, secrets only in step env).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The group every job that writes the release-backed ledger joins.
const LEDGER_GROUP: &str = "platform-ledger-${{ github.repository }}";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn workflow_files() -> Vec<PathBuf> {
    let dir = root().join(".github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no workflow files in {}", dir.display());
    files
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// `PLATFORM_TEST_ACTIONLINT`, else the one scripts/setup-test-deps.sh installs.
fn actionlint() -> PathBuf {
    std::env::var_os("PLATFORM_TEST_ACTIONLINT")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".ci/venv/bin/actionlint"))
}

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

fn jobs(wf: &Value) -> Vec<(String, &Value)> {
    wf.get("jobs")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default()
}

fn steps(job: &Value) -> Vec<&Value> {
    job.get("steps")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn run_text(step: &Value) -> &str {
    step.get("run").and_then(Value::as_str).unwrap_or("")
}

/// Every job that pushes the ledger, merges it or tops it up waits for the others: the same
/// group, never cancelled mid-write.
#[test]
fn ledger_writers_share_one_concurrency_group() {
    let mut writers = 0;
    for path in workflow_files() {
        let wf = load(&path);
        for (id, job) in jobs(&wf) {
            let writes = steps(job).iter().any(|s| {
                let r = run_text(s);
                r.contains("state push") || r.contains("ledger merge")
            });
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
    // orchestrator merge, admin-topup, publish
    assert!(
        writers >= 3,
        "expected at least 3 ledger-writing jobs, found {writers}"
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
/// release-backed state or upload releases.
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
            let needs_it = steps(job).iter().any(|s| {
                let r = run_text(s);
                r.contains("state pull")
                    || r.contains("state push")
                    || r.contains("platform publish")
            });
            assert!(
                needs_it,
                "{}: job {id} has contents: write but neither uses the release-backed state nor publishes",
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

/// The ledger signing key (SPEC §7) reaches only the steps that push state.
#[test]
fn the_signing_key_reaches_only_state_push_steps() {
    let mut given = 0;
    for path in workflow_files() {
        let wf = load(&path);
        for (id, job) in jobs(&wf) {
            for step in steps(job) {
                let env = step.get("env").map(|e| e.to_string()).unwrap_or_default();
                if env.contains("PLATFORM_LEDGER_SIGNING_KEY") {
                    given += 1;
                    assert!(
                        run_text(step).contains("platform state push"),
                        "{}: job {id}: PLATFORM_LEDGER_SIGNING_KEY given to a step that does not push state",
                        name(&path)
                    );
                }
            }
        }
    }
    assert!(
        given >= 3,
        "every job that pushes state signs it: found {given}"
    );
}
