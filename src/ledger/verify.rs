//! `verify`: every check of the three files (hash, chain, seq, keys, batches, envelope, billing rules) and the cross-file rules, each problem with file and line.
use super::scan::{self, check_across, Mode, Scan};
use super::{missing_dir, RepairKind, Stream};
use crate::error::{Error, Result};
use std::path::Path;

/// One problem, at a line (a line one past the end means something is missing there).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub file: String,
    pub line: u64,
    pub message: String,
    /// What the next writer does about it (what a crash can leave behind); None: damage,
    /// which no writer repairs.
    #[serde(skip)]
    pub repair: Option<RepairKind>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Counts of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub stream: Stream,
    pub file: String,
    pub exists: bool,
    /// Lines before any torn tail.
    pub records: u64,
    pub bytes: u64,
    pub head_seq: u64,
    pub head_hash: String,
    pub torn_tail: bool,
    /// Privileged records of this file without their audit record (each is also a problem).
    pub unaudited: u64,
}

/// Everything `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub files: Vec<FileReport>,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// Whether every problem is one the next writer repairs (a torn tail, a missing audit
    /// record of a privileged record): what a crash can leave behind, and nothing else.
    pub fn only_repairable(&self) -> bool {
        self.problems.iter().all(|p| p.repair.is_some())
    }
}

/// Check the three files of a billing-state directory, and the rules between them.
/// Read-only, and no writer waits for it (it measures the files under a shared hold of the
/// lock, then reads without one): a torn tail or a missing audit record is reported as a
/// problem, never repaired. A missing directory is an input error.
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    if !dir.is_dir() {
        return Err(missing_dir(dir));
    }
    let paths = Stream::ALL.map(|s| dir.join(s.file_name()));
    // As a writer left them between two holds of the lock (`ledger::cut`).
    let mut cut = super::cut::Cut::take(dir)?;
    let opened = Stream::ALL.map(|s| cut.take_file(s));
    verify_opened([&paths[0], &paths[1], &paths[2]], opened, Some(dir))
}

/// [`verify`] of three files given by path (by `Stream::index`): a merge's result before it
/// replaces the target's files.
pub(crate) fn verify_paths(paths: [&Path; 3]) -> Result<VerifyReport> {
    let mut opened: [(Option<std::fs::File>, u64); 3] = Default::default();
    for (i, path) in paths.iter().enumerate() {
        opened[i] = (super::file::open_existing(path)?, u64::MAX);
    }
    verify_opened(paths, opened, None)
}

/// [`verify`] of three files opened already, each read up to its end given; `dir` is the
/// billing-state directory they are in (None: a merge's result).
fn verify_opened(
    paths: [&Path; 3],
    opened: [(Option<std::fs::File>, u64); 3],
    dir: Option<&Path>,
) -> Result<VerifyReport> {
    let mut scans = Vec::new();
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for (stream, file) in Stream::ALL.into_iter().zip(opened) {
        let (scan, report, p) = verify_file(paths[stream.index()], stream, file)?;
        if stream == Stream::Billing {
            crate::failpoint::pause("ledger_reader_between_files");
        }
        scans.push(scan);
        files.push(report);
        problems.extend(p);
    }
    let found = check_across([&scans[0], &scans[1], &scans[2]], paths);
    for d in found.damage {
        let at = format!("{}:{}", files[d.stream.index()].file, d.line);
        let unfinished = dir.filter(|_| d.shortfall).and_then(|dir| {
            let message = super::install::unfinished(dir, &at)?;
            Some(format!("{message}: {}", super::install::FINISH_HELP))
        });
        let message = unfinished.unwrap_or(d.message);
        problems.push(Problem {
            file: files[d.stream.index()].file.clone(),
            line: d.line,
            message,
            repair: None,
        });
    }
    for u in &found.unaudited {
        // The file the record was read from: a record in another file is damage already.
        let read_from = &mut files[u.stream.index()];
        read_from.unaudited += 1;
        problems.push(Problem {
            file: read_from.file.clone(),
            line: u.line,
            message: u.message(),
            repair: Some(RepairKind::AuditAdded),
        });
    }
    // Files in their fixed order, lines in order within each.
    let order = |p: &Problem| files.iter().position(|f| f.file == p.file).unwrap_or(0);
    problems.sort_by_key(|p| (order(p), p.line));
    Ok(VerifyReport { files, problems })
}

/// Check one ledger file; its scan keeps the keys and references for the cross-file rules.
fn verify_file(
    path: &Path,
    stream: Stream,
    (file, end): (Option<std::fs::File>, u64),
) -> Result<(Scan, FileReport, Vec<Problem>)> {
    let name = path.display().to_string();
    let mut scan = Scan::new(stream, Mode::Verify);
    let file = match file {
        Some(f) => f,
        None => {
            let report = FileReport {
                stream,
                file: name,
                exists: false,
                records: 0,
                bytes: 0,
                head_seq: 0,
                head_hash: scan.head.hash_hex(),
                torn_tail: false,
                unaudited: 0,
            };
            return Ok((scan, report, Vec::new()));
        }
    };
    scan::feed_file::<std::io::Error>(&file, (0, end), &mut scan, &mut |_| Ok(()))
        .map_err(|e| Error::io(path, &e))?;
    let bytes = file.metadata().map(|m| m.len().min(end)).unwrap_or(0);
    let torn = scan.finish();
    let mut problems: Vec<Problem> = scan
        .problems
        .iter()
        .map(|p| Problem {
            file: name.clone(),
            line: p.line,
            message: p.message.clone(),
            repair: None,
        })
        .collect();
    if let Some(t) = &torn {
        problems.push(Problem {
            file: name.clone(),
            line: t.report_line,
            message: format!(
                "{}; lines {}..{} ({} bytes) are an incomplete write that the next writer removes",
                t.message,
                t.from_line,
                t.from_line + t.lines - 1,
                t.bytes
            ),
            repair: Some(RepairKind::TornTail),
        });
    }
    let report = FileReport {
        stream,
        file: name,
        exists: true,
        records: scan.head.lines,
        bytes,
        head_seq: scan.head.seq,
        head_hash: scan.head.hash_hex(),
        torn_tail: torn.is_some(),
        unaudited: 0,
    };
    Ok((scan, report, problems))
}
