//! Runs the plan's work orders: first every superseded run is closed, one after another in plan order; then up to `--jobs` worker threads each take the next work order and run it (its run, steps in order), and the reports come back in the plan's order (tenant, then work order) whatever finished first.
use super::env::ExecEnv;
use super::plan::{Action, Plan, Refusal, WorkOrderPlan};
use super::progress::Board;
use super::report::{self, RunReport, Stopped};
use super::{close, execute};
use crate::records::RunStatus;
use crate::repo::LoadedWorkOrder;
use crate::runs::history::History;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Room for a worker's stack: a step parses module output and JSON as deep as the main
/// thread may.
const WORKER_STACK: usize = 8 << 20;

/// How the pass runs its plan.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    pub history: &'a History,
    pub board: &'a Board<'a>,
    pub jobs: usize,
}

/// Work orders the pass will work on (closings, starts, resumes, retries).
pub fn to_run(plan: &Plan) -> usize {
    plan.work_orders.iter().filter(|wp| has_work(wp)).count()
}

fn has_work(wp: &WorkOrderPlan) -> bool {
    !wp.close.is_empty() || has_run(wp)
}

/// Whether the plan runs something of the work order (it may also close runs first).
fn has_run(wp: &WorkOrderPlan) -> bool {
    matches!(wp.action, Action::Start | Action::Resume | Action::Retry)
}

/// What a worker looks work orders up in: the ledger's history, and each loaded work order
/// by (tenant, work order) — a linear search per run made a pass quadratic in W.
struct Known<'a> {
    history: &'a History,
    loaded: HashMap<(&'a str, &'a str), &'a LoadedWorkOrder>,
}

/// Run every work order of the plan, `run.jobs` at once; the reports in plan order.
pub fn run_plan<'p>(env: &ExecEnv, run: Run, plan: &'p Plan) -> Vec<RunReport> {
    let known = Known {
        history: run.history,
        loaded: env
            .platform
            .repo
            .work_orders()
            .map(|l| ((l.tenant_id.as_str(), l.stem.as_str()), l))
            .collect(),
    };
    let work: Vec<&'p WorkOrderPlan> = plan.work_orders.iter().filter(|w| has_work(w)).collect();
    let mut slots: Vec<Vec<RunReport>> = work.iter().map(|_| Vec::new()).collect();
    let runs = one_worker(env, || close_all(env, run.board, &known, &work, &mut slots));
    let mut later: Vec<(usize, &'p WorkOrderPlan)> = Vec::new();
    let next = AtomicUsize::new(0);
    let (done, finished) = mpsc::channel::<Finished<'p>>();
    let worker = |done: mpsc::Sender<Finished<'p>>| {
        while let Some(&(i, closed_failed)) = runs.get(next.fetch_add(1, Ordering::Relaxed)) {
            let Some(wp) = work.get(i) else { break };
            let (reports, deferred) = work_order(env, run.board, &known, wp, closed_failed);
            let _ = done.send((i, reports, deferred));
        }
    };
    // Every step's module is started by a supervisor the zygote forked, and waited for by
    // the worker that handed it the step (runner/launch.rs, runner/session.rs).
    std::thread::scope(|s| {
        let workers = run.jobs.clamp(1, runs.len().max(1));
        env.journal.expect_workers(workers);
        // With more workers than CPUs, the ledger's groups are committed by a thread of
        // their own, which runs ahead of the workers and their modules: they lower their
        // priority (`WORKER_NICE`). With fewer, workers lead groups themselves: a hand-over
        // to another thread for each group cost more than it saved (docs/performance.md).
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let serving = workers > cpus
            && std::thread::Builder::new()
                .name("ledger".into())
                .spawn_scoped(s, || env.journal.serve())
                .is_ok();
        // Started here, at the pass's priority, not by a worker at its lowered one: modules
        // then run above the workers, which mostly wait for them (modules at the workers'
        // priority were preempted ~2 times each, and the pass took 2-10 % more CPU:
        // docs/performance.md).
        #[cfg(target_os = "linux")]
        if serving && env.platform.repo.has_command_modules() {
            crate::runner::zygote::start_now();
        }
        for n in 0..workers {
            let tx = done.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("work-order-{n}"))
                .stack_size(WORKER_STACK)
                .spawn_scoped(s, move || {
                    if serving {
                        crate::runner::procs::lower_thread_priority(WORKER_NICE);
                    }
                    worker(tx);
                    env.journal.worker_done();
                });
            if spawned.is_err() {
                env.journal.worker_done();
                if n == 0 {
                    worker(done.clone());
                }
            }
        }
        drop(done);
        // Kept as a copy made here: a report built by a worker sits between the freed
        // scraps of its steps in the worker's malloc arena and keeps those pages resident
        // for the whole pass (97 MiB peak with --jobs 1 at W = 10,000; 82 MiB copied).
        for (i, reports, deferred) in finished {
            if let Some(slot) = slots.get_mut(i) {
                slot.extend(reports.iter().cloned());
            }
            later.extend(deferred.into_iter().map(|wp| (i, wp)));
        }
        env.journal.stop_serving();
    });
    if !later.is_empty() {
        later.sort_by_key(|(i, _)| *i);
        one_worker(env, || {
            for (i, wp) in later {
                if let Some(slot) = slots.get_mut(i) {
                    slot.extend(decided_again(env, &known, wp));
                }
            }
        });
    }
    slots.into_iter().flatten().collect()
}

/// Run `f` as the pass's only worker (the ledger's group commit waits for no other).
fn one_worker<T>(env: &ExecEnv, f: impl FnOnce() -> T) -> T {
    env.journal.expect_workers(1);
    let out = f();
    env.journal.worker_done();
    out
}

/// Close every superseded run of the plan before any run starts, one after another in plan
/// order, each work order's reports into its slot. So the credits a closing gives back or
/// charges (owed usage) are in the ledger before any run holds credits, in the order the
/// planner's gate counted them (`plan::gate`), whatever `--jobs` says: until 2026-12-04 each
/// worker closed its own work order's runs, and a run of the tenant beside it could hold
/// the credits a closing's owed usage needed, so the closing stopped where `--jobs 1` had
/// charged it and refused the run. Returns the work orders that then run (index, and
/// whether a closing of theirs ended FAILED); a work order a closing stopped on runs
/// nothing more in this pass.
fn close_all(
    env: &ExecEnv,
    board: &Board,
    known: &Known,
    work: &[&WorkOrderPlan],
    slots: &mut [Vec<RunReport>],
) -> Vec<(usize, bool)> {
    let mut runs = Vec::new();
    for (i, (wp, slot)) in work.iter().zip(slots.iter_mut()).enumerate() {
        if wp.close.is_empty() {
            runs.push((i, false));
            continue;
        }
        board.started();
        let stopped = !close_runs(env, known, wp, slot);
        let failed = slot.iter().any(|r| r.status == RunStatus::Failed);
        if stopped || !has_run(wp) {
            board.finished(failed);
        } else {
            runs.push((i, failed));
        }
    }
    runs
}

/// Close the work order's superseded runs, oldest first: false when one stopped (its report
/// says why), and the closings after it wait for the next pass.
fn close_runs(
    env: &ExecEnv,
    known: &Known,
    wp: &WorkOrderPlan,
    reports: &mut Vec<RunReport>,
) -> bool {
    let runs = known.history.runs(&wp.tenant_id, &wp.work_order_id);
    for c in &wp.close {
        let Some(hist) = runs.and_then(|r| r.get(&c.run)) else {
            continue;
        };
        match close::close_run(env, &wp.tenant_id, &wp.work_order_id, c, hist) {
            Ok(closed) => reports.push(closed),
            Err(Stopped(stopped)) => {
                env.progress.line(&stopped_line(wp, &stopped));
                reports.push(*stopped);
                return false;
            }
        }
    }
    true
}

/// A work order's reports, and the runs of it the planner refused for credits (decided again
/// at the end of the pass).
type Finished<'p> = (usize, Vec<RunReport>, Vec<&'p WorkOrderPlan>);

/// Whether the planner refused this run for credits. Its gate counts every run planned
/// before it in the pass as charged in full, none refunded: the balance it quotes may be one
/// the tenant never has. Such a run is decided again once every other run of the pass has
/// ended, against the ledger's balance then (`execute::hold`), which counts their refunds
/// and what they did not charge (skipped steps, unused usage). One after another, in plan
/// order, so which of them run depends on the ledger alone, as with `--jobs 1`.
fn deferred(wp: &WorkOrderPlan) -> bool {
    matches!(wp.refused, Some(Refusal::NotEnoughCredits { .. }))
}

/// Run a deferred run now, or report its refusal with the balance that refused it.
fn decided_again(env: &ExecEnv, known: &Known, wp: &WorkOrderPlan) -> Vec<RunReport> {
    let mut again = wp.clone();
    again.refused = None;
    match run_planned(env, known, &again) {
        Ok(report) => report.into_iter().collect(),
        Err(Stopped(stopped)) => {
            env.progress.line(&stopped_line(wp, &stopped));
            vec![*stopped]
        }
    }
}

fn stopped_line(wp: &WorkOrderPlan, stopped: &RunReport) -> String {
    format!(
        "[{}/{}] stopped: {}",
        wp.tenant_id,
        wp.work_order_id,
        stopped.error.as_deref().unwrap_or_default()
    )
}

/// How much less CPU a worker gets than the ledger's thread and the modules when they are
/// ready to run: a group commit that waits for a CPU after each wake-up of its flushes holds
/// up every worker waiting for its answer, and a module is what a worker waits for. The
/// modules keep the pass's priority: the zygote that forks their supervisors is started
/// before the workers lower theirs (docs/performance.md).
const WORKER_NICE: i32 = 10;

/// One work order's runs (its closings are done: [`close_all`]), its problems kept to
/// itself: a problem of one work order ends that work order only (SPEC §7), the pass goes
/// on with the others and exits 1 at the end. `closed_failed`: a closing of it ended FAILED
/// (the board counts the work order failed).
fn work_order<'p>(
    env: &ExecEnv,
    board: &Board,
    known: &Known,
    wp: &'p WorkOrderPlan,
    closed_failed: bool,
) -> (Vec<RunReport>, Vec<&'p WorkOrderPlan>) {
    if wp.close.is_empty() {
        board.started();
    }
    let mut reports = Vec::new();
    let mut later = Vec::new();
    if let Err(Stopped(stopped)) = planned_runs(env, known, wp, &mut reports, &mut later) {
        board.line(&stopped_line(wp, &stopped));
        reports.push(*stopped);
        // Nothing more of a stopped work order runs in this pass.
        later.clear();
    }
    let failed = closed_failed || reports.iter().any(|r| r.status == RunStatus::Failed);
    board.finished(failed);
    (reports, later)
}

/// Run what the work order's plan says (a resumed run may be followed by a new one:
/// `then`); a run the planner refused for credits goes to `later`.
fn planned_runs<'p>(
    env: &ExecEnv,
    known: &Known,
    wp: &'p WorkOrderPlan,
    reports: &mut Vec<RunReport>,
    later: &mut Vec<&'p WorkOrderPlan>,
) -> std::result::Result<(), Stopped> {
    for planned in std::iter::once(wp).chain(wp.then.as_deref()) {
        if deferred(planned) {
            later.push(planned);
        } else {
            reports.extend(run_planned(env, known, planned)?);
        }
    }
    Ok(())
}

/// Run one planned run (Start, Resume or Retry), or report its refusal.
fn run_planned(
    env: &ExecEnv,
    known: &Known,
    wp: &WorkOrderPlan,
) -> std::result::Result<Option<RunReport>, Stopped> {
    if !matches!(wp.action, Action::Start | Action::Resume | Action::Retry) {
        return Ok(None);
    }
    let runs = known.history.runs(&wp.tenant_id, &wp.work_order_id);
    let hist = runs.and_then(|r| r.get(&wp.run)).map(|h| &**h);
    if let Some(refusal) = &wp.refused {
        return Ok(Some(env.refused(wp, refusal, hist)));
    }
    let Some(lw) = known
        .loaded
        .get(&(wp.tenant_id.as_str(), wp.work_order_id.as_str()))
    else {
        return Ok(None);
    };
    // Loaded light (no steps) when a cache judged it: parsed again now that it runs, and
    // refused if its bytes changed since it was planned.
    let wo = crate::cache::workorders::model_to_run(env.platform.repo, lw)
        .map_err(|why| report::errored_report(wp, &crate::error::Error::failure(why)))?;
    execute::execute(env, wp, &wo, hist).map(Some)
}
