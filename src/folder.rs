//! A folder a command works in: created when missing, and refused in words when a file (or a FIFO) is in the way. Depends on nothing but errors, so the ledger and every command can use it.
use crate::error::{Error, Result};
use std::path::Path;

/// `what` (a folder a command works in) created when missing, with its parents. A path that
/// is a file (or a FIFO...), or passes through one, is an input error saying so, not the
/// system's "File exists (os error 17)".
pub fn create(dir: &Path, what: &str) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| not_a_folder(dir, what).unwrap_or_else(|| Error::io(dir, &e)))
}

/// The error for a `what` at `dir` that exists as something other than a folder (or under a
/// parent that is not one), if it does.
pub fn not_a_folder(dir: &Path, what: &str) -> Option<Error> {
    let blocker = dir
        .ancestors()
        .filter(|p| !p.as_os_str().is_empty())
        .find_map(|p| std::fs::metadata(p).ok().map(|m| (p, m)))
        .filter(|(_, m)| !m.is_dir())?;
    let (path, meta) = blocker;
    let kind = if meta.is_file() {
        "a file"
    } else {
        "not a folder (a FIFO, socket or device)"
    };
    let message = if path == dir {
        format!("{what} {} is {kind}", dir.display())
    } else {
        format!("{what} {}: {} is {kind}", dir.display(), path.display())
    };
    Some(
        Error::input(message)
            .at(dir.display().to_string())
            .help("pass a folder (it is created when missing), or move the file out of the way"),
    )
}
