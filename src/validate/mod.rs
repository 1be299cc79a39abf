//! Static consistency checks of a loaded repository (SPEC §2); one file per concern, every check collects all findings and none stops early.
pub mod assets;
pub mod bindings;
pub mod contracts;
pub mod deliveries;
pub mod entitlements;
pub mod gating;
pub mod identity;
pub mod inputs;
pub mod modules;
pub mod package;
pub mod profiles;
pub mod release_names;
pub mod releases;
pub mod report;
pub mod shared_names;

use crate::findings::{Finding, Severity};
use crate::repo::{LoadedWorkOrder, Repo};
use crate::workorder::model::{Step, WorkOrder};
use crate::yaml::Doc;

/// One parsed work order and where it came from: what every work-order check reads.
#[derive(Debug, Clone, Copy)]
pub struct Wo<'a> {
    pub lw: &'a LoadedWorkOrder,
    pub doc: &'a Doc,
    pub wo: &'a WorkOrder,
}

impl<'a> Wo<'a> {
    /// An error at `field` of this work order, with its line.
    pub fn finding(&self, field: &str, message: impl Into<String>) -> Finding {
        self.doc.finding(field, message)
    }

    /// The step that step `index` may read from when it names `from_step`: an earlier one.
    /// `what` describes the thing read ("output 'x'", "file 'y'") for the message.
    pub fn source_step(
        &self,
        index: usize,
        from_step: &str,
        what: &str,
    ) -> Result<(usize, &'a Step), String> {
        let me = self
            .wo
            .steps
            .get(index)
            .map(|s| s.step_id.as_str())
            .unwrap_or_default();
        if let Some(found) = self
            .wo
            .steps
            .iter()
            .enumerate()
            .take(index)
            .find(|(_, s)| s.step_id == from_step)
        {
            return Ok(found);
        }
        if from_step == me {
            return Err(format!(
                "step '{me}' binds {what} of itself; a step can only read outputs of steps that run before it"
            ));
        }
        if self
            .wo
            .steps
            .iter()
            .skip(index + 1)
            .any(|s| s.step_id == from_step)
        {
            return Err(format!(
                "step '{me}' binds {what} of step '{from_step}', which runs later; bind to an earlier step or move '{from_step}' before '{me}'"
            ));
        }
        let earlier: Vec<&str> = self
            .wo
            .steps
            .iter()
            .take(index)
            .map(|s| s.step_id.as_str())
            .collect();
        let hint = if earlier.is_empty() {
            "it is the first step, so it cannot bind any step's outputs; set a literal value or an {asset: path}".to_string()
        } else {
            format!("use one of the earlier steps: {}", earlier.join(", "))
        };
        Err(format!(
            "step '{me}' binds {what} of step '{from_step}', which is not a step of this work order; {hint}"
        ))
    }
}

/// `steps[i]` as a field path.
pub fn step_field(index: usize) -> String {
    format!("steps[{index}]")
}

/// `steps[i].inputs.<name>` as a field path.
pub fn input_field(index: usize, name: &str) -> String {
    format!("steps[{index}].inputs.{name}")
}

/// A comma-separated list, or `none` (for "declared: ..." hints).
pub fn list_or_none<'s>(items: impl IntoIterator<Item = &'s str>) -> String {
    let v: Vec<&str> = items.into_iter().collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// A check of one work order.
type WoCheck = fn(&Repo, &Wo<'_>) -> Vec<Finding>;

/// Every work-order check, in the order their findings are reported.
const WORK_ORDER_CHECKS: &[WoCheck] = &[
    identity::check,
    modules::check,
    gating::check,
    bindings::check,
    inputs::check,
    assets::check,
    package::check,
    deliveries::check,
    releases::check,
    release_names::check,
    shared_names::check,
];

/// Every finding for one work order, as errors (including those of loading it). The caller
/// decides what a draft's findings mean; the orchestrator runs this again before each run.
pub fn work_order(repo: &Repo, lw: &LoadedWorkOrder) -> Vec<Finding> {
    let mut out = lw.findings.clone();
    out.extend(between_files(repo, lw));
    if let (Some(doc), Some(wo)) = (&lw.doc, &lw.work_order) {
        let w = Wo { lw, doc, wo };
        for check in WORK_ORDER_CHECKS {
            out.extend(check(repo, &w));
        }
    }
    out.into_iter()
        .map(|mut f| {
            f.severity = Severity::Error;
            f
        })
        .collect()
}

/// The errors that keep an enabled work order from running, as the orchestrator judges it
/// before each run: the config's ([`Repo::config_errors`]: with a registry or catalog that
/// has errors, what a run charges or refunds is not known), its tenant's (an invalid
/// tenant.yml makes every work order of the tenant invalid), then its own. One judged at
/// load (`cache::workorders::load_light`) carries its errors; one the cache vouches for was
/// valid with these bytes, modules and config, and only the rules between files are
/// checked again. `platform rerun` asks the same question of a freshly loaded repository.
pub fn before_run(repo: &Repo, lw: &LoadedWorkOrder) -> Vec<Finding> {
    let mut errors = repo.config_errors();
    if let Some(t) = repo.tenants.get(&lw.tenant_id) {
        errors.extend(t.errors.iter().cloned());
    }
    errors.extend(if lw.vouched && lw.findings.is_empty() {
        between_files(repo, lw)
    } else if lw.vouched {
        lw.findings.clone()
    } else {
        work_order(repo, lw)
    });
    errors
}

/// The rules a work order can break with another file's help (a second file of its id, an
/// asset name another work order's purchase has): checked for every work order on every
/// load, whatever the work-order cache says of its file.
pub fn between_files(repo: &Repo, lw: &LoadedWorkOrder) -> Vec<Finding> {
    let mut out = identity::duplicate_files(repo, lw);
    out.extend(shared_names::between_files(repo, lw));
    out
}

/// Every finding of the repository: config, modules, tenants and every work order, with
/// drafts' (`enabled: false`) findings downgraded to warnings.
pub fn repository(repo: &Repo) -> Vec<Finding> {
    let mut out = repo.findings.clone();
    out.extend(contracts::check(repo));
    out.extend(profiles::check(repo));
    // Entitlements are not work-order checks: the orchestrator refuses a run `not_entitled`
    // (reported like a credits refusal) rather than calling its work order invalid.
    out.extend(entitlements::check(repo));
    for lw in repo.work_orders() {
        let found = work_order(repo, lw);
        if lw.enabled {
            out.extend(found);
        } else {
            out.extend(found.into_iter().map(Finding::as_warning));
        }
    }
    out
}

/// Split findings into (errors, warnings), each in report order.
pub fn split(findings: Vec<Finding>) -> (Vec<Finding>, Vec<Finding>) {
    findings
        .into_iter()
        .partition(|f| f.severity == Severity::Error)
}
