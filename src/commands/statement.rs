//! `platform statement`: every billing record of a tenant in ledger order, with the running balance (text, JSON or CSV), from a ledger that passes every check.
use super::balance::{check_tenant_flag, with_notes};
use super::Ctx;
use crate::cli::StatementArgs;
use crate::error::{Error, Result};
use crate::ledger::{self, Stream};
use crate::output::{untrusted, Report};
use crate::records::{Entry, Record};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

const COLUMNS: [&str; 11] = [
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
];

/// A statement: the balance before `--since`, then its rows (SPEC §7 `statement --since T`).
struct Statement {
    /// Sum of the tenant's records recorded before `--since` (0 without it).
    opening: i64,
    /// The tenant's records recorded at or after `--since`, in file order.
    rows: Vec<Entry>,
}

pub fn run(ctx: &Ctx, args: &StatementArgs) -> Result<Report> {
    check_tenant_flag(&args.tenant_id)?;
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let dir = super::existing_state_dir(ctx, args.state.billing_state_dir.as_deref())?;
    let mut st = Statement {
        opening: 0,
        rows: Vec::new(),
    };
    let reading = ledger::read(&dir, &[Stream::Billing], |line| {
        let entry = line.entry()?;
        if entry.record.tenant_id() != Some(args.tenant_id.as_str()) {
            return Ok(());
        }
        // Merged ledgers keep each record's time, so times need not increase down the file:
        // every record is placed by its own time, never by its neighbours'.
        let before = since.is_some_and(|s| recorded_at(&entry).is_some_and(|t| t < s));
        if before {
            st.opening = add(st.opening, entry.record.amount_credits().unwrap_or(0))?;
        } else {
            st.rows.push(entry);
        }
        Ok(())
    })?
    .refuse_unaudited(&dir)?;
    let (rows, closing) = st.render_rows()?;
    let text = if args.csv {
        csv(&rows)
    } else {
        table(&args.tenant_id, st.opening, closing, since.is_some(), &rows)
    };
    let report = Report::new(
        text,
        json!({
            "tenant_id": args.tenant_id,
            "since": args.since,
            "opening_balance_credits": st.opening,
            "balance_credits": closing,
            "records": rows,
        }),
    );
    Ok(with_notes(report, &reading))
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

impl Statement {
    /// The rows as JSON objects, each with the balance after it (opening plus the rows so
    /// far), and the closing balance.
    fn render_rows(&self) -> Result<(Vec<Value>, i64)> {
        let mut balance = self.opening;
        let mut out = Vec::with_capacity(self.rows.len());
        for entry in &self.rows {
            let amount = entry.record.amount_credits().unwrap_or(0);
            balance = add(balance, amount)?;
            out.push(row(entry, amount, balance));
        }
        Ok((out, balance))
    }
}

fn row(entry: &Entry, amount: i64, balance: i64) -> Value {
    let (wo, step, deliverable, reason, reference) = match &entry.record {
        Record::Topup(t) => (None, None, None, None, Some(t.reference.clone())),
        Record::Spend(s) => (
            Some(s.work_order_id.clone()),
            Some(s.step_id.clone()),
            Some(s.deliverable_id.clone()),
            None,
            None,
        ),
        Record::Refund(r) => (
            Some(r.work_order_id.clone()),
            Some(r.step_id.clone()),
            Some(r.deliverable_id.clone()),
            Some(r.reason_slug.clone()),
            None,
        ),
        _ => (None, None, None, None, None),
    };
    json!({
        "seq": entry.envelope.seq,
        "recorded_at": entry.envelope.recorded_at,
        "type": entry.record.type_name(),
        "amount_credits": amount,
        "balance_after": balance,
        "work_order_id": wo,
        "step_id": step,
        "deliverable_id": deliverable,
        "reason_slug": reason,
        "reference": reference,
        "idempotency_key": entry.envelope.idempotency_key,
    })
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv(rows: &[Value]) -> String {
    let quote = |s: String| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    };
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for row in rows {
        let cells: Vec<String> = COLUMNS.iter().map(|c| quote(cell(&row[*c]))).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn table(tenant: &str, opening: i64, closing: i64, since: bool, rows: &[Value]) -> String {
    let shown = [
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
    ];
    // A cell is one line: control characters are shown escaped, so no field makes a row.
    let grid: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            shown
                .iter()
                .map(|c| untrusted(&cell(&r[*c])).into_owned())
                .collect()
        })
        .collect();
    let widths: Vec<usize> = shown
        .iter()
        .enumerate()
        .map(|(i, h)| {
            grid.iter()
                .map(|r| r[i].chars().count())
                .fold(h.len(), usize::max)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = format!("statement of {tenant}\n");
    if since {
        out.push_str(&format!("opening balance: {opening} credits\n"));
    }
    out.push_str(&line(shown.iter().map(|s| s.to_string()).collect()));
    out.push('\n');
    for r in grid {
        out.push_str(&line(r));
        out.push('\n');
    }
    out.push_str(&format!("balance: {closing} credits\n"));
    out
}
