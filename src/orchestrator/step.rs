//! Runs one step as an attempt, in SPEC §4's order: the gate (a skip), the inputs (refused
//! before charging), then the SPEND batch against the run's hold (refused by the ledger when
//! the balance no longer covers it) → step_started → the module in its turn → outcome batch
//! → REFUND batch when its failure is refundable.
use super::credits::Hold;
use super::env::ExecEnv;
use super::identity::{RunIdentity, StepIdentity};
use super::journal::Charged;
use super::plan::{self, StepPlan};
use super::report::StepReport;
use super::tally::Tally;
use crate::beneath::Beneath;
use crate::contract::{Failure, Kind, ModuleContract, Skip};
use crate::error::Result;
use crate::records::{FileDigest, OutputRecord, Payload, Spend, StepStatus};
use crate::runner::{self, FileRecord, Status, StepResult, StepRun};
use crate::runs::history::Attempt;
use crate::workorder::bindings::Produced;
use crate::workorder::model::{BoundOutput, Step};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// A step the plan runs, with what the run has so far.
pub struct Planned<'a> {
    pub run: &'a RunIdentity,
    pub step: &'a Step,
    pub plan: &'a StepPlan,
    pub contract: &'a ModuleContract,
    /// The step's folder beneath the runtime directory.
    pub files: &'a Beneath,
    /// What the ledger holds of this attempt (a resumed one).
    pub prior: Option<&'a Attempt>,
    pub produced: &'a BTreeMap<String, Produced<'a>>,
    pub statuses: &'a BTreeMap<String, StepStatus>,
    /// An earlier step failed and the work order is FAIL_FAST.
    pub fail_fast: bool,
}

/// A step as one disposition settled it.
pub struct Settled {
    pub report: StepReport,
    /// Its value outputs, for the bindings of later steps.
    pub values: serde_json::Map<String, serde_json::Value>,
    /// Its file/dir outputs as its outcome records them: what later steps check them against.
    pub recorded: Vec<OutputRecord>,
    /// A delivery receipt of it is in the ledger.
    pub receipt: bool,
}

/// How the step ended in this pass.
enum Ending {
    /// The module ran after the step was charged these SPENDs.
    Ran {
        result: Box<StepResult>,
        spends: Vec<Spend>,
    },
    /// Refused before anything was charged: FAILED.
    Refused(Failure, String),
    /// Not run, nothing charged: SKIPPED.
    Skipped(Skip, String),
}

impl Ending {
    fn status(&self) -> StepStatus {
        match self {
            Ending::Ran { result, .. } if result.status == Status::Completed => {
                StepStatus::Completed
            }
            Ending::Ran { .. } | Ending::Refused(..) => StepStatus::Failed,
            Ending::Skipped(..) => StepStatus::Skipped,
        }
    }

    fn reason_slug(&self) -> Option<String> {
        match self {
            Ending::Ran { result, .. } => result.reason_slug.as_ref().map(|r| r.to_string()),
            Ending::Refused(f, _) => Some(f.to_string()),
            Ending::Skipped(s, _) => Some(s.slug().to_string()),
        }
    }

    fn message(&self) -> Option<&str> {
        match self {
            Ending::Ran { result, .. } => result.message.as_deref(),
            Ending::Refused(_, m) | Ending::Skipped(_, m) => Some(m),
        }
    }
}

/// Run the step as `attempt` and record how it ended. Ledger errors abort the run.
pub fn run(
    env: &ExecEnv,
    p: &Planned,
    attempt: u32,
    tally: &mut Tally,
    hold: &mut Hold,
) -> Result<Settled> {
    let t0 = Instant::now();
    let id = p.run.step(&p.step.step_id, attempt, &p.step.module_id);
    let ending = match gate(p) {
        Some((skip, why)) => {
            hold.release(step_charges(p));
            Ending::Skipped(skip, why)
        }
        None => charge_and_run(env, p, &id, tally, hold)?,
    };
    let settled = record(env, p, &id, ending, tally, hold)?;
    let r = &settled.report;
    env.progress.line(&format!(
        "[{}/{} r{}] {} ({}) {}{} attempt {} {:.2}s",
        id.run.tenant_id,
        id.run.work_order_id,
        id.run.run,
        r.step_id,
        r.module_id,
        r.status.as_str(),
        r.reason_slug
            .as_ref()
            .map(|s| format!(" {s}"))
            .unwrap_or_default(),
        attempt,
        t0.elapsed().as_secs_f64()
    ));
    Ok(settled)
}

/// SPEC §3's skips: FAIL_FAST after a failure, or a step it reads from did not complete.
fn gate(p: &Planned) -> Option<(Skip, String)> {
    if p.fail_fast {
        let why = "an earlier step failed and the work order is FAIL_FAST";
        return Some((Skip::FailFast, why.to_string()));
    }
    upstream_of(p.step)
        .into_iter()
        .find(|d| p.statuses.get(d) != Some(&StepStatus::Completed))
        .map(|d| (Skip::UpstreamFailed, format!("step '{d}' did not complete")))
}

/// The steps a step reads from: its bindings and package_std's bound_outputs.
fn upstream_of(step: &Step) -> BTreeSet<String> {
    let mut deps: BTreeSet<String> = step
        .inputs
        .values()
        .filter_map(|v| v.from_step().map(String::from))
        .collect();
    for b in bound_outputs(step) {
        deps.insert(b.from_step);
    }
    deps
}

/// package_std's `bound_outputs` entries (invalid ones are validation findings, skipped here).
fn bound_outputs(step: &Step) -> Vec<BoundOutput> {
    step.raw_inputs
        .get("bound_outputs")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| serde_json::from_value(x.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// What the plan charges the step that is not charged yet (the planner summed every charge
/// of the run with checks).
fn step_charges(p: &Planned) -> i64 {
    plan::new_charges(p.plan.charges.iter()).unwrap_or(i64::MAX)
}

/// Inputs checked (nothing charged when refused), then the charge against the run's hold,
/// the step_started record and the module, in its turn.
fn charge_and_run(
    env: &ExecEnv,
    p: &Planned,
    id: &StepIdentity,
    tally: &mut Tally,
    hold: &mut Hold,
) -> Result<Ending> {
    let step_run = StepRun {
        platform: &env.platform,
        tenant_id: &id.run.tenant_id,
        work_order_id: &id.run.work_order_id,
        run: id.run.run,
        step: p.step,
        contract: p.contract,
        produced: p.produced,
        files: p.files,
    };
    let new = step_charges(p);
    let prior = p.prior.map(|a| &a.spends).filter(|s| !s.is_empty());
    let inputs = match (runner::prepare(&step_run), prior) {
        (Ok(inputs), _) => Ok(inputs),
        // Charged before a crash (a resumed attempt), refused now: its upstream outputs went
        // with the runtime folder, say. Found after the charge, so the step fails refundably
        // below and its charges come back: no charge is stranded (SPEC §7).
        (Err(why), Some(_)) => Err(why),
        (Err(why), None) => {
            hold.release(new);
            return Ok(Ending::Refused(Failure::InputInvalid, why));
        }
    };
    // A resumed attempt re-posts exactly what it was charged (a no-op), even if a price
    // changed since: the charge of an attempt never changes.
    let spends = match prior {
        Some(recorded) => recorded.clone(),
        None => p.plan.charges.iter().map(|c| id.spend(c)).collect(),
    };
    let started = vec![Payload::new(id.started())];
    if spends.is_empty() {
        hold.release(new);
        env.journal.post(started)?;
    } else {
        crate::failpoint::check("before_spend")?;
        let batch = spends.iter().cloned().map(Payload::new).collect();
        // The run's hold covers it; the ledger still refuses a SPEND the balance does not
        // cover (another process debited the tenant meanwhile): this step fails for it.
        // The step_started is written in a group of its own right after the SPEND's, and
        // only if the SPEND was accepted: one wait for both (docs/ledger.md).
        if let Charged::NotEnoughCredits(why) = hold.charge(&env.journal, batch, started, new)? {
            return Ok(Ending::Refused(Failure::NotEnoughCredits, why));
        }
        tally.charged = tally.charged.saturating_add(new);
        crate::failpoint::hit("after_spend");
    }
    // Durable, so the run's run_started is too: its answer is in, and a refusal stops the
    // run before any module runs.
    tally.settle_ahead(&env.journal)?;
    crate::failpoint::hit("after_step_started");
    let result = match inputs {
        Ok(inputs) => {
            let _turn = env.turn(p.contract);
            after_charge(runner::run(&step_run, &inputs))
        }
        Err(why) => StepResult::failed(
            Failure::ModuleFailed,
            format!("the step was charged before the pass stopped, and its inputs are refused now: {why}; its charges are refunded"),
        ),
    };
    crate::failpoint::hit("after_module");
    Ok(Ending::Ran {
        result: Box::new(result),
        spends,
    })
}

/// A step that ran was charged: a failure it reports with a reason that means "found before
/// charging, nothing charged" (a built-in finding its input wrong only now) is a refundable
/// `module_failed` instead, so the reports never say "nothing charged" of a charge kept.
fn after_charge(mut result: StepResult) -> StepResult {
    if let Some(reason) = result.reason_slug.as_ref().filter(|r| r.before_charging()) {
        let found = result.message.take().unwrap_or_default();
        result.message = Some(format!(
            "{reason}: {found} (found after the step was charged; its charges are refunded)"
        ));
        result.reason_slug = Some(Failure::ModuleFailed);
    }
    result
}

/// The outcome batch (outcome, evidence item, receipt), then the refunds a refundable
/// failure is owed.
fn record(
    env: &ExecEnv,
    p: &Planned,
    id: &StepIdentity,
    ending: Ending,
    tally: &mut Tally,
    hold: &mut Hold,
) -> Result<Settled> {
    let status = ending.status();
    let slug = ending.reason_slug();
    let message = ending.message().map(|m| env.platform.redactor.redact(m));
    let (result, spends) = match ending {
        Ending::Ran { result, spends } => (*result, spends),
        Ending::Refused(..) | Ending::Skipped(..) => (StepResult::completed(), Vec::new()),
    };
    let recorded: Vec<OutputRecord> = result.outputs.iter().map(output_record).collect();
    let outcome = crate::records::StepOutcome {
        outputs: recorded.clone(),
        values: result
            .values
            .iter()
            .map(|(k, v)| (k.clone(), integral(v)))
            .collect(),
        usage: result.usage.clone(),
        ..id.outcome(status, slug.clone(), message.clone())
    };
    let digests = |files: &[FileRecord]| files.iter().map(file_digest).collect();
    let item = id.evidence_item(status, digests(&result.outputs), digests(&result.logs));
    let mut batch = vec![Payload::new(outcome), Payload::new(item)];
    if let Some(r) = &result.receipt {
        batch.push(Payload::new(id.receipt(r)));
    }
    // Queued: what the run posts next (refunds, usage, the next step's SPEND) is written
    // after it, in its group or a later one; settled before the next module runs.
    tally.post_ahead(&env.journal, batch)?;
    crate::failpoint::hit("after_step_outcome");
    let mut report = StepReport {
        step_id: p.step.step_id.clone(),
        module_id: p.step.module_id.clone(),
        status,
        reason_slug: slug,
        attempt: id.attempt,
        message,
        ran: true,
        usage: Default::default(),
    };
    // Its metered usage when it completed (what was reserved and not used goes back to the
    // tenant's balance), then the refunds a refundable failure is owed.
    let mut charge = || -> Result<()> {
        let used = if status == StepStatus::Completed {
            tally.charge_usage(&env.journal, hold, id, &result.usage)?
        } else {
            0
        };
        report.usage = quantities(&result.usage);
        hold.release(p.contract.pricing.usage_reserve().saturating_sub(used));
        let registry = &env.platform.repo.registry;
        if let Some(s) = report
            .reason_slug
            .as_deref()
            .filter(|_| status == StepStatus::Failed)
        {
            if registry.refundable(s).unwrap_or(false) {
                tally.refund(&env.journal, &spends.iter().collect::<Vec<_>>(), s)?;
            }
        }
        Ok(())
    };
    // The outcome is recorded: when a charge after it is refused or fails, the run stops
    // and the pass still reports the step as recorded.
    if let Err(e) = charge() {
        tally.steps.push(report);
        return Err(e);
    }
    Ok(Settled {
        report,
        values: result.values,
        recorded,
        // What the bundle names for a delivery that completed (a command module's too).
        receipt: p.contract.kind == Kind::Delivery && status == StepStatus::Completed,
    })
}

/// The quantities of a step's metered usage, by unit (what reports show).
pub fn quantities(usage: &BTreeMap<String, crate::records::UsageCharge>) -> BTreeMap<String, u64> {
    usage.iter().map(|(u, c)| (u.clone(), c.quantity)).collect()
}

fn output_record(f: &FileRecord) -> OutputRecord {
    OutputRecord {
        output_id: f.id.clone(),
        path: f.path.clone(),
        bytes: f.bytes,
        sha256: f.sha256.clone(),
        files: f.files,
    }
}

fn file_digest(f: &FileRecord) -> FileDigest {
    FileDigest {
        name: f.path.clone(),
        sha256: f.sha256.clone(),
        bytes: f.bytes,
        files: f.files,
    }
}

/// Canonical ledger encoding holds integers only: fractional numbers become strings.
fn integral(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => serde_json::Value::String(n.to_string()),
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(integral).collect()),
        serde_json::Value::Object(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), integral(v))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_become_strings_in_the_ledger() {
        let v = serde_json::json!({"a": 1.5, "b": [2, 0.25], "c": "x", "d": 7});
        assert_eq!(
            integral(&v),
            serde_json::json!({"a": "1.5", "b": [2, "0.25"], "c": "x", "d": 7})
        );
    }

    #[test]
    fn only_a_skip_ending_is_skipped() {
        let skipped = Ending::Skipped(Skip::UpstreamFailed, "s1".into());
        assert_eq!(skipped.status(), StepStatus::Skipped);
        assert_eq!(skipped.reason_slug().as_deref(), Some("upstream_failed"));
        // A failure that merely carries a skip's slug is still a failure.
        let reported = StepResult::failed(Failure::from_slug("fail_fast"), "x");
        let ran = Ending::Ran {
            result: Box::new(reported),
            spends: Vec::new(),
        };
        assert_eq!(ran.status(), StepStatus::Failed);
        let refused = Ending::Refused(Failure::InputInvalid, "bad".into());
        assert_eq!(refused.status(), StepStatus::Failed);
        assert_eq!(refused.message(), Some("bad"));
    }

    #[test]
    fn a_step_that_ran_never_ends_with_a_before_charging_reason() {
        // A built-in that finds its input wrong only after the charge (the file changed
        // since the check before charging).
        let found = after_charge(StepResult::failed(Failure::InputInvalid, "gone"));
        assert_eq!(found.reason_slug, Some(Failure::ModuleFailed));
        let message = found.message.unwrap_or_default();
        assert!(message.starts_with("input_invalid: gone"), "{message}");
        let timeout = after_charge(StepResult::failed(Failure::Timeout, "slow"));
        assert_eq!(timeout.reason_slug, Some(Failure::Timeout));
        assert_eq!(timeout.message.as_deref(), Some("slow"));
        assert_eq!(after_charge(StepResult::completed()).reason_slug, None);
    }
}
