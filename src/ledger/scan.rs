//! The one state machine that reads a ledger file: hash chain, seq, keys, batches, billing rules and the torn-tail decision.
//!
//! Open, catch-up, verify, readers and merge all feed lines through [`Scan`], so they agree on
//! what is damage and what is a torn tail. Memory per record is its key id and the offset of
//! its line (about 27 bytes, keyset.rs); records themselves are never kept, and the rare check
//! that needs an earlier record (a duplicate key, a REFUND's SPEND) reads its line back.
use super::accounts::Source;
use super::billing::{Billing, BillingOp, Spent};
use super::cross::{self, Needs, Refs, Side};
use super::key::{key_id, KeyId};
use super::keyset::KeySet;
use super::line::{self, Facts};
use super::lines::{find_newline, Lines, UNKNOWN_OFFSET};
use crate::records::{RecordType, Stream, GENESIS_HASH};

/// A committed line as a reader receives it: its number, its type and its bytes (without `\n`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Committed<'a> {
    pub line: u64,
    pub record: RecordType,
    pub bytes: &'a [u8],
}

/// Receives every line of every complete batch (Read mode).
pub(crate) type Sink<'s, E> = &'s mut dyn FnMut(Committed<'_>) -> Result<(), E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Index keys with offsets, keep balances; stop committing at the first problem (a writer
    /// either repairs the tail or refuses).
    Write,
    /// Check everything, keep going after problems.
    Verify,
    /// Check everything as Verify does, stop committing at the first problem, and hand whole
    /// batches to a sink: readers print figures only from lines that verify.
    Read,
}

/// A position after a committed line: what the next append chains to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub offset: u64,
    pub lines: u64,
    pub seq: u64,
    pub hash: [u8; 64],
}

impl Head {
    pub fn genesis() -> Head {
        let mut hash = [0u8; 64];
        hash.copy_from_slice(GENESIS_HASH.as_bytes());
        Head {
            offset: 0,
            lines: 0,
            seq: 0,
            hash,
        }
    }
    pub fn hash_hex(&self) -> String {
        String::from_utf8_lossy(&self.hash).into_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineProblem {
    pub line: u64,
    pub message: String,
}

/// An incomplete write at the end of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Torn {
    /// First line of the torn region (the start of the incomplete batch).
    pub from_line: u64,
    /// Where the problem shows: the first bad line, or the line after the end for a batch
    /// that stops short.
    pub report_line: u64,
    pub lines: u64,
    pub offset: u64,
    pub bytes: u64,
    pub message: String,
}

struct Pending {
    line: u64,
    end: u64,
    offset: u64,
    seq: u64,
    hash: [u8; 64],
    key: KeyId,
    billing: Option<BillingOp>,
    needs: Needs,
    /// The line's type and bytes, kept for the sink (Read mode).
    read: Option<(RecordType, Vec<u8>)>,
}

/// Where a line is: its number, first byte and the byte after it (its newline included).
#[derive(Clone, Copy)]
struct LineAt {
    line: u64,
    offset: u64,
    end: u64,
}

struct OpenBatch {
    id: String,
    len: u64,
    count: u64,
}

/// Lines since the last clean batch boundary: what a torn tail would remove.
#[derive(Default)]
struct Region {
    lines: u64,
    first_problem: Option<u64>,
    first_message: String,
    /// A line that ended in a newline had a problem: complete lines that fail are damage,
    /// never a torn write (SPEC §7), whatever their position.
    damage: bool,
    batch: Option<(String, u64)>,
    mixed: bool,
    standalone: u64,
}

/// The state of one file being read from its start (or caught up from a committed head).
pub(crate) struct Scan {
    pub stream: Stream,
    pub mode: Mode,
    /// After the last committed line.
    pub head: Head,
    /// After the last batch that committed without problems: where a repair truncates to.
    pub boundary: Head,
    /// Every committed key and the offset of its line (`UNKNOWN_OFFSET` for keys seeded from a
    /// mark).
    pub index: KeySet<u64>,
    /// The file the lines come from, to read one back (set by `feed_file`).
    source: Option<std::fs::File>,
    pub billing: Option<Billing>,
    /// Verify mode: the billing state at the boundary, kept when a batch commits after a
    /// problem. A torn tail's records must not count, and Verify commits them (to check the
    /// rest of the file): [`Scan::finish`] puts this back when the region is a torn tail.
    billing_at_boundary: Option<Billing>,
    /// The same for the run accounts of the references.
    refs_at_boundary: Option<Refs>,
    /// What committed lines need from the other files; None when not collected.
    pub refs: Option<Refs>,
    line: u64,
    offset: u64,
    expect_seq: Option<u64>,
    expect_prev: Option<[u8; 64]>,
    open: Option<OpenBatch>,
    pending: Vec<Pending>,
    region: Region,
    frozen: bool,
    pub problems: Vec<LineProblem>,
}

impl Scan {
    pub fn new(stream: Stream, mode: Mode) -> Scan {
        let head = Head::genesis();
        Scan {
            stream,
            mode,
            head,
            boundary: head,
            index: KeySet::default(),
            source: None,
            billing: (stream == Stream::Billing).then(Billing::default),
            billing_at_boundary: None,
            refs_at_boundary: None,
            refs: Some(Refs::default()),
            line: 0,
            offset: 0,
            expect_seq: Some(1),
            expect_prev: Some(head.hash),
            open: None,
            pending: Vec::new(),
            region: Region::default(),
            frozen: false,
            problems: Vec::new(),
        }
    }

    /// Continue after a batch this process wrote itself at `head`.
    pub fn resync(&mut self, head: Head) {
        self.head = head;
        self.boundary = head;
        self.line = head.lines;
        self.offset = head.offset;
        self.expect_seq = Some(head.seq + 1);
        self.expect_prev = Some(head.hash);
        self.open = None;
        self.pending.clear();
        self.region = Region::default();
        self.frozen = false;
        self.billing_at_boundary = None;
        self.refs_at_boundary = None;
        if let Some(refs) = &mut self.refs {
            refs.forget_cache();
        }
    }

    /// The ids of every key committed in this file, sorted; the scan keeps none.
    pub fn take_key_ids(&mut self) -> Vec<KeyId> {
        std::mem::take(&mut self.index).into_sorted_keys()
    }

    /// Keys committed before the head this scan resumes from (their lines are not known).
    pub fn seed_keys(&mut self, ids: Vec<KeyId>) {
        self.index = KeySet::from_keys(ids, UNKNOWN_OFFSET);
    }

    /// Read lines back from (a handle of) `file`, the one being fed.
    pub fn attach(&mut self, file: &std::fs::File) -> std::io::Result<()> {
        if self.source.is_none() {
            self.source = Some(file.try_clone()?);
        }
        Ok(())
    }

    /// Where this file's committed lines can be read back.
    pub fn lines(&self) -> Lines<'_> {
        Lines::on_disk(self.source.as_ref())
    }

    /// The seq of the committed line at `offset` (0 when it is not known).
    fn seq_at(&self, offset: u64) -> u64 {
        if offset == UNKNOWN_OFFSET {
            return 0;
        }
        let bytes = self.lines().line(offset).unwrap_or_default();
        line::parse(&bytes, false).map_or(0, |f| f.seq)
    }

    /// Bytes fed so far: where reading continues.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Feed the next line (without `\n`) starting at byte `offset`; `sink` receives the
    /// lines of every batch that completes (Read mode only).
    pub fn feed<E>(
        &mut self,
        bytes: &[u8],
        offset: u64,
        terminated: bool,
        sink: Sink<'_, E>,
    ) -> Result<(), E> {
        self.line += 1;
        let ln = self.line;
        let end = offset + bytes.len() as u64 + u64::from(terminated);
        self.offset = end;
        self.region.lines += 1;
        let mut problems: Vec<String> = Vec::new();
        if !terminated {
            problems.push("the last line has no newline: an interrupted write".into());
        }
        let at = LineAt {
            line: ln,
            offset,
            end,
        };
        // The payload digest is computed only when a key is posted again (read back).
        let complete = match line::parse(bytes, false) {
            Err(u) => self.unreadable(u, &mut problems),
            Ok(f) => self.readable(&f, bytes, at, &mut problems),
        };
        if !problems.is_empty() {
            if self.region.first_problem.is_none() {
                self.region.first_problem = Some(ln);
                self.region.first_message = problems[0].clone();
            }
            self.region.damage |= terminated;
            if self.mode != Mode::Verify {
                self.frozen = true;
            }
            for message in problems {
                self.problems.push(LineProblem { line: ln, message });
            }
        }
        if complete {
            self.commit(sink)?;
        }
        Ok(())
    }

    /// A line that is no record: it still counts towards an open batch. Returns whether it
    /// completes one.
    fn unreadable(&mut self, u: line::Unreadable, problems: &mut Vec<String>) -> bool {
        problems.push(u.message);
        self.expect_prev = u.stated_hash;
        self.expect_seq = None;
        let complete = match &mut self.open {
            Some(b) => {
                b.count += 1;
                b.count >= b.len
            }
            None => true,
        };
        if complete {
            self.open = None;
        }
        complete
    }

    /// A record: checked, and kept pending until its batch completes. Returns whether it
    /// completes one.
    fn readable(
        &mut self,
        f: &Facts<'_>,
        bytes: &[u8],
        at: LineAt,
        problems: &mut Vec<String>,
    ) -> bool {
        let key = key_id(&f.key);
        self.check_facts(f, key, at.line, problems);
        let complete = self.track_batch(f, problems);
        let billing = match self.billing {
            Some(_) => BillingOp::of_line(f, key).unwrap_or_else(|e| {
                problems.push(e);
                None
            }),
            None => None,
        };
        let mut needs = match (&mut self.refs, f.record) {
            (Some(refs), Some(record)) => refs
                .needs(f, record, self.stream, at.line, at.offset)
                .unwrap_or_else(|e| {
                    problems.push(e);
                    Needs::default()
                }),
            _ => Needs::default(),
        };
        if self.stream == Stream::Evidence {
            // A run_started before this line (or this line itself) commits whenever this line
            // does: nothing to check later, nothing to keep.
            needs.drop_run_if(|run| {
                *run == key
                    || self.index.contains_key(run)
                    || self.pending.iter().any(|p| p.key == *run)
            });
        }
        self.pending.push(Pending {
            line: at.line,
            end: at.end,
            offset: at.offset,
            seq: f.seq,
            hash: f.hash,
            key,
            billing,
            needs,
            read: match (self.mode, f.record) {
                (Mode::Read, Some(record)) => Some((record, bytes.to_vec())),
                _ => None,
            },
        });
        self.expect_seq = f.seq.checked_add(1);
        self.expect_prev = Some(f.hash);
        complete
    }

    fn check_facts(&mut self, f: &Facts<'_>, id: KeyId, ln: u64, problems: &mut Vec<String>) {
        if !f.hash_ok {
            problems.push(format!(
                "hash mismatch: the line was changed after it was written (hash {})",
                String::from_utf8_lossy(&f.hash)
            ));
        }
        if f.v != crate::records::FORMAT_VERSION {
            problems.push(format!("unsupported format version v={}", f.v));
        }
        if let Some(want) = self.expect_seq {
            if f.seq != want {
                problems.push(format!(
                    "seq is {}, expected {want}: a line was removed, inserted or moved here",
                    f.seq
                ));
            }
        }
        if let Some(prev) = self.expect_prev {
            if f.prev_hash != prev {
                problems.push(if ln == 1 {
                    "prev_hash of the first record must be 64 zeros".into()
                } else {
                    format!(
                        "prev_hash does not match the hash of line {}: the chain is broken (a line was changed, removed, inserted or moved)",
                        ln - 1
                    )
                });
            }
        }
        match f.record.map(RecordType::stream) {
            Some(s) if s == self.stream => {}
            Some(s) => problems.push(format!(
                "a {} record belongs in {}, not {}",
                f.type_name,
                s.file_name(),
                self.stream.file_name()
            )),
            None => problems.push(format!("unknown record type '{}'", f.type_name)),
        }
        let earlier = match self.index.get(&id) {
            Some(offset) => Some(self.seq_at(offset)),
            None => self.pending.iter().find(|p| p.key == id).map(|p| p.seq),
        };
        if let Some(seq) = earlier {
            problems.push(format!(
                "duplicate idempotency_key {} (already recorded with seq {seq})",
                f.key
            ));
        }
    }

    /// Returns true when this line completes a batch (or stands alone).
    fn track_batch(&mut self, f: &Facts<'_>, problems: &mut Vec<String>) -> bool {
        let Some(id) = f.batch.as_deref() else {
            if let Some(b) = self.open.take() {
                problems.push(format!(
                    "batch {} ended after {} of its {} lines",
                    b.id, b.count, b.len
                ));
            }
            self.region.standalone += 1;
            return true;
        };
        let len = f.batch_len.unwrap_or(0);
        match &self.region.batch {
            None => self.region.batch = Some((id.to_string(), len)),
            Some((rid, _)) if rid != id => self.region.mixed = true,
            Some(_) => {}
        }
        if len == 0 {
            problems.push("batch_len must be at least 1".into());
        }
        match &mut self.open {
            Some(b) if b.id == id => {
                b.count += 1;
                if b.len != len {
                    problems.push(format!(
                        "batch_len {len} differs from the {} of the batch's first line",
                        b.len
                    ));
                }
            }
            other => {
                if let Some(b) = other.take() {
                    problems.push(format!(
                        "batch {} ended after {} of its {} lines",
                        b.id, b.count, b.len
                    ));
                }
                *other = Some(OpenBatch {
                    id: id.to_string(),
                    len,
                    count: 1,
                });
            }
        }
        let done = self.open.as_ref().is_some_and(|b| b.count >= b.len);
        if done {
            self.open = None;
        }
        done
    }

    fn commit<E>(&mut self, sink: Sink<'_, E>) -> Result<(), E> {
        let mut pending = std::mem::take(&mut self.pending);
        if self.frozen {
            pending.clear();
            self.pending = pending;
            return Ok(());
        }
        // Past the boundary with a problem (only Verify commits there): what the balances
        // were, in case this turns out to be a torn tail. Rare: once per damaged file.
        if self.region.first_problem.is_some() && self.billing_at_boundary.is_none() {
            self.billing_at_boundary = self.billing.clone();
            self.refs_at_boundary = self.refs.clone();
        }
        for p in &mut pending {
            self.index.insert(p.key, p.offset);
            if let Some((record, bytes)) = &p.read {
                let line = p.line;
                sink(Committed {
                    line,
                    record: *record,
                    bytes,
                })?;
            }
            if let Some(refs) = &mut self.refs {
                if let Err(message) = refs.commit(std::mem::take(&mut p.needs)) {
                    self.problems.push(LineProblem {
                        line: p.line,
                        message,
                    });
                }
            }
            if let (Some(billing), Some(op)) = (self.billing.as_mut(), p.billing.as_ref()) {
                let (index, lines) = (&self.index, Lines::on_disk(self.source.as_ref()));
                let find = |k: &KeyId| Spent::recorded(index, lines, k);
                if let Err(broken) = billing.apply(op, false, &find) {
                    self.problems.push(LineProblem {
                        line: p.line,
                        message: broken.message,
                    });
                }
            }
        }
        if let Some(last) = pending.last() {
            self.head = Head {
                offset: last.end,
                lines: last.line,
                seq: last.seq,
                hash: last.hash,
            };
        }
        if self.region.first_problem.is_none() {
            self.head.offset = self.offset;
            self.head.lines = self.line;
            self.boundary = self.head;
            self.region = Region::default();
        }
        // Keep the allocation: most batches are one line, and this runs for every line.
        pending.clear();
        self.pending = pending;
        Ok(())
    }

    /// At end of file: decide whether what follows the last clean batch is a torn tail: an
    /// incomplete last batch whose complete lines each verify, or an unterminated last line
    /// (SPEC §7). When it is, the region's problems are replaced by one torn-tail problem and
    /// the scan is rewound to the boundary (so a writer can truncate there and carry on).
    pub fn finish(&mut self) -> Option<Torn> {
        let r = std::mem::take(&mut self.region);
        if r.lines == 0 {
            return None;
        }
        let torn = if r.mixed || r.damage {
            false
        } else if r.standalone > 0 {
            r.lines == 1
        } else if let Some((_, len)) = &r.batch {
            r.lines <= *len
        } else {
            r.lines == 1
        };
        if !torn {
            if let Some(b) = self.open.take() {
                self.problems.push(LineProblem {
                    line: self.line + 1,
                    message: format!(
                        "batch {} ended after {} of its {} lines at the end of the file",
                        b.id, b.count, b.len
                    ),
                });
            }
            self.region = r;
            return None;
        }
        let b = self.boundary;
        let (report_line, message) = match r.first_problem {
            Some(line) => (line, format!("torn tail: {}", r.first_message)),
            None => {
                let (id, count, len) = self
                    .open
                    .as_ref()
                    .map_or((String::new(), 0, 0), |o| (o.id.clone(), o.count, o.len));
                (
                    self.line + 1,
                    format!("torn tail: batch {id} has {count} of its {len} lines (an interrupted write)"),
                )
            }
        };
        let t = Torn {
            from_line: b.lines + 1,
            report_line,
            lines: r.lines,
            offset: b.offset,
            bytes: self.offset - b.offset,
            message,
        };
        self.problems.retain(|p| p.line <= b.lines);
        if self.mode == Mode::Verify && self.head != b {
            self.rewind_verify_commits(b);
        }
        // Rewound to the boundary, as if the torn lines had never been read.
        self.resync(b);
        Some(t)
    }

    /// Verify commits batches that had problems; a torn tail's keys, references and credits
    /// must not linger (a reader's balances come from a Verify scan).
    fn rewind_verify_commits(&mut self, b: Head) {
        self.index
            .retain(|_, offset| offset == UNKNOWN_OFFSET || offset < b.offset);
        if let Some(refs) = &mut self.refs {
            refs.rewind(b.lines, self.refs_at_boundary.take());
        }
        if let Some(billing) = self.billing_at_boundary.take() {
            self.billing = Some(billing);
        }
    }
}

/// The cross-file rules over the three scans of a directory (indexed by `Stream::index`),
/// each with the path of its file.
pub(crate) fn check_across(scans: [&Scan; 3], paths: [&std::path::Path; 3]) -> cross::Findings {
    let side = |i: usize| Side {
        refs: scans[i].refs.as_ref(),
        source: Source {
            stream: scans[i].stream,
            index: &scans[i].index,
            lines: scans[i].lines(),
            file: scans[i].source.as_ref(),
            path: paths[i],
        },
    };
    cross::check([side(0), side(1), side(2)])
}

/// Feed a whole byte range of a file to a scan, line by line, reading in chunks.
pub(crate) fn feed_file<E: From<std::io::Error>>(
    file: &std::fs::File,
    (start, end): (u64, u64),
    scan: &mut Scan,
    sink: Sink<'_, E>,
) -> Result<(), E> {
    use std::os::unix::fs::FileExt;
    const CHUNK: usize = 1 << 20;
    scan.attach(file)?;
    if start == 0 {
        // A whole file: room for as many keys as its lines can hold (a record's line holds
        // two 64-digit hashes). A tail (catch-up, resume) grows the index by its merges
        // instead, which are geometric: reserving each small tail exactly would move the
        // whole index every time.
        const MIN_RECORD_BYTES: u64 = 128;
        let len = file.metadata()?.len();
        let most = usize::try_from(len / MIN_RECORD_BYTES).unwrap_or(0);
        scan.index.reserve(most);
        if let Some(refs) = &mut scan.refs {
            // Each run's account: a run has at least one record in this file (address space
            // again, for the same reason).
            refs.reserve(scan.stream, most);
        }
    }
    let mut buf = vec![0u8; CHUNK];
    let mut carry: Vec<u8> = Vec::new();
    let mut pos = start;
    let mut line_start = start;
    loop {
        // Up to the cut: what was appended since is a later reader's.
        let room = usize::try_from(end.saturating_sub(pos))
            .unwrap_or(CHUNK)
            .min(CHUNK);
        if room == 0 {
            break;
        }
        let n = match file.read_at(&mut buf[..room], pos) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        let mut s = 0;
        while let Some(k) = find_newline(&chunk[s..]) {
            let e = s + k;
            if carry.is_empty() {
                scan.feed(&chunk[s..e], line_start, true, sink)?;
            } else {
                carry.extend_from_slice(&chunk[s..e]);
                scan.feed(&carry, line_start, true, sink)?;
                carry.clear();
            }
            line_start = pos + e as u64 + 1;
            s = e + 1;
        }
        carry.extend_from_slice(&chunk[s..]);
        pos += n as u64;
    }
    if !carry.is_empty() {
        scan.feed(&carry, line_start, false, sink)?;
    }
    Ok(())
}
