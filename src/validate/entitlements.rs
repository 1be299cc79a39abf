//! The catalog against the repository (SPEC §10): plans name real modules, every tenant names a plan of the catalog, every step's module is in its tenant's plan.
use crate::config::catalog::{Catalog, NotEntitled, CATALOG_FILE};
use crate::findings::Finding;
use crate::repo::{LoadedTenant, Repo};

/// Every entitlement finding of the repository (none without a catalog); those of drafts'
/// steps are warnings, as every finding of a draft is.
pub fn check(repo: &Repo) -> Vec<Finding> {
    let Some(catalog) = &repo.catalog else {
        return Vec::new();
    };
    if catalog.invalid().is_some() {
        // Read as having no plans: "plan 'x' is not in config/catalog.yml" per tenant and a
        // refusal per step would blame every tenant for the catalog's own errors, which are
        // its findings (until 2026-12-03 they did).
        return Vec::new();
    }
    let mut out = plans(repo, catalog);
    // An invalid tenant's plan is not read (its tenant.yml's errors are its findings): "names
    // no plan" and a refusal per step would only repeat them, wrongly.
    for t in repo.tenants.values().filter(|t| t.errors.is_empty()) {
        out.extend(tenant_plan(catalog, t));
        out.extend(steps(repo, t));
    }
    out
}

/// A module a plan lists that is not a module folder of the repository (a folder whose
/// module.yml did not load is reported once, for that file).
fn plans(repo: &Repo, catalog: &Catalog) -> Vec<Finding> {
    let mut out = Vec::new();
    for (plan, modules) in &catalog.plans {
        for m in modules.iter().filter(|m| !repo.has_module_folder(m)) {
            out.push(
                Finding::error(
                    CATALOG_FILE,
                    format!("plans.{plan}"),
                    format!("plan '{plan}' lists module '{m}', which is not a folder under modules/; add the module or remove it from the plan"),
                )
                .line(catalog.line_of(plan)),
            );
        }
    }
    out
}

/// A tenant without a plan, or with one the catalog does not have.
fn tenant_plan(catalog: &Catalog, t: &LoadedTenant) -> Option<Finding> {
    let doc = t.doc.as_ref()?;
    let known = || catalog.plans.keys().cloned().collect::<Vec<_>>().join(", ");
    let message = match &t.settings.plan {
        None => format!(
            "tenant '{}' names no plan, and {CATALOG_FILE} exists: add `plan: <one of {}>` (its work orders may run built-in modules only)",
            t.tenant_id,
            known()
        ),
        Some(p) if !catalog.plans.contains_key(p) => format!(
            "plan '{p}' is not in {CATALOG_FILE} (its plans: {}); name one of them",
            known()
        ),
        Some(_) => return None,
    };
    Some(doc.finding("plan", message))
}

/// Each step whose module the tenant's plan does not allow.
fn steps(repo: &Repo, t: &LoadedTenant) -> Vec<Finding> {
    let mut out = Vec::new();
    for lw in &t.work_orders {
        let (Some(doc), Some(wo)) = (&lw.doc, &lw.work_order) else {
            continue;
        };
        for (i, step) in wo.steps.iter().enumerate() {
            if !repo.modules.contains_key(&step.module_id) {
                continue; // an unknown module is the modules check's finding
            }
            if let Err(why) = repo.entitled(&t.tenant_id, &step.module_id) {
                let field = format!("steps[{i}].module_id");
                let f = doc.finding(&field, step_message(&why, &step.module_id));
                out.push(if lw.enabled { f } else { f.as_warning() });
            }
        }
    }
    out
}

fn step_message(why: &NotEntitled, module_id: &str) -> String {
    format!(
        "{}; the orchestrator refuses this work order `not_entitled` (nothing is charged): add the module to the plan or move the tenant to a plan that has it",
        why.message(module_id)
    )
}
