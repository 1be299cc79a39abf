//! The pure planner: from the repository, the ledger's history and balances, decide which
//! work orders run, as which run and attempt, with which charges and keys. No I/O.
use crate::config::registry::Registry;
use crate::contract::Failure;
use crate::findings::Finding;
use crate::records::billing::spend_key;
use crate::records::evidence::rerun_key;
use crate::records::StepStatus;
use crate::repo::{LoadedWorkOrder, Repo};
use crate::runs::history::{History, RunHistory};
use crate::runs::RunMap;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Which part of the repository a pass covers.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub tenant_id: Option<String>,
    pub work_order_id: Option<String>,
    /// (K, N): only tenants of shard K of N.
    pub shard: Option<(u64, u64)>,
}

/// The shard (1..=n) a tenant belongs to: SPEC §3's stable hash.
pub fn tenant_shard(tenant_id: &str, n: u64) -> u64 {
    let d = Sha256::digest(tenant_id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    1 + u64::from_be_bytes(b) % n.max(1)
}

/// `run_id`: derived from tenant, work order and run number, never random.
pub fn run_id(tenant_id: &str, work_order_id: &str, run: u64) -> String {
    let d =
        Sha256::digest(format!("platform-run/v1\n{tenant_id}\n{work_order_id}\n{run}").as_bytes());
    format!("run-{}", &crate::digest::hex(&d)[..20])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A new run (first, or the work order changed).
    Start,
    /// A run interrupted by a crash continues.
    Resume,
    /// `--retry-failed`: failed and skipped steps of an ended run run again.
    Retry,
    /// An ended run has the file's digest (its last run; for a scheduled work order, any run
    /// of the current period): nothing to do.
    UpToDate,
    /// Validation errors: reported, not run.
    Invalid,
    /// Disabled or deleted, with runs left open: they are closed (superseded), nothing runs.
    Close,
}

impl Action {
    /// How text output names it ("up-to-date" is the one word of the JSON's `up_to_date`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Resume => "resume",
            Action::Retry => "retry",
            Action::UpToDate => "up-to-date",
            Action::Invalid => "invalid",
            Action::Close => "close",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Charge {
    pub deliverable_id: String,
    pub amount_credits: i64,
    pub idempotency_key: String,
    /// Already in billing.jsonl (a resumed attempt): posting it again is a no-op.
    pub already_charged: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "disposition")]
pub enum Disposition {
    /// Kept from an earlier attempt.
    Keep { status: StepStatus, attempt: u32 },
    /// Runs as this attempt.
    Run { attempt: u32 },
    /// Its outcome exists but refunds it is owed were never posted (a crash): post them.
    Refund { attempt: u32 },
}

impl Disposition {
    pub fn attempt(&self) -> u32 {
        match *self {
            Disposition::Keep { attempt, .. }
            | Disposition::Run { attempt }
            | Disposition::Refund { attempt } => attempt,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepPlan {
    pub step_id: String,
    pub module_id: String,
    #[serde(flatten)]
    pub disposition: Disposition,
    pub charges: Vec<Charge>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    NotEnoughCredits {
        balance: i64,
        needed: i64,
    },
    SecretsMissing {
        /// Declared secrets NAME whose PLATFORM_SECRET_NAME is not set.
        names: Vec<String>,
        /// A deliver_github_release step would run and `GITHUB_TOKEN` is not set.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        github_token: bool,
    },
    /// Steps whose module the tenant's plan does not allow: the modules, and why the first
    /// is not allowed with what to do about it.
    NotEntitled {
        modules: Vec<String>,
        why: String,
    },
}

impl Refusal {
    pub fn reason(&self) -> Failure {
        match self {
            Refusal::NotEnoughCredits { .. } => Failure::NotEnoughCredits,
            Refusal::SecretsMissing { .. } => Failure::SecretsMissing,
            Refusal::NotEntitled { .. } => Failure::NotEntitled,
        }
    }
    pub fn message(&self) -> String {
        match self {
            Refusal::NotEnoughCredits { balance, needed } => {
                format!("balance {balance} credits does not cover {needed} credits of charges; top up and run again")
            }
            Refusal::SecretsMissing {
                names,
                github_token,
            } => {
                let mut unset: Vec<String> = names.clone();
                let mut how = Vec::new();
                if !names.is_empty() {
                    how.push("PLATFORM_SECRET_<NAME>");
                }
                if *github_token {
                    unset.push(crate::secrets::GITHUB_TOKEN.to_string());
                    how.push(
                        "GITHUB_TOKEN (deliver_github_release uploads with the platform's token)",
                    );
                }
                format!(
                    "secrets not set: {}; set {} in the orchestrator's environment",
                    unset.join(", "),
                    how.join(" and ")
                )
            }
            Refusal::NotEntitled { why, .. } => why.clone(),
        }
    }
}

/// A run that started, did not end and will not be resumed (its work order changed, was
/// disabled or deleted, or an older version left it open): closed before anything else of
/// its work order runs. Steps without an outcome end FAILED `superseded` and are refunded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloseRun {
    pub run: u64,
    pub run_id: String,
    /// Credits the closing gives back: every unrefunded charge of a step without an outcome,
    /// and refunds owed to refundable outcomes.
    pub refund_credits: i64,
    /// Credits the closing charges: the metered usage its COMPLETED steps recorded and the
    /// ledger lacks (a crash, or a refusal for credits, came after their outcome).
    pub usage_credits: i64,
    /// Per step, in the order close.rs closes them: the owed usage it charges, then the
    /// refunds it posts.
    #[serde(skip)]
    pub steps: Vec<(i64, i64)>,
}

impl CloseRun {
    /// The balance this closing leaves from `balance`, posted as close.rs posts it, step by
    /// step: Err when a step's owed usage is more than the balance then, where the closing
    /// stops (what it posted before that stays).
    fn settle(&self, balance: i64) -> Result<i64, i64> {
        let mut b = balance;
        for &(usage, refund) in &self.steps {
            if usage > b {
                return Err(b);
            }
            b = b.saturating_sub(usage).saturating_add(refund);
        }
        Ok(b)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkOrderPlan {
    pub tenant_id: String,
    pub work_order_id: String,
    pub file: String,
    pub action: Action,
    pub run: u64,
    pub run_id: String,
    pub work_order_sha256: String,
    /// The UTC calendar period the run belongs to (null when the work order is unscheduled;
    /// a resumed run keeps the period it started in).
    pub period: Option<String>,
    /// The key of the rerun request a starting run answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun: Option<String>,
    pub steps: Vec<StepPlan>,
    /// Open runs closed first (oldest first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub close: Vec<CloseRun>,
    /// Credits this pass will newly charge (if every step runs).
    pub new_charges: i64,
    /// Credits reserved for metered usage (charged by what the steps report, at most this).
    #[serde(skip_serializing_if = "is_zero")]
    pub usage_reserve: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// Notes for the operator (e.g. an interrupted run of an older version left open).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// A run that starts once this one has ended, in the same pass: after a resumed run of an
    /// earlier period (or one a rerun request is waiting behind), the current period's run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub then: Option<Box<WorkOrderPlan>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TenantBalance {
    pub tenant_id: String,
    pub balance_before: i64,
    pub balance_after: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub work_orders: Vec<WorkOrderPlan>,
    pub tenants: Vec<TenantBalance>,
}

/// What the planner reads besides the repository.
pub struct PlanInput<'a> {
    pub repo: &'a Repo,
    pub history: &'a History,
    pub balances: &'a BTreeMap<String, i64>,
    /// Validation errors of enabled work orders, by file (`LoadedWorkOrder::rel`): two
    /// files of one id each have their own.
    pub errors: &'a BTreeMap<String, Vec<Finding>>,
    /// Names NAME for which PLATFORM_SECRET_NAME is set and non-empty.
    pub secrets_present: &'a BTreeSet<String>,
    /// Whether `GITHUB_TOKEN` is set (deliver_github_release needs it).
    pub github_token: bool,
    pub filter: &'a Filter,
    pub retry_failed: bool,
    /// The pass's clock (SPEC §9): the period of every scheduled work order is taken from it.
    pub now: chrono::DateTime<chrono::Utc>,
}

impl Filter {
    /// Whether the pass covers this tenant (`--tenant-id`, `--shard`).
    pub fn covers_tenant(&self, tenant_id: &str) -> bool {
        self.tenant_id.as_deref().is_none_or(|t| t == tenant_id)
            && self
                .shard
                .is_none_or(|(k, n)| tenant_shard(tenant_id, n) == k)
    }
}

fn selected(filter: &Filter, tenant_id: &str, work_order_id: &str) -> bool {
    filter.covers_tenant(tenant_id)
        && filter
            .work_order_id
            .as_deref()
            .is_none_or(|w| w == work_order_id)
}

/// Plan a pass. Work orders come in order of tenant id, then work order id.
pub fn plan(input: &PlanInput) -> Plan {
    let mut out = Vec::new();
    let mut enabled: BTreeSet<(&str, &str)> = BTreeSet::new();
    let config_errors = input.repo.config_errors();
    for lw in input.repo.work_orders() {
        if !lw.enabled || !selected(input.filter, &lw.tenant_id, &lw.stem) {
            continue;
        }
        enabled.insert((&lw.tenant_id, &lw.stem));
        out.push(plan_one(input, lw));
    }
    for ((tenant, wo), runs) in &input.history.work_orders {
        if enabled.contains(&(tenant.as_str(), wo.as_str())) || !selected(input.filter, tenant, wo)
        {
            continue;
        }
        let close = closings(input, runs, None);
        if close.is_empty() {
            continue;
        }
        // Disabled as its file says: a draft's verdict is never taken from the cache
        // (`cache::workorders::verdict`), so a forged one cannot close a run.
        out.push(close_only(input.repo, tenant, wo, close, &config_errors));
    }
    // Closings of disabled and deleted work orders join the tenant/work order order.
    out.sort_by(|a, b| (&a.tenant_id, &a.work_order_id).cmp(&(&b.tenant_id, &b.work_order_id)));
    let tenants = gate(input, &mut out);
    Plan {
        work_orders: out,
        tenants,
    }
}

/// The credits gate (SPEC §4) over the whole plan, tenant by tenant in plan order, and the
/// balance each tenant is left with. A pass closes every superseded run before any run
/// starts (`workers::close_all`), so each tenant's balance is first what its closings leave
/// (their refunds, less the owed usage they charge); each run is then gated against what
/// the runs before it leave, counted as charged in full with usage at its reserve and none
/// refunded. Until 2026-12-04 only a work order's own closings counted, for its own gate:
/// "balance after", the gates of the tenant's other work orders and the low-balance notice
/// of `--dry-run` left them out.
fn gate(input: &PlanInput, plans: &mut [WorkOrderPlan]) -> Vec<TenantBalance> {
    let mut running: BTreeMap<String, i64> = BTreeMap::new();
    for wp in plans.iter() {
        let b = running
            .entry(wp.tenant_id.clone())
            .or_insert_with(|| input.balances.get(&wp.tenant_id).copied().unwrap_or(0));
        for c in &wp.close {
            match c.settle(*b) {
                Ok(after) => *b = after,
                // The closing stops there, and nothing more of its work order is closed.
                Err(after) => {
                    *b = after;
                    break;
                }
            }
        }
    }
    for wp in plans.iter_mut() {
        if let Some(b) = running.get_mut(&wp.tenant_id) {
            gate_run(wp, b);
        }
    }
    running
        .into_iter()
        .map(|(t, after)| TenantBalance {
            balance_before: input.balances.get(&t).copied().unwrap_or(0),
            tenant_id: t,
            balance_after: after,
        })
        .collect()
}

/// Gate one planned run, and the run that follows it, against `balance`, which is left less
/// what they will newly charge unless refused (this keeps it ≥ 0). A refused run is not
/// followed by another.
fn gate_run(wp: &mut WorkOrderPlan, balance: &mut i64) {
    if !matches!(wp.action, Action::Start | Action::Resume | Action::Retry) || wp.refused.is_some()
    {
        return;
    }
    let needed = wp.new_charges.saturating_add(wp.usage_reserve);
    if needed > *balance {
        wp.refused = Some(Refusal::NotEnoughCredits {
            balance: *balance,
            needed,
        });
        wp.then = None;
        return;
    }
    *balance = balance.saturating_sub(needed);
    if let Some(then) = wp.then.as_deref_mut() {
        gate_run(then, balance);
    }
}

fn plan_one(input: &PlanInput, lw: &LoadedWorkOrder) -> WorkOrderPlan {
    let sha = lw
        .doc
        .as_ref()
        .map(|d| d.sha256.clone())
        .unwrap_or_default();
    let mut wp = blank(lw, &sha);
    if let Some(errs) = input.errors.get(&lw.rel).filter(|e| !e.is_empty()) {
        wp.findings = errs.clone();
        return wp;
    }
    // Light (no steps) when a cache judged it: enough to decide whether it is up to date.
    let Some(wo) = lw.work_order.as_ref() else {
        wp.findings = lw.findings.clone();
        return wp;
    };
    let runs = input.history.runs(&lw.tenant_id, &lw.stem);
    let name = format!("{}/{}", lw.tenant_id, lw.stem);
    let want = Want {
        work_order: &name,
        sha: &sha,
        period: wo.schedule.map(|every| every.period(input.now)),
        rerun: pending_rerun(input.history, lw, runs),
    };
    let chosen = choose(input.retry_failed, runs, &want);
    wp.close = runs
        .map(|r| closings(input, r, chosen.resumed()))
        .unwrap_or_default();
    let follow = chosen.follow.clone();
    plan_run(input, lw, chosen, &mut wp);
    if let (Some(next), None) = (follow, &wp.refused) {
        let mut then = blank(lw, &sha);
        plan_run(input, lw, *next, &mut then);
        wp.then = Some(Box::new(then));
    }
    wp
}

/// The plan of a work order before anything is decided: reported invalid unless planned.
fn blank(lw: &LoadedWorkOrder, sha: &str) -> WorkOrderPlan {
    WorkOrderPlan {
        tenant_id: lw.tenant_id.clone(),
        work_order_id: lw.stem.clone(),
        file: lw.rel.clone(),
        action: Action::Invalid,
        run: 0,
        run_id: String::new(),
        work_order_sha256: sha.to_string(),
        period: None,
        rerun: None,
        steps: Vec::new(),
        close: Vec::new(),
        new_charges: 0,
        usage_reserve: 0,
        refused: None,
        findings: Vec::new(),
        notes: Vec::new(),
        then: None,
    }
}

/// Fill in `wp` for the run `chosen` picked: its identity, and unless it is up to date its
/// steps, charges and the verdict of the gates before the credits gate ([`gate`]).
fn plan_run(input: &PlanInput, lw: &LoadedWorkOrder, chosen: Chosen<'_>, wp: &mut WorkOrderPlan) {
    wp.notes.extend(chosen.note);
    wp.action = chosen.action;
    wp.run = chosen.run;
    wp.run_id = run_id(&lw.tenant_id, &lw.stem, wp.run);
    wp.period = chosen.period;
    wp.rerun = chosen.rerun;
    if wp.action == Action::UpToDate {
        return;
    }
    // A work order judged at load has no steps in memory: parsed again, only when it runs.
    let wo = match crate::cache::workorders::model_to_run(input.repo, lw) {
        Ok(model) => model,
        Err(why) => {
            wp.action = Action::Invalid;
            wp.findings.push(Finding::error(&lw.rel, "", why));
            return;
        }
    };
    wp.steps = wo
        .steps
        .iter()
        .map(|step| step_plan(input, lw, wp.run, chosen.history, step))
        .collect();
    let Some(new_charges) = new_charges(wp.steps.iter().flat_map(|s| s.charges.iter())) else {
        // Prices are capped by validation; a sum past i64 still never wraps into a credit.
        wp.action = Action::Invalid;
        wp.findings.push(Finding::error(
            &lw.rel,
            "steps",
            "the charges of this work order add up to more than the ledger can hold; lower the module prices",
        ));
        return;
    };
    wp.new_charges = new_charges;
    wp.usage_reserve = usage_reserve(input.repo, &wp.steps);
    wp.refused = refusal(input, wp);
}

/// The credits the gate reserves for the metered usage of the steps that run: each at its
/// most (credits × max_units), charged after by what was used (SPEC §10).
fn usage_reserve(repo: &Repo, steps: &[StepPlan]) -> i64 {
    steps
        .iter()
        .filter(|s| matches!(s.disposition, Disposition::Run { .. }))
        .filter_map(|s| repo.module(&s.module_id))
        .fold(0i64, |sum, m| sum.saturating_add(m.pricing.usage_reserve()))
}

/// What would make a work order up to date now: its file digest, the current period (when
/// scheduled), and no rerun request waiting behind its last run.
struct Want<'a> {
    /// `tenant/work_order`, as the plan's notes name it.
    work_order: &'a str,
    sha: &'a str,
    period: Option<String>,
    /// The key of a rerun request made after the last run (none yet: after run 0).
    rerun: Option<String>,
}

/// The key of a rerun request made after the work order's last run, if there is one.
fn pending_rerun(
    history: &History,
    lw: &LoadedWorkOrder,
    runs: Option<&RunMap<RunHistory>>,
) -> Option<String> {
    let last = runs
        .and_then(|r| r.keys().next_back())
        .copied()
        .unwrap_or(0);
    history
        .rerun_requested(&lw.tenant_id, &lw.stem, last)
        .then(|| rerun_key(&lw.tenant_id, &lw.stem, last))
}

/// What the planner decided for a work order from its runs.
#[derive(Clone)]
struct Chosen<'a> {
    action: Action,
    run: u64,
    /// The run that continues (Resume, Retry) or is up to date.
    history: Option<&'a RunHistory>,
    note: Option<String>,
    /// The run's period: the current one for a new run, its own for one that continues.
    period: Option<String>,
    /// The rerun request a new run answers.
    rerun: Option<String>,
    /// The new run that starts once a resumed one has ended (same pass).
    follow: Option<Box<Chosen<'a>>>,
}

impl Chosen<'_> {
    /// The open run that is resumed, which is not closed.
    fn resumed(&self) -> Option<u64> {
        self.history
            .filter(|_| self.action == Action::Resume)
            .map(|r| r.run)
    }
}

/// Start, Resume, Retry or UpToDate, by the last run, the file's digest, the period and a
/// pending rerun request (SPEC §4, §9).
fn choose<'a>(
    retry_failed: bool,
    runs: Option<&'a RunMap<RunHistory>>,
    want: &Want<'_>,
) -> Chosen<'a> {
    let last = runs.and_then(|r| r.values().next_back());
    let start = |note| Chosen {
        action: Action::Start,
        run: last.map_or(1, |l| l.run + 1),
        history: None,
        note,
        period: want.period.clone(),
        rerun: want.rerun.clone(),
        follow: None,
    };
    let (Some(runs), Some(r)) = (runs, last) else {
        return start(None);
    };
    let same = r.work_order_sha256.as_deref() == Some(want.sha);
    let current = up_to_date_by(runs, r, same, want);
    let continues = |c: &'a RunHistory, action| Chosen {
        action,
        run: c.run,
        history: Some(c),
        note: None,
        period: c.period.clone(),
        rerun: None,
        follow: None,
    };
    match (r.is_open(), same, current) {
        (true, true, current) => {
            // Resume wins: the interrupted run finishes in its own period, then the work
            // order's current run starts in the same pass if it is still due: another
            // period's run with no ended run of the current one, or a rerun request.
            let mut resume = continues(r, Action::Resume);
            if current.is_none() && (r.period != want.period || want.rerun.is_some()) {
                resume.follow = Some(Box::new(start(None)));
            }
            resume
        }
        (true, false, Some(c)) => Chosen {
            note: Some(format!(
                "run {} of {} was interrupted and the work order changed since; it is closed as superseded (its open charges refunded), and run {} already ended in period {} with this version of the file: up to date",
                r.run,
                want.work_order,
                c.run,
                c.period.as_deref().unwrap_or("-")
            )),
            ..continues(c, Action::UpToDate)
        },
        (true, false, None) => start(Some(format!(
            "run {} of {} was interrupted and the work order changed since; it is closed as superseded (its open charges refunded) and run {} starts",
            r.run,
            want.work_order,
            r.run + 1
        ))),
        (false, _, Some(c)) => {
            // Only the last run is retried: an older run of the period stays as it ended.
            let failed = c
                .last_end()
                .is_some_and(|e| e.status != crate::records::RunStatus::Completed);
            continues(
                c,
                if retry_failed && failed && c.run == r.run {
                    Action::Retry
                } else {
                    Action::UpToDate
                },
            )
        }
        (false, _, None) => start(None),
    }
}

/// The ended run that leaves the work order up to date, unless a rerun request waits: for a
/// scheduled work order the latest run of the current period that ended with this file
/// digest — any such run, not only the last one (SPEC §9: a pass with an earlier clock, or
/// an edit reverted within the period, must not run and charge the period again); for an
/// unscheduled one its last run, when that ended with this digest (SPEC §4).
fn up_to_date_by<'a>(
    runs: &'a RunMap<RunHistory>,
    last: &'a RunHistory,
    same: bool,
    want: &Want<'_>,
) -> Option<&'a RunHistory> {
    if want.rerun.is_some() {
        return None;
    }
    if want.period.is_none() {
        return Some(last).filter(|r| same && !r.is_open());
    }
    runs.values().rev().map(|r| &**r).find(|r| {
        r.period == want.period
            && r.work_order_sha256.as_deref() == Some(want.sha)
            && r.last_end().is_some()
            && !r.is_open()
    })
}

/// One step of a run that goes ahead: its disposition and, when it runs, its charges.
fn step_plan(
    input: &PlanInput,
    lw: &LoadedWorkOrder,
    run: u64,
    run_hist: Option<&RunHistory>,
    step: &crate::workorder::model::Step,
) -> StepPlan {
    let latest = run_hist
        .and_then(|r| r.step(&step.step_id))
        .and_then(|h| h.latest());
    // Attempts up to the last end are settled; later ones are the interrupted pass's.
    let base = run_hist
        .and_then(|r| r.last_end())
        .map(|e| e.attempt)
        .unwrap_or(0);
    let disposition = disposition(&input.repo.registry, latest, base);
    let charges = match disposition {
        Disposition::Run { attempt } => {
            match latest.filter(|(a, att)| *a == attempt && !att.spends.is_empty()) {
                // Resumed after its SPEND batch: it is charged that batch as recorded (step.rs
                // posts it again, a no-op), whatever the module's prices say now. Nothing of it
                // is new: the gate, the plan and the pass report count 0 for it.
                Some((_, att)) => recorded_charges(att),
                None => charges_for(input, lw, run, step, attempt),
            }
        }
        // Its metered usage not charged yet: resuming the run posts it, so the credits gate
        // and the plan count it.
        Disposition::Keep { attempt, .. } => latest
            .map(|(_, att)| owed_usage(lw, run, &step.step_id, attempt, att))
            .unwrap_or_default(),
        Disposition::Refund { .. } => Vec::new(),
    };
    StepPlan {
        step_id: step.step_id.clone(),
        module_id: step.module_id.clone(),
        disposition,
        charges,
    }
}

/// Keep, Refund or Run (as which attempt), from the step's latest attempt.
fn disposition(
    registry: &Registry,
    latest: Option<(u32, &crate::runs::history::Attempt)>,
    base: u32,
) -> Disposition {
    match latest {
        Some((a, att)) if a > base => match &att.outcome {
            Some(o) if owes_refunds(registry, o.status, o.reason_slug.as_deref(), att) => {
                Disposition::Refund { attempt: a }
            }
            Some(o) => Disposition::Keep {
                status: o.status,
                attempt: a,
            },
            None => Disposition::Run { attempt: a },
        },
        Some((a, att)) => match &att.outcome {
            Some(o) if o.status == StepStatus::Completed => Disposition::Keep {
                status: o.status,
                attempt: a,
            },
            _ => Disposition::Run { attempt: a + 1 },
        },
        None => Disposition::Run { attempt: 1 },
    }
}

/// Entitlements (SPEC §10), then the secrets the steps that run need; the credits gate comes
/// after them ([`gate`]).
fn refusal(input: &PlanInput, wp: &WorkOrderPlan) -> Option<Refusal> {
    if let Some(r) = not_entitled(input, wp) {
        return Some(r);
    }
    let mut missing: Vec<String> = Vec::new();
    let runs: Vec<_> = wp
        .steps
        .iter()
        .filter(|s| matches!(s.disposition, Disposition::Run { .. }))
        .filter_map(|s| input.repo.module(&s.module_id))
        .collect();
    for m in &runs {
        for name in &m.secrets {
            if !input.secrets_present.contains(name) && !missing.contains(name) {
                missing.push(name.clone());
            }
        }
    }
    // Built-ins take platform credentials from the environment (SPEC §2): without the token
    // a GitHub delivery could only fail, after the steps before it were charged.
    let github_token = !input.github_token
        && runs
            .iter()
            .any(|m| m.runner.builtin() == Some(crate::contract::Builtin::DeliverGithubRelease));
    (!missing.is_empty() || github_token).then_some(Refusal::SecretsMissing {
        names: missing,
        github_token,
    })
}

/// The steps that would run a module outside the tenant's plan; the first one's reason.
/// Like the credits gate, it counts only what would be newly charged: a step that finishes
/// an attempt charged before a crash runs whatever the plan says now (SPEC §7: its charge
/// is settled by its outcome, never held by a refusal).
fn not_entitled(input: &PlanInput, wp: &WorkOrderPlan) -> Option<Refusal> {
    let mut modules: Vec<String> = Vec::new();
    let mut why = None;
    let runs = wp.steps.iter().filter(|s| {
        matches!(s.disposition, Disposition::Run { .. }) && !finishes_charged_attempt(input, wp, s)
    });
    for s in runs {
        if let Err(e) = input.repo.entitled(&wp.tenant_id, &s.module_id) {
            why.get_or_insert_with(|| match e.fix() {
                Some(fix) => format!("{}; {fix}", e.message(&s.module_id)),
                None => e.message(&s.module_id),
            });
            if !modules.contains(&s.module_id) {
                modules.push(s.module_id.clone());
            }
        }
    }
    why.map(|why| Refusal::NotEntitled { modules, why })
}

/// Whether a step runs again in an attempt the ledger already holds SPENDs of (a resumed
/// run interrupted after the step's charge) with no charge left to post: it finishes that
/// attempt and charges nothing new (but the metered usage it reports, as any resumed step).
fn finishes_charged_attempt(input: &PlanInput, wp: &WorkOrderPlan, step: &StepPlan) -> bool {
    let Disposition::Run { attempt } = step.disposition else {
        return false;
    };
    let charged = input
        .history
        .runs(&wp.tenant_id, &wp.work_order_id)
        .and_then(|r| r.get(&wp.run))
        .and_then(|r| r.step(&step.step_id))
        .and_then(|h| h.attempts.get(&attempt))
        .is_some_and(|a| !a.spends.is_empty());
    charged && step.charges.iter().all(|c| c.already_charged)
}

/// Every open run of a work order but `keep` (the run that resumes), oldest first.
fn closings(input: &PlanInput, runs: &RunMap<RunHistory>, keep: Option<u64>) -> Vec<CloseRun> {
    runs.values()
        .filter(|r| r.is_open() && Some(r.run) != keep)
        .map(|r| {
            // As close.rs takes them: the latest attempt of each step, in the run's order.
            let steps: Vec<(i64, i64)> = r
                .step_order
                .iter()
                .filter_map(|id| r.step(id).and_then(|s| s.latest()))
                .map(|(_, att)| {
                    let usage = att
                        .owed_usage()
                        .into_values()
                        .fold(0i64, |sum, u| sum.saturating_add(u.amount()));
                    let refund = if closing_refunds_owed(&input.repo.registry, att) {
                        att.unrefunded()
                            .fold(0i64, |sum, s| sum.saturating_sub(s.amount_credits))
                    } else {
                        0
                    };
                    (usage, refund)
                })
                .collect();
            CloseRun {
                run: r.run,
                run_id: r.run_id.clone(),
                refund_credits: steps.iter().fold(0i64, |sum, s| sum.saturating_add(s.1)),
                usage_credits: steps.iter().fold(0i64, |sum, s| sum.saturating_add(s.0)),
                steps,
            }
        })
        .collect()
}

/// Whether closing a run refunds this attempt's open charges: it has no outcome (it ends
/// `superseded`, refundable), or a refundable failed outcome whose refunds were never posted.
pub fn closing_refunds_owed(registry: &Registry, att: &crate::runs::history::Attempt) -> bool {
    match &att.outcome {
        None => true,
        Some(o) => owes_refunds(registry, o.status, o.reason_slug.as_deref(), att),
    }
}

/// The plan of a disabled or deleted work order that only closes its open runs; invalid,
/// closing nothing, while the config has errors (a closing refunds by the registry).
fn close_only(
    repo: &Repo,
    tenant: &str,
    wo: &str,
    close: Vec<CloseRun>,
    config_errors: &[Finding],
) -> WorkOrderPlan {
    let file = repo
        .work_orders()
        .find(|l| l.tenant_id == tenant && l.stem == wo)
        .map(|l| l.rel.clone())
        .unwrap_or_default();
    // A closing refunds by the registry: while the config has errors it waits for the fix.
    let broken = !config_errors.is_empty();
    let note = if broken {
        "its open runs are closed as superseded once the config is fixed"
    } else {
        "its open runs are closed as superseded"
    };
    WorkOrderPlan {
        tenant_id: tenant.to_string(),
        work_order_id: wo.to_string(),
        file,
        action: if broken {
            Action::Invalid
        } else {
            Action::Close
        },
        run: 0,
        run_id: String::new(),
        work_order_sha256: String::new(),
        period: None,
        rerun: None,
        steps: Vec::new(),
        close: if broken { Vec::new() } else { close },
        new_charges: 0,
        usage_reserve: 0,
        refused: None,
        findings: config_errors.to_vec(),
        notes: vec![format!("{tenant}/{wo} is disabled or deleted: {note}")],
        then: None,
    }
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// The credits of the charges not yet posted; None when the sum does not fit.
pub fn new_charges<'a>(charges: impl Iterator<Item = &'a Charge>) -> Option<i64> {
    charges
        .filter(|c| !c.already_charged)
        .try_fold(0i64, |sum, c| sum.checked_add(c.amount_credits))
}

/// A failed outcome whose reason is refundable, with SPENDs not yet refunded.
pub fn owes_refunds(
    registry: &Registry,
    status: StepStatus,
    slug: Option<&str>,
    att: &crate::runs::history::Attempt,
) -> bool {
    status == StepStatus::Failed
        && slug.and_then(|s| registry.refundable(s)).unwrap_or(false)
        && att.unrefunded().next().is_some()
}

/// The charges of a kept attempt's usage that its outcome records and the ledger lacks.
fn owed_usage(
    lw: &LoadedWorkOrder,
    run: u64,
    step_id: &str,
    attempt: u32,
    att: &crate::runs::history::Attempt,
) -> Vec<Charge> {
    att.owed_usage()
        .into_iter()
        .map(|(unit, usage)| Charge {
            idempotency_key: spend_key(&lw.tenant_id, &lw.stem, run, step_id, attempt, &unit),
            deliverable_id: unit,
            amount_credits: usage.amount(),
            already_charged: false,
        })
        .collect()
}

/// The charges of an attempt whose SPEND batch the ledger holds: that batch, all charged.
fn recorded_charges(att: &crate::runs::history::Attempt) -> Vec<Charge> {
    att.spends
        .iter()
        .filter(|s| s.quantity.is_none())
        .map(|s| Charge {
            deliverable_id: s.charge.deliverable_id.clone(),
            amount_credits: s.amount_credits.saturating_neg(),
            idempotency_key: s.key(),
            already_charged: true,
        })
        .collect()
}

/// The charges of an attempt not charged yet, at the module's current prices.
fn charges_for(
    input: &PlanInput,
    lw: &LoadedWorkOrder,
    run: u64,
    step: &crate::workorder::model::Step,
    attempt: u32,
) -> Vec<Charge> {
    let Some(m) = input.repo.module(&step.module_id) else {
        return Vec::new();
    };
    let mut prices: Vec<(String, u64)> = vec![("__run__".to_string(), m.pricing.run_credits)];
    for d in &step.deliverables {
        prices.push((d.clone(), m.deliverable_price(d)));
    }
    prices
        .into_iter()
        .filter(|(_, p)| *p > 0)
        .map(|(d, p)| {
            let key = spend_key(&lw.tenant_id, &lw.stem, run, &step.step_id, attempt, &d);
            Charge {
                deliverable_id: d,
                // Validation caps prices at 10^12; anything past i64 is refused as a sum.
                amount_credits: i64::try_from(p).unwrap_or(i64::MAX),
                idempotency_key: key,
                already_charged: false,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_is_stable_and_in_range() {
        for n in 1..10u64 {
            for t in ["acme", "globex", "initech", "a", "zz-9"] {
                let k = tenant_shard(t, n);
                assert!((1..=n).contains(&k));
                assert_eq!(k, tenant_shard(t, n));
            }
        }
        // SHA-256("acme") starts 0x8f4b...: the first 8 bytes big-endian mod 2, plus one.
        let d = Sha256::digest(b"acme");
        let v = u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
        assert_eq!(tenant_shard("acme", 2), 1 + v % 2);
    }

    /// Runs 1..=n of one work order, each ended COMPLETED with digest "a" in `periods[i]`,
    /// the last one left open when `open`.
    fn runs(periods: &[Option<&str>], open: bool) -> RunMap<RunHistory> {
        let mut out = BTreeMap::new();
        for (i, p) in periods.iter().enumerate() {
            let run = i as u64 + 1;
            let mut r = RunHistory {
                run,
                work_order_sha256: Some("a".into()),
                period: p.map(str::to_string),
                started: true,
                ..Default::default()
            };
            if !(open && run == periods.len() as u64) {
                let end = crate::runs::history::RunEnd {
                    attempt: 1,
                    status: crate::records::RunStatus::Completed,
                };
                r.ends.insert(1, end);
            }
            out.insert(run, Box::new(r));
        }
        out
    }

    fn want<'a>(period: Option<&str>, rerun: Option<&str>) -> Want<'a> {
        Want {
            work_order: "t/w",
            sha: "a",
            period: period.map(str::to_string),
            rerun: rerun.map(str::to_string),
        }
    }

    #[test]
    fn a_scheduled_work_order_is_due_once_per_period_and_resume_wins() {
        let day1 = Some("2026-12-01");
        let day2 = Some("2026-12-02");
        let ended = runs(&[day1], false);
        let c = choose(false, Some(&ended), &want(day1, None));
        assert_eq!((c.action, c.run), (Action::UpToDate, 1));
        let c = choose(false, Some(&ended), &want(day2, None));
        assert_eq!(
            (c.action, c.run, c.period.as_deref()),
            (Action::Start, 2, day2)
        );
        // Open since day 1, found on day 2: resumed in its own period, then day 2 starts.
        let open = runs(&[day1], true);
        let c = choose(false, Some(&open), &want(day2, None));
        assert_eq!(
            (c.action, c.run, c.period.as_deref()),
            (Action::Resume, 1, day1)
        );
        let next = c.follow.expect("day 2's run follows");
        assert_eq!(
            (next.action, next.run, next.period.as_deref()),
            (Action::Start, 2, day2)
        );
        // Open and found the same day: only resumed.
        assert!(choose(false, Some(&open), &want(day1, None))
            .follow
            .is_none());
        // Unscheduled: no period on either side, up to date.
        let plain = runs(&[None], false);
        assert_eq!(
            choose(false, Some(&plain), &want(None, None)).action,
            Action::UpToDate
        );
    }

    #[test]
    fn any_ended_run_of_the_period_with_this_digest_leaves_it_up_to_date() {
        let day1 = Some("2026-12-01");
        let day2 = Some("2026-12-02");
        // A pass with an earlier clock: day 1 already has an ended run with this digest.
        let ended = runs(&[day1, day2], false);
        let c = choose(true, Some(&ended), &want(day1, None));
        assert_eq!(
            (c.action, c.run, c.period.as_deref()),
            (Action::UpToDate, 1, day1)
        );
        // An edit reverted within the period (a → b → a): run 1 has digest a.
        let mut reverted = runs(&[day1, day1], false);
        if let Some(r) = reverted.get_mut(&2) {
            r.work_order_sha256 = Some("b".into());
        }
        let c = choose(false, Some(&reverted), &want(day1, None));
        assert_eq!((c.action, c.run), (Action::UpToDate, 1));
        // ... and interrupted as b: closed (not resumed), nothing starts.
        if let Some(r) = reverted.get_mut(&2) {
            r.ends.clear();
        }
        let c = choose(false, Some(&reverted), &want(day1, None));
        assert_eq!((c.action, c.run, c.resumed()), (Action::UpToDate, 1, None));
        assert!(c.note.is_some_and(|n| n.contains("closed as superseded")));
        // A rerun request still starts a run; another period's runs do not count.
        let c = choose(false, Some(&ended), &want(day1, Some("rerun/t/w/after-r2")));
        assert_eq!((c.action, c.run), (Action::Start, 3));
        let c = choose(false, Some(&ended), &want(Some("2026-12-03"), None));
        assert_eq!((c.action, c.run), (Action::Start, 3));
        // Unscheduled: the last run alone decides (a → b → a starts run 3).
        let mut plain = runs(&[None, None], false);
        if let Some(r) = plain.get_mut(&2) {
            r.work_order_sha256 = Some("b".into());
        }
        let c = choose(false, Some(&plain), &want(None, None));
        assert_eq!((c.action, c.run), (Action::Start, 3));
    }

    #[test]
    fn a_rerun_request_starts_the_next_run_and_names_itself() {
        let plain = runs(&[None, None], false);
        let key = "rerun/t/w/after-r2";
        let c = choose(true, Some(&plain), &want(None, Some(key)));
        assert_eq!(
            (c.action, c.run, c.rerun.as_deref()),
            (Action::Start, 3, Some(key))
        );
        let open = runs(&[None, None], true);
        let c = choose(false, Some(&open), &want(None, Some(key)));
        assert_eq!(c.action, Action::Resume);
        assert_eq!(c.follow.and_then(|f| f.rerun), Some(key.to_string()));
        assert_eq!(
            choose(false, None, &want(None, Some("rerun/t/w/after-r0"))).run,
            1
        );
    }

    #[test]
    fn a_closing_is_counted_step_by_step_up_to_where_it_stops() {
        let close = CloseRun {
            run: 1,
            run_id: "r".into(),
            refund_credits: 8,
            usage_credits: 20,
            steps: vec![(0, 5), (20, 0), (0, 3)],
        };
        // The refund of the first step comes before the usage of the second.
        assert_eq!(close.settle(15), Ok(3));
        // 10 + 5 does not cover 20: the closing stops after the first step's refund.
        assert_eq!(close.settle(10), Err(15));
    }

    #[test]
    fn run_ids_are_derived() {
        assert_eq!(run_id("a", "w", 1), run_id("a", "w", 1));
        assert_ne!(run_id("a", "w", 1), run_id("a", "w", 2));
        assert_ne!(run_id("a", "w", 1), run_id("b", "w", 1));
    }
}
