//! The ledger cache: where the last whole verified read of a billing-state directory ended (per file: inode, change time, length, last seq and hash, key ids), its balances and each work order's last run; a pass then verifies only records appended since.
use super::LedgerUse;
use crate::error::Result;
use crate::ledger::{FileId, LedgerLine, Mark, Stale, Stream};
use crate::records::RunStatus;
use crate::runs::history::{History, RunEnd, RunHistory};
use crate::runs::{Balances, RunTotals};
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

/// The one run of a work order the planner needs when none is open: its last.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LastRun {
    tenant_id: String,
    work_order_id: String,
    run: u64,
    run_id: String,
    work_order_sha256: Option<String>,
    attempt: u32,
    status: RunStatus,
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
    if stored.format != FORMAT || stored.build != super::build_id() {
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
        let (reading, new_marks, records) = verify_since(state_dir, &marks, &stored.balances)?
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

/// Verify the records after `marks`; a run record among them needs the whole history.
fn verify_since(
    state_dir: &Path,
    marks: &[Mark; 3],
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
    let used = if moved {
        stored.balances = balances.clone();
        let keys = set_marks(&mut stored, &marks);
        renewal = Renewal(Some((stored, keys)));
        LedgerUse::Appended { records }
    } else {
        LedgerUse::Hit
    };
    Quick {
        history,
        balances,
        used,
        renewal,
    }
}

/// Whether any file is longer than its mark (records were appended).
fn grew(state_dir: &Path, marks: &[Mark; 3]) -> bool {
    Stream::ALL.iter().any(|s| {
        std::fs::metadata(state_dir.join(s.file_name()))
            .is_ok_and(|m| m.len() != marks[s.index()].offset)
    })
}

/// Every record read (the whole directory, as `integrity-validate` checks it), and the
/// cache written from it when no run is open and nothing awaits a repair.
pub fn load_and_save(
    runtime_dir: &Path,
    state_dir: &Path,
    save: bool,
) -> Result<(History, RunTotals, Balances)> {
    let (history, totals, balances, marks) = crate::runs::load::load_marked(state_dir)?;
    if save {
        save_state(runtime_dir, state_dir, &history, &balances, &marks);
    }
    Ok((history, totals, balances))
}

/// Write the cache of a whole read (nothing when a run is open or a repair is pending: the
/// next pass needs the whole history then anyway).
fn save_state(
    runtime_dir: &Path,
    state_dir: &Path,
    history: &History,
    balances: &Balances,
    marks: &[Mark; 3],
) {
    let Some(last_runs) = last_runs(history).filter(|_| !history.repairs_pending) else {
        remove(runtime_dir);
        return;
    };
    let mut stored = Stored {
        format: FORMAT,
        build: super::build_id(),
        state_dir: dir_name(state_dir),
        files: Vec::new(),
        keys_sha256: String::new(),
        balances: balances.clone(),
        last_runs,
    };
    let keys = set_marks(&mut stored, marks);
    save_stored(runtime_dir, &stored, &keys);
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

/// Store the marks' heads in `stored` and return the key file's bytes.
fn set_marks(stored: &mut Stored, marks: &[Mark; 3]) -> Vec<u8> {
    let mut keys = Vec::with_capacity(marks.iter().map(|m| m.keys.len() * 16).sum());
    stored.files = marks
        .iter()
        .map(|m| {
            keys.extend(m.keys.iter().flatten());
            StoredFile {
                dev: m.file.dev,
                ino: m.file.ino,
                ctime_ns: m.file.ctime_ns,
                offset: m.offset,
                lines: m.lines,
                seq: m.seq,
                hash: String::from_utf8_lossy(&m.hash).into_owned(),
                keys: m.keys.len() as u64,
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

/// Each work order's last run, when no run is open (else None: the planner needs every
/// open run's steps).
fn last_runs(history: &History) -> Option<Vec<LastRun>> {
    let mut out = Vec::with_capacity(history.work_orders.len());
    for ((tenant, wo), runs) in &history.work_orders {
        if runs.values().any(RunHistory::is_open) {
            return None;
        }
        let Some(last) = runs.values().next_back() else {
            continue;
        };
        let end = last.last_end()?;
        out.push(LastRun {
            tenant_id: tenant.clone(),
            work_order_id: wo.clone(),
            run: last.run,
            run_id: last.run_id.clone(),
            work_order_sha256: last.work_order_sha256.clone(),
            attempt: end.attempt,
            status: end.status,
        });
    }
    Some(out)
}

/// A history with each work order's last run alone, ended and without steps: what the
/// planner reads to find a work order up to date. Any other decision needs the whole
/// history, which the orchestrator then reads.
fn compact_history(last_runs: &[LastRun]) -> History {
    let mut history = History::default();
    for l in last_runs {
        let run = RunHistory {
            run: l.run,
            run_id: l.run_id.clone(),
            work_order_sha256: l.work_order_sha256.clone(),
            started: true,
            ends: BTreeMap::from([(
                l.attempt,
                RunEnd {
                    attempt: l.attempt,
                    status: l.status,
                },
            )]),
            ..RunHistory::default()
        };
        history
            .work_orders
            .entry((l.tenant_id.clone(), l.work_order_id.clone()))
            .or_default()
            .insert(l.run, run);
    }
    history
}

/// The directory as the cache names it (absolute, links resolved where possible).
fn dir_name(state_dir: &Path) -> String {
    std::fs::canonicalize(state_dir)
        .unwrap_or_else(|_| state_dir.to_path_buf())
        .display()
        .to_string()
}
