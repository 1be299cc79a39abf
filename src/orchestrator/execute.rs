//! Executes one planned run: each step by its disposition — kept, owed refunds posted, or
//! run (step.rs, in SPEC §4's order) — then the run's end and evidence bundle.
use super::credits::Hold;
use super::env::ExecEnv;
use super::identity::RunIdentity;
use super::plan::{Action, Disposition, Refusal, WorkOrderPlan};
use super::report::{RunReport, StepReport, Stopped};
use super::step::{self, Planned, Settled};
use super::tally::Tally;
use crate::beneath::Beneath;
use crate::contract::{Failure, ModuleContract};
use crate::error::Result;
use crate::records::evidence::rerun_key;
use crate::records::{Payload, RunStatus, StepStatus, Stream};
use crate::runs::history::{Attempt, RunHistory, StepHistory};
use crate::runs::step_beneath;
use crate::workorder::bindings::Produced;
use crate::workorder::model::{Mode, Step, WorkOrder};
use std::collections::BTreeMap;

/// The status a run has when its steps have these statuses (SPEC §3).
pub fn run_status(statuses: &[StepStatus], mode: Mode) -> RunStatus {
    let completed = statuses
        .iter()
        .filter(|s| **s == StepStatus::Completed)
        .count();
    if completed == statuses.len() {
        RunStatus::Completed
    } else if completed == 0 || (mode == Mode::FailFast && statuses.contains(&StepStatus::Failed)) {
        RunStatus::Failed
    } else {
        RunStatus::Partial
    }
}

/// The run so far: what its steps left for later ones, and what they came to.
struct RunState<'a> {
    produced: BTreeMap<String, Produced<'a>>,
    statuses: BTreeMap<String, StepStatus>,
    tally: Tally,
}

/// Hold the run's uncharged total against its tenant's balance for as long as it runs;
/// a refusal (other processes debited the tenant since the plan) when it is not covered.
fn hold<'e>(
    env: &'e ExecEnv,
    wp: &WorkOrderPlan,
    hist: Option<&RunHistory>,
) -> Result<Result<Hold<'e>, RunReport>> {
    Ok(
        match env.holds.hold(
            &env.journal,
            &wp.tenant_id,
            wp.new_charges.saturating_add(wp.usage_reserve),
        )? {
            Ok(h) => Ok(h),
            Err(available) => {
                let refusal = Refusal::NotEnoughCredits {
                    balance: available,
                    needed: wp.new_charges.saturating_add(wp.usage_reserve),
                };
                Err(env.refused(wp, &refusal, hist))
            }
        },
    )
}

/// Execute one planned run (Start, Resume or Retry). Ledger errors stop it (its report
/// keeps what this pass posted of it until then); step failures don't.
pub fn execute(
    env: &ExecEnv,
    wp: &WorkOrderPlan,
    wo: &WorkOrder,
    hist: Option<&RunHistory>,
) -> std::result::Result<RunReport, Stopped> {
    let run = RunIdentity {
        tenant_id: wp.tenant_id.clone(),
        work_order_id: wp.work_order_id.clone(),
        run: wp.run,
        run_id: wp.run_id.clone(),
        period: wp.period.clone(),
    };
    let mut state = RunState {
        produced: BTreeMap::new(),
        statuses: BTreeMap::new(),
        tally: Tally::default(),
    };
    execute_steps(env, wp, wo, hist, &run, &mut state)
        .map_err(|e| std::mem::take(&mut state.tally).stopped(run, wp.action, &e))
}

/// The run's steps, then its end, tallied in `state` as they are posted.
fn execute_steps<'a>(
    env: &'a ExecEnv,
    wp: &WorkOrderPlan,
    wo: &WorkOrder,
    hist: Option<&RunHistory>,
    run: &RunIdentity,
    state: &mut RunState<'a>,
) -> Result<RunReport> {
    let mut hold = match hold(env, wp, hist)? {
        Ok(h) => h,
        Err(refused) => return Ok(refused),
    };
    let repo = env.platform.repo;
    if wp.action == Action::Start {
        // Queued, not waited for: the first SPEND (or step_started) is written after it, in
        // its group or a later one, and shares its flush when it can.
        crate::failpoint::pause("before_run_started");
        let rerun = answered_rerun(env, wp)?;
        let started = run.started(&wp.work_order_sha256, rerun.as_deref());
        state
            .tally
            .post_ahead(&env.journal, vec![Payload::new(started)])?;
        crate::failpoint::hit("after_run_started");
    }
    for (step, sp) in wo.steps.iter().zip(wp.steps.iter()) {
        let Some(contract) = repo.module(&step.module_id) else {
            continue;
        };
        let files = env.platform.step_files(step_beneath(
            env.platform.runtime_dir,
            &run.tenant_id,
            &run.work_order_id,
            &run.run_id,
            &step.step_id,
        ));
        let prior = hist.and_then(|h| h.step(&step.step_id));
        let settled = match sp.disposition {
            Disposition::Keep { status, attempt } => {
                let id = run.step(&step.step_id, attempt, &step.module_id);
                let att = recorded(prior, attempt);
                charge_owed_usage(env, &mut state.tally, &mut hold, &id, att)?;
                keep(step, prior, status, attempt)
            }
            Disposition::Refund { attempt } => refund(env, &mut state.tally, step, prior, attempt)?,
            Disposition::Run { attempt } => {
                let fail_fast = wo.mode == Mode::FailFast
                    && state.statuses.values().any(|s| *s == StepStatus::Failed);
                let planned = Planned {
                    run,
                    step,
                    plan: sp,
                    contract,
                    files: &files,
                    prior: recorded(prior, attempt),
                    produced: &state.produced,
                    statuses: &state.statuses,
                    fail_fast,
                };
                step::run(env, &planned, attempt, &mut state.tally, &mut hold)?
            }
        };
        state.settle(run, step, contract, &files, settled);
    }
    finish(env, run, wp.action, wo.mode, &mut state.tally)
}

impl<'a> RunState<'a> {
    fn settle(
        &mut self,
        run: &RunIdentity,
        step: &Step,
        contract: &'a ModuleContract,
        files: &Beneath,
        settled: Settled,
    ) {
        let Settled {
            report,
            values,
            recorded,
            receipt,
        } = settled;
        let id = run.step(&step.step_id, report.attempt, &step.module_id);
        self.produced.insert(
            step.step_id.clone(),
            Produced {
                contract,
                outputs: files.join("outputs"),
                values,
                recorded,
                completed: report.status == StepStatus::Completed,
            },
        );
        self.statuses.insert(step.step_id.clone(), report.status);
        self.tally.settle(&id, report, receipt);
    }
}

/// Post the run's end and its evidence bundle.
fn finish(
    env: &ExecEnv,
    run: &RunIdentity,
    action: Action,
    mode: Mode,
    tally: &mut Tally,
) -> Result<RunReport> {
    let all: Vec<StepStatus> = tally.steps.iter().map(|r| r.status).collect();
    let status = run_status(&all, mode);
    let attempt = tally.steps.iter().map(|r| r.attempt).max().unwrap_or(1);
    let records = tally.end_records(&env.journal, run, status, attempt)?;
    crate::failpoint::hit("before_run_ended");
    // Queued behind the last outcome (same file, written in order), then one wait for both.
    tally.post_ahead(&env.journal, records)?;
    tally.settle_ahead(&env.journal)?;
    crate::failpoint::hit("after_run_ended");
    Ok(std::mem::take(tally).report(run.clone(), action, status))
}

/// A step kept from an earlier attempt, with its recorded reason and values.
fn keep(step: &Step, prior: Option<&StepHistory>, status: StepStatus, attempt: u32) -> Settled {
    let att = recorded(prior, attempt);
    let outcome = att.and_then(|a| a.outcome.as_ref());
    Settled {
        report: StepReport {
            step_id: step.step_id.clone(),
            module_id: step.module_id.clone(),
            status,
            reason_slug: outcome.and_then(|o| o.reason_slug.clone()),
            attempt,
            message: None,
            ran: false,
            usage: Default::default(),
        },
        values: outcome
            .map(|o| o.values.clone().into_iter().collect())
            .unwrap_or_default(),
        recorded: outcome.map(|o| o.outputs.clone()).unwrap_or_default(),
        receipt: att.is_some_and(|a| a.receipt.is_some()),
    }
}

/// A completed step whose usage SPENDs a crash (or a refusal for credits) kept from the
/// ledger (they follow its outcome): post the missing ones now, as the outcome recorded them.
fn charge_owed_usage(
    env: &ExecEnv,
    tally: &mut Tally,
    hold: &mut Hold,
    id: &crate::orchestrator::identity::StepIdentity,
    att: Option<&Attempt>,
) -> Result<()> {
    let Some(att) = att else {
        return Ok(());
    };
    tally
        .charge_usage(&env.journal, hold, id, &att.owed_usage())
        .map(|_| ())
}

/// A failed step whose refunds a crash kept from the ledger: post them now.
fn refund(
    env: &ExecEnv,
    tally: &mut Tally,
    step: &Step,
    prior: Option<&StepHistory>,
    attempt: u32,
) -> Result<Settled> {
    let att = recorded(prior, attempt);
    let slug = att
        .and_then(|a| a.outcome.as_ref())
        .and_then(|o| o.reason_slug.clone())
        .unwrap_or_else(|| Failure::ModuleFailed.to_string());
    if let Some(a) = att {
        let owed: Vec<_> = a.unrefunded().collect();
        tally.refund(&env.journal, &owed, &slug)?;
    }
    Ok(Settled {
        report: StepReport {
            step_id: step.step_id.clone(),
            module_id: step.module_id.clone(),
            status: StepStatus::Failed,
            reason_slug: Some(slug),
            attempt,
            message: None,
            ran: false,
            usage: Default::default(),
        },
        values: serde_json::Map::new(),
        recorded: Vec::new(),
        receipt: att.is_some_and(|a| a.receipt.is_some()),
    })
}

/// What the ledger holds of one attempt of a step.
fn recorded(prior: Option<&StepHistory>, attempt: u32) -> Option<&Attempt> {
    prior.and_then(|p| p.attempts.get(&attempt)).map(|a| &**a)
}

/// The rerun request run n answers: the one its plan found, or one recorded after run n-1
/// while this pass ran (after the plan): run n is the new run it asked for, so it names it
/// (SPEC §9). Until 2026-12-04 such a request was answered by no run.
fn answered_rerun(env: &ExecEnv, wp: &WorkOrderPlan) -> Result<Option<String>> {
    if wp.rerun.is_some() {
        return Ok(wp.rerun.clone());
    }
    let key = rerun_key(&wp.tenant_id, &wp.work_order_id, wp.run.saturating_sub(1));
    Ok(env.journal.recorded(Stream::Evidence, &key)?.then_some(key))
}
