//! `platform admin-topup`: flags to a top-up request for `crate::account::topup` (IAM with its audit, checks, one idempotent TOPUP); renders its outcome.
use super::Ctx;
use crate::account::{topup, TopupOutcome, TopupRequest, TopupStatus};
use crate::cli::AdminTopupArgs;
use crate::error::Result;
use crate::output::{Report, View};

pub fn run(ctx: &Ctx, args: &AdminTopupArgs) -> Result<Report> {
    let dir = ctx.state_dir(&args.state)?;
    let request = TopupRequest {
        tenant_id: &args.tenant_id,
        amount_credits: args.amount_credits,
        topup_method_id: &args.topup_method_id,
        reference: &args.reference,
        note: args.note.as_deref(),
        actor: args.acting.actor.as_deref(),
    };
    Ok(Report::of(&topup(ctx.repo(), &dir, &request)?))
}

impl View for TopupOutcome {
    fn text(&self) -> String {
        let (tenant, amount, reference, seq) = (
            &self.booked.tenant_id,
            self.booked.amount_credits,
            &self.booked.reference,
            self.booked.seq,
        );
        let balance = self.booked.balance_credits;
        match self.booked.status {
            TopupStatus::Appended => format!(
                "topped up {tenant} by {amount} credits (reference {reference}, billing.jsonl seq {seq}); balance {balance} credits"
            ),
            TopupStatus::AlreadyRecorded => format!(
                "already recorded: reference {reference} of {tenant} ({amount} credits, billing.jsonl seq {seq}); nothing written; balance {balance} credits"
            ),
        }
    }

    fn notes(&self) -> Vec<String> {
        self.booked.notes()
    }
}
