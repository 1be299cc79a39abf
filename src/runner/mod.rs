//! Executes one step, whatever its runner: a command module as a supervised child process
//! tree, or a built-in in-process; checks and bounds outputs; keeps capped logs with secrets
//! redacted. `prepare` is everything that can be refused before the step is charged.
pub mod command;
#[cfg(target_os = "linux")]
mod fdpass;
#[cfg(target_os = "linux")]
pub mod launch;
pub mod logs;
pub mod outputs;
#[cfg(target_os = "linux")]
pub mod procs;
pub mod result;
pub mod self_test;
#[cfg(target_os = "linux")]
mod session;
#[cfg(target_os = "linux")]
mod spawn;
pub mod supervisor;
pub mod usage;
#[cfg(target_os = "linux")]
pub mod zygote;

use crate::beneath::Beneath;
use crate::builtin::{self, BuiltinStep, Receipt};
use crate::config::profile::RuntimeProfile;
use crate::contract::{Builtin, Failure, ModuleContract, Runner};
use crate::records::UsageCharge;
use crate::redact::Redactor;
use crate::repo::Repo;
use crate::workorder::assets;
use crate::workorder::bindings::{self, Produced};
use crate::workorder::model::Step;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;

/// Where a step's supervisor is recorded in its folder, for the next attempt to check.
pub const SUPERVISOR_FILE: &str = "supervisor.json";

/// End the supervisors kept between steps, then the zygote, reaping both (main.rs once a
/// command is done; a no-op when nothing is left).
#[cfg(target_os = "linux")]
pub fn stop() {
    session::end_idle();
    zygote::stop();
}

/// Tell the kept supervisors and the zygote to end, without waiting: the orchestrator once
/// its steps are done, so they exit while it writes its caches and prints its summary
/// (a pass waited 3-9 ms for them); [`stop`] reaps them.
#[cfg(target_os = "linux")]
pub fn begin_stop() {
    session::end_idle();
    zygote::begin_stop();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    #[serde(rename = "COMPLETED")]
    Completed,
    #[serde(rename = "FAILED")]
    Failed,
}

/// A file an executed step produced, as recorded in evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRecord {
    /// The output id (or log name).
    pub id: String,
    /// Path relative to the step's outputs dir (or runtime-relative for logs).
    pub path: String,
    /// Bytes of the file, or of all files of a `dir` output.
    pub bytes: u64,
    /// SHA-256 of the file, or of a `dir` output's manifest.
    pub sha256: String,
    /// A `dir` output's file count (None for a file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
}

/// What running a step produced.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub status: Status,
    /// Set when it failed; the slug is its wire form.
    pub reason_slug: Option<Failure>,
    pub message: Option<String>,
    pub values: serde_json::Map<String, serde_json::Value>,
    pub outputs: Vec<FileRecord>,
    pub logs: Vec<FileRecord>,
    /// Set by delivery built-ins.
    pub receipt: Option<Receipt>,
    /// Metered usage of a completed step, priced (SPEC §10).
    pub usage: BTreeMap<String, UsageCharge>,
}

impl StepResult {
    pub fn failed(reason: Failure, message: impl Into<String>) -> Self {
        StepResult {
            status: Status::Failed,
            reason_slug: Some(reason),
            message: Some(message.into()),
            ..StepResult::completed()
        }
    }
    pub fn completed() -> Self {
        StepResult {
            status: Status::Completed,
            reason_slug: None,
            message: None,
            values: Default::default(),
            outputs: Vec::new(),
            logs: Vec::new(),
            receipt: None,
            usage: BTreeMap::new(),
        }
    }
}

/// A step's resolved inputs: the JSON object a module receives.
pub type Inputs = serde_json::Map<String, serde_json::Value>;

/// What every step of a pass shares.
pub struct Platform<'a> {
    pub repo: &'a Repo,
    pub runtime_dir: &'a Path,
    pub profile: &'a RuntimeProfile,
    /// Declared secret values by NAME (from PLATFORM_SECRET_NAME).
    pub secrets: &'a BTreeMap<String, String>,
    pub redactor: &'a Redactor,
    /// The runtime directory's real path, read once at the first command step (it exists
    /// by then): a step dir's id is this joined with its folder, without a `readlink` of
    /// its own (docs/performance.md).
    pub runtime_real: std::sync::OnceLock<std::path::PathBuf>,
    /// The runtime directory opened, once it exists: a step's results are read beneath this
    /// fd ([`Platform::step_files`]), not beneath the directory opened again by its path.
    pub runtime_fd: std::sync::OnceLock<std::sync::Arc<std::os::fd::OwnedFd>>,
}

impl Platform<'_> {
    /// `files` (beneath the runtime directory) read through the runtime directory's fd, opened
    /// at the first step that finds the directory and kept for the pass; as given until then.
    pub fn step_files(&self, files: Beneath) -> Beneath {
        let fd = match self.runtime_fd.get() {
            Some(fd) => Some(fd.clone()),
            None => crate::beneath::open_base(self.runtime_dir).ok().map(|fd| {
                self.runtime_fd
                    .get_or_init(|| std::sync::Arc::new(fd))
                    .clone()
            }),
        };
        files.opened_by(fd)
    }

    /// The step dir as its supervisor's command line names it: the runtime directory's
    /// [`step_dir_id`], joined with the step's folder beneath it.
    fn step_dir_id(&self, files: &Beneath) -> std::path::PathBuf {
        self.runtime_real
            .get_or_init(|| step_dir_id(self.runtime_dir))
            .join(&files.rel)
    }
}

/// A folder as a supervisor's command line names it (`supervisor::Spec::step_dir`): its real
/// path, the same however it was spelled, so a later orchestrator recognises the supervisor.
pub fn step_dir_id(dir: &Path) -> std::path::PathBuf {
    #[cfg(target_os = "linux")]
    let real = procs::real_path(dir);
    #[cfg(not(target_os = "linux"))]
    let real = None;
    real.or_else(|| std::fs::canonicalize(dir).ok())
        .or_else(|| std::path::absolute(dir).ok())
        .unwrap_or_else(|| dir.to_path_buf())
}

/// One step of one run, whatever its runner.
pub struct StepRun<'a> {
    pub platform: &'a Platform<'a>,
    pub tenant_id: &'a str,
    pub work_order_id: &'a str,
    pub run: u64,
    pub step: &'a Step,
    pub contract: &'a ModuleContract,
    /// What the run's earlier steps left.
    pub produced: &'a BTreeMap<String, Produced<'a>>,
    /// The step's folder beneath the runtime directory.
    pub files: &'a Beneath,
}

/// Resolve the inputs — assets copied into `<step>/inputs/`, from files opened beneath the
/// tenant — and run a built-in's own check: everything that is refused before the step is
/// charged (SPEC §4). Err says why the input is invalid.
pub fn prepare(s: &StepRun) -> Result<Inputs, String> {
    let inputs_dir = s.files.path().join("inputs");
    if earlier_attempt(s.files)? {
        assets::clear_inputs(&inputs_dir)?;
    }
    let root = &s.platform.repo.root;
    let copy =
        |name: &str, rel: &str| assets::copy_asset(root, s.tenant_id, rel, &inputs_dir, name);
    let inputs = bindings::resolve(s.step, s.contract, s.produced, &copy)?;
    if let Runner::Builtin(b) = &s.contract.runner {
        builtin::implementation(*b).precheck(&builtin_step(s, &inputs))?;
    }
    Ok(inputs)
}

/// Whether an earlier attempt left the step's folder; Err when what is there is not a folder
/// reached through no link: its module may have swapped it for a link to another step's
/// folder, which must then be neither cleared nor written into. Where no step folder is found,
/// whatever the path leads through, there is nothing in it: one call in the usual case.
fn earlier_attempt(files: &Beneath) -> Result<bool, String> {
    let dir = files.path();
    if std::fs::symlink_metadata(&dir).is_err_and(|e| e.kind() == ErrorKind::NotFound) {
        return Ok(false);
    }
    step_folder(files).ok_or_else(|| format!("the step's folder {} {NOT_PLAIN}", dir.display()))
}

/// What a step folder that is neither missing nor a plain folder is.
const NOT_PLAIN: &str = "is not a folder reached through no link (a module swapped it for a link?)";

/// Whether the step's folder is a folder reached through no link beneath the runtime
/// directory (true) or missing (false); None when it is anything else.
fn step_folder(files: &Beneath) -> Option<bool> {
    match files.metadata() {
        Ok(m) if m.kind == crate::beneath::Kind::Folder => Some(true),
        Err(r) if r.reason == crate::beneath::Reason::Missing => Some(false),
        Ok(_) | Err(_) => None,
    }
}

/// Run the step (it has been charged). Never panics; every problem is a FAILED result.
pub fn run(s: &StepRun, inputs: &Inputs) -> StepResult {
    let dir = s.files.path();
    let fresh = match make_step_dir(s.files) {
        Ok(fresh) => fresh,
        Err(e) => {
            let why = format!("cannot create {}: {e}", dir.display());
            return StepResult::failed(Failure::ModuleFailed, why);
        }
    };
    match &s.contract.runner {
        Runner::Builtin(b) => run_builtin(*b, s, inputs, fresh),
        Runner::Command(_) => run_command(s, inputs, fresh),
    }
}

/// Create the step's folder (and its parents); true when it did not exist, so nothing of an
/// earlier attempt is in it to end or clear (two lookups less per step). One that exists must
/// be a folder reached through no link: an earlier attempt's module may have swapped it for a
/// link, through which clearing it would empty someone else's folder.
fn make_step_dir(files: &Beneath) -> std::io::Result<bool> {
    let dir = files.path();
    let made = match std::fs::create_dir(&dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => make_run_dir(&dir),
        other => other,
    };
    match made {
        Ok(()) => Ok(true),
        // Made by an earlier attempt: used only if it is a plain folder (gone again since
        // `mkdir` said it exists is as suspect as a link).
        Err(e) if e.kind() == ErrorKind::AlreadyExists => match step_folder(files) {
            Some(true) => Ok(false),
            Some(false) | None => Err(std::io::Error::new(
                ErrorKind::AlreadyExists,
                format!("it exists and {NOT_PLAIN}"),
            )),
        },
        Err(e) => Err(e),
    }
}

/// The first step of a run (`runs/<tenant>/<work order>/<run_id>/<step>`): its work order's
/// and run's folders made top-down, then its own: three `mkdir`s once the tenant's folder
/// exists, where creating the parents from the bottom up took seven and a `stat`.
fn make_run_dir(step: &Path) -> std::io::Result<()> {
    let Some((run, wo)) = step.parent().and_then(|r| Some((r, r.parent()?))) else {
        return std::fs::create_dir_all(step);
    };
    for d in [wo, run] {
        match std::fs::create_dir(d) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                std::fs::create_dir_all(run)?;
                break;
            }
            Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
    }
    std::fs::create_dir(step)
}

fn builtin_step<'a>(s: &'a StepRun, inputs: &'a Inputs) -> BuiltinStep<'a> {
    BuiltinStep {
        step: s.step,
        contract: s.contract,
        inputs,
        produced: s.produced,
        files: s.files,
        runtime_dir: s.platform.runtime_dir,
        tenant_id: s.tenant_id,
        work_order_id: s.work_order_id,
        run: s.run,
        profile: s.platform.profile,
        deadline: builtin::Deadline::after(s.contract.timeout_seconds),
    }
}

/// A built-in, from empty outputs to its recorded outputs and receipt.
fn run_builtin(b: Builtin, s: &StepRun, inputs: &Inputs, fresh: bool) -> StepResult {
    let outputs_dir = s.files.path().join("outputs");
    if !fresh {
        let _ = crate::beneath::remove_tree(&outputs_dir);
    }
    if let Err(e) = std::fs::create_dir_all(&outputs_dir) {
        let why = format!("cannot create {}: {e}", outputs_dir.display());
        return StepResult::failed(Failure::ModuleFailed, why);
    }
    let receipt = match builtin::implementation(b).run(&builtin_step(s, inputs)) {
        Ok(r) => r,
        Err(f) => {
            let why = s.platform.redactor.redact(&f.message);
            return StepResult::failed(f.reason_slug, why);
        }
    };
    match outputs::collect(s.contract, &s.files.join("outputs"), s.platform.redactor) {
        Ok(files) => {
            // A built-in's natural unit: the kibibytes it wrote (what a package weighs).
            let bytes = files
                .iter()
                .fold(0u64, |sum, f| sum.saturating_add(f.bytes));
            let measured = [(crate::records::billing::UNIT_KIB, bytes.div_ceil(1024))];
            StepResult {
                usage: usage::builtin(&s.contract.pricing, &measured),
                outputs: files,
                receipt,
                ..StepResult::completed()
            }
        }
        Err(r) => StepResult::failed(r.reason, r.message),
    }
}

/// A command module, in a clean environment with only the protocol's variables and the
/// secrets it declares.
fn run_command(s: &StepRun, inputs: &Inputs, fresh: bool) -> StepResult {
    let p = s.platform;
    let Some(module) = p.repo.modules.get(&s.step.module_id) else {
        let why = format!("module '{}' not found", s.step.module_id);
        return StepResult::failed(Failure::ModuleFailed, why);
    };
    let mut vars = vec![
        ("PLATFORM_TENANT_ID".to_string(), s.tenant_id.to_string()),
        (
            "PLATFORM_WORK_ORDER_ID".to_string(),
            s.work_order_id.to_string(),
        ),
        ("PLATFORM_STEP_ID".to_string(), s.step.step_id.clone()),
    ];
    for name in &s.contract.secrets {
        if let Some(v) = p.secrets.get(name) {
            vars.push((name.clone(), v.clone()));
        }
    }
    let known = |slug: &str| p.repo.registry.is_known_reason(slug);
    command::run(&command::CommandSpec {
        module_dir: &module.dir,
        contract: s.contract,
        inputs,
        step_dir: &s.files.path(),
        step_dir_id: p.step_dir_id(s.files),
        files: s.files.clone(),
        fresh,
        env: vars,
        redactor: p.redactor,
        known_reason: &known,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_dir_is_fresh_only_when_this_attempt_created_it() {
        let d = tempfile::tempdir().unwrap();
        let at = |rel: &str| Beneath::new(d.path(), rel);
        let step = at("runs/t/wo/run-1/note");
        assert!(make_step_dir(&step).unwrap(), "created with its parents");
        assert!(step.path().is_dir());
        assert!(
            !make_step_dir(&step).unwrap(),
            "an earlier attempt's folder"
        );
        let sibling = at("runs/t/wo/run-1/again");
        assert!(make_step_dir(&sibling).unwrap(), "its run's folder exists");
        let next_run = at("runs/t/wo/run-2/note");
        assert!(
            make_step_dir(&next_run).unwrap(),
            "its work order's folder exists"
        );
        let other_wo = at("runs/t/wo2/run-1/note");
        assert!(
            make_step_dir(&other_wo).unwrap(),
            "its tenant's folder exists"
        );
        assert!(other_wo.path().is_dir() && next_run.path().is_dir());
        let file = at("runs/t/wo/run-1/file");
        std::fs::write(file.path(), b"x").unwrap();
        assert!(make_step_dir(&file).is_err(), "a file is not a step folder");
    }

    #[cfg(unix)]
    #[test]
    fn a_step_dir_swapped_for_a_link_is_refused_and_what_it_points_to_is_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let elsewhere = d.path().join("elsewhere");
        std::fs::create_dir_all(elsewhere.join("outputs")).unwrap();
        std::fs::create_dir_all(d.path().join("runs/t/wo/run-1")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, d.path().join("runs/t/wo/run-1/note")).unwrap();
        let step = Beneath::new(d.path(), "runs/t/wo/run-1/note");
        let err = make_step_dir(&step).unwrap_err();
        assert!(err.to_string().contains("link"), "{err}");
        assert!(elsewhere.join("outputs").is_dir());
    }
}
