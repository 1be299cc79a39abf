//! `platform orchestrator` handler. STUB until its issue lands: replace the body.
use super::Ctx;
use crate::cli::OrchestratorArgs;
use crate::error::{Error, Result};
use crate::output::Report;

pub fn run(_ctx: &Ctx, _args: &OrchestratorArgs) -> Result<Report> {
    Err(Error::input("STUB: not built yet"))
}
