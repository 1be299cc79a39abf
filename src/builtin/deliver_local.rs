//! deliver_local: copies a package (and its manifest) into a folder, replacing its content as a set, and proves each copy by re-reading it.
use super::receipt::{Receipt, StepFailure};
use super::{BuiltinStep, Implementation};
use crate::beneath::{Beneath, Kind};
use crate::digest::{hex, sha256_opened};
use sha2::{Digest, Sha256};
use std::ffi::OsStr;
use std::io::{BufWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Copies `package_zip` and, if given, `manifest_json` into `dest_dir` (created if needed),
/// each under its own file name, replacing the folder's content as a set: every file is first
/// staged under a temporary name (written, flushed to disk, read back and compared), and only
/// then renamed into place; every other regular file in the folder (an earlier delivery's, of
/// another name, or a staged copy a crash left) is then removed. So a copy that fails leaves
/// the previous delivery as it was, and a delivery never sits beside files of an earlier one.
/// Sources are opened beneath their folders through no link. Running it again after a crash
/// simply copies again.
///
/// `dest` is reached through no link beneath its trusted folder (the runtime directory): a
/// module of another step may have planted one on the way (`deliveries/<tenant>/...`), which
/// would put this tenant's package in a folder of its choosing. The copies are written,
/// renamed and removed through the folder opened with no link.
pub fn deliver_local(
    package_zip: &Beneath,
    manifest_json: Option<&Beneath>,
    dest: &Beneath,
) -> Result<Receipt, StepFailure> {
    deliver_local_as_read(package_zip, manifest_json, dest, &|_, _, _| Ok(()))
}

/// [`deliver_local`], each staged copy's bytes as read (its input's name, `package_zip` or
/// `manifest_json`, its length and SHA-256) first handed to `as_read`, which may refuse them
/// before anything is renamed into place (a step checks them against the digests the
/// producing step recorded: `BuiltinStep::check_as_read`).
pub fn deliver_local_as_read(
    package_zip: &Beneath,
    manifest_json: Option<&Beneath>,
    dest: &Beneath,
    as_read: &dyn Fn(&str, u64, &str) -> Result<(), StepFailure>,
) -> Result<Receipt, StepFailure> {
    let dest_dir = dest.path();
    let zip_name = distinct_names(package_zip, manifest_json, &dest_dir)?;
    let mut sources = vec![(package_zip, zip_name.clone())];
    if let Some(manifest) = manifest_json {
        sources.push((manifest, file_name(manifest)?));
    }
    std::fs::create_dir_all(&dest_dir).map_err(|e| {
        StepFailure::delivery_failed(format!("creating {}: {e}", dest_dir.display()))
    })?;
    let folder = dest
        .open_folder()
        .map_err(|r| StepFailure::delivery_failed(format!("the delivery folder {r}")))?;
    let shown = std::fs::canonicalize(&dest_dir).map_err(|e| {
        StepFailure::delivery_failed(format!("resolving {}: {e}", dest_dir.display()))
    })?;
    let inside = dest.via(&folder);
    let staged = sources
        .iter()
        .map(|(src, name)| stage(src, &inside, name, &shown))
        .collect::<Result<Vec<_>, _>>()?;
    for (s, input) in staged.iter().zip(["package_zip", "manifest_json"]) {
        as_read(input, s.bytes, &s.sha256)?;
    }
    let names: Vec<&OsStr> = sources.iter().map(|(_, n)| n.as_os_str()).collect();
    nothing_in_the_way(dest, &folder, &names, &shown)?;
    let (sha256, bytes) = (staged[0].sha256.clone(), staged[0].bytes);
    for (placed, s) in staged.into_iter().enumerate() {
        s.tmp.persist(inside.join(&s.name)).map_err(|e| {
            StepFailure::delivery_failed(format!(
                "renaming the staged copy of {} into place: {}{}",
                shown.join(&s.name).display(),
                e.error,
                if placed > 0 {
                    "; the files before it in this delivery are already in place"
                } else {
                    "; the previous delivery is as it was"
                }
            ))
        })?;
    }
    // Best effort: the copies were synced before the renames; this makes the renames last.
    let _ = rustix::fs::fsync(&folder);
    sweep(dest, &folder, &names, &shown)?;
    Ok(Receipt {
        provider: "local".into(),
        remote_path: shown.join(&zip_name).display().to_string(),
        object_id: None,
        bytes,
        sha256,
        verification_status: "verified".into(),
    })
}

/// The package's file name, when it and the manifest's differ (one would overwrite the other).
pub fn distinct_names(
    package_zip: &Beneath,
    manifest_json: Option<&Beneath>,
    dest_dir: &Path,
) -> Result<PathBuf, StepFailure> {
    let zip_name = file_name(package_zip)?;
    if let Some(manifest) = manifest_json {
        if file_name(manifest)? == zip_name {
            return Err(StepFailure::input_invalid(format!(
                "package {} and manifest {} have the same file name, so one would overwrite the other in {}",
                package_zip.path().display(),
                manifest.path().display(),
                dest_dir.display()
            )));
        }
    }
    Ok(zip_name)
}

fn file_name(src: &Beneath) -> Result<PathBuf, StepFailure> {
    src.file_name().map(PathBuf::from).ok_or_else(|| {
        StepFailure::input_invalid(format!("{} does not name a file", src.path().display()))
    })
}

/// A verified copy under a temporary name in the delivery folder, to be renamed to `name`
/// (removed when dropped instead).
struct Staged {
    tmp: tempfile::NamedTempFile,
    name: PathBuf,
    sha256: String,
    bytes: u64,
}

/// Copies `src` to a temporary file in `dir` (the delivery folder, opened), hashing the source
/// as it is read, flushes it to disk, then re-reads the copy and compares size and SHA-256: a
/// short write or a corrupting disk shows up here, before anything of the previous delivery
/// is replaced, not later at the recipient. Messages name the copy as `shown`/`name`, the
/// folder's real path.
fn stage(src: &Beneath, dir: &Path, name: &Path, shown: &Path) -> Result<Staged, StepFailure> {
    let mut input = src
        .open_file()
        .map_err(|r| StepFailure::module_failed(format!("reading {r}")))?;
    let src = src.path();
    let named = shown.join(name);
    let write_failed = |e: std::io::Error| {
        StepFailure::delivery_failed(format!(
            "writing {}: {e}; the previous delivery is as it was",
            named.display()
        ))
    };
    let tmp = tempfile::Builder::new()
        .prefix(STAGED_PREFIX)
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(write_failed)?;
    let chunk = crate::digest::read_chunk(input.metadata().map_or(1 << 20, |m| m.len()));
    let mut out = BufWriter::with_capacity(chunk, tmp.as_file());
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; chunk];
    loop {
        let n = input
            .read(&mut buf)
            .map_err(|e| StepFailure::module_failed(format!("reading {}: {e}", src.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
        out.write_all(&buf[..n]).map_err(write_failed)?;
    }
    out.flush().map_err(write_failed)?;
    drop(out);
    tmp.as_file().sync_all().map_err(write_failed)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(write_failed)?;
    }
    let expected = hex(&hasher.finalize());
    let (copied_sha, copied_bytes) = tmp
        .reopen()
        .map_err(|e| StepFailure::delivery_failed(format!("re-reading the copy: {e}")))
        .and_then(|f| {
            sha256_opened(f, &named).map_err(|e| {
                StepFailure::delivery_failed(format!("re-reading the copy: {}", e.message))
            })
        })?;
    if copied_bytes != bytes || copied_sha != expected {
        return Err(StepFailure::delivery_failed(format!(
            "the copy at {} does not match {}: {copied_bytes} bytes, sha256 {copied_sha}; expected {bytes} bytes, sha256 {expected}; the previous delivery is as it was",
            named.display(),
            src.display()
        )));
    }
    Ok(Staged {
        tmp,
        name: name.to_path_buf(),
        sha256: expected,
        bytes,
    })
}

/// How staged copies are named: hidden, so no reader takes one for a delivered file.
const STAGED_PREFIX: &str = ".delivery-";

/// No folder sits where a copy is to be renamed: found before anything is renamed, so the
/// previous delivery stays whole. (A file, a link or a FIFO there is replaced by the rename,
/// the link itself, never what it points to.)
fn nothing_in_the_way(
    dest: &Beneath,
    folder: &OwnedFd,
    names: &[&OsStr],
    shown: &Path,
) -> Result<(), StepFailure> {
    let entries = dest
        .list_opened(folder)
        .map_err(|r| StepFailure::delivery_failed(format!("listing the delivery folder: {r}")))?;
    match entries
        .iter()
        .find(|e| e.meta.kind == Kind::Folder && names.contains(&e.name.as_os_str()))
    {
        Some(e) => Err(StepFailure::delivery_failed(format!(
            "{} is a folder, so the copy cannot take its name; the previous delivery is as it was: remove the folder and retry",
            shown.join(&e.name).display()
        ))),
        None => Ok(()),
    }
}

/// Remove every regular file of the folder (single-linked: the kind the platform writes) that
/// this delivery did not deliver: an earlier delivery's package or manifest of another name,
/// or a staged copy a crash left. Links, folders and anything else are left alone.
fn sweep(
    dest: &Beneath,
    folder: &OwnedFd,
    names: &[&OsStr],
    shown: &Path,
) -> Result<(), StepFailure> {
    let failed = |r: crate::beneath::Refused| {
        StepFailure::delivery_failed(format!(
            "the delivery is in place in {}, but a file of an earlier one could not be removed: {r}",
            shown.display()
        ))
    };
    for e in dest.list_opened(folder).map_err(failed)? {
        let stale =
            e.meta.kind == Kind::File && e.meta.links == 1 && !names.contains(&e.name.as_os_str());
        if stale {
            dest.remove_opened(folder, &e.name).map_err(failed)?;
        }
    }
    Ok(())
}

/// deliver_local as a step: to `<runtime>/deliveries/<tenant>/<work order>/<step>/`.
pub struct DeliverLocal;

/// The step's package, its manifest (if bound) and where they go.
fn sources(s: &BuiltinStep) -> Result<(Beneath, Option<Beneath>, Beneath), StepFailure> {
    let zip = s.package_zip()?;
    let manifest = s.input_file("manifest_json")?;
    let rel = Path::new("deliveries")
        .join(s.tenant_id)
        .join(s.work_order_id)
        .join(&s.step.step_id);
    let dest = Beneath::new(s.runtime_dir, rel);
    distinct_names(&zip, manifest.as_ref(), &dest.path())?;
    Ok((zip, manifest, dest))
}

impl Implementation for DeliverLocal {
    /// A package is given, and its name is not the manifest's.
    fn precheck(&self, s: &BuiltinStep) -> Result<(), String> {
        sources(s).map(drop).map_err(|f| f.message)
    }

    fn run(&self, s: &BuiltinStep) -> Result<Option<Receipt>, StepFailure> {
        let (zip, manifest, dest) = sources(s)?;
        let as_read = |input: &str, bytes: u64, sha256: &str| s.check_as_read(input, bytes, sha256);
        deliver_local_as_read(&zip, manifest.as_ref(), &dest, &as_read).map(Some)
    }
}
