//! `platform balance`: one tenant's balance, derived from billing.jsonl (reads only, no lock).
use super::Ctx;
use crate::cli::BalanceArgs;
use crate::error::{Error, Result};
use crate::ledger::{self, ReadSummary};
use crate::output::Report;
use serde_json::json;

pub fn run(ctx: &Ctx, args: &BalanceArgs) -> Result<Report> {
    check_tenant_flag(&args.tenant_id)?;
    let dir = super::existing_state_dir(ctx, args.state.billing_state_dir.as_deref())?;
    let (balances, summary) = ledger::balances_with_summary(&dir)?;
    let balance = balances.get(&args.tenant_id).copied().unwrap_or(0);
    let report = Report::new(
        format!("{}: {balance} credits", args.tenant_id),
        json!({"tenant_id": args.tenant_id, "balance_credits": balance}),
    );
    Ok(with_torn_note(report, &summary))
}

pub(crate) fn check_tenant_flag(tenant_id: &str) -> Result<()> {
    match crate::ids::check(tenant_id) {
        None => Ok(()),
        Some(why) => Err(Error::input(format!("--tenant-id: {why}"))
            .help("tenant IDs are 1-64 characters of [A-Za-z0-9_-]")),
    }
}

/// Readers never repair: say so when the file ends in an interrupted write.
pub(crate) fn with_torn_note(report: Report, summary: &ReadSummary) -> Report {
    match &summary.torn_tail {
        Some(t) => report.note(format!(
            "note: {} ends in an interrupted write ({} line(s) from line {}); it is not counted, and the next writer removes it",
            t.file, t.lines, t.from_line
        )),
        None => report,
    }
}
