//! Checks what a step left in its outputs dir — at most 10,000 files and 4 GiB, no links,
//! hard-linked or special files, every declared output present — and records each `file`
//! output by its digest and each `dir` output once, by the digest of its manifest.
use super::FileRecord;
use crate::beneath::{self, Beneath, Kind, Meta};
use crate::contract::{Failure, ModuleContract, OutputType};
use crate::digest::sha256_opened;
use crate::records::OutputRecord;
use sha2::Digest as _;
use std::path::{Path, PathBuf};

/// Files a step's outputs may hold (folders are bounded the same way).
pub const MAX_FILES: u64 = 10_000;
/// Bytes a step's outputs may hold.
pub const MAX_BYTES: u64 = 4 << 30;

/// Why a step's outputs were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// `OutputsMissing` or `OutputsTooLarge`.
    pub reason: Failure,
    pub message: String,
}

impl Refused {
    fn missing(message: String) -> Self {
        Refused {
            reason: Failure::OutputsMissing,
            message,
        }
    }
    fn too_large(message: String) -> Self {
        Refused {
            reason: Failure::OutputsTooLarge,
            message,
        }
    }
}

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

/// Refuse more than the caps, then any symlink, special file or file with several links
/// under the outputs folder, itself reached through no link. Nothing is followed or opened
/// but folders: a module could otherwise point later steps, packages or deliveries at another
/// tenant's files (a symlink — the outputs folder itself swapped for one included — or a hard
/// link to them), and a FIFO would block whoever opens it. The caps come first: they bound
/// the walk itself.
pub fn survey(outputs: &Beneath) -> Result<(), Refused> {
    let (mut files, mut dirs, mut bytes) = (0u64, 0u64, 0u64);
    let mut first_problem: Option<Refused> = None;
    outputs.walk(|rel, meta| {
        if meta.kind == Kind::Folder {
            dirs += 1;
        } else {
            files += 1;
            bytes = bytes.saturating_add(meta.bytes);
            if first_problem.is_none() {
                first_problem = not_a_plain_file(rel, meta);
            }
        }
        over_caps(files, dirs, bytes)
    })?;
    first_problem.map_or(Ok(()), Err)
}

impl From<beneath::Refused> for Refused {
    fn from(r: beneath::Refused) -> Refused {
        Refused::missing(format!("cannot read the outputs: {r}"))
    }
}

fn over_caps(files: u64, dirs: u64, bytes: u64) -> Result<(), Refused> {
    if files > MAX_FILES || dirs > MAX_FILES {
        return Err(Refused::too_large(format!(
            "the outputs hold more than {MAX_FILES} {}; a step may leave at most {MAX_FILES} files (and {MAX_FILES} folders)",
            if files > MAX_FILES { "files" } else { "folders" }
        )));
    }
    if bytes > MAX_BYTES {
        return Err(Refused::too_large(format!(
            "the outputs hold more than {0} GiB; a step may leave at most {0} GiB",
            MAX_BYTES >> 30
        )));
    }
    Ok(())
}

/// Why an entry that is not a folder is not a plain output file, if it is not.
fn not_a_plain_file(rel: &Path, meta: Meta) -> Option<Refused> {
    let why = match meta.kind {
        Kind::Symlink => "is a symlink",
        Kind::File if meta.links > 1 => {
            "has several hard links (another may be another tenant's file)"
        }
        Kind::File => return None,
        _ => "is not a regular file (a FIFO, socket or device)",
    };
    Some(Refused::missing(format!(
        "{} in the outputs {why}; outputs must be regular files with a single link",
        rel.display()
    )))
}

/// Record every declared file/dir output of the outputs folder (beneath a trusted folder:
/// reached through no link), after the survey; Err names what is wrong.
pub fn collect(contract: &ModuleContract, outputs: &Beneath) -> Result<Vec<FileRecord>, Refused> {
    survey(outputs)?;
    let mut records = Vec::new();
    let mut missing = Vec::new();
    for out in &contract.outputs {
        if out.ty == OutputType::Value {
            continue;
        }
        let rel = out.path.clone().unwrap_or_else(|| out.id.clone());
        let at = outputs.join(&rel);
        let is = |want: Kind| at.metadata().is_ok_and(|m| m.kind == want);
        let record = match out.ty {
            // Opened first: what is not a regular file is then told apart from a file
            // that cannot be read (one `stat` less per output).
            OutputType::File => file_digest(&at)
                .map(|(sha, bytes)| FileRecord {
                    id: out.id.clone(),
                    path: rel.clone(),
                    bytes,
                    sha256: sha,
                    files: None,
                })
                .map_err(|why| if is(Kind::File) { why } else { String::new() }),
            OutputType::Dir if is(Kind::Folder) => dir_manifest(&at).map(|m| FileRecord {
                id: out.id.clone(),
                path: rel.clone(),
                bytes: m.bytes,
                sha256: m.sha256,
                files: Some(m.files.len() as u64),
            }),
            _ => Err(String::new()),
        };
        match record {
            Ok(r) => records.push(r),
            Err(why) if why.is_empty() => missing.push(rel),
            Err(why) => missing.push(format!("{rel} ({why})")),
        }
    }
    if missing.is_empty() {
        Ok(records)
    } else {
        Err(Refused::missing(format!(
            "declared outputs missing: {}",
            missing.join(", ")
        )))
    }
}

/// SHA-256 and length of a regular file with a single link, reached through no link.
fn file_digest(at: &Beneath) -> Result<(String, u64), String> {
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
        None => {
            let (sha256, bytes) = file_digest(at).map_err(NotAsRecorded::Unreadable)?;
            if sha256 == rec.sha256 && bytes == rec.bytes {
                Ok(None)
            } else {
                Err(NotAsRecorded::Differs { bytes, sha256 })
            }
        }
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

    #[cfg(unix)]
    #[test]
    fn links_and_fifos_are_refused_without_being_opened() {
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.path().join("link")).unwrap();
        assert_eq!(
            survey(&Beneath::new(d.path(), "")).unwrap_err().reason,
            Failure::OutputsMissing
        );
        std::fs::remove_file(d.path().join("link")).unwrap();
        let fifo = std::ffi::CString::new(d.path().join("fifo").to_str().unwrap()).unwrap();
        #[allow(unsafe_code)]
        // SAFETY: mkfifo reads a NUL-terminated path we own.
        unsafe {
            libc::mkfifo(fifo.as_ptr(), 0o600);
        }
        assert_eq!(
            survey(&Beneath::new(d.path(), "")).unwrap_err().reason,
            Failure::OutputsMissing
        );
        assert!(dir_manifest(&Beneath::new(d.path(), "")).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn an_outputs_folder_that_is_a_link_is_refused_and_not_walked() {
        let d = tempfile::tempdir().unwrap();
        let elsewhere = d.path().join("elsewhere");
        std::fs::create_dir_all(elsewhere.join("sub")).unwrap();
        std::fs::write(elsewhere.join("sub/a.txt"), "a").unwrap();
        std::os::unix::fs::symlink(&elsewhere, d.path().join("outputs")).unwrap();
        let refused = survey(&Beneath::new(d.path(), "outputs")).unwrap_err();
        assert_eq!(refused.reason, Failure::OutputsMissing);
        assert!(
            refused.message.contains("symbolic link"),
            "{}",
            refused.message
        );
        // The same tree as a real folder passes, its folder and file counted.
        std::fs::remove_file(d.path().join("outputs")).unwrap();
        std::fs::rename(&elsewhere, d.path().join("outputs")).unwrap();
        assert_eq!(survey(&Beneath::new(d.path(), "outputs")), Ok(()));
    }
}
