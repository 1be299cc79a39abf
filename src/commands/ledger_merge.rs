//! `platform ledger merge`: fold shard billing-state directories into one (all or nothing).
use super::Ctx;
use crate::cli::LedgerMergeArgs;
use crate::error::Result;
use crate::ledger;
use crate::output::Report;
use serde_json::{json, Map, Value};

pub fn run(_ctx: &Ctx, args: &LedgerMergeArgs) -> Result<Report> {
    let report = ledger::merge(&args.into, &args.segments)?;
    crate::job_summary::append(&crate::job_summary::merge_md(&report));
    let mut files = Map::new();
    let mut parts = Vec::new();
    let mut added = 0;
    for f in &report.files {
        added += f.added;
        files.insert(
            f.stream.file_name().into(),
            json!({"added": f.added, "already_present": f.already_present}),
        );
        parts.push(format!(
            "{} +{} ({} already present)",
            f.stream.file_name(),
            f.added,
            f.already_present
        ));
    }
    let segments: Vec<String> = report
        .segments
        .iter()
        .map(|s| s.display().to_string())
        .collect();
    let text = format!(
        "merged {} segment(s) into {}: {}",
        segments.len(),
        report.into.display(),
        parts.join(", ")
    );
    let mut out = Report::new(
        text,
        json!({
            "into": report.into.display().to_string(),
            "segments": segments,
            "added": added,
            "files": Value::Object(files),
        }),
    );
    for r in &report.repairs {
        out = out.note(format!("note: {r}"));
    }
    Ok(out)
}
