//! One open ledger file: the descriptor a writer appends to, the scan that indexes it, durable batch writes and reading a recorded line back.
use super::billing::Spent;
use super::key::KeyId;
use super::lines::Lines;
use super::mark::ctime_ns;
use super::prepare::Prepared;
use super::scan::{Head, Scan};
use crate::error::{Error, Result};
use crate::records::canonical::seal;
use crate::records::canonical_ser::encode_str;
use crate::records::template::Template;
use serde_json::{Map, Value};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One record as it stands in the file after `append`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub seq: u64,
    pub idempotency_key: String,
    pub recorded_at: String,
    pub hash: String,
}

/// One open ledger file and the scan that indexes it.
pub(crate) struct FileState {
    pub path: PathBuf,
    pub file: File,
    pub id: (u64, u64),
    pub scan: Scan,
    /// The file's change time as this writer last knew it: before its scan at open, then
    /// after each of its own writes. Another time means another process wrote it since
    /// (appended, or changed it in place).
    pub changed: Option<i128>,
}

impl FileState {
    /// Note the change time this writer's own write left.
    pub fn note_written(&mut self) {
        self.changed = self.file.metadata().ok().map(|m| ctime_ns(&m));
    }
}

/// Chain a checked batch after the file's head as it will be once what is staged before it
/// is written: seq, `recorded_at`, `prev_hash` and `hash` assigned, its lines added to
/// `buf`, and the index, balances and head updated at once, so the next batch of the same
/// group is checked against it. The caller writes `buf` (one `write`, one flush) before it
/// answers anyone, and re-reads the files when that write fails.
pub(crate) fn stage_batch(
    f: &mut FileState,
    batch: &[Prepared],
    buf: &mut Vec<u8>,
) -> Result<Vec<Posted>> {
    let now = recorded_now();
    let mut head = f.scan.head;
    let mut lines = Vec::new();
    let mut posted = Vec::new();
    let mut entries = Vec::new();
    for p in batch {
        let c = chain(&p.template, head, &now)?;
        entries.push((p.key, c.offset));
        lines.extend_from_slice(&c.line);
        head = c.head;
        posted.push(Posted {
            seq: c.seq,
            idempotency_key: p.key_text.clone(),
            recorded_at: now.clone(),
            hash: c.hash,
        });
    }
    buf.extend_from_slice(&lines);
    for (k, offset) in entries {
        f.scan.index.insert(k, offset);
    }
    if let Some(billing) = f.scan.billing.as_mut() {
        // The batch's SPENDs are indexed already, their lines in `buf`.
        let written = Lines::staged_before(&f.file, buf, head.offset);
        let index = &f.scan.index;
        let find = |k: &KeyId| Spent::recorded(index, written, k);
        for op in batch.iter().filter_map(|p| p.billing.as_ref()) {
            let _ = billing.apply(op, false, &find);
        }
    }
    f.scan.resync(head);
    Ok(posted)
}

/// Stage and write one batch alone (opening's audit repair: a failed write fails the open,
/// so nothing keeps the staged state).
pub(crate) fn write_batch(f: &mut FileState, batch: &[Prepared]) -> Result<Vec<Posted>> {
    let before = f.scan.head.offset;
    let mut buf = Vec::new();
    let posted = stage_batch(f, batch, &mut buf)?;
    write_durably(f, &buf, before)?;
    f.note_written();
    Ok(posted)
}

/// A record chained after `head`: its sealed line, seq, offset and the head after it.
pub(crate) struct Chained {
    pub line: Vec<u8>,
    pub hash: String,
    pub seq: u64,
    pub offset: u64,
    pub head: Head,
}

/// `recorded_at` for records staged now: UTC, milliseconds.
fn recorded_now() -> String {
    recorded_at_text(chrono::Utc::now())
}

/// A time as `recorded_at` writes it (UTC, milliseconds): what readers that kept a record's
/// time as a number show again.
pub(crate) fn recorded_at_text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Chain a record encoded with its chain fields left out
/// ([`crate::records::template::CHAIN_FIELDS`]) after `head`: seq, prev_hash and
/// `recorded_at` filled in, then sealed. Nothing is encoded again but those three values.
pub(crate) fn chain(t: &Template, head: Head, recorded_at: &str) -> Result<Chained> {
    let seq = head.seq + 1;
    // Written in place (no string a value): the ledger thread's allocations made glibc
    // consolidate its free lists (docs/performance.md).
    let canonical = t.fill(|key, out| match key {
        "seq" => {
            let _ = std::io::Write::write_fmt(out, format_args!("{seq}"));
        }
        "prev_hash" => match std::str::from_utf8(&head.hash) {
            Ok(hex) => encode_str(out, hex),
            Err(_) => encode_str(out, &head.hash_hex()),
        },
        _ => encode_str(out, recorded_at),
    });
    let (line, hash) = seal(&canonical).map_err(Error::input)?;
    let mut h = [0u8; 64];
    h.copy_from_slice(hash.as_bytes());
    let offset = head.offset;
    let head = Head {
        offset: head.offset + line.len() as u64,
        lines: head.lines + 1,
        seq,
        hash: h,
    };
    Ok(Chained {
        line,
        hash,
        seq,
        offset,
        head,
    })
}

/// One write and one flush of `buf` at the end of `f` (which was `before` bytes long), or
/// nothing at all (best effort).
pub(crate) fn write_durably(f: &FileState, buf: &[u8], before: u64) -> Result<()> {
    crate::failpoint::hit("ledger_before_write");
    if crate::failpoint::armed("ledger_torn_write") {
        // A crash in the middle of the write: half the batch reaches the disk.
        let _ = (&f.file).write_all(&buf[..buf.len() / 2]);
        let _ = f.file.sync_data();
        crate::failpoint::abort("ledger_torn_write");
    }
    let written = (&f.file).write_all(buf).and_then(|()| f.file.sync_data());
    if let Err(e) = written {
        // Take back a partial write so the next writer finds a clean tail.
        let _ = f.file.set_len(before);
        let _ = f.file.sync_all();
        return Err(Error::failure(format!(
            "could not write {}: {e}; nothing was recorded",
            f.path.display()
        ))
        .at(f.path.display().to_string()));
    }
    crate::failpoint::hit("ledger_after_write");
    Ok(())
}

/// The line of `f` starting at `offset`, parsed.
pub(crate) fn read_object(f: &FileState, offset: u64) -> Result<Map<String, Value>> {
    object_at(&f.path, Lines::on_disk(Some(&f.file)), offset)
}

/// The line of the file at `path` starting at `offset` (in `lines`), parsed.
pub(crate) fn object_at(path: &Path, lines: Lines<'_>, offset: u64) -> Result<Map<String, Value>> {
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::failure(format!(
            "{}: cannot read the record at byte {offset}: {e}",
            path.display()
        ))
    };
    let line = lines.line(offset).map_err(|e| unreadable(&e))?;
    serde_json::from_slice(&line).map_err(|e| unreadable(&e))
}

/// A file of a billing-state directory (a ledger file, `heads.json`) opened for reading; None
/// when it does not exist. A link is followed (the directory is the operator's), but a FIFO,
/// folder or device in its place is an input error naming it, never blocked on or read
/// without end (`beneath::open_trusted`): no reader reads and no writer writes past it.
pub(crate) fn open_existing(path: &Path) -> Result<Option<File>> {
    use crate::beneath::Reason;
    match crate::beneath::open_trusted(path) {
        Ok(f) => Ok(Some(f)),
        Err(r) => match r.reason {
            Reason::Missing => Ok(None),
            Reason::NotAFile(_) => Err(Error::input(format!("{r}; nothing was written"))
                .at(path.display().to_string())
                .help("a billing-state file is a regular file (a link to one works): move this one away and put the file back, from a good copy if need be (`platform state pull`)")),
            // Unreadable (permissions...): "<path> cannot be opened: <why>".
            _ => Err(Error::input(r.to_string()).at(path.display().to_string())),
        },
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, &e))
}
