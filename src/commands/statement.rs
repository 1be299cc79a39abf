//! `platform statement`: a tenant's statement from `crate::account::statement`, rendered as a table, CSV or JSON.
use super::Ctx;
use crate::account::{self, Row, Statement};
use crate::cli::StatementArgs;
use crate::error::Result;
use crate::output::{untrusted, Report, View};
use serde::Serialize;

pub fn run(ctx: &Ctx, args: &StatementArgs) -> Result<Report> {
    let dir = ctx.state_dir(&args.state)?;
    let statement = account::statement(ctx.repo(), &dir, &args.tenant_id, args.since.as_deref())?;
    Ok(Report::of(&Rendered {
        statement,
        csv: args.csv,
    }))
}

/// The statement and the text form asked for (`--csv`, else a table); JSON is the statement.
#[derive(Serialize)]
struct Rendered {
    #[serde(flatten)]
    statement: Statement,
    #[serde(skip)]
    csv: bool,
}

impl View for Rendered {
    fn text(&self) -> String {
        if self.csv {
            csv(&self.statement.records)
        } else {
            table(&self.statement)
        }
    }

    fn notes(&self) -> Vec<String> {
        self.statement.notes.clone()
    }
}

/// The rows as CSV: numbers as they are (a negative amount is a number), every other column
/// a text cell ([`crate::csv_cell::text`]: quoted as RFC 4180 says, and a note that starts
/// like a formula prefixed with `'`, so a spreadsheet never runs it).
fn csv(rows: &[Row]) -> String {
    let mut out = Row::COLUMNS.join(",");
    out.push('\n');
    for row in rows {
        let cells: Vec<String> = row
            .cells()
            .iter()
            .zip(Row::COLUMNS)
            .map(|(cell, column)| {
                if Row::NUMBER_COLUMNS.contains(&column) {
                    cell.clone()
                } else {
                    crate::csv_cell::text(cell)
                }
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// The table's columns, in order: the run and the attempt next to the work order and the
/// step they number (a retried step and a rerun must not read as a double charge); the
/// idempotency key and the run id are left to `--csv` and `--json`.
const TABLE_COLUMNS: [&str; 15] = [
    "seq",
    "recorded_at",
    "type",
    "amount_credits",
    "balance_after",
    "work_order_id",
    "run",
    "step_id",
    "attempt",
    "deliverable_id",
    "reason_slug",
    "reference",
    "note",
    "usage_unit",
    "quantity",
];

/// [`TABLE_COLUMNS`], padded; a cell is one line (control characters are shown escaped, so
/// no field makes a row of its own).
fn table(st: &Statement) -> String {
    let shown = |cells: &[String]| -> Vec<String> {
        TABLE_COLUMNS
            .iter()
            .filter_map(|name| Row::COLUMNS.iter().position(|c| c == name))
            .filter_map(|i| cells.get(i))
            .map(|c| untrusted(c).into_owned())
            .collect()
    };
    let grid: Vec<Vec<String>> = st.records.iter().map(|r| shown(&r.cells())).collect();
    let header = shown(&Row::COLUMNS.map(String::from));
    let widths: Vec<usize> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            grid.iter()
                .map(|r| r[i].chars().count())
                .fold(h.len(), usize::max)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = format!("statement of {}\n", st.tenant_id);
    if st.since.is_some() {
        out.push_str(&format!(
            "opening balance: {} credits\n",
            st.opening_balance_credits
        ));
    }
    out.push_str(&line(&header));
    for r in &grid {
        out.push_str(&line(r));
    }
    out.push_str(&format!("balance: {} credits\n", st.balance_credits));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_column_is_a_row_column() {
        for name in TABLE_COLUMNS {
            assert!(Row::COLUMNS.contains(&name), "{name}");
        }
    }
}
