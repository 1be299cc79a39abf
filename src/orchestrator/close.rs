//! Closes superseded runs (SPEC §7): a run that started, did not end and will not be resumed
//! ends before anything else of its work order runs, and no charge of it stays stranded.
use super::execute::{post_refunds, ExecEnv, RunReport, StepReport};
use super::plan::{closing_refunds_owed, Action, CloseRun};
use crate::error::Result;
use crate::records::evidence::{delivery_receipt_key, evidence_item_key};
use crate::records::{
    EvidenceBundle, EvidenceItem, Payload, RunEnded, RunStatus, StepOutcome, StepStatus,
    StepSummary,
};
use crate::runs::history::{Attempt, RunHistory};

pub const SUPERSEDED: &str = "superseded";

/// Close one run: per step (latest attempt) an outcome FAILED `superseded` where it has none,
/// every refund it is owed, then `run_ended` (PARTIAL when a step completed, else FAILED)
/// and its evidence bundle. Every record is keyed as usual, so a crash mid-close is resumed
/// by the next pass closing the run again.
pub fn close_run(
    env: &mut ExecEnv,
    tenant: &str,
    work_order_id: &str,
    close: &CloseRun,
    hist: &RunHistory,
) -> Result<RunReport> {
    let mut reports = Vec::new();
    let mut items = Vec::new();
    let mut refunded = 0i64;
    for step_id in &hist.step_order {
        let Some((attempt, att)) = hist.step(step_id).and_then(|s| s.latest()) else {
            continue;
        };
        let (status, slug) = match &att.outcome {
            Some(o) => (o.status, o.reason_slug.clone()),
            None => {
                let outcome =
                    superseded_outcome(tenant, work_order_id, close, step_id, attempt, att);
                let item = EvidenceItem {
                    run_id: close.run_id.clone(),
                    step_id: step_id.clone(),
                    attempt,
                    status: StepStatus::Failed,
                    subjects: Vec::new(),
                    logs: Vec::new(),
                };
                env.journal
                    .post(vec![Payload::new(outcome), Payload::new(item)])?;
                (StepStatus::Failed, Some(SUPERSEDED.to_string()))
            }
        };
        if closing_refunds_owed(&env.repo.registry, att) {
            let owed: Vec<_> = att.unrefunded().collect();
            let why = slug.as_deref().unwrap_or(SUPERSEDED);
            refunded = refunded.saturating_add(post_refunds(env.journal, &owed, why)?);
        }
        items.push(evidence_item_key(&close.run_id, step_id, attempt));
        if att.receipt {
            items.push(delivery_receipt_key(&close.run_id, step_id, attempt));
        }
        reports.push(StepReport {
            step_id: step_id.clone(),
            module_id: att.module_id.clone().unwrap_or_default(),
            status,
            reason_slug: slug,
            attempt,
            message: None,
            ran: false,
        });
    }
    let status = if reports.iter().any(|r| r.status == StepStatus::Completed) {
        RunStatus::Partial
    } else {
        RunStatus::Failed
    };
    let attempt = hist.max_attempt().max(1);
    let (charged, run_refunded) = env.journal.run_totals(tenant, &close.run_id)?;
    let ended = RunEnded {
        tenant_id: tenant.to_string(),
        work_order_id: work_order_id.to_string(),
        run: close.run,
        run_id: close.run_id.clone(),
        attempt,
        status,
        steps: reports
            .iter()
            .map(|r| StepSummary {
                step_id: r.step_id.clone(),
                status: r.status,
                reason_slug: r.reason_slug.clone(),
                attempt: r.attempt,
            })
            .collect(),
        charged_credits: charged,
        refunded_credits: run_refunded,
    };
    let bundle = EvidenceBundle::new(tenant, work_order_id, &close.run_id, attempt, items);
    env.journal
        .post(vec![Payload::new(ended), Payload::new(bundle)])?;
    (env.progress)(&format!(
        "[{tenant}/{work_order_id} r{}] closed as superseded: {}, refunded {refunded} credits",
        close.run,
        status.as_str()
    ));
    Ok(RunReport {
        tenant_id: tenant.to_string(),
        work_order_id: work_order_id.to_string(),
        run: close.run,
        run_id: close.run_id.clone(),
        action: Action::Close,
        status,
        steps: reports,
        charged_credits: 0,
        refunded_credits: refunded,
        refused: None,
        error: None,
    })
}

fn superseded_outcome(
    tenant: &str,
    work_order_id: &str,
    close: &CloseRun,
    step_id: &str,
    attempt: u32,
    att: &Attempt,
) -> StepOutcome {
    StepOutcome {
        tenant_id: tenant.to_string(),
        work_order_id: work_order_id.to_string(),
        run: close.run,
        run_id: close.run_id.clone(),
        step_id: step_id.to_string(),
        attempt,
        module_id: att.module_id.clone().unwrap_or_default(),
        status: StepStatus::Failed,
        reason_slug: Some(SUPERSEDED.to_string()),
        message: Some(format!(
            "run {} was interrupted and will not be resumed (its work order changed, was disabled or deleted)",
            close.run
        )),
        outputs: Vec::new(),
        values: Default::default(),
    }
}
