//! `platform module-test` handler. STUB until its issue lands: replace the body.
use super::Ctx;
use crate::cli::ModuleTestArgs;
use crate::error::{Error, Result};
use crate::output::Report;

pub fn run(_ctx: &Ctx, _args: &ModuleTestArgs) -> Result<Report> {
    Err(Error::input("STUB: not built yet"))
}
