//! `platform balance`: one tenant's balance, derived from billing.jsonl (reads only, no lock).
use super::Ctx;
use crate::cli::BalanceArgs;
use crate::config::profile::RuntimeProfile;
use crate::error::{Error, Result};
use crate::ledger::{self, ReadSummary};
use crate::output::Report;
use serde_json::json;
use std::path::{Path, PathBuf};

pub fn run(ctx: &Ctx, args: &BalanceArgs) -> Result<Report> {
    check_tenant_flag(&args.tenant_id)?;
    let dir = existing_state_dir(ctx, args.state.billing_state_dir.as_deref())?;
    let (balances, summary) = ledger::balances_with_summary(&dir)?;
    let balance = balances.get(&args.tenant_id).copied().unwrap_or(0);
    let report = Report::new(
        format!("{}: {balance} credits", args.tenant_id),
        json!({"tenant_id": args.tenant_id, "balance_credits": balance}),
    );
    Ok(with_torn_note(report, &summary))
}

/// The billing-state directory: `--billing-state-dir` (relative to the current directory),
/// else the runtime profile's, else `.billing-state` in the repository.
pub(crate) fn state_dir(ctx: &Ctx, flag: Option<&Path>) -> Result<PathBuf> {
    match flag {
        Some(p) => Ok(p.to_path_buf()),
        None => Ok(RuntimeProfile::load(ctx.repo(), None)?.billing_state_dir(None)),
    }
}

/// As [`state_dir`], for commands that only read: a missing directory is an input error
/// rather than a silent zero.
pub(crate) fn existing_state_dir(ctx: &Ctx, flag: Option<&Path>) -> Result<PathBuf> {
    let dir = state_dir(ctx, flag)?;
    if !dir.is_dir() {
        return Err(Error::input(format!(
            "billing-state directory {} does not exist",
            dir.display()
        ))
        .at(dir.display().to_string())
        .help("pass --billing-state-dir, run `platform state pull`, or record something first (platform admin-topup)"));
    }
    Ok(dir)
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
