//! The one typed reader: streams ledger files line by line, whole batches only, each line with its record type, without the writer lock and without ever modifying them; every check `verify` makes, and figures only from a ledger that passes them.
use super::cut::Cut;
use super::mark::{FileId, Mark};
use super::scan::{self, check_across, Committed, Mode, Scan};
use super::{damaged, SinkError, Stream};
use crate::error::{Error, Result};
use crate::records::{Entry, Record, RecordType};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// One complete record of a file that passed every check, as a reader receives it. Its type
/// is known (the scan read it), so a reader skips what it has no use for without parsing.
#[derive(Debug, Clone, Copy)]
pub struct LedgerLine<'a> {
    pub stream: Stream,
    /// 1-based line number in its file.
    pub line: u64,
    pub record_type: RecordType,
    /// The line without its `\n`.
    pub bytes: &'a [u8],
    path: &'a Path,
}

impl LedgerLine<'_> {
    /// The record, parsed straight into its type's struct (one pass; the envelope is skipped).
    pub fn record(&self) -> Result<Record> {
        Record::from_json(self.record_type, self.bytes).map_err(|e| self.unreadable(&e))
    }

    /// The envelope (seq, key, time, hashes, batch) and the typed record.
    pub fn entry(&self) -> Result<Entry> {
        Entry::from_json(self.record_type, self.bytes).map_err(|e| self.unreadable(&e))
    }

    /// The line as a JSON object, every field as written.
    pub fn object(&self) -> Result<Map<String, Value>> {
        serde_json::from_slice(self.bytes)
            .map_err(|e| damaged(self.path, self.line, &format!("not a JSON object: {e}")))
    }

    /// `file:line`.
    pub fn location(&self) -> String {
        format!("{}:{}", self.path.display(), self.line)
    }

    /// A line that verifies but does not fit its type's struct: this build cannot read it.
    fn unreadable(&self, why: &dyn std::fmt::Display) -> Error {
        let at = self.location();
        Error::failure(format!(
            "{at}: unreadable {} record: {why}",
            self.record_type.name()
        ))
        .at(at)
        .help("run `platform integrity-validate` to see what is damaged")
    }
}

/// An incomplete write at the end of a file, seen by a reader (left in place: the next
/// writer removes it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TornTail {
    pub file: String,
    /// The first line of the incomplete write.
    pub from_line: u64,
    pub lines: u64,
    pub bytes: u64,
    pub message: String,
}

impl TornTail {
    /// The torn tail a scan of the file at `path` found.
    pub(crate) fn of(path: &Path, t: scan::Torn) -> TornTail {
        TornTail {
            file: path.display().to_string(),
            from_line: t.from_line,
            lines: t.lines,
            bytes: t.bytes,
            message: t.message,
        }
    }
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
        Err(Error::failure(format!("{}:{}: {}", u.file, u.line, u.message)).topic(crate::error::Topic::LedgerDamaged)
            .at(format!("{}:{}", u.file, u.line))
            .help(format!(
                "if a crash cut the two writes apart, any writer adds the audit record (replay the top-up with the same --reference, run publish again, or run the orchestrator) and this command works again; if nobody posted it, it is forged: restore {} from a good copy",
                dir.display()
            )))
    }

    /// What a writer would repair before it appends anything, one line each: what a pass that
    /// writes nothing (`orchestrator --dry-run`) says it would do.
    pub fn pending_repairs(&self) -> Vec<String> {
        let torn = self.files.iter().filter_map(|f| f.torn_tail.as_ref()).map(|t| {
            format!(
                "{} ends in an interrupted write ({} line(s) from line {}: {}): the pass would remove it before anything else; the balances leave it out",
                t.file, t.lines, t.from_line, t.message
            )
        });
        let unaudited = self.unaudited.iter().map(|u| {
            format!(
                "{}:{}: {}; the pass would add that audit record before anything else, and the balances count the record",
                u.file, u.line, u.message
            )
        });
        torn.chain(unaudited).collect()
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
    mut f: impl FnMut(LedgerLine<'_>) -> Result<()>,
) -> Result<Reading> {
    let (scans, files, _) = scan_all(dir, streams, &mut f)?;
    conclude(dir, &scans, files)
}

/// A reader's callback for one file's lines, which may run on a thread of its own.
pub(crate) type LineSink<'a> = &'a mut (dyn FnMut(LedgerLine<'_>) -> Result<()> + Send);

/// [`read`], and where each file's verified records end (for a derived cache to resume from:
/// [`super::resume::read_since`]). Each file's lines go to its own callback (by
/// `Stream::index`), and the billing and audit files are scanned on another thread than the
/// evidence file: at the end of a pass, which reads back all it appended, the other CPUs
/// are idle.
pub(crate) fn read_marked(
    dir: &Path,
    streams: &[Stream],
    sinks: [LineSink<'_>; 3],
) -> Result<(Reading, [Mark; 3])> {
    let [billing, evidence, audit] = sinks;
    let mut cut = Cut::take(dir)?;
    let (b_file, e_file, a_file) = (
        cut.take_file(Stream::Billing),
        cut.take_file(Stream::Evidence),
        cut.take_file(Stream::Audit),
    );
    let (others, evidence) = std::thread::scope(|s| {
        let others = s.spawn(|| {
            let b = scan_one(dir, streams, Stream::Billing, b_file, billing);
            crate::failpoint::pause("ledger_reader_between_files");
            (b, scan_one(dir, streams, Stream::Audit, a_file, audit))
        });
        let e = scan_one(dir, streams, Stream::Evidence, e_file, evidence);
        (others.join(), e)
    });
    let (billing, audit) = others.map_err(|_| Error::failure("a ledger reader's thread failed"))?;
    let mut scans = Vec::new();
    let mut files = Vec::new();
    let mut ids = [FileId::default(); 3];
    // The first error in file order, as a reading one file after the other reports it.
    for (stream, scanned) in [
        (Stream::Billing, billing),
        (Stream::Evidence, evidence),
        (Stream::Audit, audit),
    ] {
        let (scan, summary, id) = scanned?;
        ids[stream.index()] = id;
        scans.push(scan);
        files.push(summary);
    }
    let mut scans: [Scan; 3] = scans
        .try_into()
        .map_err(|_| Error::failure("a ledger has three files"))?;
    let reading = conclude(dir, &scans, files)?;
    // The scans' keys move into the marks: no copy of them is ever made.
    let marks = [0, 1, 2].map(|i| Mark::take(&mut scans[i], ids[i]));
    Ok((reading, marks))
}

/// Scan every file (those of `streams` in Read mode, the others in Verify mode), and which
/// file each was.
fn scan_all(
    dir: &Path,
    streams: &[Stream],
    f: &mut dyn FnMut(LedgerLine<'_>) -> Result<()>,
) -> Result<([Scan; 3], Vec<ReadSummary>, [FileId; 3])> {
    let mut scans = Vec::new();
    let mut files = Vec::new();
    let mut ids = [FileId::default(); 3];
    let mut cut = Cut::take(dir)?;
    for stream in Stream::ALL {
        let (scan, summary, id) = scan_one(dir, streams, stream, cut.take_file(stream), f)?;
        if stream == Stream::Billing {
            crate::failpoint::pause("ledger_reader_between_files");
        }
        ids[stream.index()] = id;
        scans.push(scan);
        files.push(summary);
    }
    let scans: [Scan; 3] = scans
        .try_into()
        .map_err(|_| Error::failure("a ledger has three files"))?;
    Ok((scans, files, ids))
}

/// Scan one file of a [`Cut`] (in Read mode when `streams` has it, else in Verify mode), and
/// which file it was.
fn scan_one(
    dir: &Path,
    streams: &[Stream],
    stream: Stream,
    (file, end): (Option<std::fs::File>, u64),
    f: &mut dyn FnMut(LedgerLine<'_>) -> Result<()>,
) -> Result<(Scan, ReadSummary, FileId)> {
    let mode = if streams.contains(&stream) {
        Mode::Read
    } else {
        Mode::Verify
    };
    let id = FileId::of(file.as_ref()).map_err(|e| Error::io(dir, &e))?;
    let scan = Scan::new(stream, mode);
    let (scan, summary) = scan_file(dir, stream, scan, file, (0, end), f)?;
    Ok((scan, summary, id))
}

/// The rules between the files of three finished scans, and the balances.
pub(crate) fn conclude(dir: &Path, scans: &[Scan; 3], files: Vec<ReadSummary>) -> Result<Reading> {
    let paths = Stream::ALL.map(|s| dir.join(s.file_name()));
    let found = check_across(
        [&scans[0], &scans[1], &scans[2]],
        [&paths[0], &paths[1], &paths[2]],
    );
    if let Some(d) = found.damage.first() {
        let at = format!("{}:{}", paths[d.stream.index()].display(), d.line);
        if let Some(message) = super::install::unfinished(dir, &at).filter(|_| d.shortfall) {
            return Err(Error::failure(message)
                .topic(crate::error::Topic::LedgerDamaged)
                .at(at)
                .help(super::install::FINISH_HELP));
        }
        return Err(damaged(&paths[d.stream.index()], d.line, &d.message));
    }
    let unaudited = found
        .unaudited
        .iter()
        .map(|u| Unaudited {
            file: paths[u.stream.index()].display().to_string(),
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

/// A ledger file opened for reading; None when it does not exist (it has no records).
pub(crate) fn open(dir: &Path, stream: Stream) -> Result<Option<std::fs::File>> {
    super::file::open_existing(&dir.join(stream.file_name()))
}

/// Feed `file` from byte `from` to byte `end` (its cut, or `u64::MAX`: its end) through
/// `scan`; the first problem (other than a torn tail) is an error.
pub(crate) fn scan_file(
    dir: &Path,
    stream: Stream,
    mut scan: Scan,
    file: Option<std::fs::File>,
    (from, end): (u64, u64),
    f: &mut dyn FnMut(LedgerLine<'_>) -> Result<()>,
) -> Result<(Scan, ReadSummary)> {
    let path = dir.join(stream.file_name());
    let Some(file) = file else {
        return Ok((scan, ReadSummary::default()));
    };
    let mut records = 0u64;
    let mut sink = |c: Committed<'_>| -> std::result::Result<(), SinkError> {
        records += 1;
        f(LedgerLine {
            stream,
            line: c.line,
            record_type: c.record,
            bytes: c.bytes,
            path: &path,
        })
        .map_err(SinkError::Err)
    };
    scan::feed_file(&file, (from, end), &mut scan, &mut sink).map_err(|e| e.into_error(&path))?;
    let torn = scan.finish();
    if let Some(p) = scan.problems.first() {
        return Err(damaged(&path, p.line, &p.message));
    }
    let summary = ReadSummary {
        records,
        torn_tail: torn.map(|t| TornTail::of(&path, t)),
    };
    Ok((scan, summary))
}

/// Every complete record of one file, in file order. The file gets every check of its own
/// (hash, chain, keys, batches, billing rules); the rules between files are [`read`]'s.
/// Damage is an error, a torn tail is reported in the summary and skipped. A missing file has
/// no records.
pub fn for_each_line(
    dir: &Path,
    stream: Stream,
    mut f: impl FnMut(LedgerLine<'_>) -> Result<()>,
) -> Result<ReadSummary> {
    let scan = Scan::new(stream, Mode::Read);
    Ok(scan_file(dir, stream, scan, open(dir, stream)?, (0, u64::MAX), &mut f)?.1)
}

/// Every tenant's balance, from a directory that passes every check (see [`read`]); a
/// privileged record without its audit record is refused too (`Reading::refuse_unaudited`).
pub fn balances(dir: &Path) -> Result<BTreeMap<String, i64>> {
    Ok(read(dir, &[], |_| Ok(()))?.refuse_unaudited(dir)?.balances)
}

/// One tenant's balance (0 when the tenant has no records).
pub fn balance(dir: &Path, tenant_id: &str) -> Result<i64> {
    Ok(balances(dir)?.get(tenant_id).copied().unwrap_or(0))
}
