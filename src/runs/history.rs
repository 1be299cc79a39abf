//! Run histories rebuilt from the ledger alone (billing + evidence records): which runs a work
//! order had, which steps were charged, started, ended and refunded, attempt by attempt.
use super::slots::{run_entry, run_with_id, RunMap, RunSlot, Runs};
use crate::records::billing::Charged;
use crate::records::evidence::Delivered;
use crate::records::{
    DeliveryReceipt, Record, RecordType, RunStatus, Spend, StepOutcome, StepStatus,
};
use std::collections::{BTreeMap, BTreeSet};

/// One attempt of one step.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    /// From its SPEND, step-started or outcome record (a run's old version may be gone).
    pub module_id: Option<String>,
    pub spends: Vec<Spend>,
    /// Keys of SPENDs already refunded.
    pub refunded: BTreeSet<String>,
    pub started: bool,
    pub outcome: Option<StepOutcome>,
    /// The delivery receipt recorded for this attempt, if any (boxed: most steps deliver
    /// nothing, and the history holds every attempt of every run).
    pub receipt: Option<Box<Delivered>>,
}

#[derive(Debug, Clone, Default)]
pub struct StepHistory {
    /// Boxed: a B-tree node has room for 11 values, and an inline `Attempt` (with its
    /// outcome) made every step's one-attempt map cost ~3.6 KB (~11 KB per work order).
    pub attempts: BTreeMap<u32, Box<Attempt>>,
}

impl Attempt {
    /// The metered usage its COMPLETED outcome records with no SPEND in the ledger (a crash,
    /// or a refusal for credits, came between the outcome and its usage batch), by unit:
    /// what resuming the run charges (a SPEND's key ends in its unit, as a deliverable's).
    /// A unit priced 0 credits is free: it owes nothing and is never posted.
    pub fn owed_usage(&self) -> BTreeMap<String, crate::records::UsageCharge> {
        let Some(o) = self
            .outcome
            .as_ref()
            .filter(|o| o.status == StepStatus::Completed)
        else {
            return BTreeMap::new();
        };
        o.usage
            .iter()
            .filter(|(_, c)| c.amount() != 0)
            .filter(|(u, _)| !self.spends.iter().any(|s| s.charge.deliverable_id == **u))
            .map(|(u, c)| (u.clone(), *c))
            .collect()
    }

    /// Its SPENDs that no REFUND reverses yet.
    pub fn unrefunded(&self) -> impl Iterator<Item = &Spend> {
        self.spends
            .iter()
            .filter(|s| !self.refunded.contains(&s.key()))
    }
}

impl StepHistory {
    /// The highest attempt with any record, and its state.
    pub fn latest(&self) -> Option<(u32, &Attempt)> {
        self.attempts.iter().next_back().map(|(a, s)| (*a, &**s))
    }
    /// The latest attempt that has an outcome.
    pub fn latest_outcome(&self) -> Option<&StepOutcome> {
        self.attempts
            .values()
            .rev()
            .find_map(|a| a.outcome.as_ref())
    }
}

#[derive(Debug, Clone)]
pub struct RunEnd {
    pub attempt: u32,
    pub status: RunStatus,
}

#[derive(Debug, Clone, Default)]
pub struct RunHistory {
    pub run: u64,
    pub run_id: String,
    /// Every end of this run (a first pass, then `--retry-failed` passes), by attempt.
    pub ends: BTreeMap<u32, RunEnd>,
    /// Its `run_started` record was read: the three fields below come from it.
    pub started: bool,
    pub work_order_sha256: Option<String>,
    /// The period its `run_started` names (scheduled work orders only).
    pub period: Option<String>,
    /// The rerun request that started it, if one did.
    pub rerun: Option<String>,
    pub steps: BTreeMap<String, StepHistory>,
    /// Step ids in execution order: the order of their first record in evidence.jsonl
    /// (where every step that ran or was skipped has one), then steps known only from
    /// billing.jsonl (charged before a crash), in the order of their charges. Readers fold
    /// billing.jsonl first, so a step is placed again when its first evidence record comes.
    pub step_order: Vec<String>,
    /// How many steps at the front of `step_order` an evidence record placed.
    pub(crate) placed: usize,
    /// When its `run_started` was recorded (ns since the epoch), where the reader kept it:
    /// `runs` lists oldest first by it, since a merged ledger holds its shards' runs shard
    /// after shard.
    pub started_at_ns: Option<i64>,
}

impl RunHistory {
    /// A step that an evidence record names: placed after the steps placed so far, unless
    /// an earlier evidence record placed it.
    fn place(&mut self, step: &str) {
        let Some(i) = self.step_order.iter().position(|s| s == step) else {
            return;
        };
        if i >= self.placed {
            let id = self.step_order.remove(i);
            self.step_order.insert(self.placed, id);
            self.placed += 1;
        }
    }

    pub fn last_end(&self) -> Option<&RunEnd> {
        self.ends.values().next_back()
    }
    /// The highest attempt any step record of this run carries.
    pub fn max_attempt(&self) -> u32 {
        self.steps
            .values()
            .filter_map(|s| s.latest().map(|(a, _)| a))
            .max()
            .unwrap_or(0)
    }
    /// Started and not ended, or step records past its last end: a crash interrupted it.
    pub fn is_open(&self) -> bool {
        match self.last_end() {
            None => self.started,
            Some(end) => self.max_attempt() > end.attempt,
        }
    }
    pub fn step(&self, step_id: &str) -> Option<&StepHistory> {
        self.steps.get(step_id)
    }
}

/// All runs of all work orders, keyed by (tenant, work order).
#[derive(Debug, Clone, Default)]
pub struct History {
    pub work_orders: Runs<RunHistory>,
    /// (tenant, work order, run) in the order the runs started: oldest first.
    pub order: Vec<(String, String, u64)>,
    /// Pending and consumed rerun requests: (tenant, work order) → the `after_run` of each.
    pub reruns: BTreeMap<(String, String), BTreeSet<u64>>,
    /// What the next writer repairs, one line each (an incomplete last write, a privileged
    /// record without its audit record), as a reader saw it: `Reading::pending_repairs`.
    pub pending_repairs: Vec<String>,
}

impl RunSlot for RunHistory {
    fn run_id_mut(&mut self) -> &mut String {
        &mut self.run_id
    }
}

impl History {
    fn run_mut(&mut self, tenant: &str, wo: &str, run: u64, run_id: &str) -> &mut RunHistory {
        let r = run_entry(&mut self.work_orders, (tenant, wo), run, run_id);
        r.run = run;
        r
    }

    /// The attempt a record is about; `from_evidence`: an evidence record (which places the
    /// step in execution order), not a charge.
    #[allow(clippy::too_many_arguments)]
    fn attempt_mut(
        &mut self,
        tenant: &str,
        wo: &str,
        run: u64,
        run_id: &str,
        step: &str,
        attempt: u32,
        from_evidence: bool,
    ) -> &mut Attempt {
        let run = self.run_mut(tenant, wo, run, run_id);
        if !run.steps.contains_key(step) {
            run.step_order.push(step.to_string());
        }
        if from_evidence {
            run.place(step);
        }
        run.steps
            .entry(step.to_string())
            .or_default()
            .attempts
            .entry(attempt)
            .or_default()
    }

    /// The attempt a SPEND or a REFUND of `tenant` is about.
    fn charged_attempt(&mut self, tenant: &str, c: &Charged) -> &mut Attempt {
        let (wo, run_id, step) = (&c.work_order_id, &c.run_id, &c.step_id);
        self.attempt_mut(tenant, wo, c.run, run_id, step, c.attempt, false)
    }

    /// Whether [`History::add`] uses records of type `t`: a reader parses no others.
    pub fn uses(t: RecordType) -> bool {
        matches!(
            t,
            RecordType::RunStarted
                | RecordType::Spend
                | RecordType::Refund
                | RecordType::StepStarted
                | RecordType::StepOutcome
                | RecordType::DeliveryReceipt
                | RecordType::RunEnded
                | RecordType::RerunRequested
        )
    }

    /// Fold one ledger record in. Records of other kinds are ignored.
    pub fn add(&mut self, rec: Record) {
        match rec {
            Record::RunStarted(r) => {
                self.order
                    .push((r.tenant_id.clone(), r.work_order_id.clone(), r.run));
                let run = self.run_mut(&r.tenant_id, &r.work_order_id, r.run, &r.run_id);
                run.started = true;
                run.work_order_sha256 = Some(r.work_order_sha256);
                run.period = r.period;
                run.rerun = r.rerun;
            }
            Record::Spend(s) => {
                let att = self.charged_attempt(&s.tenant_id, &s.charge);
                att.module_id
                    .get_or_insert_with(|| s.charge.module_id.clone());
                att.spends.push(s);
            }
            Record::Refund(r) => {
                let att = self.charged_attempt(&r.tenant_id, &r.charge);
                att.refunded.insert(r.refunds);
            }
            Record::StepStarted(s) => {
                let (t, w, rid, st) = (&s.tenant_id, &s.work_order_id, &s.run_id, &s.step_id);
                let att = self.attempt_mut(t, w, s.run, rid, st, s.attempt, true);
                att.started = true;
                att.module_id.get_or_insert(s.module_id);
            }
            Record::StepOutcome(o) => {
                let (t, w, rid, st) = (&o.tenant_id, &o.work_order_id, &o.run_id, &o.step_id);
                let att = self.attempt_mut(t, w, o.run, rid, st, o.attempt, true);
                att.module_id.get_or_insert_with(|| o.module_id.clone());
                att.outcome = Some(o);
            }
            Record::DeliveryReceipt(d) => self.add_receipt(&d),
            Record::RerunRequested(q) => {
                self.reruns
                    .entry((q.tenant_id, q.work_order_id))
                    .or_default()
                    .insert(q.after_run);
            }
            Record::RunEnded(e) => {
                let run = self.run_mut(&e.tenant_id, &e.work_order_id, e.run, &e.run_id);
                let end = RunEnd {
                    attempt: e.attempt,
                    status: e.status,
                };
                run.ends.insert(e.attempt, end);
            }
            _ => {}
        }
    }

    /// A delivery receipt marks its attempt of a run already known.
    fn add_receipt(&mut self, d: &DeliveryReceipt) {
        let wo = (d.tenant_id.as_str(), d.work_order_id.as_str());
        if let Some(run) = run_with_id(&mut self.work_orders, wo, &d.run_id) {
            let step = run.steps.entry(d.step_id.clone()).or_default();
            step.attempts.entry(d.attempt).or_default().receipt =
                Some(Box::new(d.delivered.clone()));
        }
    }

    /// Note when run `run` of a work order started (its `run_started`'s `recorded_at`).
    pub(crate) fn stamp_start(&mut self, tenant: &str, wo: &str, run: u64, at_ns: Option<i64>) {
        let key = (tenant.to_string(), wo.to_string());
        if let Some(r) = self.work_orders.get_mut(&key).and_then(|m| m.get_mut(&run)) {
            r.started_at_ns = at_ns;
        }
    }

    pub fn runs(&self, tenant: &str, wo: &str) -> Option<&RunMap<RunHistory>> {
        self.work_orders.get(&(tenant.to_string(), wo.to_string()))
    }

    /// Whether a rerun was requested after run `after` (0: before any run) of a work order.
    pub fn rerun_requested(&self, tenant: &str, wo: &str, after: u64) -> bool {
        self.reruns
            .get(&(tenant.to_string(), wo.to_string()))
            .is_some_and(|r| r.contains(&after))
    }
}

/// The status of a step as a run sees it now: its latest outcome.
pub fn current_status(step: Option<&StepHistory>) -> Option<StepStatus> {
    step.and_then(|s| s.latest_outcome()).map(|o| o.status)
}
