//! `platform runs`: the runs of `crate::run_list`, oldest first, as a table or JSON.
use super::Ctx;
use crate::cli::RunsArgs;
use crate::error::Result;
use crate::output::{untrusted, Report, View};
use crate::run_list::{self, RunList, RunRow};

pub fn run(ctx: &Ctx, args: &RunsArgs) -> Result<Report> {
    let dir = ctx.state_dir(&args.state)?;
    let runs = run_list::list(
        ctx.repo(),
        &dir,
        args.tenant_id.as_deref(),
        args.work_order_id.as_deref(),
    )?;
    Ok(Report::of(&runs))
}

impl View for RunList {
    fn text(&self) -> String {
        if self.runs.is_empty() {
            // With a filter, say which: the ledger may well hold other runs.
            let of = match (&self.work_order, &self.tenant) {
                (Some(w), Some(t)) => format!(" of work order {t}/{w}"),
                (Some(w), None) => format!(" of work order {w}"),
                (None, Some(t)) => format!(" of tenant {t}"),
                (None, None) => String::new(),
            };
            return format!("no runs{of} recorded in {}\n", self.dir.display());
        }
        let mut text = format!(
            "{:<40} {:>4} {:<26} {:<13} {:<24} {:<10} {:>7} {:>8} steps\n",
            "work order", "run", "run_id", "period", "started_at", "status", "charged", "refunded"
        );
        for r in &self.runs {
            text.push_str(&line(r));
        }
        text
    }
}

/// One run. Ids are validated and slugs come from the registry; escaped all the same, so
/// no field of a (forged) ledger can make a row of its own. A step's attempt is shown when a
/// `--retry-failed` pass made it (above 1): its charges are that attempt's, not a second
/// charge of the first.
fn line(r: &RunRow) -> String {
    let steps: Vec<String> = r
        .steps
        .iter()
        .map(|s| {
            let mut notes: Vec<String> = s.reason_slug.iter().cloned().collect();
            if s.attempt > 1 {
                notes.push(format!("attempt={}", s.attempt));
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!("({})", notes.join(","))
            };
            format!("{}={}{notes}", s.step_id, s.status)
        })
        .collect();
    format!(
        "{:<40} {:>4} {:<26} {:<13} {:<24} {:<10} {:>7} {:>8} {}\n",
        untrusted(&format!("{}/{}", r.tenant_id, r.work_order_id)),
        r.run,
        untrusted(&r.run_id),
        untrusted(r.period.as_deref().unwrap_or("-")),
        r.started_at.as_deref().unwrap_or("-"),
        r.status,
        r.charged_credits,
        r.refunded_credits,
        untrusted(&steps.join(" "))
    )
}
