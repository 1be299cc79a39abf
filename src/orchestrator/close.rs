//! Closes superseded runs (SPEC §7): a run that started, did not end and will not be resumed
//! ends before anything else of its work order runs, and no charge of it stays stranded.
use super::env::ExecEnv;
use super::identity::RunIdentity;
use super::plan::{closing_refunds_owed, Action, CloseRun};
use super::report::{RunReport, StepReport, Stopped};
use super::tally::Tally;
use crate::contract::Failure;
use crate::error::Result;
use crate::records::{Payload, RunStatus, StepStatus};
use crate::runs::history::{Attempt, RunHistory};

/// Close one run: per step (latest attempt) an outcome FAILED `superseded` where it has none,
/// every refund it is owed, then `run_ended` (PARTIAL when a step completed, else FAILED)
/// and its evidence bundle. Every record is keyed as usual, so a crash mid-close is resumed
/// by the next pass closing the run again.
pub fn close_run(
    env: &ExecEnv,
    tenant: &str,
    work_order_id: &str,
    close: &CloseRun,
    hist: &RunHistory,
) -> std::result::Result<RunReport, Stopped> {
    let run = RunIdentity {
        tenant_id: tenant.to_string(),
        work_order_id: work_order_id.to_string(),
        run: close.run,
        run_id: close.run_id.clone(),
        period: hist.period.clone(),
    };
    crate::failpoint::pause("before_closing");
    let mut tally = Tally::default();
    close_steps(env, &run, hist, &mut tally)
        .map_err(|e| std::mem::take(&mut tally).stopped(run, Action::Close, &e))
}

/// Close each step, then end the run, tallied in `tally` as they are posted.
fn close_steps(
    env: &ExecEnv,
    run: &RunIdentity,
    hist: &RunHistory,
    tally: &mut Tally,
) -> Result<RunReport> {
    for step_id in &hist.step_order {
        if let Some((attempt, att)) = hist.step(step_id).and_then(|s| s.latest()) {
            close_step(env, run, tally, step_id, attempt, att)?;
        }
    }
    let status = if tally
        .steps
        .iter()
        .any(|r| r.status == StepStatus::Completed)
    {
        RunStatus::Partial
    } else {
        RunStatus::Failed
    };
    let records = tally.end_records(&env.journal, run, status, hist.max_attempt().max(1))?;
    env.journal.post(records)?;
    env.progress.line(&format!(
        "[{}/{} r{}] closed as superseded: {}, refunded {} credits",
        run.tenant_id,
        run.work_order_id,
        run.run,
        status.as_str(),
        tally.refunded
    ));
    Ok(std::mem::take(tally).report(run.clone(), Action::Close, status))
}

/// One step's latest attempt: its outcome as recorded, else FAILED `superseded` now; then
/// the refunds it is owed.
fn close_step(
    env: &ExecEnv,
    run: &RunIdentity,
    tally: &mut Tally,
    step_id: &str,
    attempt: u32,
    att: &Attempt,
) -> Result<()> {
    let module_id = att.module_id.as_deref().unwrap_or_default();
    let id = run.step(step_id, attempt, module_id);
    // Usage its COMPLETED outcome recorded and the ledger lacks is charged as a resume would:
    // no charge is stranded (until 2026-12-03 the closing dropped it). Held like any charge;
    // a balance that cannot cover it stops the closing, and the next pass closes the run.
    let owed = att.owed_usage();
    if !owed.is_empty() {
        let total = owed
            .values()
            .fold(0i64, |sum, u| sum.saturating_add(u.amount()));
        let mut hold = match env.holds.hold(&env.journal, &run.tenant_id, total)? {
            Ok(hold) => hold,
            Err(available) => {
                tally.refused_for_credits = true;
                return Err(crate::error::Error::failure(format!(
                    "run {} is closed as superseded, and step '{step_id}' owes {total} credits of metered usage that its outcome recorded; the balance available is {available}: top up the tenant and the next pass closes the run",
                    run.run
                )));
            }
        };
        tally.charge_usage(&env.journal, &mut hold, &id, &owed)?;
    }
    let (status, slug) = match &att.outcome {
        Some(o) => (o.status, o.reason_slug.clone()),
        None => {
            let why = format!(
                "run {} was interrupted and will not be resumed (its work order changed, was disabled or deleted)",
                run.run
            );
            let superseded = Some(Failure::Superseded.to_string());
            let outcome = id.outcome(StepStatus::Failed, superseded.clone(), Some(why));
            let item = id.evidence_item(StepStatus::Failed, Vec::new(), Vec::new());
            env.journal
                .post(vec![Payload::new(outcome), Payload::new(item)])?;
            (StepStatus::Failed, superseded)
        }
    };
    if closing_refunds_owed(&env.platform.repo.registry, att) {
        let owed: Vec<_> = att.unrefunded().collect();
        let why = slug
            .clone()
            .unwrap_or_else(|| Failure::Superseded.to_string());
        tally.refund(&env.journal, &owed, &why)?;
    }
    let report = StepReport {
        step_id: step_id.to_string(),
        module_id: module_id.to_string(),
        status,
        reason_slug: slug,
        attempt,
        message: None,
        ran: false,
        usage: Default::default(),
    };
    tally.settle(&id, report, att.receipt.is_some());
    Ok(())
}
