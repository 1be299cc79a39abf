//! `platform orchestrator`: one pass over the enabled work orders — validate, plan, then run
//! what is not up to date, charging and recording everything in the ledger.
pub mod close;
pub mod credits;
pub mod env;
pub mod execute;
pub mod identity;
pub mod journal;
pub mod notices;
pub mod plan;
pub mod progress;
pub mod reading;
pub mod report;
pub mod step;
pub mod summary;
pub mod tally;
mod workers;

use crate::config::profile::RuntimeProfile;
use crate::error::Result;
use crate::findings::Finding;
use crate::redact::Redactor;
use crate::repo::Repo;
use crate::runner::Platform;
use crate::runs::history::History;
use crate::runs::load::Balances;
use env::ExecEnv;
use plan::{Action, Filter, Plan, PlanInput};
use progress::{Board, Sink};
use reading::LedgerView;
use report::RunReport;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const LOCK_NAME: &str = ".orchestrator.lock";

#[derive(Debug, Clone)]
pub struct Options {
    pub runtime_profile: Option<PathBuf>,
    pub billing_state_dir: Option<PathBuf>,
    pub runtime_dir: Option<PathBuf>,
    pub filter: Filter,
    pub retry_failed: bool,
    pub lock_timeout: Duration,
    pub dry_run: bool,
    /// Work orders run at once (at least 1).
    pub jobs: usize,
    /// The pass's clock (`--now`, `PLATFORM_NOW`, else the system clock), read once.
    pub now: chrono::DateTime<chrono::Utc>,
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
    /// Errors of config/registry.yml and config/catalog.yml ([`Repo::config_errors`]): with
    /// any, every work order of the pass is in `invalid` and nothing is run, charged or
    /// refunded.
    pub config_errors: Vec<Finding>,
    pub charged_credits: i64,
    pub refunded_credits: i64,
    pub notes: Vec<String>,
    /// Tenants to top up: below their `low_balance_credits`, or refused for credits.
    pub low_balance: Vec<notices::LowBalance>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// What the derived caches saved this pass (`--json` only).
    pub cache: crate::cache::CacheReport,
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
    /// "N run(s), N up to date, N invalid; charged N credits, refunded N", every number
    /// between `mark`s (Markdown's `**` in a job summary).
    pub fn counts(&self, mark: &str) -> String {
        let m = |n: String| format!("{mark}{n}{mark}");
        format!(
            "{} run(s), {} up to date, {} invalid; charged {} credits, refunded {}",
            m(self.runs.len().to_string()),
            m(self.up_to_date.len().to_string()),
            m(self.invalid.len().to_string()),
            m(self.charged_credits.to_string()),
            m(self.refunded_credits.to_string())
        )
    }
    /// 1 when the config or any work order was invalid or any run ended FAILED (refusals
    /// included).
    pub fn exit_code(&self) -> u8 {
        let failed = self
            .runs
            .iter()
            .any(|r| r.status == crate::records::RunStatus::Failed);
        let refused = self.plan.as_ref().is_some_and(|p| {
            p.work_orders.iter().any(|w| {
                w.refused.is_some() || w.then.as_ref().is_some_and(|t| t.refused.is_some())
            })
        });
        u8::from(!self.invalid.is_empty() || !self.config_errors.is_empty() || failed || refused)
    }
}

/// Errors of each enabled work order (`validate::before_run`, as consistency-validate
/// judges it; the cache's verdicts are on the work-order files alone: tenant.yml is judged
/// again on every load). Keyed by file: two files of one id (w.yml and w.yaml) each have
/// their own findings.
fn validation_errors(repo: &Repo) -> BTreeMap<String, Vec<Finding>> {
    repo.work_orders()
        .filter(|lw| lw.enabled)
        .map(|lw| (lw.rel.clone(), crate::validate::before_run(repo, lw)))
        .collect()
}

/// Folders under tenants/ that are not tenants, within the pass's filter, as invalid entries
/// (`work_order_id` `*`: none of the folder's work orders is run or billed).
fn rejected_tenants(repo: &Repo, filter: &Filter) -> Vec<Invalid> {
    repo.rejected_tenants
        .iter()
        .filter(|r| filter.covers_tenant(&r.folder))
        .map(|r| Invalid {
            tenant_id: r.folder.clone(),
            work_order_id: "*".into(),
            file: r.finding.file.clone(),
            findings: vec![r.finding.clone()],
        })
        .collect()
}

/// What a pass reads before it plans: the profile, the repository, where the ledger and the
/// runtime files are, and the secrets.
struct Setup {
    profile: RuntimeProfile,
    repo: Repo,
    state_dir: PathBuf,
    runtime_dir: PathBuf,
    /// Declared secret values by NAME (from PLATFORM_SECRET_NAME).
    secrets: BTreeMap<String, String>,
}

impl Setup {
    /// The profile and the repository, each work order judged and lightened as it is read
    /// (not parsed when the work-order cache knows its bytes).
    fn load(repo_root: &Path, opts: &Options) -> Result<Setup> {
        let profile = RuntimeProfile::load(repo_root, opts.runtime_profile.as_deref())?;
        let runtime_dir = profile.runtime_dir(opts.runtime_dir.as_deref());
        // Refused before anything is planned: a run would start, and its steps fail for want
        // of a folder (until 2026-12-03 such a pass recorded a FAILED run for a typo).
        let state_dir = profile.billing_state_dir(opts.billing_state_dir.as_deref());
        for (dir, what) in [
            (&runtime_dir, "runtime directory"),
            (&state_dir, "billing-state directory"),
        ] {
            if let Some(e) = crate::folder::not_a_folder(dir, what) {
                return Err(e);
            }
        }
        // A tenants/ that is a file would be a pass with no tenant, exit 0 without a word.
        if let Ok(meta) = std::fs::metadata(repo_root.join("tenants")) {
            if !meta.is_dir() {
                return Err(crate::Error::input(format!(
                    "tenants/ of repository {} is not a folder, so no tenant can be run",
                    repo_root.display()
                ))
                .at("tenants")
                .help("make tenants/ a folder holding a folder per tenant (`platform consistency-validate` checks the layout)"));
            }
        }
        let known = crate::cache::workorders::load(&runtime_dir);
        Ok(Setup {
            state_dir,
            repo: crate::cache::workorders::load_light(repo_root, known.as_ref())?,
            runtime_dir,
            secrets: crate::secrets::from_env(),
            profile,
        })
    }

    /// The plan of this pass from a ledger view.
    fn plan(&self, history: &History, balances: &BTreeMap<String, i64>, opts: &Options) -> Plan {
        let errors = validation_errors(&self.repo);
        let secrets_present: BTreeSet<String> = self.secrets.keys().cloned().collect();
        plan::plan(&PlanInput {
            repo: &self.repo,
            history,
            balances,
            errors: &errors,
            secrets_present: &secrets_present,
            github_token: crate::secrets::has_github_token(),
            filter: &opts.filter,
            retry_failed: opts.retry_failed,
            now: opts.now,
        })
    }

    /// The plan from the ledger cache when it finds everything up to date; any other plan is
    /// made again from the whole ledger read (work orders that run are parsed again anyway).
    fn plan_pass(&mut self, opts: &Options) -> Result<(Plan, LedgerView)> {
        let mut view = LedgerView::read(&self.runtime_dir, &self.state_dir, opts.dry_run)?;
        let mut plan = self.plan(&view.history, &view.balances, opts);
        if opts.dry_run || is_idle(&plan) {
            // Only a writer folds onto the cache's last runs: a pass that runs nothing
            // frees them now (~4 MiB at W = 10,000).
            view.seed = None;
        }
        if !is_idle(&plan) && view.compact {
            // The work orders that run or close need their whole history; the others were
            // found up to date from their last run, and stay so.
            let busy: BTreeSet<(String, String)> = plan
                .work_orders
                .iter()
                .filter(|wp| !wp.close.is_empty() || runs_steps(wp.action))
                .map(|wp| (wp.tenant_id.clone(), wp.work_order_id.clone()))
                .collect();
            let wanted = |t: &str, w: &str| busy.contains(&(t.to_string(), w.to_string()));
            if view.widen(&self.state_dir, &wanted)? {
                plan = self.plan(&view.history, &view.balances, opts);
            }
        }
        if !opts.dry_run {
            crate::cache::workorders::save(&self.runtime_dir, &self.repo, &doubted(&plan));
            if is_idle(&plan) {
                view.save(&self.runtime_dir);
            }
        }
        Ok((plan, view))
    }

    /// What the caches did: how the ledger was read, how many work orders were parsed.
    fn cache_report(&self, view: &LedgerView) -> crate::cache::CacheReport {
        crate::cache::CacheReport {
            ledger: view.used.clone(),
            work_orders_parsed: self.repo.parsed,
            work_orders_cached: self.repo.cached,
        }
    }

    /// Open the ledger's writer and run the plan, `jobs` work orders at once; the balances
    /// the writer ends with when it renewed the ledger cache (`Journal::finish`).
    fn execute(
        &self,
        (totals, seed): (crate::runs::RunTotals, Option<crate::cache::ledger::Seed>),
        plan: &Plan,
        summary: &mut Summary,
        run: workers::Run,
    ) -> Result<Option<Balances>> {
        let redactor = Redactor::new(crate::secrets::all_values());
        let (journal, repairs) = journal::Journal::open(&self.state_dir, totals, seed)?;
        summary.notes.extend(repairs);
        let env = ExecEnv {
            platform: Platform {
                repo: &self.repo,
                runtime_dir: &self.runtime_dir,
                profile: &self.profile,
                secrets: &self.secrets,
                redactor: &redactor,
                runtime_real: Default::default(),
                runtime_fd: Default::default(),
            },
            journal,
            holds: Default::default(),
            modules: Default::default(),
            progress: run.board,
        };
        for report in workers::run_plan(&env, run, plan) {
            summary.add(report);
        }
        summary.notes.extend(env.journal.take_notes());
        // No step runs after this: the kept supervisors and the zygote are told to end now,
        // and exit while the ledger cache is written and the summary printed (main.rs reaps
        // them once the command is done).
        #[cfg(target_os = "linux")]
        crate::runner::begin_stop();
        Ok(env.journal.finish(&self.runtime_dir, &self.state_dir))
    }
}

/// Run one pass. `progress` receives one line per step and the status line.
pub fn run_pass(repo_root: &Path, opts: &Options, progress: &dyn Sink) -> Result<Summary> {
    let mut setup = Setup::load(repo_root, opts)?;
    let mut summary = Summary {
        dry_run: opts.dry_run,
        billing_state_dir: setup.state_dir.display().to_string(),
        runtime_dir: setup.runtime_dir.display().to_string(),
        runs: Vec::new(),
        up_to_date: Vec::new(),
        invalid: Vec::new(),
        config_errors: setup.repo.config_errors(),
        charged_credits: 0,
        refunded_credits: 0,
        notes: Vec::new(),
        low_balance: Vec::new(),
        plan: None,
        cache: Default::default(),
    };
    // Held for the whole pass: one orchestrator per billing-state directory.
    let _lock = if opts.dry_run {
        None
    } else {
        Some(lock(&setup.state_dir, opts.lock_timeout, progress)?)
    };
    if opts.dry_run && crate::ledger::install::pending(&setup.state_dir) {
        // A dry run writes nothing, so it cannot finish the move, and would plan on files
        // that do not match yet.
        return Err(crate::Error::failure(format!(
            "a `platform state pull` into {} stopped while moving its files into place; a dry run does not finish the move, and plans nothing until it is finished",
            setup.state_dir.display()
        ))
        .topic(crate::error::Topic::LedgerDamaged)
        .help(crate::ledger::install::FINISH_HELP));
    }
    if !opts.dry_run {
        // A pass is a writer, but reads the ledger before its writer opens: a `state pull`
        // stopped while moving files into place is finished first (until 2026-12-04 the
        // read refused the half-moved directory, and no pass could run until another writer
        // came).
        if let Some(repair) = crate::ledger::install::finish_pending(&setup.state_dir)? {
            summary.notes.push(repair.to_string());
        }
    }
    let (plan, view) = setup.plan_pass(opts)?;
    if let Some(tenant) = &opts.filter.tenant_id {
        // A typo must not read as "nothing to do": a tenant is a folder of tenants/ or one
        // the ledger has records of (a removed tenant's open runs are still closed).
        let recorded = view
            .balances
            .keys()
            .map(String::as_str)
            .chain(view.history.work_orders.keys().map(|(t, _)| t.as_str()));
        crate::known_ids::require_known(&setup.repo.root, tenant, recorded)?;
    }
    if let Some(wo) = &opts.filter.work_order_id {
        require_known_work_order(
            &setup.repo,
            &view.history,
            opts.filter.tenant_id.as_deref(),
            wo,
        )?;
    }
    summary.cache = setup.cache_report(&view);
    summary.list(&plan, rejected_tenants(&setup.repo, &opts.filter));
    if opts.dry_run {
        // What the pass would repair first (it writes nothing): the balances shown are read
        // around it, as `balance` reads them, and say what they count.
        summary
            .notes
            .extend(view.history.pending_repairs.iter().cloned());
        // The balances the plan leaves, and the tenants it would refuse for credits.
        let mut projected = view.balances.clone();
        projected.extend(
            plan.tenants
                .iter()
                .map(|t| (t.tenant_id.clone(), t.balance_after)),
        );
        let refused = plan
            .work_orders
            .iter()
            .filter(|wp| matches!(wp.refused, Some(plan::Refusal::NotEnoughCredits { .. })))
            .map(|wp| wp.tenant_id.clone())
            .collect();
        summary.low_balance = notices::low_balance(&setup.repo, &opts.filter, &projected, &refused);
        summary.plan = Some(plan);
        return Ok(summary);
    }
    let LedgerView {
        history,
        totals,
        balances,
        seed,
        ..
    } = view;
    // Everything up to date: opening the writer (another read of the whole ledger, and its
    // index in memory) would only slow the pass down.
    let history = if !is_idle(&plan) || !history.pending_repairs.is_empty() {
        let board = Board::new(progress, workers::to_run(&plan));
        let run = workers::Run {
            history: &history,
            board: &board,
            jobs: opts.jobs,
        };
        let renewed = setup.execute((totals, seed), &plan, &mut summary, run)?;
        // Modules ran with write access to the runtime directory: the verdicts are written
        // again over anything one of them put in the cache.
        crate::cache::workorders::save(&setup.runtime_dir, &setup.repo, &doubted(&plan));
        // The next pass starts from a cache of what this one appended: from the writer when
        // it could, else by a whole read now (instead of in the next pass, which is the one
        // that should cost nothing), with the histories freed first. Either gives the
        // balances the ledger holds now, top-ups and debits of other processes included.
        match renewed {
            Some(now) => (Some(history), Some(now)),
            None => {
                drop(history);
                match crate::cache::ledger::renew(&setup.runtime_dir, &setup.state_dir) {
                    Ok(now) => (None, Some(now)),
                    Err(_) => {
                        crate::cache::ledger::remove(&setup.runtime_dir);
                        (None, None)
                    }
                }
            }
        }
    } else {
        (Some(history), None)
    };
    let (history, balances_now) = history;
    let (after, refused) = notices::after_pass(balances_now, &balances, &summary.runs);
    summary.low_balance = notices::low_balance(&setup.repo, &opts.filter, &after, &refused);
    free_later((setup, plan, history));
    Ok(summary)
}

/// The work-order files the plan reports invalid: their cached verdicts are not kept (one
/// may disagree with its file, [`crate::cache::workorders::model_to_run`]); an invalid work
/// order has none to keep anyway.
fn doubted(plan: &Plan) -> BTreeSet<&str> {
    plan.work_orders
        .iter()
        .filter(|wp| wp.action == plan::Action::Invalid)
        .map(|wp| wp.file.as_str())
        .collect()
}

/// `--work-order-id` names a work-order file (of `--tenant-id`, when given) or a work order
/// the ledger has runs of (a deleted one's open runs are still closed); anything else is a
/// typo, an input error (exit 2), never a quiet "nothing to do".
fn require_known_work_order(
    repo: &Repo,
    history: &History,
    tenant: Option<&str>,
    wo: &str,
) -> Result<()> {
    let known = repo
        .work_orders()
        .filter(|l| tenant.is_none_or(|x| x == l.tenant_id))
        .map(|l| l.stem.as_str())
        .chain(crate::known_ids::with_runs(history, tenant));
    crate::known_ids::require_known_work_order(wo, tenant, known)
}

/// Free `big` on another thread while the pass's summary is printed: the repository's work
/// orders with their kept models, the plan and the histories are ~10^5 allocations at
/// W = 1,000, a few ms of one CPU at the end of a pass (docs/performance.md). Nothing waits
/// for it; where no thread can be started, the failed spawn frees it here.
fn free_later<T: Send + 'static>(big: T) {
    let _ = std::thread::Builder::new()
        .name("free".into())
        .spawn(move || drop(big));
}

/// Nothing to run or close: every work order up to date or invalid.
fn is_idle(plan: &Plan) -> bool {
    !plan
        .work_orders
        .iter()
        .any(|wp| !wp.close.is_empty() || runs_steps(wp.action))
}

/// An action that runs steps (or reports a refusal to).
fn runs_steps(action: Action) -> bool {
    matches!(action, Action::Start | Action::Resume | Action::Retry)
}

/// The billing-state directory's orchestrator lock, waiting up to `timeout` for another
/// orchestrator (said once on `progress`).
fn lock(
    state_dir: &Path,
    timeout: Duration,
    progress: &dyn Sink,
) -> Result<crate::ledger::lock::DirLock> {
    crate::folder::create(state_dir, "billing-state directory")?;
    let mut waited = false;
    crate::ledger::lock::DirLock::acquire(state_dir, LOCK_NAME, timeout, |_| {
        if !waited {
            progress.line(&format!(
                "waiting for another orchestrator on {} (up to {}s)",
                state_dir.display(),
                timeout.as_secs()
            ));
            waited = true;
        }
    })
}

impl Summary {
    /// List the plan's notes, invalid work orders (and the rejected tenant folders) and the
    /// work orders that are up to date.
    fn list(&mut self, plan: &Plan, rejected: Vec<Invalid>) {
        for wp in &plan.work_orders {
            self.notes.extend(wp.notes.iter().cloned());
            match wp.action {
                Action::Invalid => self.invalid.push(Invalid {
                    tenant_id: wp.tenant_id.clone(),
                    work_order_id: wp.work_order_id.clone(),
                    file: wp.file.clone(),
                    findings: wp.findings.clone(),
                }),
                Action::UpToDate => self
                    .up_to_date
                    .push(format!("{}/{}", wp.tenant_id, wp.work_order_id)),
                _ => {}
            }
        }
        self.invalid.extend(rejected);
        self.invalid.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
    }
}
