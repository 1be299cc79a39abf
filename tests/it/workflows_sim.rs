//! Runs the workflows' own `run:` scripts on this machine — admin-topup, orchestrator (plan, shards, merge), publish — with the real binary and a fake GitHub, so the shell inside the YAML is tested, not only linted.
//!
//! A small stand-in for the Actions runner: `${{ }}` expressions of the forms the workflows
//! use, `if:` conditions, step outputs and `$GITHUB_ENV`, and the actions they use
//! (checkout copies the repository, upload/download-artifact copy folders to and from a
//! store, laid out as download-artifact v5 and later do; setup-python and cache do nothing). Jobs run in the order the workflow's `needs`
//! give; matrix jobs one after another. An expression it does not know fails the test, so a
//! workflow change that this stand-in cannot follow is noticed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::fake_github;

use fake_github::{FakeGithub, TOKEN};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const REPOSITORY: &str = "acme/platform";
const DEFAULT_BRANCH: &str = "main";
const STATE_TAG: &str = "billing-state-v1";
const LEDGER_FILES: [&str; 3] = ["billing.jsonl", "evidence.jsonl", "audit.jsonl"];

// ---------------------------------------------------------------------------------------
// Expressions: the subset of GitHub's expression language the workflows use.

#[derive(Debug, Clone, PartialEq)]
enum V {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
}

impl V {
    fn truthy(&self) -> bool {
        match self {
            V::Null => false,
            V::Bool(b) => *b,
            V::Num(n) => *n != 0.0,
            V::Str(s) => !s.is_empty(),
        }
    }
    fn text(&self) -> String {
        match self {
            V::Null => String::new(),
            V::Bool(b) => b.to_string(),
            V::Num(n) if n.fract() == 0.0 => format!("{}", *n as i64),
            V::Num(n) => n.to_string(),
            V::Str(s) => s.clone(),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    ctx: &'a dyn Fn(&str) -> V,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, tok: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(tok.as_bytes()) {
            self.i += tok.len();
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> V {
        let mut v = self.and();
        while self.eat("||") {
            let r = self.and();
            v = if v.truthy() { v } else { r };
        }
        v
    }
    fn and(&mut self) -> V {
        let mut v = self.cmp();
        while self.eat("&&") {
            let r = self.cmp();
            v = if v.truthy() { r } else { v };
        }
        v
    }
    fn cmp(&mut self) -> V {
        let l = self.unary();
        if self.eat("==") {
            let r = self.unary();
            return V::Bool(l.text() == r.text());
        }
        if self.eat("!=") {
            let r = self.unary();
            return V::Bool(l.text() != r.text());
        }
        l
    }
    fn unary(&mut self) -> V {
        if self.eat("!") {
            return V::Bool(!self.unary().truthy());
        }
        self.atom()
    }
    fn atom(&mut self) -> V {
        self.ws();
        if self.eat("(") {
            let v = self.or();
            assert!(self.eat(")"), "expected )");
            return v;
        }
        if self.eat("'") {
            let start = self.i;
            while self.s[self.i] != b'\'' {
                self.i += 1;
            }
            let v = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
            self.i += 1;
            return V::Str(v);
        }
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || b"._-[]*".contains(&self.s[self.i]))
        {
            self.i += 1;
        }
        let word = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        assert!(!word.is_empty(), "cannot parse expression at {}", self.i);
        if self.eat("(") {
            let mut args = Vec::new();
            if !self.eat(")") {
                loop {
                    args.push(self.or());
                    if self.eat(")") {
                        break;
                    }
                    assert!(self.eat(","), "expected , or ) in {word}()");
                }
            }
            return match (word.as_str(), args.as_slice()) {
                ("cancelled", []) => V::Bool(false),
                ("always", []) | ("success", []) => V::Bool(true),
                ("fromJSON", [a]) => a.clone(),
                ("format", [f, rest @ ..]) => {
                    let mut out = f.text();
                    for (i, a) in rest.iter().enumerate() {
                        out = out.replace(&format!("{{{i}}}"), &a.text());
                    }
                    V::Str(out)
                }
                (f, _) => panic!("function {f}() is not known to the stand-in runner"),
            };
        }
        match word.as_str() {
            "true" => V::Bool(true),
            "false" => V::Bool(false),
            "null" => V::Null,
            w if w.parse::<f64>().is_ok() => V::Num(w.parse().unwrap()),
            w => (self.ctx)(w),
        }
    }
}

fn eval(expr: &str, ctx: &dyn Fn(&str) -> V) -> V {
    let mut p = Parser {
        s: expr.as_bytes(),
        i: 0,
        ctx,
    };
    let v = p.or();
    p.ws();
    assert_eq!(p.i, expr.len(), "trailing text in expression `{expr}`");
    v
}

/// Replace every `${{ expr }}` in `text`.
fn interpolate(text: &str, ctx: &dyn Fn(&str) -> V) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("unclosed ${{") + start;
        out.push_str(&eval(rest[start + 3..end].trim(), ctx).text());
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// An `if:` value: with or without `${{ }}`.
fn condition(text: &str, ctx: &dyn Fn(&str) -> V) -> bool {
    let t = text.trim();
    let inner = t
        .strip_prefix("${{")
        .and_then(|t| t.strip_suffix("}}"))
        .unwrap_or(t);
    eval(inner.trim(), ctx).truthy()
}

// ---------------------------------------------------------------------------------------
// The stand-in runner.

/// What later steps of a job see of a step: `steps.<id>.outputs.*` and `.outcome`.
#[derive(Debug, Default, Clone)]
struct StepRecord {
    outputs: BTreeMap<String, String>,
    outcome: &'static str,
}

#[derive(Debug, Default, Clone)]
struct JobResult {
    success: bool,
    outputs: BTreeMap<String, String>,
    summary: String,
    log: String,
}

struct Runner {
    root: tempfile::TempDir,
    fake: FakeGithub,
    /// Event context: `github.*` values and `inputs.*`.
    github: BTreeMap<String, String>,
    inputs: BTreeMap<String, V>,
    /// Results of earlier jobs of the current workflow run, by job id.
    needs: BTreeMap<String, JobResult>,
    workspaces: usize,
    run_id: u64,
    /// Job-level env values replaced by the test (e.g. a smaller MERGE_BATCH).
    env_overrides: BTreeMap<String, String>,
}

impl Runner {
    fn new() -> Runner {
        let root = tempfile::tempdir().unwrap();
        let fake = FakeGithub::start_for(REPOSITORY);
        let repo = root.path().join("repo");
        let crate_root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for d in ["modules", "tenants", "config"] {
            copy_tree(&crate_root.join(d), &repo.join(d));
        }
        // A third tenant whose work order fails (text_stats on an empty file: refundable).
        let t = repo.join("tenants/initech");
        std::fs::create_dir_all(t.join("workorders")).unwrap();
        std::fs::create_dir_all(t.join("assets")).unwrap();
        std::fs::write(t.join("tenant.yml"), "tenant_id: initech\nname: Initech\n").unwrap();
        std::fs::write(t.join("assets/empty.txt"), "").unwrap();
        std::fs::write(
            t.join("workorders/tps.yml"),
            "work_order_id: tps\nsteps:\n  - step_id: stats\n    module_id: text_stats\n    kind: transform\n    inputs: {source: {asset: empty.txt}}\n",
        )
        .unwrap();
        // The shipped iam.yml grants nobody: the demo's grants stand for an installation's.
        crate::support::orch::use_demo_iam(&repo);
        // The workflows' profile, pointed at the fake.
        std::fs::write(
            repo.join("config/runtime_profile.dev_github.yml"),
            format!(
                "profile_name: dev_github\nbilling_state_dir: .billing-state-dev\nruntime_dir: runtime\ngithub:\n  repository: {REPOSITORY}\n  api_url: {}\n  state_tag: {STATE_TAG}\n",
                fake.uri()
            ),
        )
        .unwrap();
        Runner {
            root,
            fake,
            github: BTreeMap::new(),
            inputs: BTreeMap::new(),
            needs: BTreeMap::new(),
            workspaces: 0,
            run_id: 0,
            env_overrides: BTreeMap::new(),
        }
    }

    /// Artifacts belong to a workflow run, as on GitHub.
    fn artifacts_of(&self, run_id: u64) -> PathBuf {
        self.root.path().join("artifacts").join(run_id.to_string())
    }

    fn artifacts(&self) -> PathBuf {
        self.artifacts_of(self.run_id)
    }

    /// A new workflow run: its event, inputs, run id, and the `build` job's artifact.
    fn start_run(&mut self, event: &str, run_id: u64, inputs: &[(&str, V)]) {
        self.needs.clear();
        self.run_id = run_id;
        let bin = self.artifacts().join("platform-bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_platform"), bin.join("platform")).unwrap();
        self.github = BTreeMap::from([
            ("event_name".into(), event.into()),
            ("run_id".into(), run_id.to_string()),
            ("run_attempt".into(), "1".into()),
            ("repository".into(), REPOSITORY.into()),
            ("actor".into(), "demo-admin".into()),
            // Every event runs on the default branch unless a test says otherwise.
            ("ref".into(), format!("refs/heads/{DEFAULT_BRANCH}")),
        ]);
        // A scheduled run's payload has no repository (GitHub's, not the stand-in's, rule).
        if event != "schedule" {
            self.github.insert(
                "event.repository.default_branch".into(),
                DEFAULT_BRANCH.into(),
            );
        }
        if event == "workflow_run" {
            // By default: the orchestrator run just before, scheduled, on the default branch.
            for (k, v) in [
                ("id", (run_id - 1).to_string()),
                ("conclusion", "failure".into()),
                ("run_started_at", "2000-01-01T00:00:00Z".into()),
                ("event", "schedule".into()),
                ("head_branch", DEFAULT_BRANCH.into()),
                ("head_repository.full_name", REPOSITORY.into()),
            ] {
                self.github.insert(format!("event.workflow_run.{k}"), v);
            }
        }
        self.inputs = inputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        self.needs.insert(
            "build".into(),
            JobResult {
                success: true,
                outputs: BTreeMap::from([("artifact".into(), "platform-bin".into())]),
                ..Default::default()
            },
        );
    }

    fn lookup(
        &self,
        path: &str,
        matrix: &BTreeMap<String, String>,
        steps: &BTreeMap<String, StepRecord>,
        env: &BTreeMap<String, String>,
    ) -> V {
        let parts: Vec<&str> = path.splitn(2, '.').collect();
        let rest = parts.get(1).copied().unwrap_or("");
        match parts[0] {
            "github" => match self.github.get(rest) {
                Some(s) => V::Str(s.clone()),
                // Payloads differ by event (a scheduled run's has no repository): null.
                None if rest.starts_with("event.") => V::Null,
                None => panic!("github.{rest} is not known to the stand-in runner"),
            },
            "inputs" => self.inputs.get(rest).cloned().unwrap_or(V::Null),
            "matrix" => V::Str(matrix.get(rest).cloned().unwrap_or_default()),
            "env" => V::Str(env.get(rest).cloned().unwrap_or_default()),
            "secrets" if rest == "GITHUB_TOKEN" => V::Str(TOKEN.into()),
            "secrets" => V::Str(String::new()),
            "runner" => V::Str("Linux".into()),
            "needs" => {
                let (job, what) = rest.split_once('.').unwrap();
                let r = self
                    .needs
                    .get(job)
                    .unwrap_or_else(|| panic!("needs.{job}: job has not run"));
                if what == "result" {
                    V::Str(if r.success { "success" } else { "failure" }.into())
                } else {
                    let key = what.strip_prefix("outputs.").unwrap();
                    V::Str(r.outputs.get(key).cloned().unwrap_or_default())
                }
            }
            "steps" => {
                let (id, what) = rest.split_once('.').unwrap();
                let step = steps.get(id);
                if what == "outcome" {
                    return V::Str(step.map(|s| s.outcome).unwrap_or("skipped").into());
                }
                let key = what.strip_prefix("outputs.").unwrap();
                V::Str(
                    step.and_then(|o| o.outputs.get(key))
                        .cloned()
                        .unwrap_or_default(),
                )
            }
            other => panic!("context {other} is not known to the stand-in runner"),
        }
    }

    /// Run one job (one matrix entry); records it under `needs` when it is not a matrix job.
    fn run_job(&mut self, wf: &Value, job_id: &str, matrix: &[(&str, &str)]) -> JobResult {
        let job = &wf["jobs"][job_id];
        let matrix: BTreeMap<String, String> = matrix
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut steps_out: BTreeMap<String, StepRecord> = BTreeMap::new();
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        self.workspaces += 1;
        let ws = self
            .root
            .path()
            .join(format!("ws-{}-{job_id}", self.workspaces));
        std::fs::create_dir_all(&ws).unwrap();
        let summary_file = ws.join(".summary.md");
        let env_file = ws.join(".github_env");
        std::fs::write(&summary_file, "").unwrap();
        std::fs::write(&env_file, "").unwrap();

        let mut result = JobResult {
            success: true,
            ..Default::default()
        };
        if let Some(cond) = job.get("if").and_then(Value::as_str) {
            let ok = condition(cond, &|p| self.lookup(p, &matrix, &steps_out, &env));
            if !ok {
                result.log.push_str("job skipped\n");
                return result;
            }
        }
        for scope in [&wf["env"], &job["env"]] {
            if let Some(m) = scope.as_object() {
                for (k, v) in m {
                    let val = interpolate(&yaml_text(v), &|p| {
                        self.lookup(p, &matrix, &steps_out, &env)
                    });
                    env.insert(k.clone(), val);
                }
            }
        }
        for (k, v) in &self.env_overrides {
            if env.contains_key(k) {
                env.insert(k.clone(), v.clone());
            }
        }

        for (n, step) in job["steps"].as_array().unwrap().iter().enumerate() {
            let ctx = |p: &str| self.lookup(p, &matrix, &steps_out, &env);
            let runs = match step.get("if").and_then(Value::as_str) {
                Some(c) => condition(c, &ctx),
                None => result.success,
            };
            if !runs {
                continue;
            }
            let mut step_env = env.clone();
            if let Some(m) = step["env"].as_object() {
                for (k, v) in m {
                    step_env.insert(k.clone(), interpolate(&yaml_text(v), &ctx));
                }
            }
            let ok = if let Some(uses) = step.get("uses").and_then(Value::as_str) {
                let with: BTreeMap<String, String> = step["with"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), interpolate(&yaml_text(v), &ctx)))
                            .collect()
                    })
                    .unwrap_or_default();
                self.action(uses, &with, &ws, &mut result.log)
            } else {
                let script = interpolate(step["run"].as_str().unwrap(), &ctx);
                let output_file = ws.join(format!(".output-{n}"));
                std::fs::write(&output_file, "").unwrap();
                let script_file = ws.join(format!(".step-{n}.sh"));
                std::fs::write(&script_file, &script).unwrap();
                let out = Command::new("bash")
                    .arg("-e")
                    .arg(&script_file)
                    .current_dir(&ws)
                    .env_remove("GITHUB_ACTOR")
                    .envs(&step_env)
                    .env("GITHUB_OUTPUT", &output_file)
                    .env("GITHUB_ENV", &env_file)
                    .env("GITHUB_STEP_SUMMARY", &summary_file)
                    // Set on every GitHub runner: the API the workflows' own calls go to.
                    .env("GITHUB_API_URL", self.fake.uri())
                    .env("GITHUB_REPOSITORY", REPOSITORY)
                    .output()
                    .unwrap();
                result.log.push_str(&format!(
                    "--- step {n}: {}\n{}{}",
                    step.get("name").and_then(Value::as_str).unwrap_or(""),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
                let outputs = key_values(&std::fs::read_to_string(&output_file).unwrap());
                if let Some(id) = step.get("id").and_then(Value::as_str) {
                    let outcome = if out.status.success() {
                        "success"
                    } else {
                        "failure"
                    };
                    steps_out.insert(id.to_string(), StepRecord { outputs, outcome });
                }
                for (k, v) in key_values(&std::fs::read_to_string(&env_file).unwrap()) {
                    env.insert(k, v);
                }
                out.status.success() || step.get("continue-on-error") == Some(&Value::Bool(true))
            };
            if !ok {
                result.log.push_str(&format!("--- step {n} FAILED\n"));
                result.success = false;
            }
        }
        if let Some(outs) = job.get("outputs").and_then(Value::as_object) {
            for (k, v) in outs {
                let val = interpolate(&yaml_text(v), &|p| {
                    self.lookup(p, &matrix, &steps_out, &env)
                });
                result.outputs.insert(k.clone(), val);
            }
        }
        result.summary = std::fs::read_to_string(&summary_file).unwrap();
        result
    }

    /// The actions the workflows use.
    fn action(
        &self,
        uses: &str,
        with: &BTreeMap<String, String>,
        ws: &Path,
        log: &mut String,
    ) -> bool {
        let action = uses.split('@').next().unwrap();
        let store = match with.get("run-id") {
            Some(id) => self.artifacts_of(id.parse().unwrap()),
            None => self.artifacts(),
        };
        match action {
            "actions/checkout" => {
                copy_tree(&self.root.path().join("repo"), ws);
                true
            }
            "actions/setup-python" | "actions/cache" => true,
            "actions/upload-artifact" => {
                let name = &with["name"];
                let src = ws.join(&with["path"]);
                let dest = store.join(name);
                if dest.exists() {
                    assert_eq!(
                        with.get("overwrite").map(String::as_str),
                        Some("true"),
                        "artifact {name} uploaded twice without overwrite (GitHub answers 409)"
                    );
                    std::fs::remove_dir_all(&dest).unwrap();
                }
                if !src.exists() {
                    let policy = with.get("if-no-files-found").map(String::as_str);
                    log.push_str(&format!("upload {name}: no files\n"));
                    return policy != Some("error") && policy.is_some();
                }
                std::fs::create_dir_all(&dest).unwrap();
                if src.is_dir() {
                    // upload-artifact leaves out hidden files unless include-hidden-files.
                    copy_visible(&src, &dest);
                } else {
                    std::fs::copy(&src, dest.join(src.file_name().unwrap())).unwrap();
                }
                true
            }
            "actions/download-artifact" => {
                let dest = ws.join(with.get("path").map(String::as_str).unwrap_or("."));
                if let Some(name) = with.get("name") {
                    let src = store.join(name);
                    if !src.exists() {
                        log.push_str(&format!("download {name}: no such artifact\n"));
                        return false;
                    }
                    copy_tree(&src, &dest);
                    drop_exec_bits(&dest);
                } else {
                    let pattern = &with["pattern"];
                    let prefix = pattern.strip_suffix('*').unwrap();
                    let merge = with.get("merge-multiple").map(String::as_str) == Some("true");
                    let matched: Vec<(String, PathBuf)> = std::fs::read_dir(&store)
                        .unwrap()
                        .map(|e| e.unwrap())
                        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                        .filter(|(n, _)| n.starts_with(prefix))
                        .collect();
                    // Since download-artifact v5, a pattern that matches one artifact
                    // extracts it into `path` itself, as a download by name does.
                    let flat = merge || matched.len() == 1;
                    for (n, from) in &matched {
                        let to = if flat { dest.clone() } else { dest.join(n) };
                        copy_tree(from, &to);
                        drop_exec_bits(&to);
                    }
                }
                true
            }
            other => panic!("action {other} is not known to the stand-in runner"),
        }
    }

    /// Run a whole workflow: jobs in `needs` order, matrix jobs once per entry. The run is
    /// known to the fake's workflow-run API afterwards, as GitHub knows its runs.
    fn run_workflow(&mut self, file: &str) -> BTreeMap<String, JobResult> {
        let branch = self.github["ref"]
            .trim_start_matches("refs/heads/")
            .to_string();
        self.fake.state().workflow_runs.insert(
            self.run_id,
            serde_json::json!({
                "id": self.run_id,
                "path": format!(".github/workflows/{file}"),
                "event": self.github["event_name"],
                "head_branch": branch,
                "head_repository": {"full_name": REPOSITORY},
                "status": "completed",
            }),
        );
        let wf = load_workflow(file);
        let order = job_order(&wf);
        let mut results = BTreeMap::new();
        for id in order {
            if id == "build" {
                continue; // the binary is already in the artifact store
            }
            let job = &wf["jobs"][&id];
            let result = if let Some(m) = job.pointer("/strategy/matrix/shard") {
                let list = interpolate(m.as_str().unwrap(), &|p| {
                    self.lookup(p, &BTreeMap::new(), &BTreeMap::new(), &BTreeMap::new())
                });
                let shards: Vec<u64> = serde_json::from_str(&list).unwrap();
                let mut all = JobResult {
                    success: true,
                    ..Default::default()
                };
                for k in shards {
                    let r = self.run_job(&wf, &id, &[("shard", &k.to_string())]);
                    all.success &= r.success;
                    all.summary.push_str(&r.summary);
                    all.log.push_str(&format!("=== shard {k}\n{}", r.log));
                }
                all
            } else {
                self.run_job(&wf, &id, &[])
            };
            self.needs.insert(id.clone(), result.clone());
            results.insert(id, result);
        }
        results
    }

    fn remote(&self, name: &str) -> Vec<u8> {
        self.fake.asset_data(STATE_TAG, name).unwrap_or_default()
    }

    /// Pull the remote state into a fresh directory and run `platform` on it.
    fn platform_on_remote(&self, args: &[&str]) -> String {
        let dir = tempfile::tempdir().unwrap();
        for f in LEDGER_FILES {
            std::fs::write(dir.path().join(f), self.remote(f)).unwrap();
        }
        let out = Command::new(env!("CARGO_BIN_EXE_platform"))
            .arg("--repo")
            .arg(self.root.path().join("repo"))
            .args(args)
            .arg("--billing-state-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn balance(&self, tenant: &str) -> i64 {
        let v: Value = serde_json::from_str(&self.platform_on_remote(&[
            "balance",
            "--tenant-id",
            tenant,
            "--json",
        ]))
        .unwrap();
        v["balance_credits"].as_i64().unwrap()
    }
}

fn yaml_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn key_values(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_workflow(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".github/workflows")
        .join(file);
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Job ids with every job after the jobs it needs (ties in file order).
fn job_order(wf: &Value) -> Vec<String> {
    let jobs = wf["jobs"].as_object().unwrap();
    let needs = |id: &str| -> Vec<String> {
        match &jobs[id].get("needs") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
            _ => vec![],
        }
    };
    let mut done: Vec<String> = Vec::new();
    while done.len() < jobs.len() {
        let before = done.len();
        for id in jobs.keys() {
            if !done.contains(id) && needs(id).iter().all(|n| done.contains(n)) {
                done.push(id.clone());
            }
        }
        assert!(done.len() > before, "cycle in needs");
    }
    done
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

fn copy_visible(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_visible(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

/// Artifacts lose the executable bit on the way through GitHub: so do they here (which is
/// why the workflows `chmod +x bin/platform`).
fn drop_exec_bits(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for e in walk(dir) {
        let mut p = std::fs::metadata(&e).unwrap().permissions();
        p.set_mode(0o644);
        std::fs::set_permissions(&e, p).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

fn must(results: &BTreeMap<String, JobResult>, job: &str, success: bool) {
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
            &[
                ("tenant_id", V::Str(tenant.into())),
                ("amount_credits", V::Num(amount)),
                ("topup_method_id", V::Str("manual".into())),
                ("reference", V::Str(format!("seed-{tenant}"))),
                ("note", V::Str(String::new())),
            ],
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
        &[
            ("tenant_id", V::Str("acme".into())),
            ("amount_credits", V::Num(1000.0)),
            ("topup_method_id", V::Str("manual".into())),
            ("reference", V::Str("free-money".into())),
            ("note", V::Str(String::new())),
        ],
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
    r.start_run(
        "workflow_dispatch",
        100,
        &[
            ("tenants_per_shard", V::Num(1.0)),
            ("max_shards", V::Num(256.0)),
            ("max_parallel", V::Num(2.0)),
            ("retry_failed", V::Bool(false)),
        ],
    );
    let res = r.run_workflow("orchestrator.yml");
    must(&res, "plan", true);
    assert_eq!(res["plan"].outputs["shards"], "[1,2,3]");
    assert_eq!(res["plan"].outputs["max_parallel"], "2");
    must(&res, "shard", true);
    // initech's work order failed: its records are pushed, then the merge job fails the run.
    must(&res, "merge", false);
    let log = &res["merge"].log;
    assert!(
        log.contains("work orders failed or were invalid on shard(s)"),
        "{log}"
    );
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
    let out = Command::new(env!("CARGO_BIN_EXE_platform"))
        .args(["ledger", "merge", "--into"])
        .arg(&into)
        .args(&segments)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in LEDGER_FILES {
        assert_eq!(
            std::fs::read(into.join(f)).unwrap(),
            r.remote(f),
            "{f}: merging in batches gave other bytes than one merge"
        );
    }
    assert!(res["shard"]
        .summary
        .contains("| acme/weekly-digest | 1 | ✅ COMPLETED | 13 | 0 |"));
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
    r.github
        .insert("event.workflow_run.run_started_at".into(), started);
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
    assert!(
        res["publish"].log.contains("job skipped"),
        "{}",
        res["publish"].log
    );

    // A dispatch naming the fork run: the API says what it is, and the job stops there.
    r.start_run(
        "workflow_dispatch",
        502,
        &[
            ("orchestrator_run_id", V::Str(fork_run.to_string())),
            ("since", V::Str(String::new())),
        ],
    );
    let res = r.run_workflow("publish.yml");
    must(&res, "publish", false);
    let log = &res["publish"].log;
    assert!(log.contains("orchestrator run 500 is not used"), "{log}");
    assert!(
        log.contains("the schedule or a dispatch started it"),
        "{log}"
    );
    assert!(log.contains("it ran in acme/platform"), "{log}");

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
    for ws in walk(r.root.path()) {
        assert!(
            !ws.ends_with("runtime/planted.txt"),
            "the fork's runtime artifact was downloaded: {}",
            ws.display()
        );
    }
}

/// Jobs that change billing or push the ledger run only from the default branch: a dispatch
/// on another branch skips them (the Environments' branch rules say the same on GitHub).
#[test]
fn ledger_writing_jobs_do_not_run_off_the_default_branch() {
    let mut r = Runner::new();
    let feature = "refs/heads/feature".to_string();
    r.start_run(
        "workflow_dispatch",
        10,
        &[
            ("tenant_id", V::Str("acme".into())),
            ("amount_credits", V::Num(100.0)),
            ("topup_method_id", V::Str("manual".into())),
            ("reference", V::Str("from-a-branch".into())),
            ("note", V::Str(String::new())),
        ],
    );
    r.github.insert("ref".into(), feature.clone());
    let res = r.run_workflow("admin-topup.yml");
    assert!(
        res["topup"].log.contains("job skipped"),
        "{}",
        res["topup"].log
    );

    r.start_run(
        "workflow_dispatch",
        20,
        &[
            ("tenants_per_shard", V::Num(25.0)),
            ("max_shards", V::Num(256.0)),
            ("max_parallel", V::Num(1.0)),
            ("retry_failed", V::Bool(false)),
        ],
    );
    r.github.insert("ref".into(), feature.clone());
    let res = r.run_workflow("orchestrator.yml");
    must(&res, "plan", true);
    assert!(
        res["merge"].log.contains("job skipped"),
        "{}",
        res["merge"].log
    );

    r.start_run(
        "workflow_dispatch",
        21,
        &[
            ("orchestrator_run_id", V::Str("20".into())),
            ("since", V::Str(String::new())),
        ],
    );
    r.github.insert("ref".into(), feature);
    let res = r.run_workflow("publish.yml");
    assert!(res["publish"].log.contains("job skipped"));
    assert_eq!(
        r.fake.writes(),
        Vec::<String>::new(),
        "something was pushed"
    );
    assert!(r.fake.release(STATE_TAG).is_none());
}
