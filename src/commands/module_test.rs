//! `platform module test <module_id>`: finds a command module whose module.yml `crate::validate` finds no error in, then `crate::runner::self_test` runs its `self_test` in a scratch folder; renders what it found.
use super::Ctx;
use crate::cli::ModuleTestArgs;
use crate::contract::SelfTest;
use crate::error::{Error, Result};
use crate::findings::{Finding, Severity};
use crate::output::{Report, View};
use crate::repo::{LoadedModule, Repo};
use crate::runner::self_test::{self_test, SelfTestReport};
use crate::validate::{contracts, list_or_none};

pub fn run(ctx: &Ctx, args: &ModuleTestArgs) -> Result<Report> {
    let repo = Repo::load(ctx.repo())?;
    let (module, test) = find(&repo, &args.module_id)?;
    Ok(Report::of(&self_test(&repo, module, test)?))
}

/// The module and its self_test. A built-in has none (its code is tested by the platform's
/// own test suite); a module.yml that `consistency-validate` rejects is refused with its
/// findings: a self-test of a contract the orchestrator would not run proves nothing, and
/// its program problems read better as the validator's findings than as spawn errors.
fn find<'r>(repo: &'r Repo, module_id: &str) -> Result<(&'r LoadedModule, &'r SelfTest)> {
    let Some(module) = repo.modules.get(module_id) else {
        if repo.has_module_folder(module_id) {
            return Err(refused(module_id, contracts::of_module(repo, module_id)));
        }
        return Err(
            Error::input(format!("module '{module_id}' not found")).help(format!(
                "name a folder of modules/ (known modules: {})",
                list_or_none(repo.modules.keys().map(String::as_str))
            )),
        );
    };
    let c = &module.contract;
    if let Some(builtin) = c.runner.builtin() {
        return Err(Error::input(format!(
            "module '{}' is a built-in (runner: {{builtin: {builtin}}}): `module test` runs command modules only",
            c.module_id
        ))
        .at(module.doc.rel.clone())
        .help("a built-in's code is tested by the platform's own test suite, and a self_test in its module.yml is never run; to see it work, run a work order with a step that uses it (`platform orchestrator`)"));
    }
    let Some(test) = &c.self_test else {
        return Err(Error::input(format!("module '{}' has no self_test", c.module_id)).at(module.doc.rel.clone()).help(
            "add self_test: {inputs: {...}, expect: {status: COMPLETED, files: [...]}} to module.yml",
        ));
    };
    let errors = contracts::of_module(repo, module_id);
    if errors.iter().any(|f| f.severity == Severity::Error) {
        return Err(refused(module_id, errors));
    }
    Ok((module, test))
}

/// Module `module_id` cannot be tested: its module.yml has these errors (warnings, which do
/// not stop a run, are left out).
fn refused(module_id: &str, findings: Vec<Finding>) -> Error {
    let file = format!("modules/{module_id}/module.yml");
    let errors: Vec<Finding> = findings
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    let Some(first) = errors.first() else {
        // Not loaded, yet no finding names it (never expected): still say which file.
        return Error::input(format!(
            "module '{module_id}' could not be loaded from {file}"
        ))
        .at(file)
        .help("run `platform consistency-validate` to see why");
    };
    let location = first.location();
    let mut message = format!(
        "module '{module_id}' cannot be tested: {file} has {} error{}",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for f in &errors {
        let field = if f.field.is_empty() {
            String::new()
        } else {
            format!("{}: ", f.field)
        };
        message.push_str(&format!("\n  {}: {field}{}", f.location(), f.message));
    }
    Error::input(message).at(location).help(format!(
        "fix {file} (`platform consistency-validate` reports the same), then test it again"
    ))
}

impl View for SelfTestReport {
    fn text(&self) -> String {
        let verdict = if self.passed { "passed" } else { "FAILED" };
        let mut text = format!("module {} self-test: {verdict}\n", self.module_id);
        for p in &self.problems {
            text.push_str(&format!("  - {p}\n"));
        }
        for (name, log) in &self.logs {
            text.push_str(&format!("--- {name}\n{log}\n"));
        }
        text
    }

    fn exit_code(&self) -> u8 {
        u8::from(!self.passed)
    }
}
