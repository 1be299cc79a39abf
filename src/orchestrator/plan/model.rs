//! What the planner decides and reads: the plan's types (a work order's run, its steps and charges, the runs it closes, the refusals), the pass's filter and shard, and the planner's input.
use crate::contract::Failure;
use crate::findings::Finding;
use crate::records::StepStatus;
use crate::repo::Repo;
use crate::runs::history::History;
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

pub(super) fn is_zero(n: &i64) -> bool {
    *n == 0
}
