//! The orchestrator's view of the ledger: loads history and balances from a ledger that passes every check (or refuses to plan), posts batches, keeps per-run credit totals current, and collects every repair for the pass's notes.
use super::history::History;
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::records::{Payload, Record, Stream};
use std::collections::BTreeMap;
use std::path::Path;

pub struct Journal {
    ledger: Ledger,
    totals: RunTotals,
    /// Repairs made while the pass runs (a torn tail or a missing audit record left by
    /// another process), as notes for the summary.
    notes: Vec<String>,
}

/// run_id → (credits charged, credits refunded), all attempts.
pub type RunTotals = BTreeMap<String, (i64, i64)>;

/// Tenant id → balance in credits, as the billing records add up.
pub type Balances = BTreeMap<String, i64>;

/// Read every billing and evidence record into a run history, plus per-run totals (as
/// [`load`], for readers such as `platform runs`).
pub fn load_history(dir: &Path) -> Result<(History, RunTotals)> {
    let (history, totals, _) = read(dir)?;
    Ok((history, totals))
}

/// The orchestrator's load: [`read`], and a refusal to plan says that nothing was charged.
pub fn load(dir: &Path) -> Result<(History, RunTotals, Balances)> {
    read(dir).map_err(|e| {
        e.help("the orchestrator plans only on a ledger that `platform integrity-validate` accepts, so nothing was charged: restore the damaged file from a good copy (platform state pull), then run again")
    })
}

/// One read of the ledger as `integrity-validate` checks it (all three files and the rules
/// between them): the run history, per-run totals and every tenant's balance. Damage, or a
/// record of a run whose `run_started` is missing (a lost or truncated evidence.jsonl), is an
/// error: the orchestrator refuses to plan, so nothing is charged twice.
fn read(dir: &Path) -> Result<(History, RunTotals, Balances)> {
    let mut history = History::default();
    let mut totals = RunTotals::new();
    let streams = [Stream::Billing, Stream::Evidence];
    let reading = crate::ledger::read(dir, &streams, |stream, line, bytes| {
        // Typed straight from the line's bytes, by its `type`, skipping records a history has
        // no use for: going through a `Map` (and a clone of it) and serde's buffering of an
        // internally tagged enum for every record was a third of a no-op pass.
        let Some(rec) = parse_record(bytes).map_err(|e| {
            Error::failure(format!(
                "{}:{line}: unreadable record: {e}",
                stream.file_name()
            ))
            .help("run `platform integrity-validate` to see what is damaged")
        })?
        else {
            return Ok(());
        };
        add_totals(&mut totals, &rec)?;
        history.add(rec);
        Ok(())
    })?;
    history.repairs_pending = reading.repairs_pending();
    Ok((history, totals, reading.balances))
}

/// Count a SPEND or REFUND into its run's totals.
fn add_totals(totals: &mut RunTotals, rec: &Record) -> Result<()> {
    match rec {
        Record::Spend(s) => add_to_run(totals, &s.run_id, -i128::from(s.amount_credits), 0),
        Record::Refund(r) => add_to_run(totals, &r.run_id, 0, i128::from(r.amount_credits)),
        _ => Ok(()),
    }
}

/// Add to a run's (charged, refunded) totals; every sum is checked (SPEC §7): an overflow
/// is an error, never a wrap or a saturation.
fn add_to_run(totals: &mut RunTotals, run_id: &str, charged: i128, refunded: i128) -> Result<()> {
    let t = totals.entry(run_id.to_string()).or_default();
    let sum = |a: i64, b: i128| i64::try_from(i128::from(a) + b).ok();
    match (sum(t.0, charged), sum(t.1, refunded)) {
        (Some(c), Some(r)) => {
            *t = (c, r);
            Ok(())
        }
        _ => Err(Error::failure(format!(
            "the credit totals of run {run_id} overflow 64 bits"
        ))
        .help("run `platform integrity-validate`: a ledger that verifies never gets here")),
    }
}

fn repair_note(r: &crate::ledger::Repair) -> String {
    format!("repaired: {r}")
}

/// A ledger line as the record its `type` names; None for types a history ignores (evidence
/// items and bundles, publish and audit records).
fn parse_record(bytes: &[u8]) -> serde_json::Result<Option<Record>> {
    use serde_json::from_slice as parse;
    Ok(Some(match record_type(bytes) {
        Some("TOPUP") => Record::Topup(parse(bytes)?),
        Some("SPEND") => Record::Spend(parse(bytes)?),
        Some("REFUND") => Record::Refund(parse(bytes)?),
        Some("run_started") => Record::RunStarted(parse(bytes)?),
        Some("step_started") => Record::StepStarted(parse(bytes)?),
        Some("step_outcome") => Record::StepOutcome(parse(bytes)?),
        Some("delivery_receipt") => Record::DeliveryReceipt(parse(bytes)?),
        Some("run_ended") => Record::RunEnded(parse(bytes)?),
        Some("evidence_item" | "evidence_bundle" | "publish" | "audit") => return Ok(None),
        // Unknown or not found: the tagged enum decides (and names the problem).
        _ => parse(bytes)?,
    }))
}

/// The top-level `"type"` of a canonical ledger line (no whitespace), found without parsing.
fn record_type(line: &[u8]) -> Option<&str> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'"' => {
                let start = i + 1;
                let mut end = start;
                while end < line.len() && line[end] != b'"' {
                    end += if line[end] == b'\\' { 2 } else { 1 };
                }
                let key = line.get(start..end)?;
                if depth == 1 && key == b"type" && line.get(end + 1..end + 3) == Some(b":\"") {
                    let value = line.get(end + 3..)?;
                    let len = value.iter().position(|&b| b == b'"' || b == b'\\')?;
                    return std::str::from_utf8(&value[..len]).ok();
                }
                i = end + 1;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

impl Journal {
    /// Open the ledger for writing (repairing a torn tail or a missing audit record, each
    /// reported).
    pub fn open(
        dir: &Path,
        totals: BTreeMap<String, (i64, i64)>,
    ) -> Result<(Journal, Vec<String>)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_top_level_type_only() {
        let line = br#"{"a":{"type":"inner"},"b":["type",{"type":"x"}],"note":"\"type\":\"no\"","type":"SPEND","v":1}"#;
        assert_eq!(record_type(line), Some("SPEND"));
        assert_eq!(record_type(br#"{"values":{"type":"x"}}"#), None);
        assert_eq!(record_type(br#"{"type":"run_ended"}"#), Some("run_ended"));
    }

    #[test]
    fn typed_parse_agrees_with_the_tagged_enum() {
        let line = br#"{"attempt":1,"idempotency_key":"k","run":1,"run_id":"r","seq":3,"status":"COMPLETED","step_id":"s","steps":[],"charged_credits":0,"refunded_credits":0,"tenant_id":"t","type":"run_ended","v":1,"work_order_id":"w"}"#;
        let want: Option<Record> = serde_json::from_slice(line).ok();
        assert!(want.is_some());
        assert_eq!(parse_record(line).ok().flatten(), want);
        let item = br#"{"type":"evidence_item","v":1}"#;
        assert_eq!(parse_record(item).ok(), Some(None));
    }
}
