//! The ledger cache: where the last verified state of a billing-state directory ended (a whole read, or the writer of the pass that appended everything since) — per file: inode, change time, length, last seq and hash, key ids — its balances and each work order's last run; a pass then verifies only records appended since.
use super::LedgerUse;
use crate::error::Result;
use crate::ledger::{FileId, LedgerLine, Mark, Stale, Stream};
use crate::runs::history::History;
use crate::runs::last::{compact_history, LastRun, LastRuns};
use crate::runs::Balances;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

const STATE: &str = "ledger.json";
/// Key ids of every record (16 bytes each, files in `Stream::ALL` order): read only when
/// records were appended, to refuse a duplicate key among them.
const KEYS: &str = "ledger-keys.bin";
const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredFile {
    dev: u64,
    ino: u64,
    ctime_ns: i128,
    offset: u64,
    lines: u64,
    seq: u64,
    hash: String,
    keys: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    format: u32,
    build: String,
    state_dir: String,
    files: Vec<StoredFile>,
    keys_sha256: String,
    balances: BTreeMap<String, i64>,
    last_runs: Vec<LastRun>,
}

/// The ledger as a no-op pass needs it, from the cache: every work order's last run (no run
/// is open) and the balances.
pub struct Quick {
    pub history: History,
    pub balances: Balances,
    pub used: LedgerUse,
    pub renewal: Renewal,
    /// What the cache held, when nothing was appended since it was written.
    pub seed: Option<Seed>,
}

/// What a pass's first read of the ledger verified: each work order's last run (none open)
/// and where each file ended. A writer that opens on exactly these heads and is the only one
/// to append renews the cache from it and what it wrote ([`save_written`]), with no whole
/// read at the end of the pass.
#[derive(Debug, Clone)]
pub struct Seed {
    pub last_runs: Vec<LastRun>,
    /// Per file (`Stream::ALL` order): bytes, seq and hash of the last record.
    heads: Vec<(u64, u64, String)>,
}

impl Seed {
    fn of(stored: &Stored, last_runs: Vec<LastRun>) -> Seed {
        let heads = stored
            .files
            .iter()
            .map(|f| (f.offset, f.seq, f.hash.clone()))
            .collect();
        Seed { last_runs, heads }
    }

    /// Whether a writer's heads are the ones this was read at.
    pub fn is_at(&self, heads: &[crate::ledger::HeadInfo]) -> bool {
        self.heads.len() == heads.len()
            && self.heads.iter().zip(heads).all(|((bytes, seq, hash), h)| {
                *bytes == h.bytes && *seq == h.seq && *hash == h.hash
            })
    }
}

/// The cache to write when records were appended since it was (none when nothing was).
#[derive(Default)]
pub struct Renewal(Option<(Stored, Vec<u8>)>);

impl Renewal {
    /// Keep what this read verified.
    pub fn save(self, runtime_dir: &Path) {
        if let Some((stored, keys)) = self.0 {
            save_stored(runtime_dir, &stored, &keys);
        }
    }
}

/// The directory's state from the cache, verifying only what was appended since it was
/// written; `Err(reason)` when it cannot be used (missing, damaged, another build, another
/// directory, a replaced or rewritten file, run records appended, a run left open).
pub fn quick(runtime_dir: &Path, state_dir: &Path) -> std::result::Result<Quick, String> {
    let bytes = super::read(runtime_dir, STATE).ok_or("no cache")?;
    let stored: Stored =
        serde_json::from_slice(&bytes).map_err(|_| "the cache is damaged".to_string())?;
    if stored.format != FORMAT || stored.build != crate::build::id() {
        return Err("the cache is from another build".into());
    }
    if stored.state_dir != dir_name(state_dir) || stored.files.len() != 3 {
        return Err("the cache is of another billing-state directory".into());
    }
    let mut marks = marks_of(&stored, None).ok_or("the cache is damaged")?;
    let mut keys_loaded = false;
    loop {
        if !keys_loaded && grew(state_dir, &marks) {
            marks = load_keys(runtime_dir, &stored).ok_or("the cache's key file is damaged")?;
            keys_loaded = true;
        }
        let (reading, new_marks, records) = verify_since(state_dir, &mut marks, &stored.balances)?
            .map_err(|stale| stale.as_str().to_string())?;
        let moved = (0..3).any(|i| new_marks[i].offset != marks[i].offset);
        if moved && !keys_loaded {
            // Appended after the sizes were looked at: verify again against every old key.
            marks = load_keys(runtime_dir, &stored).ok_or("the cache's key file is damaged")?;
            keys_loaded = true;
            continue;
        }
        return Ok(finish(stored, reading.balances, new_marks, moved, records));
    }
}

type Since = std::result::Result<(crate::ledger::Reading, [Mark; 3], u64), Stale>;

/// Verify the records after `marks` (their keys are moved out); a run record among them
/// needs the whole history.
fn verify_since(
    state_dir: &Path,
    marks: &mut [Mark; 3],
    balances: &BTreeMap<String, i64>,
) -> std::result::Result<Since, String> {
    let mut records = 0u64;
    let mut runs_touched = false;
    let mut f = |line: LedgerLine<'_>| -> Result<()> {
        records += 1;
        runs_touched |= History::uses(line.record_type);
        Ok(())
    };
    let streams = [Stream::Billing, Stream::Evidence, Stream::Audit];
    let read = crate::ledger::read_since(state_dir, marks, balances, &streams, &mut f)
        .map_err(|e| e.message)?;
    if runs_touched {
        return Err("run records were appended".into());
    }
    Ok(read.map(|(reading, marks)| (reading, marks, records)))
}

/// The quick state, and the cache renewed when anything was appended.
fn finish(
    mut stored: Stored,
    balances: Balances,
    marks: [Mark; 3],
    moved: bool,
    records: u64,
) -> Quick {
    let history = compact_history(&stored.last_runs);
    let mut renewal = Renewal::default();
    let mut seed = None;
    let used = if moved {
        stored.balances = balances.clone();
        let keys = set_marks(&mut stored, marks);
        renewal = Renewal(Some((stored, keys)));
        LedgerUse::Appended { records }
    } else {
        let last_runs = std::mem::take(&mut stored.last_runs);
        seed = Some(Seed::of(&stored, last_runs));
        LedgerUse::Hit
    };
    Quick {
        history,
        balances,
        used,
        renewal,
        seed,
    }
}

/// Whether any file is longer than its mark (records were appended).
fn grew(state_dir: &Path, marks: &[Mark; 3]) -> bool {
    Stream::ALL.iter().any(|s| {
        std::fs::metadata(state_dir.join(s.file_name()))
            .is_ok_and(|m| m.len() != marks[s.index()].offset)
    })
}

/// A whole read in little memory: each work order's last run as a compact history (None
/// when a run is open or a repair is pending: then the planner needs the whole history) and
/// the balances; the cache is written from it when `save`.
pub fn load_and_save(
    runtime_dir: &Path,
    state_dir: &Path,
    save: bool,
) -> Result<(Option<Compact>, Balances)> {
    let (read, balances) = read_and_save(runtime_dir, state_dir, save)?;
    let compact = read.map(|(last_runs, stored)| {
        let history = compact_history(&last_runs);
        (history, stored.map(|s| Seed::of(&s, last_runs)))
    });
    Ok((compact, balances))
}

/// Each work order's last run as a history (none open), and the cache written from it.
pub type Compact = (History, Option<Seed>);

/// Each work order's last run (none open), and the cache written from them.
type Settled = (Vec<LastRun>, Option<Stored>);

/// Write the cache anew from a whole read, after a pass appended to the ledger when its
/// writer could not ([`save_written`]): no history is built, since nothing in this pass
/// plans again. The balances that read found.
pub fn renew(runtime_dir: &Path, state_dir: &Path) -> Result<Balances> {
    crate::failpoint::hit("before_cache_read");
    read_and_save(runtime_dir, state_dir, true).map(|(_, balances)| balances)
}

/// Each work order's last run when all are settled, and the balances; the cache saved from
/// them when `save` (removed when they are not settled), and then what it holds (its last
/// runs taken out).
fn read_and_save(
    runtime_dir: &Path,
    state_dir: &Path,
    save: bool,
) -> Result<(Option<Settled>, Balances)> {
    let (last, balances, pending, marks) = crate::runs::load::load_last(state_dir)?;
    let settled = last.settled().filter(|_| !pending);
    let Some(last_runs) = settled else {
        if save {
            remove(runtime_dir);
        }
        return Ok((None, balances));
    };
    if !save {
        return Ok((Some((last_runs, None)), balances));
    }
    let mut stored = save_new(runtime_dir, state_dir, balances, last_runs, marks);
    let last_runs = std::mem::take(&mut stored.last_runs);
    let balances = std::mem::take(&mut stored.balances);
    Ok((Some((last_runs, Some(stored))), balances))
}

/// Write the cache anew from a writer that appended everything since `seed`'s read
/// ([`Seed::is_at`]): its files' marks and balances, and each work order's last run as
/// `last` folded the seed and what was appended (the cache is removed when a run is open).
pub(crate) fn save_written(
    runtime_dir: &Path,
    state_dir: &Path,
    marks: [Mark; 3],
    balances: Balances,
    last: &LastRuns,
) {
    match last.settled() {
        Some(last_runs) => drop(save_new(runtime_dir, state_dir, balances, last_runs, marks)),
        None => remove(runtime_dir),
    }
}

/// Write the cache of a verified state; what it holds.
fn save_new(
    runtime_dir: &Path,
    state_dir: &Path,
    balances: Balances,
    last_runs: Vec<LastRun>,
    marks: [Mark; 3],
) -> Stored {
    let mut stored = Stored {
        format: FORMAT,
        build: crate::build::id(),
        state_dir: dir_name(state_dir),
        files: Vec::new(),
        keys_sha256: String::new(),
        balances,
        last_runs,
    };
    let keys = set_marks(&mut stored, marks);
    save_stored(runtime_dir, &stored, &keys);
    stored
}

/// Remove the cache (a write that failed must not leave an older one to be trusted).
pub fn remove(runtime_dir: &Path) {
    let _ = std::fs::remove_file(super::dir(runtime_dir).join(STATE));
}

/// Keys first, then the state naming their digest: a crash between leaves a state whose key
/// file does not match, which is rebuilt.
fn save_stored(runtime_dir: &Path, stored: &Stored, keys: &[u8]) {
    let ok = serde_json::to_vec(stored).ok().is_some_and(|json| {
        super::write(runtime_dir, KEYS, keys).is_ok()
            && super::write(runtime_dir, STATE, &json).is_ok()
    });
    if !ok {
        remove(runtime_dir);
    }
}

/// Store the marks' heads in `stored` and return the key file's bytes (the marks' keys, moved:
/// the first file's are not copied).
fn set_marks(stored: &mut Stored, marks: [Mark; 3]) -> Vec<u8> {
    let mut keys: Vec<u8> = Vec::new();
    stored.files = marks
        .into_iter()
        .map(|m| {
            let n = m.keys.len();
            if keys.is_empty() {
                keys = m.keys.into_flattened();
            } else {
                keys.extend_from_slice(m.keys.as_flattened());
            }
            StoredFile {
                dev: m.file.dev,
                ino: m.file.ino,
                ctime_ns: m.file.ctime_ns,
                offset: m.offset,
                lines: m.lines,
                seq: m.seq,
                hash: String::from_utf8_lossy(&m.hash).into_owned(),
                keys: n as u64,
            }
        })
        .collect();
    stored.keys_sha256 = crate::digest::sha256_hex(&keys);
    keys
}

/// The marks the cache stores, with the key ids of `keys` (none when not loaded).
fn marks_of(stored: &Stored, keys: Option<&[u8]>) -> Option<[Mark; 3]> {
    let mut at = 0usize;
    let mut marks = Vec::new();
    for f in &stored.files {
        let n = usize::try_from(f.keys).ok()?;
        let ids = match keys {
            Some(k) => k
                .get(at * 16..(at + n) * 16)?
                .chunks_exact(16)
                .map(|c| c.try_into().ok())
                .collect::<Option<Vec<[u8; 16]>>>()?,
            None => Vec::new(),
        };
        at += n;
        let hash: [u8; 64] = f.hash.as_bytes().try_into().ok()?;
        marks.push(Mark {
            file: FileId {
                dev: f.dev,
                ino: f.ino,
                ctime_ns: f.ctime_ns,
            },
            offset: f.offset,
            lines: f.lines,
            seq: f.seq,
            hash,
            keys: ids,
        });
    }
    marks.try_into().ok()
}

/// The marks with their key ids, when the key file is the one the state names.
fn load_keys(runtime_dir: &Path, stored: &Stored) -> Option<[Mark; 3]> {
    let keys = super::read(runtime_dir, KEYS)?;
    let digest = crate::digest::hex(&Sha256::digest(&keys));
    (digest == stored.keys_sha256).then_some(())?;
    let total: u64 = stored.files.iter().map(|f| f.keys).sum();
    (keys.len() as u64 == total.checked_mul(16)?).then_some(())?;
    marks_of(stored, Some(&keys))
}

/// The directory as the cache names it (absolute, links resolved where possible).
fn dir_name(state_dir: &Path) -> String {
    std::fs::canonicalize(state_dir)
        .unwrap_or_else(|_| state_dir.to_path_buf())
        .display()
        .to_string()
}
