//! A module's `self_test` (module.yml): run the command module in a scratch folder with the declared inputs and check the expected status, reason and files.
use super::command::{self, CommandSpec};
use super::{FileRecord, Status, StepResult};
use crate::beneath::{Beneath, Kind, Reason, Refused};
use crate::contract::{Failure, InputSpec, InputType, ModuleContract, OutputType, SelfTest};
use crate::error::{Error, Result};
use crate::redact::Redactor;
use crate::repo::{LoadedModule, Repo};
use crate::workorder::paths::resolve_inside;
use serde::Serialize;
use serde_json::{Map, Value};
use std::path::Path;

/// What a self-test found (the `--json` document); exit 1 unless it passed.
#[derive(Debug, Clone, Serialize)]
pub struct SelfTestReport {
    pub module_id: String,
    /// No problem was found.
    pub passed: bool,
    /// Each way the run differed from `expect`.
    pub problems: Vec<String>,
    /// The module's stdout and stderr logs (name, text), kept when it failed.
    #[serde(skip)]
    pub logs: Vec<(String, String)>,
    /// As the runner judged the module's exit and result.
    pub status: Status,
    pub reason_slug: Option<Failure>,
    /// The files it produced under the scratch folder's outputs/ (gone once reported).
    pub outputs: Vec<FileRecord>,
}

/// Run the self-test `test` of `module` (a command module of `repo`, whose module.yml the
/// caller found without errors: `commands::module_test`).
pub fn self_test(repo: &Repo, module: &LoadedModule, test: &SelfTest) -> Result<SelfTestReport> {
    let inputs = inputs(module, test)?;
    let scratch = tempfile::tempdir()
        .map_err(|e| Error::failure(format!("cannot create a scratch folder: {e}")))?;
    let redactor = Redactor::new(crate::secrets::all_values());
    let known = |s: &str| repo.registry.is_known_reason(s);
    let res = command::run(&CommandSpec {
        module_dir: &module.dir,
        contract: &module.contract,
        inputs: &inputs,
        step_dir: scratch.path(),
        step_dir_id: super::step_dir_id(scratch.path()),
        files: Beneath::new(scratch.path(), ""),
        fresh: true,
        env: environment(module)?,
        redactor: &redactor,
        known_reason: &known,
    });
    let outputs = Beneath::new(scratch.path(), "outputs");
    let problems = judge(&module.contract, test, &res, &outputs);
    let passed = problems.is_empty();
    Ok(SelfTestReport {
        module_id: module.contract.module_id.clone(),
        passed,
        status: res.status,
        reason_slug: res.reason_slug,
        outputs: res.outputs,
        problems,
        logs: if passed {
            Vec::new()
        } else {
            logs(scratch.path())
        },
    })
}

/// Inputs: literals as written (else the input's default); file inputs are paths relative
/// to the module folder, which they may not leave.
fn inputs(module: &LoadedModule, test: &SelfTest) -> Result<Map<String, Value>> {
    let mut inputs = Map::new();
    for spec in &module.contract.inputs {
        // A required input without a value is a contract error (the caller refused it).
        let Some(given) = test.inputs.get(&spec.id).or(spec.default.as_ref()) else {
            continue;
        };
        let value = match spec.ty {
            InputType::File | InputType::Files => file_input(module, spec, given)?,
            _ => given.clone(),
        };
        inputs.insert(spec.id.clone(), value);
    }
    Ok(inputs)
}

fn file_input(module: &LoadedModule, spec: &InputSpec, given: &Value) -> Result<Value> {
    let rels: Vec<&str> = match given {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let mut paths = Vec::with_capacity(rels.len());
    for rel in rels {
        let path = resolve_inside(&module.dir, rel).map_err(|e| {
            Error::input(format!("self_test.inputs.{}: {e}", spec.id)).at(module.doc.rel.clone())
        })?;
        paths.push(Value::String(path.display().to_string()));
    }
    Ok(if spec.ty == InputType::File {
        paths.into_iter().next().unwrap_or(Value::Null)
    } else {
        Value::Array(paths)
    })
}

/// The step identity a self-test runs under, and the secrets the module declares (each
/// must be set: `PLATFORM_SECRET_<NAME>`).
fn environment(module: &LoadedModule) -> Result<Vec<(String, String)>> {
    let mut env: Vec<(String, String)> = [
        "PLATFORM_TENANT_ID",
        "PLATFORM_WORK_ORDER_ID",
        "PLATFORM_STEP_ID",
    ]
    .into_iter()
    .map(|k| (k.to_string(), "self-test".to_string()))
    .collect();
    let secrets = crate::secrets::from_env();
    for name in &module.contract.secrets {
        let Some(value) = secrets.get(name) else {
            return Err(Error::input(format!("secret {name} is not set"))
                .help(format!("set PLATFORM_SECRET_{name} to run this self-test")));
        };
        env.push((name.clone(), value.clone()));
    }
    Ok(env)
}

/// Each way the result differs from `expect` (status COMPLETED unless it says otherwise).
/// Expected files are looked for beneath the outputs folder only, through no link: a `dir`
/// output's path must be a folder, anything else a regular file.
fn judge(c: &ModuleContract, test: &SelfTest, res: &StepResult, outputs: &Beneath) -> Vec<String> {
    let status = status_name(res.status);
    let want_status = test.expect.status.as_deref().unwrap_or("COMPLETED");
    let mut problems = Vec::new();
    if status != want_status {
        let reason = res
            .reason_slug
            .as_ref()
            .map(|s| format!(", reason {s}: {}", res.message.clone().unwrap_or_default()));
        problems.push(format!(
            "status {status} (expected {want_status}){}",
            reason.unwrap_or_default()
        ));
    }
    if let Some(want) = &test.expect.reason_slug {
        match res.reason_slug.as_ref().map(|r| r.slug()) {
            Some(got) if got == want => {}
            Some(got) => problems.push(format!("reason_slug {got} (expected {want})")),
            None => problems.push(format!("no reason_slug (expected {want})")),
        }
    }
    for f in &test.expect.files {
        let is_dir_output = c.outputs.iter().any(|o| {
            o.ty == OutputType::Dir
                && c.output_path(&o.id)
                    .is_some_and(|p| Path::new(&p) == Path::new(f))
        });
        let (what, want) = if is_dir_output {
            ("folder", Kind::Folder)
        } else {
            ("file", Kind::File)
        };
        let problem = match outputs.join(f).metadata() {
            Ok(meta) if meta.kind == want => continue,
            Ok(meta) => format!("is {}, not a {what}", meta.kind.describe()),
            Err(Refused {
                reason: Reason::Missing,
                ..
            }) => "is missing".to_string(),
            Err(refused) => refused.reason.to_string(),
        };
        problems.push(format!("expected output {what} '{f}' {problem}"));
    }
    problems
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Completed => "COMPLETED",
        Status::Failed => "FAILED",
    }
}

/// The module's logs that are not blank, to show why it failed.
fn logs(scratch: &Path) -> Vec<(String, String)> {
    ["stdout.log", "stderr.log"]
        .into_iter()
        .filter_map(|log| {
            let text = std::fs::read_to_string(scratch.join(log)).ok()?;
            (!text.trim().is_empty()).then(|| (log.to_string(), text.trim_end().to_string()))
        })
        .collect()
}
