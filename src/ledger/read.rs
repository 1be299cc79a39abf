//! Readers: stream ledger files line by line, whole batches only, without the writer lock and without ever modifying them; every check `verify` makes, and figures only from a ledger that passes them.
use super::cross;
use super::scan::{self, Mode, Scan};
use super::{damaged, SinkError, Stream};
use crate::error::{Error, Result};
use crate::records::Entry;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// An incomplete write at the end of a file, seen by a reader (left in place: the next
/// writer removes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub file: String,
    /// The first line of the incomplete write.
    pub from_line: u64,
    pub lines: u64,
    pub bytes: u64,
    pub message: String,
}

/// What a reader saw in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSummary {
    /// Records handed to the callback.
    pub records: u64,
    pub torn_tail: Option<TornTail>,
}

/// A privileged record without its audit record, seen by a reader (the next writer adds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unaudited {
    pub file: String,
    pub line: u64,
    pub message: String,
}

/// What a whole-directory reader saw: per file (by `Stream::index`), the repairs a writer
/// would make, and every tenant's balance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    pub files: Vec<ReadSummary>,
    pub unaudited: Vec<Unaudited>,
    pub balances: BTreeMap<String, i64>,
}

impl Reading {
    /// Whether a writer would change anything (remove a torn tail, add an audit record).
    pub fn repairs_pending(&self) -> bool {
        !self.unaudited.is_empty() || self.files.iter().any(|f| f.torn_tail.is_some())
    }

    /// The reading, or an error when a privileged record lacks its audit record: a reader
    /// that prints credit figures shows none that might come from a forged top-up.
    pub fn refuse_unaudited(self, dir: &Path) -> Result<Reading> {
        let Some(u) = self.unaudited.first() else {
            return Ok(self);
        };
        Err(Error::failure(format!("{}:{}: {}", u.file, u.line, u.message))
            .at(format!("{}:{}", u.file, u.line))
            .help(format!(
                "if a crash cut the two writes apart, any writer adds the audit record (replay the top-up with the same --reference, or run the orchestrator) and this command works again; if nobody posted it, it is forged: restore {} from a good copy",
                dir.display()
            )))
    }

    /// One line per pending repair, for a reader to print as a note.
    pub fn notes(&self) -> Vec<String> {
        let torn = self.files.iter().filter_map(|f| f.torn_tail.as_ref()).map(|t| {
            format!(
                "note: {} ends in an interrupted write ({} line(s) from line {}); it is not counted, and the next writer removes it",
                t.file, t.lines, t.from_line
            )
        });
        let unaudited = self
            .unaudited
            .iter()
            .map(|u| format!("note: {}:{}: {}", u.file, u.line, u.message));
        torn.chain(unaudited).collect()
    }
}

/// Read a whole billing-state directory as `integrity-validate` checks it: all three files
/// (every line of `streams` handed to `f`, in file order, whole batches only) and the
/// cross-file rules. Damage anywhere is an error naming file and line; a torn tail or a
/// missing audit record is reported in the `Reading`, not an error. A missing file has no
/// records.
pub fn read(
    dir: &Path,
    streams: &[Stream],
    mut f: impl FnMut(Stream, u64, &[u8]) -> Result<()>,
) -> Result<Reading> {
    let mut scans = Vec::new();
    let mut files = Vec::new();
    for stream in Stream::ALL {
        let mode = if streams.contains(&stream) {
            Mode::Read
        } else {
            Mode::Verify
        };
        let (scan, summary) = scan_file(dir, stream, mode, &mut |ln, b| f(stream, ln, b))?;
        scans.push(scan);
        files.push(summary);
    }
    let found = cross::check([&scans[0], &scans[1], &scans[2]]);
    if let Some(o) = found.orphans.first() {
        return Err(damaged(&dir.join(o.stream.file_name()), o.line, &o.message));
    }
    let unaudited = found
        .unaudited
        .iter()
        .map(|u| Unaudited {
            file: dir
                .join(u.rule.record.stream().file_name())
                .display()
                .to_string(),
            line: u.line,
            message: u.message(),
        })
        .collect();
    let balances = scans[Stream::Billing.index()]
        .billing
        .as_ref()
        .map(|b| {
            b.tenants
                .iter()
                .cloned()
                .zip(b.balances.iter().copied())
                .collect()
        })
        .unwrap_or_default();
    Ok(Reading {
        files,
        unaudited,
        balances,
    })
}

/// Scan one file to its end in `mode`; the first problem (other than a torn tail) is an error.
fn scan_file(
    dir: &Path,
    stream: Stream,
    mode: Mode,
    f: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
) -> Result<(Scan, ReadSummary)> {
    let path = dir.join(stream.file_name());
    let mut scan = Scan::new(stream, mode);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((scan, ReadSummary::default()))
        }
        Err(e) => return Err(Error::io(&path, &e)),
    };
    let mut records = 0u64;
    let mut sink = |ln: u64, bytes: &[u8]| -> std::result::Result<(), SinkError> {
        records += 1;
        f(ln, bytes).map_err(SinkError::Err)
    };
    scan::feed_file(&file, 0, &mut scan, &mut sink).map_err(|e| e.into_error(&path))?;
    let torn = scan.finish();
    if let Some(p) = scan.problems.first() {
        return Err(damaged(&path, p.line, &p.message));
    }
    let summary = ReadSummary {
        records,
        torn_tail: torn.map(|t| TornTail {
            file: path.display().to_string(),
            from_line: t.from_line,
            lines: t.lines,
            bytes: t.bytes,
            message: t.message,
        }),
    };
    Ok((scan, summary))
}

/// Every complete record of one file as raw line bytes (without `\n`), with its line
/// number. The file gets every check of its own (hash, chain, keys, batches, billing rules);
/// the rules between files are [`read`]'s. Damage is an error, a torn tail is reported in
/// the summary and skipped. A missing file has no records.
pub fn for_each_line(
    dir: &Path,
    stream: Stream,
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<ReadSummary> {
    Ok(scan_file(dir, stream, Mode::Read, &mut f)?.1)
}

/// Every complete record of a file as a JSON object, with its line number.
pub fn for_each(
    dir: &Path,
    stream: Stream,
    mut f: impl FnMut(u64, &Map<String, Value>) -> Result<()>,
) -> Result<ReadSummary> {
    let path = dir.join(stream.file_name());
    for_each_line(dir, stream, |ln, bytes| {
        let map: Map<String, Value> = serde_json::from_slice(bytes)
            .map_err(|e| damaged(&path, ln, &format!("not a JSON object: {e}")))?;
        f(ln, &map)
    })
}

/// A ledger line as a typed record; a record this build does not know is an error naming
/// the line.
pub fn entry_of(path: &Path, ln: u64, bytes: &[u8]) -> Result<Entry> {
    let map: Map<String, Value> = serde_json::from_slice(bytes)
        .map_err(|e| damaged(path, ln, &format!("not a JSON object: {e}")))?;
    Entry::from_object(map).map_err(|e| {
        Error::failure(format!("{}:{ln}: {e}", path.display()))
            .at(format!("{}:{ln}", path.display()))
    })
}

/// Every complete record of a file, typed.
pub fn for_each_entry(
    dir: &Path,
    stream: Stream,
    mut f: impl FnMut(u64, Entry) -> Result<()>,
) -> Result<ReadSummary> {
    let path = dir.join(stream.file_name());
    for_each_line(dir, stream, |ln, bytes| f(ln, entry_of(&path, ln, bytes)?))
}

/// Every tenant's balance, from a directory that passes every check (see [`read`]); a
/// privileged record without its audit record is refused too (`Reading::refuse_unaudited`).
pub fn balances(dir: &Path) -> Result<BTreeMap<String, i64>> {
    Ok(read(dir, &[], |_, _, _| Ok(()))?
        .refuse_unaudited(dir)?
        .balances)
}

/// One tenant's balance (0 when the tenant has no records).
pub fn balance(dir: &Path, tenant_id: &str) -> Result<i64> {
    Ok(balances(dir)?.get(tenant_id).copied().unwrap_or(0))
}
