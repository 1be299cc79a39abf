//! `platform ledger-merge` handler. STUB until its issue lands: replace the body.
use super::Ctx;
use crate::cli::LedgerMergeArgs;
use crate::error::{Error, Result};
use crate::output::Report;

pub fn run(_ctx: &Ctx, _args: &LedgerMergeArgs) -> Result<Report> {
    Err(Error::input("STUB: not built yet"))
}
