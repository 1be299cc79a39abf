//! `platform admin-topup` handler. STUB until its issue lands: replace the body.
use super::Ctx;
use crate::cli::AdminTopupArgs;
use crate::error::{Error, Result};
use crate::output::Report;

pub fn run(_ctx: &Ctx, _args: &AdminTopupArgs) -> Result<Report> {
    Err(Error::input("STUB: not built yet"))
}
