//! `platform module test <module_id>`: runs a module's `self_test` in a scratch folder and
//! checks the expected status, reason and files.
use super::Ctx;
use crate::cli::ModuleTestArgs;
use crate::contract::InputType;
use crate::error::{Error, Result};
use crate::output::Report;
use crate::repo::Repo;
use crate::runner::command::{self, CommandSpec};
use crate::runner::redact::Redactor;
use crate::runner::Status;
use crate::workorder::paths::resolve_inside;

pub fn run(ctx: &Ctx, args: &ModuleTestArgs) -> Result<Report> {
    let repo = Repo::load(ctx.repo())?;
    let Some(module) = repo.modules.get(&args.module_id) else {
        let known: Vec<&str> = repo.modules.keys().map(String::as_str).collect();
        return Err(Error::input(format!(
            "module '{}' not found (or its module.yml is invalid)",
            args.module_id
        ))
        .help(format!(
            "known modules: {}; run `platform consistency-validate` to see contract errors",
            known.join(", ")
        )));
    };
    let c = &module.contract;
    let Some(test) = &c.self_test else {
        return Err(Error::input(format!("module '{}' has no self_test", c.module_id)).at(module.doc.rel.clone()).help(
            "add self_test: {inputs: {...}, expect: {status: COMPLETED, files: [...]}} to module.yml",
        ));
    };
    if c.runner.command().is_none() {
        return Err(Error::input(format!(
            "module '{}' is a built-in; its self-test is the crate's test suite",
            c.module_id
        )));
    }
    // Inputs: literals as written; file inputs are paths relative to the module folder.
    let mut inputs = serde_json::Map::new();
    for spec in &c.inputs {
        let given = test.inputs.get(&spec.id).or(spec.default.as_ref());
        let Some(v) = given else {
            if spec.required {
                return Err(Error::input(format!(
                    "self_test.inputs lacks required input '{}'",
                    spec.id
                ))
                .at(module.doc.rel.clone()));
            }
            continue;
        };
        let v = match spec.ty {
            InputType::File | InputType::Files => {
                let rels: Vec<&str> = match v {
                    serde_json::Value::String(s) => vec![s.as_str()],
                    serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str()).collect(),
                    _ => Vec::new(),
                };
                let mut paths = Vec::new();
                for r in rels {
                    let p = resolve_inside(&module.dir, r).map_err(|e| {
                        Error::input(format!("self_test.inputs.{}: {e}", spec.id))
                            .at(module.doc.rel.clone())
                    })?;
                    paths.push(serde_json::Value::String(p.display().to_string()));
                }
                if spec.ty == InputType::File {
                    paths.into_iter().next().unwrap_or(serde_json::Value::Null)
                } else {
                    serde_json::Value::Array(paths)
                }
            }
            _ => v.clone(),
        };
        inputs.insert(spec.id.clone(), v);
    }
    let scratch = tempfile::tempdir()
        .map_err(|e| Error::failure(format!("cannot create a scratch folder: {e}")))?;
    let secrets = crate::secrets::from_env();
    let mut env = vec![
        ("PLATFORM_TENANT_ID".to_string(), "self-test".to_string()),
        (
            "PLATFORM_WORK_ORDER_ID".to_string(),
            "self-test".to_string(),
        ),
        ("PLATFORM_STEP_ID".to_string(), "self-test".to_string()),
    ];
    for name in &c.secrets {
        match secrets.get(name) {
            Some(v) => env.push((name.clone(), v.clone())),
            None => {
                return Err(Error::input(format!("secret {name} is not set"))
                    .help(format!("set PLATFORM_SECRET_{name} to run this self-test")))
            }
        }
    }
    let redactor = Redactor::new(crate::secrets::all_values());
    let registry = &repo.registry;
    let known = |s: &str| registry.is_known_reason(s);
    let res = command::run(&CommandSpec {
        module_dir: &module.dir,
        contract: c,
        inputs: &serde_json::Value::Object(inputs),
        step_dir: scratch.path(),
        env,
        redactor: &redactor,
        known_reason: &known,
    });
    let status = match res.status {
        Status::Completed => "COMPLETED",
        Status::Failed => "FAILED",
    };
    let mut problems = Vec::new();
    let want_status = test.expect.status.as_deref().unwrap_or("COMPLETED");
    if status != want_status {
        problems.push(format!(
            "status {status} (expected {want_status}){}",
            res.reason_slug
                .as_ref()
                .map(|s| format!(", reason {s}: {}", res.message.clone().unwrap_or_default()))
                .unwrap_or_default()
        ));
    }
    if let Some(want) = &test.expect.reason_slug {
        let got = res.reason_slug.as_ref().map(|r| r.slug());
        if got != Some(want.as_str()) {
            problems.push(format!("reason_slug {got:?} (expected {want})"));
        }
    }
    for f in &test.expect.files {
        if !scratch.path().join("outputs").join(f).is_file() {
            problems.push(format!("expected output file '{f}' is missing"));
        }
    }
    let ok = problems.is_empty();
    let mut text = format!(
        "module {} self-test: {}\n",
        c.module_id,
        if ok { "passed" } else { "FAILED" }
    );
    for p in &problems {
        text.push_str(&format!("  - {p}\n"));
    }
    if !ok {
        for log in ["stdout.log", "stderr.log"] {
            if let Ok(s) = std::fs::read_to_string(scratch.path().join(log)) {
                if !s.trim().is_empty() {
                    text.push_str(&format!("--- {log}\n{}\n", s.trim_end()));
                }
            }
        }
    }
    let json = serde_json::json!({
        "module_id": c.module_id,
        "passed": ok,
        "status": status,
        "reason_slug": res.reason_slug,
        "outputs": res.outputs,
        "problems": problems,
    });
    Ok(Report::new(text, json).exit(if ok { 0 } else { 1 }))
}
