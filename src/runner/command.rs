//! Runs a command module per SPEC's protocol: empty working dir, a clean environment (PATH,
//! PLATFORM_* and declared secrets only), under a per-step supervisor (launch.rs) that ends
//! every process it started; then judges the outcome from the exit, result.json and outputs.
use super::outputs;
use super::result::{self, ResultObject};
use super::{Status, StepResult};
use crate::beneath::Beneath;
use crate::contract::{reason, Failure, ModuleContract, OutputType};
use crate::redact::Redactor;
use crate::workorder::paths::check_relative;
use std::path::{Path, PathBuf};

/// Everything needed to run one command-module step.
pub struct CommandSpec<'a> {
    pub module_dir: &'a Path,
    pub contract: &'a ModuleContract,
    /// What inputs.json holds (an object, written without being copied into a `Value`).
    pub inputs: &'a serde_json::Map<String, serde_json::Value>,
    /// The step's folder: outputs/, work/, inputs.json, result.json and logs go here.
    pub step_dir: &'a Path,
    /// The step dir as its supervisor's command line names it (`runner::step_dir_id`): how
    /// a later attempt recognises that supervisor.
    pub step_dir_id: PathBuf,
    /// The step's folder again, beneath a trusted folder: what the module left in it (its
    /// outputs, its result.json) is read through no link at any component, the step's folder
    /// included (a module may swap it, or its outputs folder, for a link).
    pub files: Beneath,
    /// The folder was created for this attempt (it did not exist): no earlier attempt left a
    /// supervisor record or a result.json in it.
    pub fresh: bool,
    /// PLATFORM_TENANT_ID, PLATFORM_WORK_ORDER_ID, PLATFORM_STEP_ID and the secrets (NAME=value).
    pub env: Vec<(String, String)>,
    pub redactor: &'a Redactor,
    /// Whether a slug is in the registry (unknown ones fail closed).
    pub known_reason: &'a dyn Fn(&str) -> bool,
}

/// How the module's processes ended, as the runner judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut,
    /// Never ran, or was stopped or lost for a reason the message gives.
    Broken(String),
}

/// Where the executable is: a relative argv[0] with `/` lives in the module folder.
fn resolve_program(module_dir: &Path, argv0: &str) -> Result<PathBuf, String> {
    if !argv0.contains('/') {
        return Ok(PathBuf::from(argv0));
    }
    if Path::new(argv0).is_absolute() {
        return Ok(PathBuf::from(argv0));
    }
    if let Some(why) = check_relative(argv0) {
        return Err(format!("runner.command[0]: {why}"));
    }
    Ok(module_dir.join(argv0))
}

fn abs(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Empty outputs/ and work/ folders and a fresh inputs.json; no result.json.
fn prepare(spec: &CommandSpec) -> Result<(), String> {
    for d in [spec.step_dir.join("outputs"), spec.step_dir.join("work")] {
        // A re-run (crash resume or retry) starts from empty folders, never from leftovers
        // (a link planted in their place is removed, not followed), however deep a tree the
        // earlier attempt left.
        match std::fs::create_dir(&d) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                crate::beneath::remove_tree(&d).map_err(|e| {
                    format!(
                        "cannot clear {}, which an earlier attempt of this step left: {e}; remove that folder by hand, then retry the step",
                        d.display()
                    )
                })?;
                std::fs::create_dir(&d)
            }
            other => other,
        }
        .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    if !spec.fresh {
        let _ = std::fs::remove_file(spec.step_dir.join(result::RESULT_FILE));
    }
    let body = serde_json::to_vec_pretty(spec.inputs).unwrap_or_else(|_| b"{}".to_vec());
    // Written before the module starts: a kill mid-write leaves a file no module has read,
    // which the next attempt replaces.
    crate::atomic::write_fresh(&spec.step_dir.join("inputs.json"), &body)
        .map_err(|e| format!("cannot write inputs.json: {}", e.message))
}

/// The module's whole environment: PATH, the protocol's variables, the declared secrets.
fn module_env(spec: &CommandSpec) -> Vec<(String, String)> {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let dir = spec.step_dir;
    let mut env = vec![
        ("PATH".to_string(), path),
        (
            "PLATFORM_INPUTS".to_string(),
            abs(&dir.join("inputs.json")).display().to_string(),
        ),
        (
            "PLATFORM_OUTPUTS_DIR".to_string(),
            abs(&dir.join("outputs")).display().to_string(),
        ),
        (
            "PLATFORM_RESULT".to_string(),
            abs(&dir.join(result::RESULT_FILE)).display().to_string(),
        ),
        (
            "PLATFORM_MODULE_DIR".to_string(),
            abs(spec.module_dir).display().to_string(),
        ),
    ];
    env.extend(spec.env.iter().cloned());
    env
}

/// Run the module and judge its outcome. Never panics; every problem is a FAILED result.
pub fn run(spec: &CommandSpec) -> StepResult {
    let Some(argv) = spec.contract.runner.command().filter(|a| !a.is_empty()) else {
        return StepResult::failed(Failure::ModuleFailed, "module has no runner.command");
    };
    let program = match resolve_program(spec.module_dir, &argv[0]) {
        Ok(p) => p,
        Err(why) => return StepResult::failed(Failure::ModuleFailed, why),
    };
    let (exit, logs) = match execute(spec, program, &argv[1..]) {
        Ok(done) => done,
        Err(why) => return StepResult::failed(Failure::ModuleFailed, why),
    };
    let mut result = judge(spec, &exit);
    result.logs = logs;
    bound(spec.redactor, result)
}

/// Everything between a clean step dir and the module's end: earlier processes ended, the
/// folders prepared, the module run under its supervisor. Err: it could not be run.
#[cfg(target_os = "linux")]
fn execute(
    spec: &CommandSpec,
    program: PathBuf,
    args: &[String],
) -> Result<(Exit, Vec<super::FileRecord>), String> {
    use super::launch::{self, Launch};
    use super::supervisor::Spec;
    // First: processes of an earlier attempt could still write into what is cleared next.
    if !spec.fresh {
        launch::end_earlier_attempt(spec.step_dir, &spec.step_dir_id)?;
    }
    prepare(spec)?;
    let ended = launch::run(&Launch {
        spec: Spec {
            step_dir: spec.step_dir_id.clone(),
            program,
            args: args.to_vec(),
            cwd: abs(&spec.step_dir.join("work")),
            env: module_env(spec),
            timeout_ms: spec.contract.timeout_seconds.saturating_mul(1000),
        },
        step_dir: spec.step_dir,
        redactor: spec.redactor,
        secret: !spec.contract.secrets.is_empty(),
    })?;
    Ok((exit_of(ended.ending, ended.log_error), ended.logs))
}

/// How the supervised run ended, as the runner judges it.
#[cfg(target_os = "linux")]
fn exit_of(ending: super::launch::Ending, log_error: Option<String>) -> Exit {
    use super::launch::Ending;
    use super::supervisor::Report;
    if let Some(e) = log_error {
        return Exit::Broken(format!("the step's log could not be written: {e}"));
    }
    match ending {
        Ending::Reported(Report::Exited { code }) => Exit::Code(code),
        Ending::Reported(Report::Signaled { signal }) => Exit::Signal(signal),
        Ending::Reported(Report::TimedOut)
        | Ending::Lost {
            timed_out: true, ..
        } => Exit::TimedOut,
        Ending::Reported(Report::SpawnFailed { error }) => Exit::Broken(error),
        Ending::Reported(Report::Terminated) => Exit::Broken(
            "the step was stopped: its supervisor was told to end it (the orchestrator ended?)"
                .into(),
        ),
        Ending::Lost { why, .. } => Exit::Broken(why),
    }
}

#[cfg(not(target_os = "linux"))]
fn execute(
    _spec: &CommandSpec,
    _program: PathBuf,
    _args: &[String],
) -> Result<(Exit, Vec<super::FileRecord>), String> {
    Err(
        "command modules run on Linux (their processes are supervised with Linux process control)"
            .into(),
    )
}

/// No secret and no unbounded text reaches the records: the message is redacted and cut,
/// value outputs redacted and capped (over the cap the step fails `outputs_too_large`).
fn bound(redactor: &Redactor, mut result: StepResult) -> StepResult {
    if let Some(m) = result.message.take() {
        result.message = Some(result::bound_message(redactor.redact(&m)));
    }
    if !redactor.is_empty() {
        for v in result.values.values_mut() {
            result::redact_json(redactor, v);
        }
    }
    if let Err(why) = result::check_values(&result.values) {
        let logs = std::mem::take(&mut result.logs);
        result = StepResult::failed(Failure::OutputsTooLarge, why);
        result.logs = logs;
    }
    result
}

fn judge(spec: &CommandSpec, exit: &Exit) -> StepResult {
    // Read (and so scrubbed of secrets) whatever the module's end: the file stays with the
    // step's records even when the step timed out.
    let reported = result::read(&spec.files, spec.redactor);
    match exit {
        Exit::TimedOut => {
            return StepResult::failed(
                Failure::Timeout,
                format!(
                    "killed after timeout_seconds = {}",
                    spec.contract.timeout_seconds
                ),
            )
        }
        Exit::Broken(why) => return StepResult::failed(Failure::ModuleFailed, why.clone()),
        Exit::Code(_) | Exit::Signal(_) => {}
    }
    let reported = match reported {
        Ok(r) => r,
        Err(why) => return StepResult::failed(Failure::ModuleFailed, why),
    };
    let field = |k: &str| {
        reported
            .as_ref()
            .and_then(|r| r.get(k))
            .and_then(|v| v.as_str())
            .map(String::from)
    };
    let said_failed = field("status").as_deref() == Some("FAILED");
    if *exit != Exit::Code(0) || said_failed {
        let slug = field("reason_slug");
        let allowed = slug
            .as_deref()
            .is_some_and(|s| (spec.known_reason)(s) && reason::module_may_report(s));
        let mut msg = field("message").unwrap_or_else(|| match exit {
            Exit::Signal(s) => format!("module was killed by signal {s}"),
            Exit::Code(0) => "the module reported status FAILED with no message".to_string(),
            Exit::Code(c) => format!("module exited with exit status: {c}"),
            _ => "module failed".to_string(),
        });
        let reason = match slug {
            Some(s) if allowed => Failure::from(s),
            Some(s) => {
                // Say why the operator sees another reason than the module's own: redacted
                // before it is cut, since a cut secret no longer matches.
                msg.push_str(&format!(
                    " (the module reported reason '{}', which is unknown or only the platform decides: failed as module_failed)",
                    spec.redactor.redact(&s).chars().take(64).collect::<String>()
                ));
                Failure::ModuleFailed
            }
            None => Failure::ModuleFailed,
        };
        return StepResult::failed(reason, msg);
    }
    completed(spec, reported.as_ref(), field("message"))
}

/// A module that exited 0 and did not say FAILED: its outputs decide.
fn completed(
    spec: &CommandSpec,
    reported: Option<&ResultObject>,
    message: Option<String>,
) -> StepResult {
    let mut res = StepResult::completed();
    res.message = message;
    match outputs::collect(spec.contract, &spec.files.join("outputs"), spec.redactor) {
        Ok(files) => res.outputs = files,
        Err(r) => return StepResult::failed(r.reason, r.message),
    }
    if let Some(values) = reported
        .and_then(|r| r.get("values"))
        .and_then(|v| v.as_object())
    {
        for out in &spec.contract.outputs {
            if out.ty == OutputType::Value {
                if let Some(v) = values.get(&out.id) {
                    res.values.insert(out.id.clone(), v.clone());
                }
            }
        }
    }
    // Redacted before it is checked: a refusal quotes the unit and the quantity (escaped),
    // and a quantity whose digits hold a secret is no quantity to record.
    let usage = reported.and_then(|r| r.get("usage")).map(|u| {
        let mut u = u.clone();
        result::redact_json(spec.redactor, &mut u);
        u
    });
    match super::usage::check(&spec.contract.pricing, usage.as_ref()) {
        Ok(usage) => res.usage = usage,
        Err(why) => {
            let outputs = std::mem::take(&mut res.outputs);
            res = StepResult::failed(Failure::UsageInvalid, why);
            // The outputs exist and are recorded by digest; the step is still FAILED.
            res.outputs = outputs;
            return res;
        }
    }
    res.status = Status::Completed;
    res
}
