//! Append-only JSONL ledger of a billing-state directory. Owns locking, idempotency, hash chains, torn-tail repair, verify and merge; knows nothing of work orders.
//!
//! Three files (`billing.jsonl`, `evidence.jsonl`, `audit.jsonl`) are the only source of
//! truth; balances and indexes are derived from them. Writers go through [`Ledger`]; readers
//! use [`read`] or [`for_each_line`], which hand over each line with its record type, and
//! never take the writer lock. docs/ledger.md explains the design, docs/records.md the line
//! format.
mod accounts;
mod billing;
mod check;
mod commit;
mod cross;
mod cut;
mod file;
pub mod install;
mod key;
mod keyset;
mod line;
mod lines;
pub mod lock;
mod mark;
mod merge;
mod open;
mod prepare;
mod read;
mod resume;
mod scan;
mod serve;
mod shared;
mod verify;
mod writer;

pub use crate::records::Stream;
pub use check::{AppendOutcome, AppendStatus};
pub use commit::Refusal;
pub use file::Posted;
pub(crate) use file::{open_existing, recorded_at_text};
pub use lock::{DirLock, LockWait, DEFAULT_LEDGER_LOCK_TIMEOUT, LEDGER_LOCK};
pub(crate) use mark::{FileId, Mark};
pub use merge::{merge, MergeFile, MergeReport};
pub(crate) use read::read_marked;
pub use read::{
    balance, balances, for_each_line, read, LedgerLine, ReadSummary, Reading, TornTail, Unaudited,
};
pub(crate) use resume::read_since;
pub use resume::Stale;
pub use shared::{SharedLedger, Ticket};
pub use verify::{verify, FileReport, Problem, VerifyReport};
pub use writer::{HeadInfo, Ledger, SpendInfo};

use crate::error::{Error, Result};
use crate::records::{Audit, Decision, Payload};

/// What a writer repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairKind {
    /// Removed an incomplete last batch or an unterminated last line.
    TornTail,
    /// Added the audit record a privileged record lacked (a crash between the two writes).
    AuditAdded,
    /// Moved into place the files a `state pull` had staged when it stopped (`install`).
    InstallFinished,
}

/// A repair a writer made before appending; every command that writes reports these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    pub kind: RepairKind,
    /// Path of the file that was changed.
    pub file: String,
    pub stream: Stream,
    /// First line removed (TornTail), or the line added (AuditAdded).
    pub from_line: u64,
    pub lines_removed: u64,
    pub bytes_removed: u64,
    /// What was wrong.
    pub reason: String,
}

impl Repair {
    /// `err`, naming the repairs a writer made before it failed: a writer reports every
    /// repair, even on its way to a refusal (SPEC §4, §7), so "nothing was written" never
    /// hides a torn tail removed or an audit record added.
    pub fn reported_in(mut err: crate::error::Error, repairs: &[Repair]) -> crate::error::Error {
        if !repairs.is_empty() {
            err.message
                .push_str(" (before that, the ledger was repaired: ");
            let all: Vec<String> = repairs.iter().map(ToString::to_string).collect();
            err.message.push_str(&all.join("; "));
            err.message.push(')');
        }
        err
    }
}

impl std::fmt::Display for Repair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            RepairKind::TornTail => write!(
                f,
                "repaired {}: removed an interrupted write of {} line(s), {} bytes, from line {} ({})",
                self.file, self.lines_removed, self.bytes_removed, self.from_line, self.reason
            ),
            RepairKind::AuditAdded => write!(
                f,
                "repaired {}: added line {}, the audit record of {}",
                self.file, self.from_line, self.reason
            ),
            RepairKind::InstallFinished => write!(
                f,
                "repaired {}: an interrupted `platform state pull` had staged its files in {}; moved into place: {}",
                self.file, install::INSTALL_DIR, self.reason
            ),
        }
    }
}

/// A key part that never repeats: UTC time in nanoseconds, pid and 64 random bits.
pub fn unique_event_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = chrono::Utc::now();
    // RandomState is seeded from the OS per process; hashing a counter gives fresh bits.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_i64(now.timestamp_nanos_opt().unwrap_or_default());
    format!(
        "{}-{}-{:016x}",
        now.format("%Y%m%dT%H%M%S%.9fZ"),
        std::process::id(),
        h.finish()
    )
}

impl Ledger {
    /// Append one audit record: an allowed action under `audit/{action}/{target}` (replays
    /// are no-ops), a denial under a unique key (every denial is its own event), its
    /// caller-supplied fields capped (`Audit::capped`).
    pub fn audit(&mut self, audit: Audit) -> Result<AppendOutcome> {
        let payload = match audit.decision {
            Decision::Allowed => Payload::new(audit),
            // A denial keeps at most 256 characters of each caller-supplied field.
            Decision::Denied => Payload::audit_denied(audit.capped(), &unique_event_id()),
        };
        self.append(Stream::Audit, vec![payload])
    }
}

/// Errors inside a line sink: I/O of the scan, or the caller's own.
pub(crate) enum SinkError {
    Io(std::io::Error),
    Err(Error),
}

impl From<std::io::Error> for SinkError {
    fn from(e: std::io::Error) -> Self {
        SinkError::Io(e)
    }
}

impl From<Error> for SinkError {
    fn from(e: Error) -> Self {
        SinkError::Err(e)
    }
}

impl SinkError {
    pub(crate) fn into_error(self, path: &std::path::Path) -> Error {
        match self {
            SinkError::Io(e) => Error::io(path, &e),
            SinkError::Err(e) => e,
        }
    }
}

pub(crate) fn damaged(path: &std::path::Path, line: u64, message: &str) -> Error {
    Error::failure(format!("{} is damaged at line {line}: {message}", path.display())).topic(crate::error::Topic::LedgerDamaged)
        .at(format!("{}:{line}", path.display()))
        .help("run `platform integrity-validate` to list every problem, then restore the file from a good copy")
}

/// The one error for a billing-state directory that is not there (every command that needs
/// one to exist says this, with this help).
pub fn missing_dir(dir: &std::path::Path) -> Error {
    // A file (or a folder under one) where the directory should be: said as such.
    if let Some(e) = crate::folder::not_a_folder(dir, "billing-state directory") {
        return e;
    }
    Error::input(format!(
        "billing-state directory {} does not exist",
        dir.display()
    ))
    .at(dir.display().to_string())
    .help("pass the --billing-state-dir a writer (orchestrator, admin-topup) used, or run `platform state pull` first")
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_ids_do_not_repeat() {
        let a = super::unique_event_id();
        let b = super::unique_event_id();
        assert_ne!(a, b);
        assert!(a.contains(&format!("-{}-", std::process::id())));
    }
}
