//! The orchestrator's view of the ledger: loads history and balances, posts batches, and keeps
//! per-run credit totals current as it writes.
use super::history::History;
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::records::{Payload, Record, Stream};
use std::collections::BTreeMap;
use std::path::Path;

pub struct Journal {
    ledger: Ledger,
    totals: RunTotals,
}

/// run_id → (credits charged, credits refunded), all attempts.
pub type RunTotals = BTreeMap<String, (i64, i64)>;

/// Read every billing and evidence record into a run history, plus per-run totals.
pub fn load_history(dir: &Path) -> Result<(History, RunTotals)> {
    let mut history = History::default();
    let mut totals = RunTotals::new();
    for stream in [Stream::Billing, Stream::Evidence] {
        crate::ledger::for_each(dir, stream, |line, obj| {
            let rec: Record = serde_json::from_value(serde_json::Value::Object(obj.clone()))
                .map_err(|e| {
                    Error::failure(format!(
                        "{}:{line}: unreadable record: {e}",
                        stream.file_name()
                    ))
                    .help("run `platform integrity-validate` to see what is damaged")
                })?;
            match &rec {
                Record::Spend(s) => {
                    totals.entry(s.run_id.clone()).or_default().0 -= s.amount_credits
                }
                Record::Refund(r) => {
                    totals.entry(r.run_id.clone()).or_default().1 += r.amount_credits
                }
                _ => {}
            }
            history.add(rec);
            Ok(())
        })?;
    }
    Ok((history, totals))
}

impl Journal {
    /// Open the ledger for writing (repairing a torn tail, which is reported).
    pub fn open(
        dir: &Path,
        totals: BTreeMap<String, (i64, i64)>,
    ) -> Result<(Journal, Vec<String>)> {
        let (ledger, repairs) = Ledger::open(dir)?;
        let notes = repairs.iter().map(|r| format!("repaired: {r}")).collect();
        Ok((Journal { ledger, totals }, notes))
    }

    /// Post one batch (all records of one stream), durably, idempotently.
    pub fn post(&mut self, batch: Vec<Payload>) -> Result<()> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        let stream = first.record.stream();
        let mut delta: Vec<(String, i64, i64)> = Vec::new();
        for p in &batch {
            match &p.record {
                Record::Spend(s) => delta.push((s.run_id.clone(), -s.amount_credits, 0)),
                Record::Refund(r) => delta.push((r.run_id.clone(), 0, r.amount_credits)),
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
        if outcome.appended() {
            for (run, c, r) in delta {
                let e = self.totals.entry(run).or_default();
                e.0 += c;
                e.1 += r;
            }
        }
        Ok(())
    }

    /// The tenant's balance now (including top-ups other processes posted meanwhile).
    pub fn balance(&mut self, tenant: &str) -> Result<i64> {
        self.ledger.refresh()?;
        Ok(self.ledger.balance(tenant))
    }

    /// Credits charged and refunded in a run so far.
    pub fn run_totals(&self, _tenant: &str, run_id: &str) -> Result<(i64, i64)> {
        Ok(self.totals.get(run_id).copied().unwrap_or((0, 0)))
    }
}
