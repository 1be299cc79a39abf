//! Replacing a billing-state directory's files with staged ones (`state pull`) so that a crash leaves a move to finish, never a half-replaced ledger: the complete folder is renamed to [`INSTALL_DIR`] in one step, then its files into place; whoever next holds the directory's lock finishes a move that was interrupted.
use super::file::sync_dir;
use super::{Repair, RepairKind, Stream};
use crate::error::{Error, Result};
use std::path::Path;

/// The order a merge or an install replaces the target's files: audit, then evidence, then
/// billing. A file's new records mostly need records of the files before it (a TOPUP its
/// audit record, a SPEND its run's `run_started`); what they need of the files after it (a
/// `run_ended`'s charges, an audit record's own record) is a shortfall
/// (`Damage::shortfall`) that a crash between two renames may leave, and the same merge
/// again (or the next writer, for an install) completes it.
pub(crate) const REPLACE_ORDER: [Stream; 3] = [Stream::Audit, Stream::Evidence, Stream::Billing];

/// The staged folder once it is complete: its presence means "move my files into place".
pub const INSTALL_DIR: &str = ".ledger-install";

/// Move the files of `staged` (a complete folder inside `dir`, regular files only) into
/// `dir`: the ledger files in [`REPLACE_ORDER`] (a crash between two renames leaves what the
/// rules across files accept, as after a merge), then the others in name order, names
/// starting with a dot last (the caller's record that the install happened). The caller
/// holds the directory's ledger lock, and finished any earlier install ([`finish`]).
pub fn install(dir: &Path, staged: &Path) -> Result<Vec<String>> {
    let pending = dir.join(INSTALL_DIR);
    std::fs::rename(staged, &pending).map_err(|e| Error::io(&pending, &e))?;
    sync_dir(dir)?;
    Ok(finish(dir)?.unwrap_or_default())
}

/// Finish an install a crash interrupted (the caller holds the lock): the names moved, or
/// None when none was pending (one `stat`).
pub fn finish(dir: &Path) -> Result<Option<Vec<String>>> {
    let pending = dir.join(INSTALL_DIR);
    match std::fs::symlink_metadata(&pending) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&pending, &e)),
        Ok(m) if !m.file_type().is_dir() => return Err(not_ours(&pending, "is not a folder")),
        Ok(_) => {}
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&pending).map_err(|e| Error::io(&pending, &e))? {
        let entry = entry.map_err(|e| Error::io(&pending, &e))?;
        let path = entry.path();
        // Not followed: a link or folder here is nothing an install staged.
        let kind = entry.file_type().map_err(|e| Error::io(&path, &e))?;
        let name = entry.file_name().into_string().ok();
        match name {
            Some(name) if kind.is_file() => names.push(name),
            _ => return Err(not_ours(&path, "is not a regular file an install staged")),
        }
    }
    names.sort_by_key(|n| order_of(n));
    for name in &names {
        let to = dir.join(name);
        std::fs::rename(pending.join(name), &to).map_err(|e| Error::io(&to, &e))?;
        crate::failpoint::hit("ledger_install_moved");
    }
    sync_dir(dir)?;
    std::fs::remove_dir(&pending).map_err(|e| Error::io(&pending, &e))?;
    Ok(Some(names))
}

/// A shortfall between the files of `dir` (`Damage::shortfall`, first at `at`) while an
/// install is pending: that move not finished yet, which a reader (no writer lock) cannot
/// finish; None when no install is pending. Until 2026-12-04 readers called it "a forgery,
/// or a copy cut back" and said to restore the directory.
pub(crate) fn unfinished(dir: &Path, at: &str) -> Option<String> {
    pending(dir).then(|| {
        format!(
            "a `platform state pull` into {} stopped while moving its files into place ({INSTALL_DIR}/ holds the rest), so they do not match yet (first at {at}); nothing is damaged",
            dir.display()
        )
    })
}

/// How a half-moved directory is finished (the help of [`unfinished`]).
pub const FINISH_HELP: &str = "run `platform state pull` again, or any command that writes the ledger (`admin-topup`, `rerun`, an `orchestrator` pass that is not a dry run): it finishes the move first";

/// Finish a pending install under the directory's ledger lock, as a writer's open does: for
/// a writer that reads the ledger before it opens (a pass plans first), which would refuse a
/// half-moved directory. The repair, or None (one `stat` when nothing is pending).
pub fn finish_pending(dir: &Path) -> Result<Option<Repair>> {
    use super::lock::{DirLock, DEFAULT_LEDGER_LOCK_TIMEOUT, LEDGER_LOCK};
    if !pending(dir) {
        return Ok(None);
    }
    let _lock = DirLock::acquire(dir, LEDGER_LOCK, DEFAULT_LEDGER_LOCK_TIMEOUT, |_| {})?;
    finish_as_repair(dir)
}

/// Whether an install is pending (a writer that opened before it re-reads the files).
pub fn pending(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join(INSTALL_DIR)).is_ok()
}

/// [`finish`] as a writer reports it.
pub(crate) fn finish_as_repair(dir: &Path) -> Result<Option<Repair>> {
    let Some(names) = finish(dir)? else {
        return Ok(None);
    };
    Ok(Some(Repair {
        kind: RepairKind::InstallFinished,
        file: dir.display().to_string(),
        stream: Stream::Billing,
        from_line: 0,
        lines_removed: 0,
        bytes_removed: 0,
        reason: moved_list(&names),
    }))
}

/// The names moved, for a note.
pub fn moved_list(names: &[String]) -> String {
    match names {
        [] => "nothing was left to move".into(),
        _ => names.join(", "),
    }
}

/// Ledger files first (in their replace order), then the rest, dot files last.
fn order_of(name: &str) -> (usize, bool, String) {
    let ledger = REPLACE_ORDER
        .iter()
        .position(|s| s.file_name() == name)
        .unwrap_or(REPLACE_ORDER.len());
    (ledger, name.starts_with('.'), name.to_string())
}

fn not_ours(path: &Path, what: &str) -> Error {
    let at = path.display().to_string();
    Error::failure(format!(
        "{at} {what}: it stops the files of an interrupted `platform state pull` from being moved into place"
    ))
    .at(at)
    .help("nothing but the platform writes there: remove that entry (or the whole folder, then run `platform state pull` again)")
}
