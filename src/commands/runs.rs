//! `platform runs` handler. STUB until its issue lands: replace the body.
use super::Ctx;
use crate::cli::RunsArgs;
use crate::error::{Error, Result};
use crate::output::Report;

pub fn run(_ctx: &Ctx, _args: &RunsArgs) -> Result<Report> {
    Err(Error::input("STUB: not built yet"))
}
