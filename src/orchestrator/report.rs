//! What a pass reports of each run and step (text, `--json`, the job summary), including
//! the runs it refused or stopped on.
use super::plan::{Action, Disposition, Refusal, StepPlan, WorkOrderPlan};
use crate::contract::Failure;
use crate::records::{RunStatus, StepStatus};
use crate::runs::history::RunHistory;
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

/// A run refused before anything new was charged: each step that would have run FAILED with
/// the refusal's slug. A refusal for credits or secrets reports every step so (SPEC §4); one
/// `not_entitled` refuses only the steps still to run (SPEC §10, docs/formats.md), so the
/// steps a resumed run keeps are reported as they ended. A resumed run's charges of steps
/// interrupted before their outcome are held, not charged again: the refusal says so.
pub fn refused_report(
    wp: &WorkOrderPlan,
    refusal: &Refusal,
    hist: Option<&RunHistory>,
) -> RunReport {
    let reason: Failure = refusal.reason();
    let kept_as_ended = matches!(refusal, Refusal::NotEntitled { .. });
    let step = |s: &StepPlan| {
        let attempt = s.disposition.attempt();
        let outcome = hist
            .and_then(|h| h.step(&s.step_id))
            .and_then(|h| h.attempts.get(&attempt))
            .and_then(|a| a.outcome.as_ref());
        let (status, reason_slug) = match (&s.disposition, outcome) {
            (Disposition::Keep { .. } | Disposition::Refund { .. }, Some(o)) if kept_as_ended => {
                (o.status, o.reason_slug.clone())
            }
            _ => (StepStatus::Failed, Some(reason.to_string())),
        };
        StepReport {
            step_id: s.step_id.clone(),
            module_id: s.module_id.clone(),
            status,
            reason_slug,
            attempt,
            message: None,
            ran: false,
            usage: Default::default(),
        }
    };
    RunReport {
        steps: wp.steps.iter().map(step).collect(),
        refused: Some(refusal_text(wp, refusal)),
        ..unfinished(wp)
    }
}

/// The refusal's message, and what a resumed run holds: charges of steps interrupted before
/// their outcome stay charged (never twice) until the run resumes or is closed and refunded.
fn refusal_text(wp: &WorkOrderPlan, refusal: &Refusal) -> String {
    let held = wp
        .steps
        .iter()
        .filter(|s| matches!(s.disposition, Disposition::Run { .. }))
        .flat_map(|s| s.charges.iter())
        .filter(|c| c.already_charged)
        .fold(0i64, |sum, c| sum.saturating_add(c.amount_credits));
    if held == 0 {
        return refusal.message();
    }
    format!(
        "{}; run {} stays open and holds the {held} credits already charged to its interrupted steps (not charged again): they are settled when it resumes, or refunded if its work order is edited, disabled or deleted",
        refusal.message(),
        wp.run
    )
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
