//! Release-backed billing state (SPEC §5, §7): pull the ledger files from the draft release `state_tag` only when they verify against their signed heads, push them back only when they verify and extend what was pulled, heads.json last. The ledger format and the signatures are `crate::ledger` and `crate::heads`.
mod pull;
mod push;
mod record;
mod remote;

pub use pull::{pull_state, PullOptions};
pub use push::{push_state, PushOptions};
pub use record::{extends, head_of_file, prefix_sha256, Head, PulledState, PULLED_FILE};

use crate::audit::{self, Action, Subject};
use crate::error::Result;
use crate::heads::FileHead;
use crate::ledger::{DirLock, Ledger, DEFAULT_LEDGER_LOCK_TIMEOUT, LEDGER_LOCK};
use crate::leftovers::Leftover;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The files that persist between CI runs (SPEC §4); nothing else but heads.json is pulled or pushed.
pub const STATE_FILES: [&str; 3] = ["billing.jsonl", "evidence.jsonl", "audit.jsonl"];

/// What happened to one state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateAction {
    /// Pulled from the release.
    Downloaded,
    /// Local copy already identical to the remote.
    Unchanged,
    /// Not on the release (pull: the ledger starts without it; push: nothing local either).
    Absent,
    /// Pushed to the release.
    Uploaded,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateFile {
    pub name: String,
    pub action: StateAction,
    pub head: Head,
}

/// What was verified (pull) or signed (push) about the heads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Signing {
    /// config/ledger.yml lists no keys: the chains were verified, nothing is signed.
    NotConfigured,
    /// The release holds no state yet.
    Empty,
    /// Signed heads that verify: pulled, uploaded, or already current on the release.
    Signed {
        key_id: String,
        signed_at: String,
        files: BTreeMap<String, FileHead>,
    },
    /// `pull --adopt-unsigned` took records no listed key signed (audited): all of them when
    /// the release had no heads.json, else those past its signed heads.
    AdoptedUnsigned {
        had_heads: bool,
        past_signed_head: BTreeMap<String, u64>,
    },
    /// The release is past its signed heads by this directory's own interrupted push: the
    /// local files are those very files; the next push signs them.
    UnfinishedPush {
        past_signed_head: BTreeMap<String, u64>,
    },
}

/// The outcome of a pull or a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateOutcome {
    pub repository: String,
    pub tag: String,
    pub release_id: Option<u64>,
    /// Pull: the release did not exist (start empty). Push: it was created.
    pub release_missing: bool,
    pub release_created: bool,
    pub dir: PathBuf,
    pub files: Vec<StateFile>,
    pub signing: Signing,
    /// Push: heads.json was uploaded (false: the release's heads were already current).
    pub heads_uploaded: bool,
    /// `push --restore`: why the release was replaced.
    pub restored: Option<String>,
    /// The idempotency key of the audit record this command appended, if any.
    pub audit_key: Option<String>,
    /// What was found and dealt with first: an interrupted pull finished, temp files removed.
    pub notes: Vec<String>,
}

/// The ledger's lock on `dir`, held while a pull or push reads the local files and replaces
/// or uploads them, as every writer holds it around a check-then-append (SPEC §4): an append
/// in between would be renamed over by the pull after its command reported it, or be
/// uploaded past (or torn under) the heads the push signs. Writers wait for it. [`audit`]
/// opens a writer, which takes the lock itself: callers release it first.
pub(crate) fn lock_ledger(dir: &Path) -> Result<DirLock> {
    let mut said = false;
    DirLock::acquire(dir, LEDGER_LOCK, DEFAULT_LEDGER_LOCK_TIMEOUT, |w| {
        if !said {
            let holder = match w.holder.trim() {
                "" => "unknown holder",
                h => h,
            };
            crate::output::progress(&format!(
                "waiting for the ledger lock {} ({holder})",
                w.path.display()
            ));
            said = true;
        }
    })
}

/// The temp entries `state pull` makes in the directory (under the ledger lock): its
/// staging folder and the pull record's temp file.
const PULL_TEMPS: [Leftover<'static>; 3] = [
    Leftover {
        folder: true,
        ..Leftover::file(".state-pull-", "")
    },
    record::RECORD_TEMP,
    record::OLD_RECORD_TEMP,
];

/// The temp entries `state push` makes there: heads.json's and the pull record's.
const PUSH_TEMPS: [Leftover<'static>; 3] = [
    Leftover::file(".heads-", ""),
    record::RECORD_TEMP,
    record::OLD_RECORD_TEMP,
];

/// What a pull or push finds first, under the lock: a pull interrupted while moving its files
/// into place is finished, then temp entries killed runs left are removed; the notes.
fn tidy(dir: &Path, pull: bool) -> Result<Vec<String>> {
    let mut notes = finish_interrupted_pull(dir)?;
    let (temps, by) = match pull {
        true => (&PULL_TEMPS, "platform state pull"),
        false => (&PUSH_TEMPS, "platform state push"),
    };
    notes.extend(crate::leftovers::remove(dir, temps, by));
    Ok(notes)
}

/// Finish a pull that stopped while moving its files into place (the caller holds the
/// lock): its files verified before the move began, so the move is completed, not redone.
fn finish_interrupted_pull(dir: &Path) -> Result<Vec<String>> {
    let Some(moved) = crate::ledger::install::finish(dir)? else {
        return Ok(Vec::new());
    };
    Ok(vec![format!(
        "note: an interrupted `platform state pull` into {} had verified and staged its files; moved into place: {}",
        dir.display(),
        crate::ledger::install::moved_list(&moved)
    )])
}

/// Append the allowed audit record of `what` to `dir`'s audit.jsonl; returns its key. The
/// target names the state acted on, so a replay of the same operation is recorded once.
pub(crate) fn audit(
    dir: &Path,
    what: Action,
    actor: &str,
    target: String,
    reason: &str,
) -> Result<String> {
    let (mut ledger, _) = Ledger::open(dir)?;
    let subject = Subject {
        tenant_id: None,
        target,
    };
    audit::record_allowed(
        &mut ledger,
        what,
        actor,
        &subject,
        Some(truncate(reason, 256)),
    )
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// `seq` of each file, for audit targets: `b12-e40-a3`.
pub(crate) fn seq_label(seqs: &BTreeMap<String, u64>) -> String {
    let get = |n: &str| seqs.get(n).copied().unwrap_or(0);
    format!(
        "b{}-e{}-a{}",
        get("billing.jsonl"),
        get("evidence.jsonl"),
        get("audit.jsonl")
    )
}
