//! The pure planner: from the repository, the ledger's history and balances, decide which
//! work orders run, as which run and attempt, with which charges and keys. No I/O.
use crate::config::registry::Registry;
use crate::findings::Finding;
use crate::records::billing::spend_key;
use crate::records::evidence::rerun_key;
use crate::records::StepStatus;
use crate::repo::{LoadedWorkOrder, Repo};
use crate::runs::history::{History, RunHistory};
use crate::runs::RunMap;
use std::collections::BTreeSet;

mod closings;
mod gate;
mod model;

use closings::{close_only, closings};
pub use closings::{closing_refunds_owed, owes_refunds};
pub use model::*;

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
    let tenants = gate::gate(input, &mut out);
    Plan {
        work_orders: out,
        tenants,
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

/// The credits of the charges not yet posted; None when the sum does not fit.
pub fn new_charges<'a>(charges: impl Iterator<Item = &'a Charge>) -> Option<i64> {
    charges
        .filter(|c| !c.already_charged)
        .try_fold(0i64, |sum, c| sum.checked_add(c.amount_credits))
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
    use sha2::{Digest, Sha256};
    use std::collections::BTreeMap;

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
    fn run_ids_are_derived() {
        assert_eq!(run_id("a", "w", 1), run_id("a", "w", 1));
        assert_ne!(run_id("a", "w", 1), run_id("a", "w", 2));
        assert_ne!(run_id("a", "w", 1), run_id("b", "w", 1));
    }
}
