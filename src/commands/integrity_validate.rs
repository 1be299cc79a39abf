//! `platform integrity-validate`: verify the ledger (and that runtime record files parse); every problem as `file:line: message`.
use super::Ctx;
use crate::cli::IntegrityValidateArgs;
use crate::config::profile::RuntimeProfile;
use crate::error::Result;
use crate::ledger::{self, Problem};
use crate::output::Report;
use serde_json::{json, Map};
use std::path::Path;

pub fn run(ctx: &Ctx, args: &IntegrityValidateArgs) -> Result<Report> {
    let dir = super::state_dir(ctx, args.state.billing_state_dir.as_deref())?;
    let report = ledger::verify(&dir)?;
    let mut problems = report.problems.clone();
    let signed = signed_heads(ctx, &dir, &report)?;
    problems.extend(signed.1);
    let runtime = match &args.runtime_dir {
        Some(r) => r.clone(),
        None => RuntimeProfile::load(ctx.repo(), None)?.runtime_dir(None),
    };
    let runtime_files = if runtime.is_dir() {
        check_runtime(&runtime, &mut problems)
    } else {
        0
    };
    let mut files = Map::new();
    let mut summary = Vec::new();
    for f in &report.files {
        files.insert(
            f.stream.file_name().into(),
            json!({
                "records": f.records,
                "bytes": f.bytes,
                "head_seq": f.head_seq,
                "head_hash": f.head_hash,
                "torn_tail": f.torn_tail,
            }),
        );
        summary.push(format!("{} {} record(s)", f.stream.file_name(), f.records));
    }
    let ok = problems.is_empty();
    let mut text = String::new();
    for p in &problems {
        text.push_str(&format!("{p}\n"));
    }
    text.push_str(&format!(
        "{}: {} in {}",
        if ok { "ok" } else { "FAILED" },
        summary.join(", "),
        dir.display()
    ));
    if let Some(s) = &signed.0 {
        text.push_str(&format!("; {}", s.summary()));
    }
    if runtime_files > 0 {
        text.push_str(&format!(
            "; {runtime_files} runtime record file(s) in {}",
            runtime.display()
        ));
    }
    if !ok {
        text.push_str(&format!("\n{} problem(s)", problems.len()));
    }
    let json = json!({
        "ok": ok,
        "billing_state_dir": dir.display().to_string(),
        "files": files,
        "signed_heads": signed.0,
        "runtime": {"dir": runtime.display().to_string(), "files_checked": runtime_files},
        "problems": problems.iter().map(|p| json!({"file": p.file, "line": p.line, "message": p.message})).collect::<Vec<_>>(),
    });
    Ok(Report::new(text, json).exit(if ok { 0 } else { 1 }))
}

/// heads.json of the directory, when there is one, against config/ledger.yml's keys.
fn signed_heads(
    ctx: &Ctx,
    dir: &Path,
    report: &ledger::VerifyReport,
) -> Result<(Option<crate::heads::LocalHeads>, Vec<Problem>)> {
    if !dir.join(crate::heads::HEADS_FILE).exists() {
        return Ok((None, Vec::new()));
    }
    let trust = crate::config::ledger::LedgerConfig::load_strict(ctx.repo())?;
    crate::heads::check_local(dir, report, &trust.signing_keys)
}

/// The runtime directory is scratch space: check only that the platform's own record files
/// (`*.json`, `*.jsonl`) parse. Module outputs, module results, modules' working folders,
/// steps' copies of tenant assets (`inputs/`) and deliveries are user data, not records.
fn check_runtime(root: &Path, problems: &mut Vec<Problem>) -> u64 {
    let mut checked = 0;
    let walker = walkdir::WalkDir::new(root).follow_links(false).into_iter();
    let entries = walker.filter_entry(|e| {
        let name = e.file_name().to_string_lossy();
        let user_data = ["outputs", "work", "inputs", "deliveries"];
        !(e.file_type().is_dir() && user_data.contains(&name.as_ref()))
    });
    for entry in entries.flatten() {
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        // result.json is written by the module itself (PLATFORM_RESULT): the runner judges it.
        let module_written = path.file_name().is_some_and(|n| n == "result.json");
        if (ext != "json" && ext != "jsonl") || module_written {
            continue;
        }
        checked += 1;
        let file = path.display().to_string();
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) => {
                problems.push(Problem {
                    file,
                    line: 0,
                    message: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        if ext == "json" {
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(&text) {
                problems.push(Problem {
                    file,
                    line: e.line() as u64,
                    message: format!("not valid JSON: {e}"),
                });
            }
        } else {
            for (i, line) in text.split(|&b| b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if let Err(e) = serde_json::from_slice::<serde_json::Value>(line) {
                    problems.push(Problem {
                        file: file.clone(),
                        line: i as u64 + 1,
                        message: format!("not valid JSON: {e}"),
                    });
                }
            }
        }
    }
    checked
}
