//! `platform ledger merge`: fold shard billing-state directories into one with `crate::ledger::merge` (all or nothing); renders what it did.
use super::Ctx;
use crate::cli::LedgerMergeArgs;
use crate::error::Result;
use crate::ledger::{self, MergeReport, TornTail};
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
    /// Interrupted writes at the end of segment files, left out (and left in the segment).
    torn_tails: &'a [TornTail],
    /// The notes printed on stderr: repairs made to the target, torn tails skipped.
    notes: Vec<String>,
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
            torn_tails: &report.skipped,
            notes: notes(report),
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
        self.notes.clone()
    }

    fn summary(&self) -> Option<String> {
        Some(crate::job_summary::merge_md(self.report))
    }
}

/// Temp files of an interrupted merge removed, the repairs made to the target, then each torn
/// tail left out of a segment.
fn notes(report: &MergeReport) -> Vec<String> {
    let repairs = report.repairs.iter().map(|r| format!("note: {r}"));
    let skipped = report.skipped.iter().map(|t| {
        let lines = match t.lines {
            1 => format!("line {}", t.from_line),
            n => format!("lines {}..{}", t.from_line, t.from_line + n - 1),
        };
        format!(
            "note: skipped {} {lines} ({} bytes): {}; not merged (the segment is left as it is)",
            t.file, t.bytes, t.message
        )
    });
    report
        .leftovers
        .iter()
        .cloned()
        .chain(repairs)
        .chain(skipped)
        .collect()
}
