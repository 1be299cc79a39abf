//! What a pass reports of each run and step (text, `--json`, the job summary), including
//! the runs it refused or stopped on.
use super::plan::{Action, Refusal, WorkOrderPlan};
use crate::contract::Failure;
use crate::records::{RunStatus, StepStatus};
use serde::Serialize;

/// A step as the pass leaves it.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub step_id: String,
    pub module_id: String,
    pub status: StepStatus,
    pub reason_slug: Option<String>,
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether this pass ran it (false: kept from an earlier attempt).
    pub ran: bool,
    /// Metered usage this pass charged it for, by unit: quantities (omitted when none).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub usage: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub tenant_id: String,
    pub work_order_id: String,
    pub run: u64,
    pub run_id: String,
    /// The run's UTC calendar period (null when its work order is unscheduled).
    pub period: Option<String>,
    pub action: Action,
    pub status: RunStatus,
    pub steps: Vec<StepReport>,
    /// Credits charged and refunded by this pass.
    pub charged_credits: i64,
    pub refunded_credits: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Why the pass stopped working on this work order (a ledger refusal, an I/O error):
    /// its run stays open and the next pass resumes or closes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The pass stopped on it because the ledger refused a charge for credits (an
    /// adjustment debited the tenant meanwhile): its tenant is listed under `low_balance`.
    #[serde(skip)]
    pub stopped_for_credits: bool,
}

/// A run the pass stopped on mid-way (a ledger refusal, an I/O error): its report is FAILED,
/// keeps what the pass charged, refunded and reported of it until then, and says why.
#[derive(Debug)]
pub struct Stopped(pub Box<RunReport>);

/// A run refused before anything was charged: every step FAILED with the refusal's slug.
pub fn refused_report(wp: &WorkOrderPlan, refusal: &Refusal) -> RunReport {
    let reason: Failure = refusal.reason();
    RunReport {
        steps: wp
            .steps
            .iter()
            .map(|s| StepReport {
                step_id: s.step_id.clone(),
                module_id: s.module_id.clone(),
                status: StepStatus::Failed,
                reason_slug: Some(reason.to_string()),
                attempt: s.disposition.attempt(),
                message: None,
                ran: false,
                usage: Default::default(),
            })
            .collect(),
        refused: Some(refusal.message()),
        ..unfinished(wp)
    }
}

/// A work order the pass stopped on before its run posted anything: FAILED, with the error.
pub fn errored_report(wp: &WorkOrderPlan, e: &crate::error::Error) -> Stopped {
    Stopped(Box::new(RunReport {
        error: Some(e.message.clone()),
        ..unfinished(wp)
    }))
}

/// The report of a planned run that did not run to its end: FAILED, nothing charged.
fn unfinished(wp: &WorkOrderPlan) -> RunReport {
    RunReport {
        tenant_id: wp.tenant_id.clone(),
        work_order_id: wp.work_order_id.clone(),
        run: wp.run,
        run_id: wp.run_id.clone(),
        period: wp.period.clone(),
        action: wp.action,
        status: RunStatus::Failed,
        steps: Vec::new(),
        charged_credits: 0,
        refunded_credits: 0,
        refused: None,
        error: None,
        stopped_for_credits: false,
    }
}
