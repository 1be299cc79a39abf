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
            "{:<40} {:>4} {:<26} {:<13} {:<10} steps\n",
            "work order", "run", "run_id", "period", "status"
        );
        for r in &self.runs {
            text.push_str(&line(r));
        }
        text
    }
}

/// One run. Ids are validated and slugs come from the registry; escaped all the same, so
/// no field of a (forged) ledger can make a row of its own.
fn line(r: &RunRow) -> String {
    let steps: Vec<String> = r
        .steps
        .iter()
        .map(|s| {
            let reason = s
                .reason_slug
                .as_ref()
                .map(|x| format!("({x})"))
                .unwrap_or_default();
            format!("{}={}{reason}", s.step_id, s.status)
        })
        .collect();
    format!(
        "{:<40} {:>4} {:<26} {:<13} {:<10} {}\n",
        untrusted(&format!("{}/{}", r.tenant_id, r.work_order_id)),
        r.run,
        untrusted(&r.run_id),
        untrusted(r.period.as_deref().unwrap_or("-")),
        r.status,
        untrusted(&steps.join(" "))
    )
}
