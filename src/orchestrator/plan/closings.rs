//! The runs a pass closes as superseded: each open run but the one that resumes, with what its closing refunds and charges step by step, and the plan of a disabled or deleted work order that only closes.
use super::model::{Action, CloseRun, PlanInput, WorkOrderPlan};
use crate::config::registry::Registry;
use crate::findings::Finding;
use crate::records::StepStatus;
use crate::repo::Repo;
use crate::runs::history::RunHistory;
use crate::runs::RunMap;

/// Every open run of a work order but `keep` (the run that resumes), oldest first.
pub(super) fn closings(
    input: &PlanInput,
    runs: &RunMap<RunHistory>,
    keep: Option<u64>,
) -> Vec<CloseRun> {
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
pub(super) fn close_only(
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
