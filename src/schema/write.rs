//! `platform schema --write DIR`: every built-in schema as a file, for editors and other tools.
use super::SchemaKind;
use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Write every schema into `dir` (created if missing), each as `<kind>.schema.json` with the
/// exact bytes `platform schema <kind>` prints; existing files are replaced whole. Returns
/// the paths written, in [`SchemaKind::ALL`] order.
pub fn write_all(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::io(dir, &e).help("give --write a folder that can be created, or an existing one")
    })?;
    SchemaKind::ALL
        .iter()
        .map(|kind| {
            let path = dir.join(kind.file_name());
            write_atomic(&path, kind.text().as_bytes(), false)?;
            Ok(path)
        })
        .collect()
}
