//! `platform ledger merge`: fold shard billing-state directories into one with `crate::ledger::merge` (all or nothing); renders what it did.
use super::Ctx;
use crate::cli::LedgerMergeArgs;
use crate::error::Result;
use crate::ledger::{self, MergeReport};
use crate::output::{Report, View};
use serde::Serialize;
use std::collections::BTreeMap;

pub fn run(_ctx: &Ctx, args: &LedgerMergeArgs) -> Result<Report> {
    let report = ledger::merge(&args.into, &args.segments)?;
    Ok(Report::of(&Merged::new(&report)))
}

/// The `--json` document of a merge, and the report every view renders from.
#[derive(Serialize)]
struct Merged<'a> {
    into: String,
    segments: Vec<String>,
    added: u64,
    files: BTreeMap<&'static str, Counts>,
    #[serde(skip)]
    report: &'a MergeReport,
}

#[derive(Serialize)]
struct Counts {
    added: u64,
    already_present: u64,
}

impl<'a> Merged<'a> {
    fn new(report: &'a MergeReport) -> Self {
        let files = report.files.iter().map(|f| {
            let counts = Counts {
                added: f.added,
                already_present: f.already_present,
            };
            (f.stream.file_name(), counts)
        });
        Merged {
            into: report.into.display().to_string(),
            segments: report
                .segments
                .iter()
                .map(|s| s.display().to_string())
                .collect(),
            added: report.files.iter().map(|f| f.added).sum(),
            files: files.collect(),
            report,
        }
    }
}

impl View for Merged<'_> {
    fn text(&self) -> String {
        let parts: Vec<String> = self
            .report
            .files
            .iter()
            .map(|f| {
                let name = f.stream.file_name();
                format!(
                    "{name} +{} ({} already present)",
                    f.added, f.already_present
                )
            })
            .collect();
        format!(
            "merged {} segment(s) into {}: {}",
            self.segments.len(),
            self.into,
            parts.join(", ")
        )
    }

    fn notes(&self) -> Vec<String> {
        self.report
            .repairs
            .iter()
            .map(|r| format!("note: {r}"))
            .collect()
    }

    fn summary(&self) -> Option<String> {
        Some(crate::job_summary::merge_md(self.report))
    }
}
