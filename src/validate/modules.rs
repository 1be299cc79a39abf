//! Each step's module: it exists and loaded cleanly, its kind is the step's kind, and the purchased deliverables are on offer.
use super::{list_or_none, step_field, Wo};
use crate::findings::{Finding, Severity};
use crate::repo::Repo;
use std::collections::BTreeSet;

pub fn check(repo: &Repo, w: &Wo<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let broken = repo.broken_modules.get_or_init(|| broken_modules(repo));
    for (i, step) in w.wo.steps.iter().enumerate() {
        let sf = step_field(i);
        let Some(module) = repo.module(&step.module_id) else {
            let msg = if repo.has_module_folder(&step.module_id) {
                format!(
                    "step '{}' runs module '{}', whose module.yml could not be loaded; fix modules/{}/module.yml (see its findings)",
                    step.step_id, step.module_id, step.module_id
                )
            } else {
                format!(
                    "step '{}' runs module '{}', which does not exist; use one of: {}",
                    step.step_id,
                    step.module_id,
                    list_or_none(repo.modules.keys().map(String::as_str))
                )
            };
            out.push(w.finding(&format!("{sf}.module_id"), msg));
            continue;
        };
        if broken.contains(step.module_id.as_str()) {
            // Running a module whose contract is wrong would charge for a step whose inputs
            // and outputs nobody can trust.
            out.push(w.finding(
                &format!("{sf}.module_id"),
                format!(
                    "step '{}' runs module '{}', whose module.yml has errors; fix modules/{}/module.yml first",
                    step.step_id, step.module_id, step.module_id
                ),
            ));
        }
        if step.kind != module.kind {
            out.push(w.finding(
                &format!("{sf}.kind"),
                format!(
                    "step '{}' has kind '{}' but module '{}' is of kind '{}'; set kind: {}",
                    step.step_id,
                    step.kind.as_str(),
                    step.module_id,
                    module.kind.as_str(),
                    module.kind.as_str()
                ),
            ));
        }
        let mut seen = BTreeSet::new();
        for (j, d) in step.deliverables.iter().enumerate() {
            let field = format!("{sf}.deliverables[{j}]");
            if module.deliverable(d).is_none() {
                out.push(w.finding(
                    &field,
                    format!(
                        "step '{}' purchases deliverable '{d}', which module '{}' does not offer; offered: {}",
                        step.step_id,
                        step.module_id,
                        list_or_none(module.deliverables.iter().map(|x| x.deliverable_id.as_str()))
                    ),
                ));
            }
            if !seen.insert(d.as_str()) {
                out.push(w.finding(
                    &field,
                    format!(
                        "step '{}' lists deliverable '{d}' twice; list it once",
                        step.step_id
                    ),
                ));
            }
        }
    }
    out
}

/// Modules with error findings in their module.yml (from loading or from the contract checks).
fn broken_modules(repo: &Repo) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let extra = super::contracts::check(repo);
    for f in repo.findings.iter().chain(extra.iter()) {
        if f.severity != Severity::Error {
            continue;
        }
        if let Some(rest) = f.file.strip_prefix("modules/") {
            if let Some((id, file)) = rest.split_once('/') {
                if file == "module.yml" {
                    out.insert(id.to_string());
                }
            }
        }
    }
    out
}
