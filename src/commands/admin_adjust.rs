//! `platform admin-adjust`: flags to an adjustment request for `crate::account::adjust` (IAM with its audit, checks, one idempotent ADJUST); renders its outcome.
use super::Ctx;
use crate::account::{adjust, AdjustOutcome, AdjustRequest, Posted};
use crate::cli::AdminAdjustArgs;
use crate::error::Result;
use crate::output::{Report, View};

pub fn run(ctx: &Ctx, args: &AdminAdjustArgs) -> Result<Report> {
    let dir = ctx.state_dir(&args.state)?;
    let request = AdjustRequest {
        tenant_id: &args.tenant_id,
        amount_credits: args.amount_credits,
        reason_slug: &args.reason_slug,
        reference: &args.reference,
        note: args.note.as_deref(),
        actor: args.acting.actor.as_deref(),
    };
    Ok(Report::of(&adjust(ctx.repo(), &dir, &request)?))
}

impl View for AdjustOutcome {
    fn text(&self) -> String {
        let (tenant, reason, reference, seq) = (
            &self.booked.tenant_id,
            &self.reason_slug,
            &self.booked.reference,
            self.booked.seq,
        );
        let (amount, balance) = (self.booked.amount_credits, self.booked.balance_credits);
        match self.booked.status {
            Posted::Appended => format!(
                "adjusted {tenant} by {amount:+} credits ({reason}, reference {reference}, billing.jsonl seq {seq}); balance {balance} credits"
            ),
            Posted::AlreadyRecorded => format!(
                "already recorded: reference {reference} of {tenant} ({amount:+} credits, {reason}, billing.jsonl seq {seq}); nothing written; balance {balance} credits"
            ),
        }
    }

    fn notes(&self) -> Vec<String> {
        self.booked.notes()
    }
}
