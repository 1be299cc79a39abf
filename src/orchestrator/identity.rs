//! Who a run's records are about — tenant, work order, run, run_id, and for a step attempt
//! its step, attempt and module — and every record built from them, so no record copies
//! those fields by hand.
use super::plan::Charge;
use crate::builtin::Receipt;
use crate::records::evidence::{delivery_receipt_key, evidence_item_key};
use crate::records::{
    DeliveryReceipt, EvidenceBundle, EvidenceItem, FileDigest, RunEnded, RunStarted, RunStatus,
    Spend, StepOutcome, StepStarted, StepStatus, StepSummary,
};

/// One run of one work order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIdentity {
    pub tenant_id: String,
    pub work_order_id: String,
    pub run: u64,
    pub run_id: String,
    /// The period of a scheduled work order's run (SPEC §9), carried by its start and ends.
    pub period: Option<String>,
}

/// One attempt of one step of a run.
#[derive(Debug, Clone, Copy)]
pub struct StepIdentity<'a> {
    pub run: &'a RunIdentity,
    pub step_id: &'a str,
    pub attempt: u32,
    pub module_id: &'a str,
}

impl RunIdentity {
    pub fn step<'a>(
        &'a self,
        step_id: &'a str,
        attempt: u32,
        module_id: &'a str,
    ) -> StepIdentity<'a> {
        StepIdentity {
            run: self,
            step_id,
            attempt,
            module_id,
        }
    }

    /// Its start; `rerun` is the key of the request that started it, if one did.
    pub fn started(&self, work_order_sha256: &str, rerun: Option<&str>) -> RunStarted {
        RunStarted {
            tenant_id: self.tenant_id.clone(),
            work_order_id: self.work_order_id.clone(),
            run: self.run,
            run_id: self.run_id.clone(),
            work_order_sha256: work_order_sha256.to_string(),
            correlation_id: self.run_id.clone(),
            period: self.period.clone(),
            rerun: rerun.map(str::to_string),
        }
    }

    /// The run's end as attempt `attempt`, with its steps and its credits so far.
    pub fn ended(
        &self,
        attempt: u32,
        status: RunStatus,
        steps: Vec<StepSummary>,
        (charged, refunded): (i64, i64),
    ) -> RunEnded {
        RunEnded {
            tenant_id: self.tenant_id.clone(),
            work_order_id: self.work_order_id.clone(),
            run: self.run,
            run_id: self.run_id.clone(),
            attempt,
            status,
            steps,
            charged_credits: charged,
            refunded_credits: refunded,
            period: self.period.clone(),
        }
    }

    pub fn bundle(&self, attempt: u32, items: Vec<String>) -> EvidenceBundle {
        EvidenceBundle::new(
            &self.tenant_id,
            &self.work_order_id,
            &self.run_id,
            attempt,
            items,
        )
    }
}

impl StepIdentity<'_> {
    /// The SPEND of a planned charge.
    pub fn spend(&self, c: &Charge) -> Spend {
        let r = self.run;
        let correlation = format!("{}/{}/a{}", r.run_id, self.step_id, self.attempt);
        Spend::new(
            &r.tenant_id,
            &r.work_order_id,
            r.run,
            &r.run_id,
            self.step_id,
            self.attempt,
            self.module_id,
            &c.deliverable_id,
            c.amount_credits,
            &correlation,
        )
    }

    /// The SPEND of a completed step's metered usage of `unit`: keyed `.../{unit}` under its
    /// charge keys, with the unit and the quantity (SPEC §10).
    pub fn usage_spend(&self, unit: &str, usage: &crate::records::UsageCharge) -> Spend {
        let charge = Charge {
            deliverable_id: unit.to_string(),
            amount_credits: usage.amount(),
            idempotency_key: String::new(),
            already_charged: false,
        };
        let mut spend = self.spend(&charge);
        spend.charge.usage_unit = unit.to_string();
        spend.quantity = Some(usage.quantity);
        spend
    }

    pub fn started(&self) -> StepStarted {
        let r = self.run;
        StepStarted {
            tenant_id: r.tenant_id.clone(),
            work_order_id: r.work_order_id.clone(),
            run: r.run,
            run_id: r.run_id.clone(),
            step_id: self.step_id.to_string(),
            attempt: self.attempt,
            module_id: self.module_id.to_string(),
        }
    }

    /// Its outcome, without outputs or values.
    pub fn outcome(
        &self,
        status: StepStatus,
        reason_slug: Option<String>,
        message: Option<String>,
    ) -> StepOutcome {
        let s = self.started();
        StepOutcome {
            tenant_id: s.tenant_id,
            work_order_id: s.work_order_id,
            run: s.run,
            run_id: s.run_id,
            step_id: s.step_id,
            attempt: s.attempt,
            module_id: s.module_id,
            status,
            reason_slug,
            message,
            usage: Default::default(),
            outputs: Vec::new(),
            values: Default::default(),
        }
    }

    pub fn evidence_item(
        &self,
        status: StepStatus,
        subjects: Vec<FileDigest>,
        logs: Vec<FileDigest>,
    ) -> EvidenceItem {
        EvidenceItem {
            run_id: self.run.run_id.clone(),
            step_id: self.step_id.to_string(),
            attempt: self.attempt,
            status,
            subjects,
            logs,
        }
    }

    pub fn receipt(&self, r: &Receipt) -> DeliveryReceipt {
        DeliveryReceipt {
            tenant_id: self.run.tenant_id.clone(),
            work_order_id: self.run.work_order_id.clone(),
            run_id: self.run.run_id.clone(),
            step_id: self.step_id.to_string(),
            attempt: self.attempt,
            delivered: r.clone(),
        }
    }

    /// The keys its evidence bundle lists: its evidence item, and its receipt when it has one.
    pub fn bundle_items(&self, receipt: bool) -> Vec<String> {
        let (run_id, step, attempt) = (&self.run.run_id, self.step_id, self.attempt);
        let mut items = vec![evidence_item_key(run_id, step, attempt)];
        if receipt {
            items.push(delivery_receipt_key(run_id, step, attempt));
        }
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Refund;

    fn run() -> RunIdentity {
        RunIdentity {
            tenant_id: "acme".into(),
            work_order_id: "wo-1".into(),
            run: 2,
            run_id: "run-x".into(),
            period: None,
        }
    }

    #[test]
    fn every_step_record_carries_the_same_identity() {
        let r = run();
        let id = r.step("s1", 3, "mod");
        let charge = Charge {
            deliverable_id: "__run__".into(),
            amount_credits: 5,
            idempotency_key: String::new(),
            already_charged: false,
        };
        let spend = id.spend(&charge);
        assert_eq!(spend.key(), "spend/acme/wo-1/r2/s1/a3/__run__");
        assert_eq!(spend.amount_credits, -5);
        assert_eq!(spend.charge.correlation_id, "run-x/s1/a3");
        let refund = Refund::reversing(&spend, "timeout");
        assert_eq!(
            (refund.charge.step_id.as_str(), refund.charge.attempt),
            ("s1", 3)
        );
        let started = id.started();
        let outcome = id.outcome(StepStatus::Failed, Some("timeout".into()), None);
        assert_eq!(
            (
                started.run_id.as_str(),
                started.attempt,
                started.module_id.as_str()
            ),
            ("run-x", 3, "mod")
        );
        assert_eq!(outcome.key(), "step_outcome/run-x/s1/a3");
        assert_eq!(outcome.run, 2);
        assert_eq!(id.bundle_items(true).len(), 2);
        assert_eq!(
            id.bundle_items(false),
            vec![evidence_item_key("run-x", "s1", 3)]
        );
    }
}
