//! One open ledger file: the descriptor a writer appends to, the scan that indexes it, durable batch writes and reading a recorded line back.
use super::prepare::Prepared;
use super::scan::{self, Head, IndexEntry, Scan};
use crate::error::{Error, Result};
use crate::records::canonical::{encode_object, seal};
use serde_json::{Map, Value};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
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
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let mut head = f.scan.head;
    let mut lines = Vec::new();
    let mut posted = Vec::new();
    let mut entries = Vec::new();
    for p in batch {
        let mut obj = p.object.clone();
        obj.insert("recorded_at".into(), Value::String(now.clone()));
        let c = chain(obj, head, p.digest)?;
        entries.push((p.key, c.entry));
        lines.extend_from_slice(&c.line);
        head = c.head;
        posted.push(Posted {
            seq: c.entry.seq,
            idempotency_key: p.key_text.clone(),
            recorded_at: now.clone(),
            hash: c.hash,
        });
    }
    buf.extend_from_slice(&lines);
    for (k, e) in entries {
        f.scan.index.insert(k, e);
    }
    if let Some(billing) = f.scan.billing.as_mut() {
        for op in batch.iter().filter_map(|p| p.billing.as_ref()) {
            let _ = billing.apply(op, false);
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
    Ok(posted)
}

/// A record chained after `head`: its sealed line, index entry and the head after it.
pub(crate) struct Chained {
    pub line: Vec<u8>,
    pub hash: String,
    pub entry: IndexEntry,
    pub head: Head,
}

/// Chain `obj` (a record without seq, prev_hash and hash) after `head`: seq and prev_hash
/// set, encoded canonically and sealed. `payload` is its payload digest, for the index.
pub(crate) fn chain(mut obj: Map<String, Value>, head: Head, payload: [u8; 32]) -> Result<Chained> {
    let seq = head.seq + 1;
    obj.insert("seq".into(), Value::from(seq));
    obj.insert("prev_hash".into(), Value::String(head.hash_hex()));
    let canonical = encode_object(&obj).map_err(Error::input)?;
    let (line, hash) = seal(&canonical).map_err(Error::input)?;
    let mut h = [0u8; 64];
    h.copy_from_slice(hash.as_bytes());
    let entry = IndexEntry {
        seq,
        offset: head.offset,
        payload,
    };
    let head = Head {
        offset: head.offset + line.len() as u64,
        lines: head.lines + 1,
        seq,
        hash: h,
    };
    Ok(Chained {
        line,
        hash,
        entry,
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

/// A group's lines staged for a file and not written yet: they start at byte `at`. A batch
/// later in the same group that replays (or conflicts with) one of them reads it here.
#[derive(Clone, Copy)]
pub(crate) struct Unwritten<'a> {
    pub at: u64,
    pub bytes: &'a [u8],
}

/// The line starting at `offset`, parsed, from the staged lines when it is one of them.
pub(crate) fn read_staged_object(
    f: &FileState,
    offset: u64,
    staged: Unwritten,
) -> Result<Map<String, Value>> {
    let rest = offset
        .checked_sub(staged.at)
        .and_then(|rel| usize::try_from(rel).ok())
        .and_then(|rel| staged.bytes.get(rel..))
        .filter(|rest| !rest.is_empty());
    let Some(rest) = rest else {
        return read_object(f, offset);
    };
    let line = &rest[..scan::find_newline(rest).unwrap_or(rest.len())];
    parse_line(f, offset, line)
}

/// The line starting at `offset`, parsed.
pub(crate) fn read_object(f: &FileState, offset: u64) -> Result<Map<String, Value>> {
    let mut line = Vec::new();
    let mut buf = vec![0u8; 4096];
    let mut pos = offset;
    loop {
        let n = f
            .file
            .read_at(&mut buf, pos)
            .map_err(|e| Error::io(&f.path, &e))?;
        if n == 0 {
            break;
        }
        if let Some(k) = scan::find_newline(&buf[..n]) {
            line.extend_from_slice(&buf[..k]);
            break;
        }
        line.extend_from_slice(&buf[..n]);
        pos += n as u64;
    }
    parse_line(f, offset, &line)
}

fn parse_line(f: &FileState, offset: u64, line: &[u8]) -> Result<Map<String, Value>> {
    serde_json::from_slice(line).map_err(|e| {
        Error::failure(format!(
            "{}: cannot read the record at byte {offset}: {e}",
            f.path.display()
        ))
    })
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, &e))
}
