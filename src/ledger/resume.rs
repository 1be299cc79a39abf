//! A read that verifies only the records appended after a set of marks (a derived cache keeps the marks; the files stay the only truth).
use super::billing::Billing;
use super::cut::Cut;
use super::mark::{FileId, Mark};
use super::read::{conclude, scan_file, LedgerLine, Reading};
use super::scan::{Mode, Scan};
use super::{line, Stream};
use crate::error::Result;
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Why the records after a set of marks could not be verified on their own: the caller reads
/// the whole directory instead (which reports any damage precisely).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// Another file (inode) than the one marked: replaced or copied over.
    Replaced,
    /// Shorter than marked, or the record at the mark is not the one marked.
    Rewritten,
    /// Same length, but written in place since it was marked.
    Changed,
    /// A record after the mark does not verify on its own (damage, a torn tail, a missing
    /// audit record, a refund of a SPEND before the mark, a duplicate key), or touches a
    /// run's account (a SPEND, REFUND, `run_started` or `run_ended`: checked over the whole
    /// history).
    Unverified,
}

impl Stale {
    pub fn as_str(self) -> &'static str {
        match self {
            Stale::Replaced => "a ledger file was replaced",
            Stale::Rewritten => "a ledger file was rewritten",
            Stale::Changed => "a ledger file changed in place",
            Stale::Unverified => "the appended records need a whole read",
        }
    }
}

/// The directory read from `marks` on: each file must be the marked one with the marked
/// record at the mark; only what follows is verified (hash chain from the marked head, keys
/// against the marked ones, billing rules from `balances`, the rules between files) and
/// handed to `f`. Returns the reading (balances of all records) and the new marks; the keys
/// of `marks` are moved into the scans (and from them into the new marks).
pub(crate) fn read_since(
    dir: &Path,
    marks: &mut [Mark; 3],
    balances: &BTreeMap<String, i64>,
    streams: &[Stream],
    f: &mut dyn FnMut(LedgerLine<'_>) -> Result<()>,
) -> Result<std::result::Result<(Reading, [Mark; 3]), Stale>> {
    let mut scans = Vec::new();
    let mut files = Vec::new();
    let mut ids = Vec::new();
    let mut cut = Cut::take(dir)?;
    for stream in Stream::ALL {
        let mark = &mut marks[stream.index()];
        let (file, end) = cut.take_file(stream);
        let id = FileId::of(file.as_ref()).map_err(|e| crate::Error::io(dir, &e))?;
        if let Err(stale) = same_file(file.as_ref(), id, mark) {
            return Ok(Err(stale));
        }
        let mode = if streams.contains(&stream) {
            Mode::Read
        } else {
            Mode::Verify
        };
        let mut scan = Scan::new(stream, mode);
        scan.resync(mark.head());
        scan.seed_keys(std::mem::take(&mut mark.keys));
        if stream == Stream::Billing {
            scan.billing = Some(Billing::with_balances(balances));
        }
        let Ok((scan, summary)) = scan_file(dir, stream, scan, file, (mark.offset, end), f) else {
            return Ok(Err(Stale::Unverified));
        };
        if summary.torn_tail.is_some() {
            return Ok(Err(Stale::Unverified));
        }
        scans.push(scan);
        files.push(summary);
        ids.push(id);
    }
    let Ok(mut scans) = <[Scan; 3]>::try_from(scans) else {
        return Ok(Err(Stale::Unverified));
    };
    // A run's account (its SPENDs and REFUNDs against its run_started and run_ended) is
    // checked over the whole history: appended records that touch one need a whole read.
    if scans
        .iter()
        .any(|s| s.refs.as_ref().is_some_and(|r| r.has_accounts()))
    {
        return Ok(Err(Stale::Unverified));
    }
    let reading = match conclude(dir, &scans, files) {
        Ok(r) if !r.repairs_pending() => r,
        _ => return Ok(Err(Stale::Unverified)),
    };
    let marks = [0, 1, 2].map(|i| Mark::take(&mut scans[i], ids[i]));
    Ok(Ok((reading, marks)))
}

/// The open file is the marked one, at least as long, and its record at the mark is the
/// marked one.
fn same_file(
    file: Option<&std::fs::File>,
    id: FileId,
    mark: &Mark,
) -> std::result::Result<(), Stale> {
    if (id.dev, id.ino) != (mark.file.dev, mark.file.ino) {
        return Err(Stale::Replaced);
    }
    let Some(file) = file else {
        return Ok(());
    };
    let len = file.metadata().map_err(|_| Stale::Replaced)?.len();
    if len < mark.offset {
        return Err(Stale::Rewritten);
    }
    if len == mark.offset && id.ctime_ns != mark.file.ctime_ns {
        return Err(Stale::Changed);
    }
    match last_line(file, mark.offset) {
        None if mark.offset == 0 => Ok(()),
        Some(bytes) => match line::parse(&bytes, false) {
            Ok(f) if f.hash_ok && f.hash == mark.hash && f.seq == mark.seq => Ok(()),
            _ => Err(Stale::Rewritten),
        },
        None => Err(Stale::Rewritten),
    }
}

/// The line that ends (with its newline) at byte `end`, without the newline.
fn last_line(file: &std::fs::File, end: u64) -> Option<Vec<u8>> {
    if end == 0 {
        return None;
    }
    let mut window: u64 = 4096;
    loop {
        let start = end.saturating_sub(window);
        let mut buf = vec![0u8; usize::try_from(end - start).ok()?];
        file.read_exact_at(&mut buf, start).ok()?;
        if buf.last() != Some(&b'\n') {
            return None;
        }
        buf.pop();
        if let Some(nl) = buf.iter().rposition(|&c| c == b'\n') {
            return Some(buf.split_off(nl + 1));
        }
        if start == 0 {
            return Some(buf);
        }
        // Lines are at most a few MiB (SPEC §6 caps a record at 1 MiB).
        window = window.checked_mul(4).filter(|w| *w <= 64 << 20)?;
    }
}
