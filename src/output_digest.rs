//! The digests a step's outcome records for its outputs — a file's SHA-256, a dir's manifest
//! (docs/records.md "dir outputs") — and the one check that an output found later is the one
//! recorded, which every reader of an earlier step's output shares (bindings, package_std,
//! deliveries, publish). Its own module: the runner records outputs, the bindings read them.
use crate::beneath::Beneath;
use crate::digest::sha256_opened;
use crate::records::OutputRecord;
use sha2::Digest as _;
use std::path::{Path, PathBuf};

/// Files a step's outputs may hold (folders are bounded the same way), and so one `dir` output.
pub const MAX_FILES: u64 = 10_000;

/// Bytes a step's outputs may hold (the runner's cap; package_std's package is checked
/// against it before its charge).
pub const MAX_BYTES: u64 = 4 << 30;

/// One file of a `dir` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// Relative to the dir output's folder.
    pub rel: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

/// A `dir` output's files (sorted by the bytes of their paths), their total size and the
/// SHA-256 of the manifest that lists them (docs/records.md "dir outputs").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirManifest {
    pub files: Vec<ManifestFile>,
    pub bytes: u64,
    pub sha256: String,
}

/// SHA-256 and length of a regular file with a single link, reached through no link.
pub(crate) fn file_digest(at: &Beneath) -> Result<(String, u64), String> {
    let file = at.open_file().map_err(|r| r.to_string())?;
    sha256_opened(file, &at.path()).map_err(|e| e.message)
}

/// The manifest of a `dir` output: every regular file beneath `dir`, hashed, each opened
/// through no link. Links, hard-linked and special files are refused, and so is a folder
/// over the file cap.
pub fn dir_manifest(dir: &Beneath) -> Result<DirManifest, String> {
    let listed = dir.list_files().map_err(|r| r.to_string())?;
    if listed.len() as u64 > MAX_FILES {
        return Err(format!(
            "{} holds more than {MAX_FILES} files",
            dir.path().display()
        ));
    }
    let mut files = Vec::with_capacity(listed.len());
    let mut bytes = 0u64;
    for f in listed {
        let (sha256, len) = file_digest(&dir.join(&f.rel))?;
        bytes += len;
        files.push(ManifestFile {
            rel: f.rel,
            bytes: len,
            sha256,
        });
    }
    // Compared and hashed as they go, not copied first: 10,000 paths of 4 KB are 40 MB a copy.
    files.sort_by(|a, b| path_byte_iter(&a.rel).cmp(path_byte_iter(&b.rel)));
    let mut hasher = sha2::Sha256::new();
    for f in &files {
        hasher.update(manifest_line(f).as_bytes());
    }
    Ok(DirManifest {
        files,
        bytes,
        sha256: crate::digest::hex(&hasher.finalize()),
    })
}

/// Why an output found now is not the one its step's outcome recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAsRecorded {
    /// It cannot be read (gone, a link, not a regular file...).
    Unreadable(String),
    /// It reads, as these bytes and digest (of the file, or of a dir's manifest).
    Differs { bytes: u64, sha256: String },
}

/// An output at `at` checked against its record (a `dir` when the record counts files): the
/// file's digest, or the dir's manifest digest, byte count and file count, must be the
/// recorded ones. A dir's manifest is handed back (its files are what a reader then opens).
/// What every reader of an earlier step's output shares: the ledger vouches only for bytes
/// its outcome recorded.
pub fn check_recorded(
    at: &Beneath,
    rec: &OutputRecord,
) -> Result<Option<DirManifest>, NotAsRecorded> {
    match rec.files {
        None => check_file(at, rec.bytes, &rec.sha256).map(|()| None),
        Some(files) => {
            let m = dir_manifest(at).map_err(NotAsRecorded::Unreadable)?;
            if m.sha256 == rec.sha256 && m.bytes == rec.bytes && m.files.len() as u64 == files {
                Ok(Some(m))
            } else {
                Err(NotAsRecorded::Differs {
                    bytes: m.bytes,
                    sha256: m.sha256,
                })
            }
        }
    }
}

/// A regular file at `at` (a single link, reached through no link) holds `bytes` bytes whose
/// SHA-256 is `sha256`: a `file` output, or a delivered copy against its receipt.
pub fn check_file(at: &Beneath, bytes: u64, sha256: &str) -> Result<(), NotAsRecorded> {
    let (found, len) = file_digest(at).map_err(NotAsRecorded::Unreadable)?;
    if found == sha256 && len == bytes {
        Ok(())
    } else {
        Err(NotAsRecorded::Differs {
            bytes: len,
            sha256: found,
        })
    }
}

/// [`path_bytes`] without building it: the manifest's sort order, one byte at a time.
fn path_byte_iter(rel: &Path) -> impl Iterator<Item = u8> + '_ {
    rel.components().enumerate().flat_map(|(i, c)| {
        let sep = (i > 0).then_some(b'/');
        sep.into_iter()
            .chain(os_bytes(c.as_os_str()).iter().copied())
    })
}

/// The path as `/`-separated bytes (the manifest's sort key).
fn path_bytes(rel: &Path) -> Vec<u8> {
    let parts: Vec<&[u8]> = rel.components().map(|c| os_bytes(c.as_os_str())).collect();
    parts.join(&b'/')
}

#[cfg(unix)]
fn os_bytes(s: &std::ffi::OsStr) -> &[u8] {
    std::os::unix::ffi::OsStrExt::as_bytes(s)
}

#[cfg(not(unix))]
fn os_bytes(s: &std::ffi::OsStr) -> &[u8] {
    s.as_encoded_bytes()
}

/// `{"path":"a/b.txt","bytes":3,"sha256":"…"}` and a newline; a path that is not UTF-8 is
/// written as `"path_hex"` (its bytes in hex) instead, so distinct names never collide.
fn manifest_line(f: &ManifestFile) -> String {
    let raw = path_bytes(&f.rel);
    let path = match std::str::from_utf8(&raw) {
        Ok(s) => format!("\"path\":{}", serde_json::Value::String(s.to_string())),
        Err(_) => format!("\"path_hex\":\"{}\"", crate::digest::hex(&raw)),
    };
    format!(
        "{{{path},\"bytes\":{},\"sha256\":\"{}\"}}\n",
        f.bytes, f.sha256
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_hex;

    #[test]
    fn a_dir_manifest_lists_files_by_path_bytes() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("b")).unwrap();
        std::fs::write(d.path().join("b/x.txt"), "x").unwrap();
        std::fs::write(d.path().join("a.txt"), "").unwrap();
        let m = dir_manifest(&Beneath::new(d.path(), "")).unwrap();
        let text = format!(
            "{{\"path\":\"a.txt\",\"bytes\":0,\"sha256\":\"{}\"}}\n{{\"path\":\"b/x.txt\",\"bytes\":1,\"sha256\":\"{}\"}}\n",
            sha256_hex(b""),
            sha256_hex(b"x")
        );
        assert_eq!(m.sha256, sha256_hex(text.as_bytes()));
        assert_eq!((m.files.len(), m.bytes), (2, 1));
    }
}
