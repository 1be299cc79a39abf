//! Derived caches in `<runtime-dir>/.cache/` that let a pass skip work it already did: the ledger's verified state and each work order's verdict. Never a source of truth: missing, stale or damaged, each is rebuilt from the files.
pub mod ledger;
pub mod workorders;

use serde::Serialize;
use std::path::{Path, PathBuf};

/// The folder of the caches, beneath the runtime directory (scratch space, SPEC §4).
pub const DIR: &str = ".cache";

/// `<runtime-dir>/.cache`.
pub fn dir(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join(DIR)
}

/// What the caches did for one pass (`orchestrator --json` shows it as `cache`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CacheReport {
    pub ledger: LedgerUse,
    /// Work orders parsed and validated in this pass.
    pub work_orders_parsed: u64,
    /// Work orders whose bytes matched a cached verdict (not parsed).
    pub work_orders_cached: u64,
}

/// How the pass read the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "use")]
pub enum LedgerUse {
    /// No ledger read (a dry run without a cache, or no billing-state directory).
    #[default]
    None,
    /// Nothing was appended since the cache was written: no record read.
    Hit,
    /// Only the records appended since were verified.
    Appended { records: u64 },
    /// Every record was read (and the cache written anew), for `reason`.
    Full { reason: String },
}

/// Write one cache file (complete or not at all; no flush: it is scratch).
fn write(runtime_dir: &Path, name: &str, bytes: &[u8]) -> crate::Result<()> {
    let d = dir(runtime_dir);
    std::fs::create_dir_all(&d).map_err(|e| crate::Error::io(&d, &e))?;
    crate::atomic::write_atomic(&d.join(name), bytes, false)
}

/// One cache file's bytes, or None (a missing cache is rebuilt like a damaged one). Opened
/// without blocking, and only a regular file is read: a FIFO or a link to a device left in
/// the scratch folder is a damaged cache (the write replaces it), not a pass that hangs.
fn read(runtime_dir: &Path, name: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut file = crate::beneath::open_trusted(&dir(runtime_dir).join(name)).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}
