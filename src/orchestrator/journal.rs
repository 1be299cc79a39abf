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

/// Tenant id → balance in credits, as the billing records add up.
pub type Balances = BTreeMap<String, i64>;

/// Read every billing and evidence record into a run history, plus per-run totals.
pub fn load_history(dir: &Path) -> Result<(History, RunTotals)> {
    let (history, totals, _) = load(dir)?;
    Ok((history, totals))
}

/// One read of billing.jsonl and evidence.jsonl: the run history, per-run totals and every
/// tenant's balance (what `ledger::balances` computes, without reading billing.jsonl again).
pub fn load(dir: &Path) -> Result<(History, RunTotals, Balances)> {
    let mut history = History::default();
    let mut totals = RunTotals::new();
    let mut balances = Balances::new();
    for stream in [Stream::Billing, Stream::Evidence] {
        // Typed straight from the line's bytes, by its `type`, skipping records a history has
        // no use for: going through a `Map` (and a clone of it) and serde's buffering of an
        // internally tagged enum for every record was a third of a no-op pass.
        let summary = crate::ledger::for_each_line(dir, stream, |line, bytes| {
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
            let mut add = |tenant: &str, amount: i64| {
                let b = balances.entry(tenant.to_string()).or_default();
                *b = b.saturating_add(amount);
            };
            match &rec {
                Record::Topup(t) => add(&t.tenant_id, t.amount_credits),
                Record::Spend(s) => {
                    add(&s.tenant_id, s.amount_credits);
                    totals.entry(s.run_id.clone()).or_default().0 -= s.amount_credits
                }
                Record::Refund(r) => {
                    add(&r.tenant_id, r.amount_credits);
                    totals.entry(r.run_id.clone()).or_default().1 += r.amount_credits
                }
                _ => {}
            }
            history.add(rec);
            Ok(())
        })?;
        history.torn_tail |= summary.torn_tail.is_some();
    }
    Ok((history, totals, balances))
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
