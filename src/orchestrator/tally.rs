//! What a run's steps came to in this pass — their reports, the evidence keys of its bundle,
//! the credits charged and refunded — and the records that end the run. Shared by executing
//! a run and closing a superseded one.
use super::credits::Hold;
use super::identity::{RunIdentity, StepIdentity};
use super::journal::{Ahead, Charged, Journal};
use super::plan::Action;
use super::report::{RunReport, StepReport, Stopped};
use crate::error::Result;
use crate::records::{Payload, Refund, RunStatus, Spend, StepSummary};

#[derive(Debug, Default)]
pub struct Tally {
    pub steps: Vec<StepReport>,
    /// Keys of the step records the run's evidence bundle lists, in step order.
    items: Vec<String>,
    pub charged: i64,
    pub refunded: i64,
    /// The ledger refused a charge of the run for credits (its metered usage): the pass
    /// stops on it.
    pub refused_for_credits: bool,
    /// Batches of the run queued and not answered yet (its `run_started`, a step's outcome:
    /// `Journal::post_ahead`), settled before the next module runs and before the run ends.
    ahead: Vec<Ahead>,
}

impl Tally {
    /// Queue a batch of the run without waiting for its flush (records that hold no credits).
    pub fn post_ahead(&mut self, journal: &Journal, batch: Vec<Payload>) -> Result<()> {
        self.ahead.extend(journal.post_ahead(batch)?);
        Ok(())
    }

    /// The answers to the batches queued ahead (waiting for them if need be): a refusal
    /// stops the run here.
    pub fn settle_ahead(&mut self, journal: &Journal) -> Result<()> {
        for t in std::mem::take(&mut self.ahead) {
            journal.settle(t)?;
        }
        Ok(())
    }

    /// A step settled, with or without a delivery receipt in the ledger.
    pub fn settle(&mut self, id: &StepIdentity, report: StepReport, receipt: bool) {
        self.items.extend(id.bundle_items(receipt));
        self.steps.push(report);
    }

    /// One full REFUND per SPEND, in one batch (SPEC §4).
    pub fn refund(&mut self, journal: &Journal, spends: &[&Spend], slug: &str) -> Result<()> {
        if spends.is_empty() {
            return Ok(());
        }
        let refunds: Vec<Refund> = spends.iter().map(|s| Refund::reversing(s, slug)).collect();
        let total = refunds
            .iter()
            .fold(0i64, |sum, r| sum.saturating_add(r.amount_credits));
        crate::failpoint::hit("before_refund");
        journal.post(refunds.into_iter().map(Payload::new).collect())?;
        crate::failpoint::hit("after_refund");
        self.refunded = self.refunded.saturating_add(total);
        Ok(())
    }

    /// The SPENDs of a completed step's metered usage, in one batch after its outcome,
    /// against the run's hold: a replay (a crash after it) is a no-op by key, so usage is
    /// charged once. Returns the credits charged.
    pub fn charge_usage(
        &mut self,
        journal: &Journal,
        hold: &mut Hold,
        id: &StepIdentity,
        usage: &std::collections::BTreeMap<String, crate::records::UsageCharge>,
    ) -> Result<i64> {
        // A unit priced 0 credits is recorded in the outcome and charged nothing: the ledger
        // refuses a SPEND of 0, and until 2026-12-03 posting one left the run open for good.
        let spends: Vec<Spend> = usage
            .iter()
            .filter(|(_, c)| c.amount() != 0)
            .map(|(u, c)| id.usage_spend(u, c))
            .collect();
        if spends.is_empty() {
            return Ok(0);
        }
        let total = spends
            .iter()
            .fold(0i64, |sum, s| sum.saturating_sub(s.amount_credits));
        crate::failpoint::hit("before_usage");
        let batch = spends.into_iter().map(Payload::new).collect();
        match hold.charge(journal, batch, Vec::new(), total)? {
            Charged::Posted => {
                self.charged = self.charged.saturating_add(total);
                Ok(total)
            }
            // Reserved, so only a debit by another process meanwhile gets here: the outcome
            // keeps what is owed, and a later pass posts it (this run stays open until then).
            Charged::NotEnoughCredits(why) => {
                self.refused_for_credits = true;
                Err(crate::error::Error::failure(format!(
                "the metered usage of step '{}' ({total} credits) was refused: {why}; its outcome records it, and the next pass charges it once the tenant's balance covers it",
                id.step_id
            )))
            }
        }
    }

    /// `run_ended` (as `attempt`, with the run's credits as the ledger has them) and the
    /// evidence bundle: the batch that ends the run.
    pub fn end_records(
        &self,
        journal: &Journal,
        run: &RunIdentity,
        status: RunStatus,
        attempt: u32,
    ) -> Result<Vec<Payload>> {
        let totals = journal.run_totals(&run.tenant_id, &run.run_id)?;
        let steps = self
            .steps
            .iter()
            .map(|r| StepSummary {
                step_id: r.step_id.clone(),
                status: r.status,
                reason_slug: r.reason_slug.clone(),
                attempt: r.attempt,
            })
            .collect();
        let ended = run.ended(attempt, status, steps, totals);
        let bundle = run.bundle(attempt, self.items.clone());
        Ok(vec![Payload::new(ended), Payload::new(bundle)])
    }

    /// The pass's report of the run.
    pub fn report(self, run: RunIdentity, action: Action, status: RunStatus) -> RunReport {
        RunReport {
            tenant_id: run.tenant_id,
            work_order_id: run.work_order_id,
            run: run.run,
            run_id: run.run_id,
            period: run.period,
            action,
            status,
            steps: self.steps,
            charged_credits: self.charged,
            refunded_credits: self.refunded,
            refused: None,
            error: None,
            stopped_for_credits: false,
        }
    }

    /// The report of a run the pass stopped on with `e`: FAILED, with what this pass
    /// charged, refunded and reported of it until then (what it appended to the ledger),
    /// and why. The run stays open and the next pass resumes or closes it.
    pub fn stopped(self, run: RunIdentity, action: Action, e: &crate::error::Error) -> Stopped {
        let for_credits = self.refused_for_credits;
        Stopped(Box::new(RunReport {
            error: Some(e.message.clone()),
            stopped_for_credits: for_credits,
            ..self.report(run, action, RunStatus::Failed)
        }))
    }
}
