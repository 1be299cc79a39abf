//! A tenant's statement (SPEC §3, §7 `--since`): the opening balance, every billing record from then on with the balance after it, and the closing balance; every sum checked.
use super::{check_tenant_id, verified};
use crate::error::{Error, Result};
use crate::ledger::Stream;
use crate::records::billing::Charged;
use crate::records::{Entry, Record};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::Path;

/// The statement (the `--json` document).
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    pub tenant_id: String,
    /// `--since` as given.
    pub since: Option<String>,
    /// Sum of the tenant's records recorded before `--since` (0 without it).
    pub opening_balance_credits: i64,
    /// The opening balance plus every row: the balance.
    pub balance_credits: i64,
    /// The tenant's records recorded at or after `--since`, in file order.
    pub records: Vec<Row>,
    /// What a writer would repair (readers never do): shown as notes.
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// One billing record of the statement; fields a record type lacks are null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub seq: u64,
    pub recorded_at: String,
    #[serde(rename = "type")]
    pub record_type: &'static str,
    pub amount_credits: i64,
    pub balance_after: i64,
    pub work_order_id: Option<String>,
    pub step_id: Option<String>,
    pub deliverable_id: Option<String>,
    pub reason_slug: Option<String>,
    pub reference: Option<String>,
    pub idempotency_key: String,
    /// The operator's note of a top-up or an adjustment.
    pub note: Option<String>,
    /// A metered usage SPEND's unit and quantity (SPEC §10); null for other records.
    pub usage_unit: Option<String>,
    pub quantity: Option<u64>,
    /// A SPEND's or REFUND's run (number and id) and step attempt; null for other records:
    /// a retried step (attempt 2) and a rerun (run 2) are told apart from a double charge.
    pub run: Option<u64>,
    pub run_id: Option<String>,
    pub attempt: Option<u32>,
}

impl Row {
    /// Column names, in the order of [`Row::cells`] (the CSV header).
    pub const COLUMNS: [&'static str; 17] = [
        "seq",
        "recorded_at",
        "type",
        "amount_credits",
        "balance_after",
        "work_order_id",
        "step_id",
        "deliverable_id",
        "reason_slug",
        "reference",
        "idempotency_key",
        // Last, so the columns CSV readers had before them kept their places.
        "note",
        "usage_unit",
        "quantity",
        "run",
        "run_id",
        "attempt",
    ];

    /// The columns that hold integers (an amount may be negative): written as numbers.
    pub const NUMBER_COLUMNS: [&'static str; 6] = [
        "seq",
        "amount_credits",
        "balance_after",
        "quantity",
        "run",
        "attempt",
    ];

    /// Every field as text, in [`Row::COLUMNS`] order; null is empty.
    pub fn cells(&self) -> [String; 17] {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        [
            self.seq.to_string(),
            self.recorded_at.clone(),
            self.record_type.to_string(),
            self.amount_credits.to_string(),
            self.balance_after.to_string(),
            opt(&self.work_order_id),
            opt(&self.step_id),
            opt(&self.deliverable_id),
            opt(&self.reason_slug),
            opt(&self.reference),
            self.idempotency_key.clone(),
            opt(&self.note),
            opt(&self.usage_unit),
            self.quantity.map(|q| q.to_string()).unwrap_or_default(),
            self.run.map(|r| r.to_string()).unwrap_or_default(),
            opt(&self.run_id),
            self.attempt.map(|a| a.to_string()).unwrap_or_default(),
        ]
    }
}

/// The statement of `tenant_id` from the billing-state directory `dir`, from a
/// ledger that passes every check. `since` is `--since` (RFC 3339).
pub fn statement(
    repo: &Path,
    dir: &Path,
    tenant_id: &str,
    since: Option<&str>,
) -> Result<Statement> {
    check_tenant_id(tenant_id)?;
    let cut = since.map(parse_since).transpose()?;
    let mut opening = 0;
    let mut entries = Vec::new();
    let reading = verified(dir, &[Stream::Billing], |line| {
        let entry = line.entry()?;
        if entry.record.tenant_id() != Some(tenant_id) {
            return Ok(());
        }
        // Merged ledgers keep each record's time, so times need not increase down the file:
        // every record is placed by its own time, never by its neighbours'.
        if cut.is_some_and(|s| recorded_at(&entry).is_some_and(|t| t < s)) {
            opening = add(opening, entry.record.amount_credits().unwrap_or(0))?;
        } else {
            entries.push(entry);
        }
        Ok(())
    })?;
    crate::known_ids::require_known(repo, tenant_id, reading.balances.keys().map(String::as_str))?;
    let (records, closing) = rows(opening, &entries)?;
    Ok(Statement {
        tenant_id: tenant_id.to_string(),
        since: since.map(str::to_string),
        opening_balance_credits: opening,
        balance_credits: closing,
        records,
        notes: reading.notes(),
    })
}

fn parse_since(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            Error::input(format!("--since: '{s}' is not an RFC 3339 time: {e}"))
                .help("for example --since 2026-01-31T00:00:00Z")
        })
}

fn recorded_at(entry: &Entry) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&entry.envelope.recorded_at)
        .map(|t| t.with_timezone(&Utc))
        .ok()
}

/// A checked sum: an overflow is an error, never a wrap or a saturation.
fn add(a: i64, b: i64) -> Result<i64> {
    a.checked_add(b).ok_or_else(|| {
        Error::failure(format!(
            "the statement's sum overflows: {a} + {b} does not fit in 64 bits"
        ))
        .help("run `platform integrity-validate`: a ledger that verifies never gets here")
    })
}

/// Each entry with the balance after it (opening plus the rows so far), and the closing
/// balance.
fn rows(opening: i64, entries: &[Entry]) -> Result<(Vec<Row>, i64)> {
    let mut balance = opening;
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let amount = entry.record.amount_credits().unwrap_or(0);
        balance = add(balance, amount)?;
        out.push(row(entry, amount, balance));
    }
    Ok((out, balance))
}

fn row(entry: &Entry, amount: i64, balance: i64) -> Row {
    let mut row = Row {
        seq: entry.envelope.seq,
        recorded_at: entry.envelope.recorded_at.clone(),
        record_type: entry.record.type_name(),
        amount_credits: amount,
        balance_after: balance,
        work_order_id: None,
        step_id: None,
        deliverable_id: None,
        reason_slug: None,
        reference: None,
        idempotency_key: entry.envelope.idempotency_key.clone(),
        note: None,
        usage_unit: None,
        quantity: None,
        run: None,
        run_id: None,
        attempt: None,
    };
    match &entry.record {
        Record::Topup(t) => {
            row.reference = Some(t.reference.clone());
            row.note = t.note.clone();
        }
        Record::Adjust(a) => {
            row.reference = Some(a.reference.clone());
            row.reason_slug = Some(a.reason_slug.clone());
            row.note = a.note.clone();
        }
        Record::Spend(s) => {
            charged(&mut row, &s.charge);
            if let Some(q) = s.quantity {
                row.usage_unit = Some(s.charge.usage_unit.clone());
                row.quantity = Some(q);
            }
        }
        Record::Refund(r) => {
            charged(&mut row, &r.charge);
            row.reason_slug = Some(r.reason_slug.clone());
        }
        _ => {}
    }
    row
}

/// The charge a SPEND or a REFUND is about: work order, run, step attempt and deliverable.
fn charged(row: &mut Row, c: &Charged) {
    row.work_order_id = Some(c.work_order_id.clone());
    row.run = Some(c.run);
    row.run_id = Some(c.run_id.clone());
    row.step_id = Some(c.step_id.clone());
    row.attempt = Some(c.attempt);
    row.deliverable_id = Some(c.deliverable_id.clone());
}
