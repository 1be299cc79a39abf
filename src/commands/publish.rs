//! `platform publish` handler. STUB until its issue lands: replace the body.
use super::Ctx;
use crate::cli::PublishArgs;
use crate::error::{Error, Result};
use crate::output::Report;

pub fn run(_ctx: &Ctx, _args: &PublishArgs) -> Result<Report> {
    Err(Error::input("STUB: not built yet"))
}
