//! `platform state pull|push` handler. STUB until its issue lands: replace the body.
use super::Ctx;
use crate::cli::StateArgs;
use crate::error::{Error, Result};
use crate::output::Report;

pub fn pull(_ctx: &Ctx, _args: &StateArgs) -> Result<Report> {
    Err(Error::input("STUB: not built yet"))
}
pub fn push(_ctx: &Ctx, _args: &StateArgs) -> Result<Report> {
    Err(Error::input("STUB: not built yet"))
}
