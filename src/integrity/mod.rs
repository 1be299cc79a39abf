//! `integrity-validate` as a library: the ledger's verify report, the signed heads when the directory has them, whether the runtime directory's own record files parse and its step outputs and local deliveries are the ones recorded; one outcome.
mod deliveries;
mod outputs;

use crate::error::Result;
use crate::heads::LocalHeads;
use crate::ledger::{self, FileReport, Problem, VerifyReport};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::path::Path;

/// Everything integrity-validate found (the `--json` document).
#[derive(Debug, Clone, Serialize)]
pub struct Integrity {
    pub ok: bool,
    pub billing_state_dir: String,
    /// Per file, in ledger order (`--json`: an object keyed by file name).
    #[serde(serialize_with = "by_file_name")]
    pub files: Vec<FileReport>,
    pub signed_heads: Option<LocalHeads>,
    pub runtime: RuntimeChecked,
    pub problems: Vec<Problem>,
}

/// The runtime directory's record files that were parsed, and the recorded step outputs and
/// local deliveries that were hashed (present) or not found (absent: scratch space that was
/// cleared).
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeChecked {
    pub dir: String,
    pub files_checked: u64,
    pub outputs_checked: u64,
    pub outputs_absent: u64,
    pub deliveries_checked: u64,
    pub deliveries_absent: u64,
}

/// Verify `dir` (its heads.json against config/ledger.yml's keys, when it has one) and the
/// record files under `runtime`, when that directory exists.
pub fn check(repo: &Path, dir: &Path, runtime: &Path) -> Result<Integrity> {
    let report = ledger::verify(dir)?;
    let mut problems = report.problems.clone();
    let (signed_heads, heads_problems) = signed_heads(repo, dir, &report)?;
    problems.extend(heads_problems);
    let (files_checked, outputs, delivered) = if runtime.is_dir() {
        let files = check_runtime(runtime, &mut problems);
        let (outputs, delivered) = check_recorded_files(dir, runtime, &mut problems);
        (files, outputs, delivered)
    } else {
        (0, Counted::default(), Counted::default())
    };
    Ok(Integrity {
        ok: problems.is_empty(),
        billing_state_dir: dir.display().to_string(),
        files: report.files,
        signed_heads,
        runtime: RuntimeChecked {
            dir: runtime.display().to_string(),
            files_checked,
            outputs_checked: outputs.checked,
            outputs_absent: outputs.absent,
            deliveries_checked: delivered.checked,
            deliveries_absent: delivered.absent,
        },
        problems,
    })
}

fn by_file_name<S: Serializer>(files: &[FileReport], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Counts<'a> {
        records: u64,
        bytes: u64,
        head_seq: u64,
        head_hash: &'a str,
        torn_tail: bool,
    }
    let map: BTreeMap<&str, Counts<'_>> = files
        .iter()
        .map(|f| {
            let counts = Counts {
                records: f.records,
                bytes: f.bytes,
                head_seq: f.head_seq,
                head_hash: &f.head_hash,
                torn_tail: f.torn_tail,
            };
            (f.stream.file_name(), counts)
        })
        .collect();
    map.serialize(s)
}

/// heads.json of the directory, when there is one, against config/ledger.yml's keys.
fn signed_heads(
    repo: &Path,
    dir: &Path,
    report: &VerifyReport,
) -> Result<(Option<LocalHeads>, Vec<Problem>)> {
    if !dir.join(crate::heads::HEADS_FILE).exists() {
        return Ok((None, Vec::new()));
    }
    let trust = crate::config::ledger::LedgerConfig::load_strict(repo)?;
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
        let path = entry.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        // result.json is written by the module itself (PLATFORM_RESULT): the runner judges it.
        let module_written = path.file_name().is_some_and(|n| n == "result.json");
        if !entry.file_type().is_file() || !matches!(ext, "json" | "jsonl") || module_written {
            continue;
        }
        // A step's inputs.json and supervisor.json are created, then written, before its
        // module starts (`atomic::write_fresh`): empty, the process that made one was killed
        // in between, no module read it, and the step's next attempt replaces it.
        let fresh = path
            .file_name()
            .is_some_and(|n| n == "inputs.json" || n == crate::runner::SUPERVISOR_FILE);
        if fresh && entry.metadata().is_ok_and(|m| m.len() == 0) {
            continue;
        }
        checked += 1;
        problems.extend(parse_problems(path, ext == "jsonl"));
    }
    checked
}

/// Files the ledger recorded by digest, looked for in the runtime directory: how many were
/// compared (present) and how many were not there.
#[derive(Debug, Clone, Copy, Default)]
struct Counted {
    checked: u64,
    absent: u64,
}

/// The step outputs and the local deliveries the run history records, compared with the files
/// in the runtime directory. The history is `runs`' own (one read of the ledger, checked as a
/// whole); a ledger that does not read is already a problem of the ledger's own check.
fn check_recorded_files(
    dir: &Path,
    runtime: &Path,
    problems: &mut Vec<Problem>,
) -> (Counted, Counted) {
    let history = match crate::runs::load(dir) {
        Ok((history, _, _)) => history,
        Err(e) => {
            if problems.is_empty() {
                problems.push(runtime_problem(
                    runtime,
                    format!("step outputs and deliveries not checked: {e}"),
                ));
            }
            return (Counted::default(), Counted::default());
        }
    };
    (
        outputs::check(&history, runtime, problems),
        deliveries::check(&history, runtime, problems),
    )
}

/// Why a record's ID cannot name a folder (the ledger's reader checks the chain, not that a
/// forged-and-rechained ID is one): it is then a problem, never a path to look at.
fn invalid_id(ids: &[&str]) -> Option<String> {
    ids.iter().find_map(|id| crate::ids::check(id))
}

/// A recorded file found at `at` that differs from its record, or cannot be read as one.
fn not_as_recorded(
    at: &crate::beneath::Beneath,
    what: String,
    why: crate::output_digest::NotAsRecorded,
    rec_bytes: u64,
    rec_sha256: &str,
) -> Problem {
    use crate::output_digest::NotAsRecorded;
    let why = match why {
        NotAsRecorded::Unreadable(why) => format!("cannot be checked: {why}"),
        NotAsRecorded::Differs { bytes, sha256 } => format!(
            "differs from what was recorded ({bytes} bytes, sha256 {}; recorded {rec_bytes} bytes, sha256 {})",
            crate::digest::short(&sha256),
            crate::digest::short(rec_sha256)
        ),
    };
    Problem {
        file: at.path().display().to_string(),
        line: 0,
        message: format!("{what} {why}"),
        repair: None,
    }
}

/// Nothing is at `at` (scratch space that was cleared): counted, not a problem.
fn is_missing(at: &crate::beneath::Beneath) -> bool {
    matches!(at.metadata(), Err(r) if r.reason == crate::beneath::Reason::Missing)
}

fn runtime_problem(runtime: &Path, message: String) -> Problem {
    Problem {
        file: runtime.display().to_string(),
        line: 0,
        message,
        repair: None,
    }
}

/// Why a record file does not parse: as one JSON document, or line by line (`jsonl`).
fn parse_problems(path: &Path, lines: bool) -> Vec<Problem> {
    let file = path.display().to_string();
    let problem = |line: u64, message: String| Problem {
        file: file.clone(),
        line,
        message,
        repair: None,
    };
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) => return vec![problem(0, format!("cannot read: {e}"))],
    };
    let parse = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).err();
    if !lines {
        return parse(&text)
            .map(|e| problem(e.line() as u64, format!("not valid JSON: {e}")))
            .into_iter()
            .collect();
    }
    text.split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .filter_map(|(i, line)| {
            parse(line).map(|e| problem(i as u64 + 1, format!("not valid JSON: {e}")))
        })
        .collect()
}
