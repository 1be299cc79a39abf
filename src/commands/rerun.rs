//! `platform rerun`: flags to a rerun request for `crate::rerun` (IAM with its audit, checks, one `rerun_requested` record); renders its outcome.
use super::Ctx;
use crate::cli::RerunArgs;
use crate::error::Result;
use crate::output::{Report, View};
use crate::rerun::{request, RerunOutcome, RerunRequest, RerunStatus};

pub fn run(ctx: &Ctx, args: &RerunArgs) -> Result<Report> {
    let dir = ctx.state_dir(&args.state)?;
    let req = RerunRequest {
        tenant_id: &args.tenant_id,
        work_order_id: &args.work_order_id,
        reason: &args.reason,
        actor: args.acting.actor.as_deref(),
    };
    Ok(Report::of(&request(ctx.repo(), &dir, &req)?))
}

impl View for RerunOutcome {
    fn text(&self) -> String {
        let (t, w, n) = (&self.tenant_id, &self.work_order_id, self.after_run);
        match self.status {
            RerunStatus::Requested if self.enabled == Some(false) => format!(
                "rerun requested: run {} of {t}/{w} starts on the first orchestrator pass after it is enabled (its file says enabled: false)",
                n + 1
            ),
            RerunStatus::Requested => match self.findings.first() {
                Some(f) => format!(
                    "rerun requested: run {} of {t}/{w} starts on the first orchestrator pass after its work order is fixed: it is invalid and does not run ({}: {}{}; platform consistency-validate lists the errors)",
                    n + 1,
                    f.location(),
                    f.message,
                    match self.findings.len() - 1 {
                        0 => String::new(),
                        more => format!(", and {more} more"),
                    }
                ),
                None => format!(
                    "rerun requested: the next orchestrator pass starts run {} of {t}/{w}",
                    n + 1
                ),
            },
            RerunStatus::AlreadyRequested => format!(
                "already requested: a rerun of {t}/{w} after run {n} is waiting for the next pass; nothing written"
            ),
        }
    }

    fn notes(&self) -> Vec<String> {
        self.repairs.iter().map(|r| format!("note: {r}")).collect()
    }
}
