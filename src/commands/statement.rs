//! `platform statement`: every billing record of a tenant in ledger order, with the running balance (text, JSON or CSV).
use super::balance::{check_tenant_flag, with_torn_note};
use super::Ctx;
use crate::cli::StatementArgs;
use crate::error::{Error, Result};
use crate::ledger::{self, Stream};
use crate::output::Report;
use crate::records::Record;
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

pub fn run(ctx: &Ctx, args: &StatementArgs) -> Result<Report> {
    check_tenant_flag(&args.tenant_id)?;
    let since = match &args.since {
        Some(s) => Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|e| {
                    Error::input(format!("--since: '{s}' is not an RFC 3339 time: {e}"))
                        .help("for example --since 2026-01-31T00:00:00Z")
                })?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    let dir = super::existing_state_dir(ctx, args.state.billing_state_dir.as_deref())?;
    let mut balance = 0i64;
    let mut opening = 0i64;
    let mut rows: Vec<Value> = Vec::new();
    let summary = ledger::for_each_entry(&dir, Stream::Billing, |_, entry| {
        if entry.record.tenant_id() != Some(args.tenant_id.as_str()) {
            return Ok(());
        }
        let amount = entry.record.amount_credits().unwrap_or(0);
        balance = balance.saturating_add(amount);
        let at = DateTime::parse_from_rfc3339(&entry.envelope.recorded_at)
            .map(|t| t.with_timezone(&Utc))
            .ok();
        if since.is_some_and(|s| at.is_some_and(|t| t < s)) {
            opening = balance;
            return Ok(());
        }
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
        rows.push(json!({
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
        }));
        Ok(())
    })?;
    let text = if args.csv {
        csv(&rows)
    } else {
        table(&args.tenant_id, opening, balance, since.is_some(), &rows)
    };
    let report = Report::new(
        text,
        json!({
            "tenant_id": args.tenant_id,
            "since": args.since,
            "opening_balance_credits": opening,
            "balance_credits": balance,
            "records": rows,
        }),
    );
    Ok(with_torn_note(report, &summary))
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
    let grid: Vec<Vec<String>> = rows
        .iter()
        .map(|r| shown.iter().map(|c| cell(&r[*c])).collect())
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
