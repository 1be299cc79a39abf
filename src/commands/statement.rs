//! `platform statement` handler. STUB until its issue lands: replace the body.
use super::Ctx;
use crate::cli::StatementArgs;
use crate::error::{Error, Result};
use crate::output::Report;

pub fn run(_ctx: &Ctx, _args: &StatementArgs) -> Result<Report> {
    Err(Error::input("STUB: not built yet"))
}
