//! `platform balance`: one tenant's balance from `crate::account::balance` (a ledger that passes every check of integrity-validate; reads only, no lock).
use super::Ctx;
use crate::account::{self, Balance};
use crate::cli::BalanceArgs;
use crate::error::Result;
use crate::output::{Report, View};

pub fn run(ctx: &Ctx, args: &BalanceArgs) -> Result<Report> {
    let dir = ctx.state_dir(&args.state)?;
    Ok(Report::of(&account::balance(
        ctx.repo(),
        &dir,
        &args.tenant_id,
    )?))
}

impl View for Balance {
    fn text(&self) -> String {
        format!("{}: {} credits", self.tenant_id, self.balance_credits)
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
}
