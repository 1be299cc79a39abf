//! Whole-file writes that readers (and crashes) see complete or not at all: temp file, rename.
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Write `bytes` to `path` through a temporary file in the same folder, renamed into place
/// (mode 0644). `durable` also fsyncs the data first, for files that must survive power
/// loss; scratch files only need to survive a killed process, which the rename gives.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    write_atomic_with(path, durable, |w| w.write_all(bytes))
}

/// [`write_atomic`] for a file written as it is made (`write` streams it, buffered), so a large
/// file is never held whole in memory.
pub fn write_atomic_with(
    path: &Path,
    durable: bool,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, &e))?;
    let mut buffered = std::io::BufWriter::new(tmp.as_file());
    write(&mut buffered)
        .and_then(|()| buffered.flush())
        .and_then(|()| {
            drop(buffered);
            if durable {
                tmp.as_file().sync_all()
            } else {
                Ok(())
            }
        })
        .map_err(|e| Error::failure(format!("writing {}: {e}", path.display())))?;
    persist(tmp, path)
}

/// Write `bytes` to a new file at `path`, created exclusively (a link there is never
/// followed); anything already there is replaced through [`write_atomic`]. For files written
/// before anything reads them (a step's inputs.json, supervisor.json): a crash mid-write
/// leaves a torn file only where nothing has used it yet, and the next attempt replaces it.
/// Two system calls fewer than a rename, and no temporary name, in a fresh folder.
pub fn write_fresh(path: &Path, bytes: &[u8]) -> Result<()> {
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path);
    match created {
        Ok(mut f) => f
            .write_all(bytes)
            .map_err(|e| Error::failure(format!("writing {}: {e}", path.display()))),
        Err(_) => write_atomic(path, bytes, false),
    }
}

/// Rename a finished temporary file into place. Temporary files are created 0600; what the
/// platform writes is meant to be read, so it gets 0644.
pub fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::failure(format!("writing {}: {e}", path.display())))?;
    }
    tmp.persist(path).map_err(|e| {
        Error::failure(format!("renaming into {}: {}", path.display(), e.error))
            .at(path.display().to_string())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_whole_file() {
        let (d, p) = crate::testing::scratch("x.json");
        super::write_atomic(&p, b"{\"a\":1}", false).unwrap();
        super::write_atomic(&p, b"{}", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn fresh_write_creates_or_replaces_and_never_follows_a_link() {
        let (d, p) = crate::testing::scratch("inputs.json");
        super::write_fresh(&p, b"{\"a\":1}").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{\"a\":1}");
        super::write_fresh(&p, b"{}").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
        // A link planted where the file goes is replaced, its target untouched.
        let target = d.path().join("target.txt");
        std::fs::write(&target, b"keep").unwrap();
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(&target, &p).unwrap();
        super::write_fresh(&p, b"[]").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert!(!std::fs::symlink_metadata(&p)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&p).unwrap(), b"[]");
    }
}
