//! `platform publish`: flags to `crate::publish::publish` (IAM with its audit, the publisher); renders its report as text, JSON and a job summary.
use super::Ctx;
use crate::cli::PublishArgs;
use crate::error::Result;
use crate::job_summary::{self, Align};
use crate::output::{Report, View};
use crate::publish::{self, artifact::short, Action, ArtifactReport, Options, PublishReport};
use std::fmt::Write as _;

/// Rows of the job summary table; the rest is counted (the full list is in the log and --json).
const SUMMARY_ROWS: usize = 200;

pub fn run(ctx: &Ctx, args: &PublishArgs) -> Result<Report> {
    let opts = Options {
        billing_state_dir: args.state.billing_state_dir.as_deref(),
        runtime_dir: args.runtime_dir.as_deref(),
        runtime_profile: args.runtime_profile.as_deref(),
        since: args.since.as_deref(),
        dist_dir: args.dist_dir.as_deref(),
        stage_only: args.no_publish,
        actor: args.acting.actor.as_deref(),
    };
    Ok(Report::of(&publish::publish(ctx.repo(), &opts)?))
}

impl View for PublishReport {
    fn text(&self) -> String {
        let mut text = if self.artifacts.is_empty() {
            let since = if self.since { " since --since" } else { "" };
            format!("nothing to publish: no completed, unrefunded purchased deliverables{since}\n")
        } else {
            artifact_table(&self.artifacts)
        };
        for e in self.errors.iter().filter(|e| e.asset_name.is_none()) {
            let _ = writeln!(text, "error: {}", e.message);
        }
        let (done, verb) = if self.stage_only {
            (self.staged, "staged")
        } else {
            (self.published, "published")
        };
        let _ = write!(
            text,
            "{done} {verb}, {} skipped, {} error(s); checksums in {}",
            self.skipped,
            self.errors.len(),
            self.sha256sums
        );
        text
    }

    fn exit_code(&self) -> u8 {
        u8::from(!self.errors.is_empty())
    }

    fn notes(&self) -> Vec<String> {
        let repairs = self.repairs.iter().map(|r| format!("note: {r}"));
        self.leftovers.iter().cloned().chain(repairs).collect()
    }

    fn summary(&self) -> Option<String> {
        Some(summary_md(self))
    }
}

/// One row per artifact, then what went wrong or why each was skipped.
fn artifact_table(artifacts: &[ArtifactReport]) -> String {
    let width = artifacts
        .iter()
        .map(|a| a.display_name().len())
        .fold("artifact".len(), usize::max);
    let mut text = format!(
        "{:<width$}  {:>10}  {:<12}  action\n",
        "artifact", "bytes", "sha256"
    );
    for a in artifacts {
        let _ = writeln!(
            text,
            "{:<width$}  {:>10}  {:<12}  {}",
            a.display_name(),
            a.bytes.map_or_else(|| "-".into(), |b| b.to_string()),
            a.sha256.as_deref().map_or("-", short),
            a.status.as_str()
        );
    }
    for a in artifacts {
        match (&a.detail, a.status) {
            (Some(d), Action::Error) => {
                let _ = writeln!(text, "error: {}: {d}", a.asset_name);
            }
            (Some(d), _) => {
                let _ = writeln!(text, "  {}: {d}", a.asset_name);
            }
            (None, _) => {}
        }
    }
    text
}

fn summary_md(r: &PublishReport) -> String {
    let mut out = String::from("### platform publish\n\n");
    let _ = writeln!(
        out,
        "{} published, {} staged, {} skipped, {} error(s); packages in {}\n",
        r.published,
        r.staged,
        r.skipped,
        r.count(Action::Error),
        job_summary::code(&r.dist_dir.display().to_string())
    );
    if r.artifacts.is_empty() {
        out.push_str("Nothing to publish.\n");
        return out;
    }
    let rows: Vec<Vec<String>> = r
        .artifacts
        .iter()
        .take(SUMMARY_ROWS)
        .map(|a| {
            vec![
                a.display_name().to_string(),
                a.bytes.map(|b| b.to_string()).unwrap_or_default(),
                a.sha256
                    .as_deref()
                    .map(short)
                    .unwrap_or_default()
                    .to_string(),
                a.status.as_str().to_string(),
                a.url.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&job_summary::table(
        &[
            ("artifact", Align::Left),
            ("bytes", Align::Right),
            ("sha256", Align::Left),
            ("action", Align::Left),
            ("url", Align::Left),
        ],
        &rows,
    ));
    if let Some(more) = r
        .artifacts
        .len()
        .checked_sub(SUMMARY_ROWS)
        .filter(|n| *n > 0)
    {
        let _ = writeln!(out, "\n…and {more} more (see the step log or `--json`).");
    }
    out
}
