//! `platform balance`: one tenant's balance, derived from a ledger that passes every check of integrity-validate (reads only, no lock).
use super::Ctx;
use crate::cli::BalanceArgs;
use crate::error::{Error, Result};
use crate::ledger::{self, Reading};
use crate::output::Report;
use serde_json::json;

pub fn run(ctx: &Ctx, args: &BalanceArgs) -> Result<Report> {
    check_tenant_flag(&args.tenant_id)?;
    let dir = super::existing_state_dir(ctx, args.state.billing_state_dir.as_deref())?;
    let reading = ledger::read(&dir, &[], |_| Ok(()))?.refuse_unaudited(&dir)?;
    let balance = reading.balances.get(&args.tenant_id).copied().unwrap_or(0);
    let report = Report::new(
        format!("{}: {balance} credits", args.tenant_id),
        json!({"tenant_id": args.tenant_id, "balance_credits": balance}),
    );
    Ok(with_notes(report, &reading))
}

pub(crate) fn check_tenant_flag(tenant_id: &str) -> Result<()> {
    match crate::ids::check(tenant_id) {
        None => Ok(()),
        Some(why) => Err(Error::input(format!("--tenant-id: {why}"))
            .help("tenant IDs are 1-64 characters of [A-Za-z0-9_-]")),
    }
}

/// Readers never repair: say what the next writer will (a torn tail is not counted).
pub(crate) fn with_notes(report: Report, reading: &Reading) -> Report {
    reading.notes().into_iter().fold(report, Report::note)
}
