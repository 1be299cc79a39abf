//! deliver_local: copies a package (and its manifest) into a folder and proves the copy by re-reading it.
use super::receipt::{Receipt, StepFailure};
use super::{BuiltinStep, Implementation};
use crate::beneath::Beneath;
use crate::digest::{hex, sha256_file};
use sha2::{Digest, Sha256};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Copies `package_zip` and, if given, `manifest_json` into `dest_dir` (created if needed),
/// each under its own file name. Sources are opened beneath their folders through no link. Copies land under a temporary name and are renamed, so a
/// crash never leaves a truncated file under the final name; running it again after a
/// crash simply copies again.
///
/// `dest` is reached through no link beneath its trusted folder (the runtime directory): a
/// module of another step may have planted one on the way (`deliveries/<tenant>/...`), which
/// would put this tenant's package in a folder of its choosing. The copies are written
/// through the folder opened with no link.
pub fn deliver_local(
    package_zip: &Beneath,
    manifest_json: Option<&Beneath>,
    dest: &Beneath,
) -> Result<Receipt, StepFailure> {
    let dest_dir = dest.path();
    let zip_name = distinct_names(package_zip, manifest_json, &dest_dir)?;
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
    let (sha256, bytes) = copy_verified(package_zip, &inside.join(&zip_name), &shown)?;
    if let Some(manifest) = manifest_json {
        copy_verified(manifest, &inside.join(file_name(manifest)?), &shown)?;
    }
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
fn distinct_names(
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

/// Copies `src` to `dest`, hashing the source as it is read, then re-reads the copy and
/// compares size and SHA-256: a short write or a corrupting disk shows up here, not later
/// at the recipient. Messages name the copy in `shown`, the folder's real path.
fn copy_verified(src: &Beneath, dest: &Path, shown: &Path) -> Result<(String, u64), StepFailure> {
    let mut input = src
        .open_file()
        .map_err(|r| StepFailure::module_failed(format!("reading {r}")))?;
    let src = src.path();
    let dir = dest.parent().unwrap_or(Path::new("."));
    let named = shown.join(dest.file_name().unwrap_or_default());
    let write_failed = |e: std::io::Error| {
        StepFailure::delivery_failed(format!("writing {}: {e}", named.display()))
    };
    let tmp = tempfile::Builder::new()
        .prefix(".delivery-")
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
    tmp.persist(dest).map_err(|e| write_failed(e.error))?;
    let expected = hex(&hasher.finalize());

    let (copied_sha, copied_bytes) = sha256_file(dest)
        .map_err(|e| StepFailure::delivery_failed(format!("re-reading the copy: {}", e.message)))?;
    if copied_bytes != bytes || copied_sha != expected {
        return Err(StepFailure::delivery_failed(format!(
            "the copy at {} does not match {}: {copied_bytes} bytes, sha256 {copied_sha}; expected {bytes} bytes, sha256 {expected}",
            named.display(),
            src.display()
        )));
    }
    Ok((expected, bytes))
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
        deliver_local(&zip, manifest.as_ref(), &dest).map(Some)
    }
}
