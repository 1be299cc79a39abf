//! The orchestrator's side of the ledger: plans only from a ledger that passes every check (`reading::LedgerView`, or a refusal that says nothing was charged), posts batches, keeps per-run credit totals current, and collects every repair for the pass's notes.
use crate::error::Result;
use crate::ledger::Ledger;
use crate::records::{Payload, Record};
use crate::runs::{add_to_run, RunTotals};
use std::path::Path;

pub struct Journal {
    ledger: Ledger,
    totals: RunTotals,
    /// Repairs made while the pass runs (a torn tail or a missing audit record left by
    /// another process), as notes for the summary.
    notes: Vec<String>,
}

/// A ledger the orchestrator will not plan on (`reading::LedgerView`): the error, saying
/// nothing was charged.
pub fn refusal(e: crate::Error) -> crate::Error {
    e.help("the orchestrator plans only on a ledger that `platform integrity-validate` accepts, so nothing was charged: restore the damaged file from a good copy (platform state pull), then run again")
}

fn repair_note(r: &crate::ledger::Repair) -> String {
    format!("repaired: {r}")
}

impl Journal {
    /// Open the ledger for writing (repairing a torn tail or a missing audit record, each
    /// reported).
    pub fn open(dir: &Path, totals: RunTotals) -> Result<(Journal, Vec<String>)> {
        let (ledger, repairs) = Ledger::open(dir)?;
        let notes = repairs.iter().map(repair_note).collect();
        let journal = Journal {
            ledger,
            totals,
            notes: Vec::new(),
        };
        Ok((journal, notes))
    }

    /// The repairs made since the journal was opened (appends and refreshes catch up with
    /// other processes, and remove what a crashed one left), once each.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Post one batch (all records of one stream), durably, idempotently.
    pub fn post(&mut self, batch: Vec<Payload>) -> Result<()> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        let stream = first.record.stream();
        let mut delta: Vec<(String, i128, i128)> = Vec::new();
        for p in &batch {
            match &p.record {
                Record::Spend(s) => {
                    delta.push((s.run_id.clone(), -i128::from(s.amount_credits), 0))
                }
                Record::Refund(r) => delta.push((r.run_id.clone(), 0, r.amount_credits.into())),
                _ => {}
            }
        }
        // One step's charges (or refunds) carry the documented batch id of that step attempt.
        let batch_id = match &first.record {
            Record::Spend(s) => Some(s.batch_id()),
            Record::Refund(r) => Some(r.batch_id()),
            _ => None,
        };
        let outcome = match batch_id {
            Some(id) => self.ledger.append_batch(stream, &id, batch)?,
            None => self.ledger.append(stream, batch)?,
        };
        self.notes.extend(outcome.repairs.iter().map(repair_note));
        if outcome.appended() {
            for (run, c, r) in delta {
                add_to_run(&mut self.totals, &run, c, r)?;
            }
        }
        Ok(())
    }

    /// The tenant's balance now (including top-ups other processes posted meanwhile).
    pub fn balance(&mut self, tenant: &str) -> Result<i64> {
        let repairs = self.ledger.refresh()?;
        self.notes.extend(repairs.iter().map(repair_note));
        Ok(self.ledger.balance(tenant))
    }

    /// Credits charged and refunded in a run so far.
    pub fn run_totals(&self, _tenant: &str, run_id: &str) -> Result<(i64, i64)> {
        Ok(self.totals.get(run_id).copied().unwrap_or((0, 0)))
    }
}
