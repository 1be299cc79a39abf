//! A small stand-in for the GitHub Actions runner, so the workflows' own `run:` scripts are
//! tested, not only linted: `${{ }}` expressions, `if:` conditions, step outputs and
//! `$GITHUB_ENV`, and the actions the workflows use (checkout copies the repository,
//! upload/download-artifact copy folders to and from a store per workflow run, laid out as
//! download-artifact v5 and later do; setup-python and cache do nothing; the init template's
//! install-platform puts the binary on PATH). Jobs run in the order of their `needs`; matrix
//! jobs one after another. A test may stop a step that runs too long (`Interrupt`): by
//! timeouts, as GitHub's step and job `timeout-minutes` would, or by cancelling the run.
//! Anything it does not know fails the test, so a workflow change it cannot follow is noticed.
use super::fake_github::{FakeGithub, TOKEN};
use super::fx::temp_dir;
use super::fx::{
    bin, clean_env, copy_tree, copy_tree_except, crate_root, platform_in, use_demo_iam, Transcript,
    LEDGER_FILES,
};
use super::workflow_expr::{condition, interpolate, V};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

pub const REPOSITORY: &str = "acme/platform";
pub const DEFAULT_BRANCH: &str = "main";
pub const STATE_TAG: &str = "billing-state-v1";

/// What later steps of a job see of a step: `steps.<id>.outputs.*` and `.outcome`.
#[derive(Debug, Default, Clone)]
struct StepRecord {
    outputs: BTreeMap<String, String>,
    outcome: &'static str,
}

/// How a job (or all entries of a matrix job) ended.
#[derive(Debug, Default, Clone)]
pub struct JobResult {
    pub success: bool,
    /// Its `if:` was false (for a matrix job: before any entry ran).
    pub skipped: bool,
    /// It was cancelled: the run was, or it reached its `timeout-minutes`.
    pub cancelled: bool,
    pub outputs: BTreeMap<String, String>,
    pub summary: String,
    pub log: String,
}

impl JobResult {
    /// `needs.<job>.result`.
    pub fn conclusion(&self) -> &'static str {
        match (self.skipped, self.cancelled, self.success) {
            (true, _, _) => "skipped",
            (_, true, _) => "cancelled",
            (_, _, true) => "success",
            _ => "failure",
        }
    }

    fn skipped() -> JobResult {
        JobResult {
            success: true,
            skipped: true,
            log: "job skipped\n".into(),
            ..Default::default()
        }
    }
}

/// What ends a step that would run on (a module that hangs), once `when` holds.
pub enum Stop {
    /// It runs past its time: its own `timeout-minutes` ends it as a failed step when that is
    /// below the job's; otherwise the job's ends it, and GitHub cancels the job.
    Timeout,
    /// A person cancels the workflow run while it runs.
    CancelRun,
}

/// A step of one job (one matrix entry, when `shard` is given) that a test stops: `step` is
/// its `id`, or its `name` when it has none; `when` is asked about the job's workspace while
/// the step runs. The step must still be running when `when` first holds.
pub struct Interrupt {
    pub job: &'static str,
    pub shard: Option<&'static str>,
    pub step: &'static str,
    pub when: Box<dyn Fn(&Path) -> bool>,
    pub by: Stop,
}

/// A job while it runs: its workspace, matrix entry, environment and what its steps left.
#[derive(Default)]
struct Job {
    id: String,
    ws: PathBuf,
    /// The job's `timeout-minutes` (GitHub's default: 360).
    timeout_minutes: f64,
    /// GitHub cancelled this job (the run was cancelled, or the job timed out): what its
    /// later steps see as `cancelled()`.
    cancelled: bool,
    /// Folders later steps find first on PATH (what an action adds to `$GITHUB_PATH`).
    path: Vec<PathBuf>,
    matrix: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
    steps: BTreeMap<String, StepRecord>,
    result: JobResult,
}

impl Job {
    fn summary_file(&self) -> PathBuf {
        self.ws.join(".summary.md")
    }

    fn env_file(&self) -> PathBuf {
        self.ws.join(".github_env")
    }
}

/// A workflow run dispatched while another one is in progress (`run_workflow_dispatching`).
pub struct Dispatch {
    pub file: &'static str,
    pub event: &'static str,
    pub run_id: u64,
    pub inputs: Vec<(&'static str, V)>,
}

/// What `start_run` set for a run, and its jobs' results: to come back to it (a re-run).
pub struct SavedRun {
    github: BTreeMap<String, String>,
    inputs: BTreeMap<String, V>,
    needs: BTreeMap<String, JobResult>,
    run_id: u64,
}

pub struct Runner {
    pub root: tempfile::TempDir,
    pub fake: FakeGithub,
    /// Event context: `github.*` values and `inputs.*`.
    pub github: BTreeMap<String, String>,
    inputs: BTreeMap<String, V>,
    /// Results of earlier jobs of the current workflow run, by job id.
    needs: BTreeMap<String, JobResult>,
    workspaces: usize,
    run_id: u64,
    /// Job-level env values replaced by the test (e.g. a smaller MERGE_BATCH).
    pub env_overrides: BTreeMap<String, String>,
    /// This runner's copy of the build job's binary, which artifacts link to (see `fetch`).
    binary: PathBuf,
    /// Where `run_workflow` reads workflow files: this repository's .github/workflows, unless
    /// a test runs the ones `platform init` writes.
    pub workflows: PathBuf,
    /// A step the test stops, once (see `Interrupt`).
    pub interrupt: RefCell<Option<Interrupt>>,
    /// A person cancelled the current run (`Stop::CancelRun`).
    run_cancelled: Cell<bool>,
}

impl Runner {
    /// A repository (this one's example platform, the demo's grants, a third tenant whose
    /// work order fails) whose workflows' profile points at a fresh fake GitHub.
    pub fn new() -> Runner {
        let root = temp_dir();
        let fake = FakeGithub::start_for(REPOSITORY);
        let repo = root.path().join("repo");
        write_repo(&repo, &fake);
        // One copy per runner: the runs' artifacts and the jobs' downloads link to it.
        let binary = root.path().join("build/platform");
        std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
        std::fs::copy(bin(), &binary).unwrap();
        Runner {
            binary,
            root,
            fake,
            github: BTreeMap::new(),
            inputs: BTreeMap::new(),
            needs: BTreeMap::new(),
            workspaces: 0,
            run_id: 0,
            env_overrides: BTreeMap::new(),
            workflows: crate_root().join(".github/workflows"),
            interrupt: RefCell::new(None),
            run_cancelled: Cell::new(false),
        }
    }

    /// A workflow file of `self.workflows`, parsed.
    pub fn load(&self, file: &str) -> Value {
        load_workflow_in(&self.workflows, file)
    }

    /// Artifacts belong to a workflow run, as on GitHub.
    pub fn artifacts_of(&self, run_id: u64) -> PathBuf {
        self.root.path().join("artifacts").join(run_id.to_string())
    }

    pub fn artifacts(&self) -> PathBuf {
        self.artifacts_of(self.run_id)
    }

    /// A new workflow run: its event, inputs, run id, and the `build` job's artifact.
    pub fn start_run(&mut self, event: &str, run_id: u64, inputs: &[(&str, V)]) {
        self.needs.clear();
        self.run_cancelled.set(false);
        self.run_id = run_id;
        let store = self.artifacts().join("platform-bin");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::hard_link(&self.binary, store.join("platform")).unwrap();
        self.github = event_context(event, run_id);
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

    /// The value of a context path (`github.ref`, `needs.plan.outputs.shards`, ...) in a job.
    fn lookup(&self, path: &str, job: &Job) -> V {
        // In a step's `if:` (a job's own are answered by `job_runs`).
        match path {
            "success()" => return V::Bool(job.result.success && !job.cancelled),
            "cancelled()" => return V::Bool(job.cancelled),
            _ => {}
        }
        let (context, rest) = path.split_once('.').unwrap_or((path, ""));
        match context {
            "github" => match self.github.get(rest) {
                Some(s) => V::Str(s.clone()),
                // The person who started this attempt: the dispatcher, unless a test re-runs
                // the run as someone else (GitHub keeps `actor` as the dispatcher then).
                None if rest == "triggering_actor" => V::Str(self.github["actor"].clone()),
                // Payloads differ by event (a scheduled run's has no repository): null.
                None if rest.starts_with("event.") => V::Null,
                None => panic!("github.{rest} is not known to the stand-in runner"),
            },
            "inputs" => self.inputs.get(rest).cloned().unwrap_or(V::Null),
            "matrix" => V::Str(job.matrix.get(rest).cloned().unwrap_or_default()),
            "env" => V::Str(job.env.get(rest).cloned().unwrap_or_default()),
            "secrets" if rest == "GITHUB_TOKEN" => V::Str(TOKEN.into()),
            "secrets" => V::Str(String::new()),
            "runner" => V::Str("Linux".into()),
            "needs" => self.needs_value(rest),
            "steps" => step_value(&job.steps, rest),
            other => panic!("context {other} is not known to the stand-in runner"),
        }
    }

    /// `needs.<job>.result` or `needs.<job>.outputs.<key>`.
    fn needs_value(&self, rest: &str) -> V {
        let (job, what) = rest.split_once('.').unwrap();
        let r = self
            .needs
            .get(job)
            .unwrap_or_else(|| panic!("needs.{job}: job has not run"));
        if what == "result" {
            return V::Str(r.conclusion().into());
        }
        let key = what.strip_prefix("outputs.").unwrap();
        V::Str(r.outputs.get(key).cloned().unwrap_or_default())
    }

    /// Replace an output of a job of the current run that has ended (what later jobs read as
    /// `needs.<job>.outputs.<key>`).
    pub fn set_output(&mut self, job: &str, key: &str, value: &str) {
        let r = self
            .needs
            .get_mut(job)
            .unwrap_or_else(|| panic!("job {job} has not run"));
        r.outputs.insert(key.to_string(), value.to_string());
    }

    /// Run one job (one matrix entry) of a workflow.
    pub fn run_job(&mut self, wf: &Value, job_id: &str, matrix: &[(&str, &str)]) -> JobResult {
        let def = &wf["jobs"][job_id];
        // A skipped job gets no workspace: nothing of it starts.
        let entry = Job {
            matrix: matrix_of(matrix),
            ..Default::default()
        };
        if !self.job_runs(def, &entry) {
            return JobResult::skipped();
        }
        let mut job = self.start_job(job_id, matrix);
        job.timeout_minutes = def
            .get("timeout-minutes")
            .and_then(Value::as_f64)
            .unwrap_or(360.0);
        self.set_job_env(wf, def, &mut job);
        for (n, step) in def["steps"].as_array().unwrap().iter().enumerate() {
            self.run_step(n, step, &mut job);
        }
        job.result.cancelled = job.cancelled;
        if let Some(outs) = def.get("outputs").and_then(Value::as_object) {
            for (k, v) in outs {
                let val = interpolate(&yaml_text(v), &|p| self.lookup(p, &job));
                job.result.outputs.insert(k.clone(), val);
            }
        }
        job.result.summary = std::fs::read_to_string(job.summary_file()).unwrap();
        job.result
    }

    /// A job's `if:`. There `success()` means every job it needs succeeded and the run is not
    /// cancelled, and `cancelled()` that the run is.
    fn job_runs(&self, def: &Value, job: &Job) -> bool {
        let Some(cond) = def.get("if").and_then(Value::as_str) else {
            return condition("success()", &|p| self.job_level(p, def, job));
        };
        condition(cond, &|p| self.job_level(p, def, job))
    }

    fn job_level(&self, path: &str, def: &Value, job: &Job) -> V {
        match path {
            "success()" => V::Bool(
                !self.run_cancelled.get()
                    && needs_of(def).iter().all(|n| {
                        self.needs
                            .get(n)
                            .is_some_and(|r| r.conclusion() == "success")
                    }),
            ),
            "cancelled()" => V::Bool(self.run_cancelled.get()),
            p => self.lookup(p, job),
        }
    }

    /// A fresh workspace with empty summary and env files.
    fn start_job(&mut self, job_id: &str, matrix: &[(&str, &str)]) -> Job {
        self.workspaces += 1;
        let ws = self
            .root
            .path()
            .join(format!("ws-{}-{job_id}", self.workspaces));
        std::fs::create_dir_all(&ws).unwrap();
        let job = Job {
            id: job_id.to_string(),
            ws,
            matrix: matrix_of(matrix),
            result: JobResult {
                success: true,
                ..Default::default()
            },
            ..Default::default()
        };
        std::fs::write(job.summary_file(), "").unwrap();
        std::fs::write(job.env_file(), "").unwrap();
        job
    }

    /// The workflow's and the job's `env:`, then the test's overrides of variables it sets.
    fn set_job_env(&self, wf: &Value, def: &Value, job: &mut Job) {
        for scope in [&wf["env"], &def["env"]] {
            for (k, v) in scope.as_object().into_iter().flatten() {
                let val = interpolate(&yaml_text(v), &|p| self.lookup(p, job));
                job.env.insert(k.clone(), val);
            }
        }
        for (k, v) in &self.env_overrides {
            if job.env.contains_key(k) {
                job.env.insert(k.clone(), v.clone());
            }
        }
    }

    /// One step: skipped by its `if:` (or an earlier failure), an action, or a script.
    fn run_step(&self, n: usize, step: &Value, job: &mut Job) {
        let ctx = |p: &str| self.lookup(p, job);
        let runs = condition(step.get("if").and_then(Value::as_str).unwrap_or(""), &ctx);
        if !runs {
            return;
        }
        let interpolated = |m: &Value| -> BTreeMap<String, String> {
            let pairs = m.as_object().into_iter().flatten();
            pairs
                .map(|(k, v)| (k.clone(), interpolate(&yaml_text(v), &ctx)))
                .collect()
        };
        let mut step_env = job.env.clone();
        step_env.extend(interpolated(&step["env"]));
        let ok = match step.get("uses").and_then(Value::as_str) {
            Some("./.github/actions/install-platform") => {
                self.install_platform(job);
                true
            }
            Some(uses) => {
                let with = interpolated(&step["with"]);
                self.action(uses, &with, &job.ws.clone(), &mut job.result.log)
            }
            None => {
                let script = interpolate(step["run"].as_str().unwrap(), &ctx);
                self.run_script(n, step, &script, &step_env, job)
            }
        };
        if !ok {
            job.result.log.push_str(&format!("--- step {n} FAILED\n"));
            job.result.success = false;
        }
    }

    /// A `run:` step under `bash -e`, with the files and variables a runner provides; whether
    /// it passed (or may fail: `continue-on-error`). A step the test stops ends as GitHub ends
    /// it (`stop_step`).
    fn run_script(
        &self,
        n: usize,
        step: &Value,
        script: &str,
        env: &BTreeMap<String, String>,
        job: &mut Job,
    ) -> bool {
        let output_file = job.ws.join(format!(".output-{n}"));
        std::fs::write(&output_file, "").unwrap();
        let script_file = job.ws.join(format!(".step-{n}.sh"));
        std::fs::write(&script_file, script).unwrap();
        let (stdout, stderr) = (job.ws.join(".stdout"), job.ws.join(".stderr"));
        let mut bash = Command::new("bash");
        clean_env(&mut bash);
        if !job.path.is_empty() {
            let mut path = job.path.clone();
            path.extend(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            ));
            bash.env("PATH", std::env::join_paths(path).unwrap());
        }
        let mut child = bash
            .arg("-e")
            .arg(&script_file)
            .current_dir(&job.ws)
            .envs(env)
            .env("GITHUB_OUTPUT", &output_file)
            .env("GITHUB_ENV", job.env_file())
            .env("GITHUB_STEP_SUMMARY", job.summary_file())
            // Set on every GitHub runner: the API the workflows' own calls go to.
            .env("GITHUB_API_URL", self.fake.uri())
            .env("GITHUB_REPOSITORY", REPOSITORY)
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            // Its own process group, which a stop signals as a whole (the runner's SIGINT).
            .process_group(0)
            .spawn()
            .unwrap();
        let stop = self.wait_or_stop(&mut child, step, job);
        let out = Output {
            status: child.wait().unwrap(),
            stdout: std::fs::read(&stdout).unwrap(),
            stderr: std::fs::read(&stderr).unwrap(),
        };
        let name = step.get("name").and_then(Value::as_str).unwrap_or("");
        job.result.log.push_str(&format!(
            "--- step {n}: {name}\n{}{}",
            out.stdout_text(),
            out.stderr_text()
        ));
        let cancelled = match stop {
            Some(by) => self.stop_step(&by, step, job),
            None => false,
        };
        record_step(step, &out, &output_file, job, cancelled);
        if cancelled {
            return false;
        }
        out.status.success() || step.get("continue-on-error") == Some(&Value::Bool(true))
    }

    /// Wait for a step's process; if the test's `Interrupt` names this step, stop it once its
    /// `when` holds, as GitHub's runner does: SIGINT to the process group, SIGKILL if it is
    /// still there after a grace period (7.5 s and SIGTERM on GitHub; 2 s here). Returns how
    /// it was stopped.
    fn wait_or_stop(&self, child: &mut Child, step: &Value, job: &Job) -> Option<Stop> {
        let label = step
            .get("id")
            .or_else(|| step.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let targeted = self.interrupt.borrow().as_ref().is_some_and(|i| {
            i.job == job.id
                && i.step == label
                && i.shard
                    .is_none_or(|k| job.matrix.get("shard").map(String::as_str) == Some(k))
        });
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    !targeted,
                    "step {label} of job {} ended ({status}) before the test could stop it",
                    job.id
                );
                return None;
            }
            if targeted && (self.interrupt.borrow().as_ref().unwrap().when)(&job.ws) {
                break;
            }
            assert!(
                !targeted || started.elapsed() < Duration::from_secs(300),
                "step {label} never reached the point where the test stops it"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let group = format!("-{}", child.id());
        let signal_group = |signal: &str| {
            let _ = Command::new("kill")
                .args(["-s", signal, "--", &group])
                .status();
        };
        signal_group("INT");
        let grace = Instant::now();
        while child.try_wait().unwrap().is_none() && grace.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(20));
        }
        signal_group("KILL");
        self.interrupt.borrow_mut().take().map(|i| i.by)
    }

    /// What a stop means for the job: whether GitHub cancelled it. A step that runs past its
    /// own `timeout-minutes` (below the job's) fails, and the job goes on; otherwise the job's
    /// timeout cancels the job. Cancelling the run cancels the job and every job not started.
    fn stop_step(&self, by: &Stop, step: &Value, job: &mut Job) -> bool {
        let own = step.get("timeout-minutes").and_then(Value::as_f64);
        let why = match by {
            Stop::Timeout => match own {
                Some(minutes) if minutes < job.timeout_minutes => {
                    job.result.log.push_str(&format!(
                        "##[error]The action has timed out ({minutes} minutes).\n"
                    ));
                    return false;
                }
                _ => format!(
                    "The job has exceeded the maximum execution time of {} minutes.",
                    job.timeout_minutes
                ),
            },
            Stop::CancelRun => {
                self.run_cancelled.set(true);
                "The operation was canceled.".to_string()
            }
        };
        job.result.log.push_str(&format!("##[error]{why}\n"));
        job.cancelled = true;
        true
    }

    /// The init template's `install-platform` action: this runner's binary, first on PATH.
    fn install_platform(&self, job: &mut Job) {
        let dir = job.ws.join(".platform-bin");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::hard_link(&self.binary, dir.join("platform")).unwrap();
        std::fs::set_permissions(dir.join("platform"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        job.path.push(dir);
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
            "actions/upload-artifact" => upload(with, ws, &store, log),
            "actions/download-artifact" => self.download(with, ws, &store, log),
            other => panic!("action {other} is not known to the stand-in runner"),
        }
    }

    /// download-artifact: one artifact by `name`, or every one matching `pattern`.
    fn download(
        &self,
        with: &BTreeMap<String, String>,
        ws: &Path,
        store: &Path,
        log: &mut String,
    ) -> bool {
        let dest = ws.join(with.get("path").map(String::as_str).unwrap_or("."));
        if let Some(name) = with.get("name") {
            let src = store.join(name);
            if !src.exists() {
                log.push_str(&format!("download {name}: no such artifact\n"));
                return false;
            }
            self.fetch(&src, &dest);
            return true;
        }
        let prefix = with["pattern"].strip_suffix('*').unwrap();
        let merge = with.get("merge-multiple").map(String::as_str) == Some("true");
        let matched: Vec<(String, PathBuf)> = std::fs::read_dir(store)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .filter(|(n, _)| n.starts_with(prefix))
            .collect();
        // Since download-artifact v5, a pattern that matches one artifact extracts it into
        // `path` itself, as a download by name does.
        let flat = merge || matched.len() == 1;
        for (n, from) in &matched {
            let to = if flat { dest.clone() } else { dest.join(n) };
            self.fetch(from, &to);
        }
        true
    }

    /// Download an artifact into a workspace. Artifacts lose the executable bit on the way
    /// through GitHub: so do they here (which is why the workflows `chmod +x bin/platform`).
    /// The build's binary (over 200 MB in a debug build) is linked rather than copied: jobs
    /// run one at a time, so resetting its mode at each download still leaves every job to
    /// make it executable itself.
    fn fetch(&self, src: &Path, dest: &Path) {
        let binary = std::fs::metadata(&self.binary).unwrap();
        let is_binary = |rel: &Path| {
            std::fs::symlink_metadata(src.join(rel))
                .is_ok_and(|m| (m.dev(), m.ino()) == (binary.dev(), binary.ino()))
        };
        copy_tree_except(src, dest, is_binary);
        for e in walkdir::WalkDir::new(src) {
            let path = e.unwrap().into_path();
            let rel = path.strip_prefix(src).unwrap();
            if is_binary(rel) {
                let to = dest.join(rel);
                let _ = std::fs::remove_file(&to);
                std::fs::hard_link(&path, to).unwrap();
            }
        }
        for file in files_under(dest) {
            let mut mode = std::fs::metadata(&file).unwrap().permissions();
            mode.set_mode(0o644);
            std::fs::set_permissions(&file, mode).unwrap();
        }
    }

    /// Run a whole workflow: jobs in `needs` order, matrix jobs once per entry. The run is
    /// known to the fake's workflow-run API afterwards, as GitHub knows its runs.
    pub fn run_workflow(&mut self, file: &str) -> BTreeMap<String, JobResult> {
        self.run_workflow_calling(file, &mut |_, _| {})
    }

    /// Run `file` (its run started with `start_run`) and dispatch `other` once the job
    /// `after` has ended, with GitHub's rule for workflow-level `concurrency`: while a run is
    /// in progress, a run of the same group is pending, and starts when that run has
    /// completed; a run of another group starts at once. Here it then runs to its end before
    /// the first run's next job: one order GitHub allows, since the jobs of both would run
    /// side by side (job-level groups, such as the ledger group, order only their own jobs).
    /// The results of both runs, and whether `other` had to wait.
    pub fn run_workflow_dispatching(
        &mut self,
        file: &str,
        after: &str,
        other: &Dispatch,
    ) -> (
        BTreeMap<String, JobResult>,
        BTreeMap<String, JobResult>,
        bool,
    ) {
        let group = self.workflow_group(&self.load(file));
        let mut other_results = None;
        let mut waited = false;
        let results = self.run_workflow_calling(file, &mut |r, job| {
            if job != after {
                return;
            }
            let saved = r.save_run();
            r.github = event_context(other.event, other.run_id);
            r.inputs = other
                .inputs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            let other_group = r.workflow_group(&r.load(other.file));
            if group.is_some() && other_group == group {
                waited = true;
            } else {
                r.start_run(other.event, other.run_id, &other.inputs);
                other_results = Some(r.run_workflow(other.file));
            }
            r.restore_run(saved);
        });
        if waited {
            let saved = self.save_run();
            self.start_run(other.event, other.run_id, &other.inputs);
            other_results = Some(self.run_workflow(other.file));
            self.restore_run(saved);
        }
        let other_results = other_results.unwrap_or_else(|| panic!("{file} has no job {after}"));
        (results, other_results, waited)
    }

    /// The workflow-level concurrency group of `wf` for the current run, if it has one.
    fn workflow_group(&self, wf: &Value) -> Option<String> {
        let c = wf.get("concurrency")?;
        let group = c.get("group").unwrap_or(c);
        Some(interpolate(&yaml_text(group), &|p| {
            self.lookup(p, &Job::default())
        }))
    }

    /// The current run's context, to come back to after another run (as a re-run does).
    pub fn save_run(&mut self) -> SavedRun {
        SavedRun {
            github: self.github.clone(),
            inputs: std::mem::take(&mut self.inputs),
            needs: std::mem::take(&mut self.needs),
            run_id: self.run_id,
        }
    }

    pub fn restore_run(&mut self, saved: SavedRun) {
        self.github = saved.github;
        self.inputs = saved.inputs;
        self.needs = saved.needs;
        self.run_id = saved.run_id;
    }

    /// `run_workflow`, calling `after_job` with each job's id once it has ended (a test may
    /// change what the job left there: its outputs, its artifacts).
    pub fn run_workflow_calling(
        &mut self,
        file: &str,
        after_job: &mut dyn FnMut(&mut Runner, &str),
    ) -> BTreeMap<String, JobResult> {
        let branch = self.github["ref"].trim_start_matches("refs/heads/");
        let run = serde_json::json!({
            "id": self.run_id,
            "path": format!(".github/workflows/{file}"),
            "event": self.github["event_name"],
            "head_branch": branch,
            "head_repository": {"full_name": REPOSITORY},
            "status": "completed",
        });
        self.fake.state().workflow_runs.insert(self.run_id, run);
        let wf = self.load(file);
        let mut results = BTreeMap::new();
        for id in job_order(&wf) {
            if id == "build" {
                continue; // the binary is already in the artifact store
            }
            let result = match wf["jobs"][&id].pointer("/strategy/matrix/shard") {
                Some(m) => self.run_matrix(&wf, &id, m.as_str().unwrap()),
                None => self.run_job(&wf, &id, &[]),
            };
            self.needs.insert(id.clone(), result.clone());
            results.insert(id.clone(), result);
            after_job(self, &id);
        }
        results
    }

    /// A job once per shard of its matrix expression, one after another.
    fn run_matrix(&mut self, wf: &Value, id: &str, shards: &str) -> JobResult {
        // A job's `if:` comes before its matrix is expanded (a skipped plan leaves no list).
        if !self.job_runs(&wf["jobs"][id], &Job::default()) {
            return JobResult::skipped();
        }
        let list = interpolate(shards, &|p| self.lookup(p, &Job::default()));
        let shards: Vec<u64> = serde_json::from_str(&list).unwrap();
        let mut all = JobResult {
            success: true,
            ..Default::default()
        };
        for k in shards {
            let r = self.run_job(wf, id, &[("shard", &k.to_string())]);
            all.success &= r.success;
            all.cancelled |= r.cancelled;
            all.summary.push_str(&r.summary);
            all.log.push_str(&format!("=== shard {k}\n{}", r.log));
        }
        all
    }

    /// An asset of the (fake) state release.
    pub fn remote(&self, name: &str) -> Vec<u8> {
        self.fake.asset_data(STATE_TAG, name).unwrap_or_default()
    }

    /// Pull the remote state into a fresh directory and run `platform` on it.
    pub fn platform_on_remote(&self, args: &[&str]) -> String {
        let dir = temp_dir();
        for f in LEDGER_FILES {
            std::fs::write(dir.path().join(f), self.remote(f)).unwrap();
        }
        let out: Output = platform_in(dir.path())
            .arg("--repo")
            .arg(self.root.path().join("repo"))
            .args(args)
            .args(["--billing-state-dir", "."])
            .output()
            .unwrap();
        out.expect_ok().stdout_text()
    }

    /// A tenant's balance by the state on the (fake) release.
    pub fn balance(&self, tenant: &str) -> i64 {
        let args = ["balance", "--tenant-id", tenant, "--json"];
        let v: Value = serde_json::from_str(&self.platform_on_remote(&args)).unwrap();
        v["balance_credits"].as_i64().unwrap()
    }
}

/// The repository the runner checks out: the example platform, the demo's grants, a third
/// tenant whose work order fails (text_stats on an empty file: refundable), and the
/// workflows' profile pointed at the fake.
fn write_repo(repo: &Path, fake: &FakeGithub) {
    for d in ["modules", "tenants", "config"] {
        copy_tree(&crate_root().join(d), &repo.join(d));
    }
    let t = repo.join("tenants/initech");
    std::fs::create_dir_all(t.join("workorders")).unwrap();
    std::fs::create_dir_all(t.join("assets")).unwrap();
    std::fs::write(
        t.join("tenant.yml"),
        "tenant_id: initech\nname: Initech\nplan: basic\n",
    )
    .unwrap();
    std::fs::write(t.join("assets/empty.txt"), "").unwrap();
    std::fs::write(
        t.join("workorders/tps.yml"),
        "work_order_id: tps\nsteps:\n  - step_id: stats\n    module_id: text_stats\n    kind: transform\n    inputs: {source: {asset: empty.txt}}\n",
    )
    .unwrap();
    // The shipped iam.yml grants nobody: the demo's grants stand for an installation's.
    use_demo_iam(repo);
    // The shipped workflows' profile, and the one of the workflows `platform init` writes
    // (state in `state/`), both pointed at the fake.
    for (name, dir) in [("dev_github", ".billing-state-dev"), ("github", "state")] {
        std::fs::write(
            repo.join(format!("config/runtime_profile.{name}.yml")),
            format!(
                "profile_name: {name}\nbilling_state_dir: {dir}\nruntime_dir: runtime\ngithub:\n  repository: {REPOSITORY}\n  api_url: {}\n  state_tag: {STATE_TAG}\n",
                fake.uri()
            ),
        )
        .unwrap();
    }
}

/// The `github.*` context of a run of `event`: the default branch, actor demo-admin and, for
/// `workflow_run`, the orchestrator run just before (scheduled, on the default branch).
fn event_context(event: &str, run_id: u64) -> BTreeMap<String, String> {
    let mut github = BTreeMap::from([
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
        github.insert(
            "event.repository.default_branch".into(),
            DEFAULT_BRANCH.into(),
        );
    }
    if event == "workflow_run" {
        for (k, v) in [
            ("id", (run_id - 1).to_string()),
            ("conclusion", "failure".into()),
            // The run's first attempt (`created_at`) and its latest (`run_started_at`).
            ("created_at", "2000-01-01T00:00:00Z".into()),
            ("run_started_at", "2000-01-01T00:00:00Z".into()),
            ("event", "schedule".into()),
            ("head_branch", DEFAULT_BRANCH.into()),
            ("head_repository.full_name", REPOSITORY.into()),
        ] {
            github.insert(format!("event.workflow_run.{k}"), v);
        }
    }
    github
}

/// `steps.<id>.outcome` or `steps.<id>.outputs.<key>`.
fn step_value(steps: &BTreeMap<String, StepRecord>, rest: &str) -> V {
    let (id, what) = rest.split_once('.').unwrap();
    let step = steps.get(id);
    if what == "outcome" {
        return V::Str(step.map(|s| s.outcome).unwrap_or("skipped").into());
    }
    let key = what.strip_prefix("outputs.").unwrap();
    let value = step.and_then(|o| o.outputs.get(key)).cloned();
    V::Str(value.unwrap_or_default())
}

/// What a script step left: its outputs and outcome (when it has an id) and `$GITHUB_ENV`.
fn record_step(step: &Value, out: &Output, output_file: &Path, job: &mut Job, cancelled: bool) {
    let outputs = key_values(&std::fs::read_to_string(output_file).unwrap());
    if let Some(id) = step.get("id").and_then(Value::as_str) {
        let outcome = match (cancelled, out.status.success()) {
            (true, _) => "cancelled",
            (_, true) => "success",
            _ => "failure",
        };
        job.steps
            .insert(id.to_string(), StepRecord { outputs, outcome });
    }
    let env = std::fs::read_to_string(job.env_file()).unwrap();
    job.env.extend(key_values(&env));
}

/// upload-artifact: a file or a folder (hidden files left out) into the run's store.
fn upload(with: &BTreeMap<String, String>, ws: &Path, store: &Path, log: &mut String) -> bool {
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
        copy_tree_except(&src, &dest, is_hidden);
    } else {
        std::fs::copy(&src, dest.join(src.file_name().unwrap())).unwrap();
    }
    true
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

/// A workflow of .github/workflows/, parsed.
pub fn load_workflow(file: &str) -> Value {
    load_workflow_in(&crate_root().join(".github/workflows"), file)
}

fn load_workflow_in(dir: &Path, file: &str) -> Value {
    let path = dir.join(file);
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn matrix_of(entry: &[(&str, &str)]) -> BTreeMap<String, String> {
    entry
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The jobs a job `needs`.
fn needs_of(job: &Value) -> Vec<String> {
    match job.get("needs") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
        _ => vec![],
    }
}

/// Job ids with every job after the jobs it needs (ties in file order).
fn job_order(wf: &Value) -> Vec<String> {
    let jobs = wf["jobs"].as_object().unwrap();
    let needs = |id: &str| needs_of(&jobs[id]);
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

/// A file or folder whose name starts with a dot, anywhere in the tree.
fn is_hidden(rel: &Path) -> bool {
    rel.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// Every file (not folder) under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.into_path())
        .collect()
}
