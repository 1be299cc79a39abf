//! `platform orchestrator`: one pass over the enabled work orders — validate, plan, then run
//! what is not up to date, charging and recording everything in the ledger.
pub mod builtins;
pub mod close;
pub mod execute;
pub mod journal;
pub mod plan;
pub mod summary;

use crate::config::profile::RuntimeProfile;
use crate::error::{Error, Result};
use crate::findings::Finding;
use crate::repo::{LoadedWorkOrder, Repo};
use crate::runner::redact::Redactor;
use crate::runs::history::History;
use execute::{ExecEnv, RunReport};
use plan::{Action, Filter, Plan, PlanInput};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const LOCK_NAME: &str = ".orchestrator.lock";

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub runtime_profile: Option<PathBuf>,
    pub billing_state_dir: Option<PathBuf>,
    pub runtime_dir: Option<PathBuf>,
    pub filter: Filter,
    pub retry_failed: bool,
    pub lock_timeout: Duration,
    pub dry_run: bool,
}

/// A work order that was not run because it is invalid.
#[derive(Debug, Clone, Serialize)]
pub struct Invalid {
    pub tenant_id: String,
    pub work_order_id: String,
    pub file: String,
    pub findings: Vec<Finding>,
}

/// Everything a pass did (or, with --dry-run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub dry_run: bool,
    pub billing_state_dir: String,
    pub runtime_dir: String,
    pub runs: Vec<RunReport>,
    pub up_to_date: Vec<String>,
    pub invalid: Vec<Invalid>,
    pub charged_credits: i64,
    pub refunded_credits: i64,
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
}

impl Summary {
    /// Count a run's credits and list it.
    fn add(&mut self, report: RunReport) {
        self.charged_credits = self.charged_credits.saturating_add(report.charged_credits);
        self.refunded_credits = self
            .refunded_credits
            .saturating_add(report.refunded_credits);
        self.runs.push(report);
    }
    /// 1 when any work order was invalid or any run ended FAILED (refusals included).
    pub fn exit_code(&self) -> u8 {
        let failed = self
            .runs
            .iter()
            .any(|r| r.status == crate::records::RunStatus::Failed);
        let refused = self
            .plan
            .as_ref()
            .is_some_and(|p| p.work_orders.iter().any(|w| w.refused.is_some()));
        u8::from(!self.invalid.is_empty() || failed || refused)
    }
}

/// Errors of each enabled work order (validation at run time, as consistency-validate does).
fn validation_errors(repo: &Repo) -> BTreeMap<(String, String), Vec<Finding>> {
    repo.work_orders()
        .filter(|lw| lw.enabled)
        .map(|lw| {
            (
                (lw.tenant_id.clone(), lw.stem.clone()),
                crate::validate::work_order(repo, lw),
            )
        })
        .collect()
}

/// Folders under tenants/ that are not tenants, within the pass's filter, as invalid entries
/// (`work_order_id` `*`: none of the folder's work orders is run or billed).
fn rejected_tenants(repo: &Repo, filter: &Filter) -> Vec<Invalid> {
    repo.rejected_tenants
        .iter()
        .filter(|r| {
            filter.tenant_id.as_deref().is_none_or(|t| t == r.folder)
                && filter
                    .shard
                    .is_none_or(|(k, n)| plan::tenant_shard(&r.folder, n) == k)
        })
        .map(|r| Invalid {
            tenant_id: r.folder.clone(),
            work_order_id: "*".into(),
            file: r.finding.file.clone(),
            findings: vec![r.finding.clone()],
        })
        .collect()
}

/// Run one pass. `progress` receives one line per step.
pub fn run_pass(
    repo_root: &Path,
    opts: &Options,
    progress: &mut dyn FnMut(&str),
) -> Result<Summary> {
    let profile = RuntimeProfile::load(repo_root, opts.runtime_profile.as_deref())?;
    let state_dir = profile.billing_state_dir(opts.billing_state_dir.as_deref());
    let runtime_dir = profile.runtime_dir(opts.runtime_dir.as_deref());
    let repo = Repo::load(repo_root)?;
    let errors = validation_errors(&repo);
    let secrets = crate::secrets::from_env();
    let secrets_present: BTreeSet<String> = secrets.keys().cloned().collect();
    let mut summary = Summary {
        dry_run: opts.dry_run,
        billing_state_dir: state_dir.display().to_string(),
        runtime_dir: runtime_dir.display().to_string(),
        runs: Vec::new(),
        up_to_date: Vec::new(),
        invalid: Vec::new(),
        charged_credits: 0,
        refunded_credits: 0,
        notes: Vec::new(),
        plan: None,
    };
    // Held for the whole pass: one orchestrator per billing-state directory.
    let _lock = if opts.dry_run {
        None
    } else {
        std::fs::create_dir_all(&state_dir).map_err(|e| Error::io(&state_dir, &e))?;
        let mut waited = false;
        Some(crate::ledger::lock::DirLock::acquire(
            &state_dir,
            LOCK_NAME,
            opts.lock_timeout,
            |_| {
                if !waited {
                    progress(&format!(
                        "waiting for another orchestrator on {} (up to {}s)",
                        state_dir.display(),
                        opts.lock_timeout.as_secs()
                    ));
                    waited = true;
                }
            },
        )?)
    };
    let (history, totals, balances) = if state_dir.exists() {
        journal::load(&state_dir)?
    } else {
        Default::default()
    };
    let plan = plan::plan(&PlanInput {
        repo: &repo,
        history: &history,
        balances: &balances,
        errors: &errors,
        secrets_present: &secrets_present,
        filter: &opts.filter,
        retry_failed: opts.retry_failed,
    });
    for wp in &plan.work_orders {
        summary.notes.extend(wp.notes.iter().cloned());
        match wp.action {
            Action::Invalid => summary.invalid.push(Invalid {
                tenant_id: wp.tenant_id.clone(),
                work_order_id: wp.work_order_id.clone(),
                file: wp.file.clone(),
                findings: wp.findings.clone(),
            }),
            Action::UpToDate => summary
                .up_to_date
                .push(format!("{}/{}", wp.tenant_id, wp.work_order_id)),
            _ => {}
        }
    }
    summary
        .invalid
        .extend(rejected_tenants(&repo, &opts.filter));
    summary
        .invalid
        .sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
    if opts.dry_run {
        summary.plan = Some(plan);
        return Ok(summary);
    }
    let idle = !plan.work_orders.iter().any(|wp| {
        !wp.close.is_empty() || matches!(wp.action, Action::Start | Action::Resume | Action::Retry)
    });
    if idle && !history.repairs_pending {
        // Everything is up to date: opening the writer (another read of the whole ledger,
        // and its index in memory) would only slow the pass down.
        return Ok(summary);
    }
    let redactor = Redactor::new(crate::secrets::all_values());
    let (mut journal, repairs) = journal::Journal::open(&state_dir, totals)?;
    summary.notes.extend(repairs);
    let mut env = ExecEnv {
        repo: &repo,
        journal: &mut journal,
        runtime_dir: &runtime_dir,
        profile: &profile,
        secrets: &secrets,
        redactor: &redactor,
        progress,
    };
    // By (tenant, work order): a linear search per run made a pass quadratic in W.
    let loaded: HashMap<(&str, &str), &LoadedWorkOrder> = repo
        .work_orders()
        .map(|l| ((l.tenant_id.as_str(), l.stem.as_str()), l))
        .collect();
    for wp in &plan.work_orders {
        // A problem of one work order ends that work order only (SPEC §7): the pass goes on
        // with the others and exits 1 at the end.
        if let Err(e) = run_work_order(&mut env, &history, &loaded, wp, &mut summary) {
            (env.progress)(&format!(
                "[{}/{}] stopped: {}",
                wp.tenant_id, wp.work_order_id, e.message
            ));
            summary.runs.push(execute::errored_report(wp, &e));
        }
    }
    summary.notes.extend(journal.take_notes());
    Ok(summary)
}

/// Close the work order's superseded runs, then run what its plan says.
fn run_work_order(
    env: &mut ExecEnv,
    history: &History,
    loaded: &HashMap<(&str, &str), &LoadedWorkOrder>,
    wp: &plan::WorkOrderPlan,
    summary: &mut Summary,
) -> Result<()> {
    let runs = history.runs(&wp.tenant_id, &wp.work_order_id);
    for c in &wp.close {
        let Some(hist) = runs.and_then(|r| r.get(&c.run)) else {
            continue;
        };
        let report = close::close_run(env, &wp.tenant_id, &wp.work_order_id, c, hist)?;
        summary.add(report);
    }
    if !matches!(wp.action, Action::Start | Action::Resume | Action::Retry) {
        return Ok(());
    }
    if wp.refused.is_some() {
        let r = execute::refused_report(wp);
        (env.progress)(&format!(
            "[{}/{}] refused: {}",
            wp.tenant_id,
            wp.work_order_id,
            r.refused.clone().unwrap_or_default()
        ));
        summary.runs.push(r);
        return Ok(());
    }
    let Some(wo) = loaded
        .get(&(wp.tenant_id.as_str(), wp.work_order_id.as_str()))
        .and_then(|lw| lw.work_order.as_ref())
    else {
        return Ok(());
    };
    let hist = runs.and_then(|r| r.get(&wp.run));
    let report = execute::execute(env, wp, wo, hist)?;
    summary.add(report);
    Ok(())
}
