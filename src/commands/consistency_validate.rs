//! `platform consistency-validate` handler. STUB until its issue lands: replace the body.
use super::Ctx;
use crate::cli::ConsistencyValidateArgs;
use crate::error::{Error, Result};
use crate::output::Report;

pub fn run(_ctx: &Ctx, _args: &ConsistencyValidateArgs) -> Result<Report> {
    Err(Error::input("STUB: not built yet"))
}
