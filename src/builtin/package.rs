//! package_std's core: deterministic ZIP plus manifests from files and directories; knows nothing of steps or the ledger.
//!
//! Determinism rules (docs/delivery.md): entries sorted by the bytes of their names, no
//! directory entries, every entry dated 1980-01-01 00:00:00, `System::Unix`, mode 0644, no
//! comments or extra fields, ZIP64 headers only for entries that may pass 4 GiB, and the
//! compression method chosen from the entry's name and size alone (see `method_for`).
use crate::beneath::{Beneath, Kind, Reason, Refused};
use crate::digest::{hex, sha256_file};
use crate::error::{Error, Result};
use crate::output_digest::DirManifest;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::{self, BufReader, BufWriter, Read};
use std::path::Path;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipWriter};

/// Pinned: changing it changes every package's bytes, so it is part of the format.
const DEFLATE_LEVEL: i64 = 6;

/// Big enough that hashing, deflate and the write path each see large chunks; small enough
/// that memory stays flat whatever the package size.
const IO_BUFFER: usize = 1 << 20;

/// Extensions of formats that are already compressed: deflating them costs time and gains
/// nothing (often a few bytes more), so they are stored. Compared case-insensitively.
const STORED_EXTENSIONS: &[&str] = &[
    "7z", "apk", "avif", "br", "bz2", "docx", "epub", "gif", "gz", "heic", "jar", "jpeg", "jpg",
    "lz4", "lzma", "m4a", "m4v", "mkv", "mov", "mp3", "mp4", "odp", "ods", "odt", "ogg", "opus",
    "png", "pptx", "rar", "tbz2", "tgz", "txz", "webm", "webp", "whl", "woff", "woff2", "xlsx",
    "xz", "zip", "zst",
];

/// One thing to put in the package: a file at `as_path`, or a directory's tree under it.
/// The source is opened beneath its folder, and no link is followed anywhere in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackSource {
    pub as_path: String,
    pub source: Beneath,
}

/// One file of the package, as the manifests list it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ManifestEntry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// What `build_package` wrote: the files (sorted by path) and the ZIP's size and digest.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PackageSummary {
    pub files: Vec<ManifestEntry>,
    pub zip_bytes: u64,
    pub zip_sha256: String,
}

/// manifest.json: the files, then the package they were written to.
#[derive(Serialize)]
struct ManifestJson<'a> {
    files: &'a [ManifestEntry],
    package: PackageRef<'a>,
}

#[derive(Serialize)]
struct PackageRef<'a> {
    file: &'a str,
    bytes: u64,
    sha256: &'a str,
}

/// A file chosen for the package, before anything is written. Its source is not kept: it is
/// its origin's source, or the path `name` has beneath it, so a path is held once (10,000 long
/// ones are 40 MB).
struct Planned {
    name: String,
    size: u64,
    /// Index into the caller's sources: where the file is read from, and named in errors.
    origin: usize,
}

impl Planned {
    /// Where the file is read from: a file source itself, or the file of a directory source
    /// at the part of `name` below its `as_path` (the same components, checked as UTF-8).
    fn source(&self, sources: &[PackSource]) -> Beneath {
        let src = &sources[self.origin];
        match self.name.get(src.as_path.len() + 1..) {
            Some(rel) => src.source.join(rel),
            None => src.source.clone(),
        }
    }
}

/// Checks an `as_path`: relative, `/`-separated, no empty, `.` or `..` components, no
/// backslash or control characters. The validator can call it before anything runs.
pub fn validate_as_path(as_path: &str) -> Result<()> {
    let refuse = |why: &str| {
        Error::input(format!("as_path '{}' {why}", as_path.escape_debug()))
            .help("use a relative path such as 'reports/summary.csv', with '/' between parts")
    };
    if as_path.is_empty() {
        return Err(refuse("is empty"));
    }
    if as_path.starts_with('/') {
        return Err(refuse("is absolute"));
    }
    for part in as_path.split('/') {
        check_component(part).map_err(|why| refuse(&why))?;
    }
    Ok(())
}

/// Rules for one component of an entry name; names that Windows or unzip tools would
/// read as a separator, a drive or a parent directory are refused rather than escaped.
fn check_component(part: &str) -> std::result::Result<(), String> {
    match part {
        "" => Err("has an empty component ('//' or a trailing '/')".into()),
        "." => Err("has a '.' component".into()),
        ".." => Err("has a '..' component".into()),
        _ if part.contains('\\') => Err(format!(
            "has a backslash in '{}' (it is a separator on Windows)",
            part.escape_debug()
        )),
        _ if part.chars().any(char::is_control) => Err(format!(
            "has a control character in '{}'",
            part.escape_debug()
        )),
        _ if part.len() == 2 && part.ends_with(':') => {
            Err(format!("has '{part}', which Windows reads as a drive"))
        }
        _ => Ok(()),
    }
}

/// Builds the ZIP at `zip_path` (written to a temporary file beside it, then renamed) and,
/// if asked, manifest.json and manifest.csv. Same inputs, same bytes.
pub fn build_package(
    sources: &[PackSource],
    zip_path: &Path,
    manifest_json: Option<&Path>,
    manifest_csv: Option<&Path>,
) -> Result<PackageSummary> {
    build(sources, None, zip_path, manifest_json, manifest_csv)
}

/// [`build_package`] of sources checked against what their steps recorded, `recorded` being
/// the entries the package must then hold ([`dir_entries`] for a dir). Each file is compared
/// with its entry as it is read into the ZIP: a file swapped after the check would otherwise
/// be packed as bytes no step produced. On any difference nothing is kept (the ZIP stays a
/// temporary file, removed; no manifest is written). The one check for package_std and
/// `publish`.
pub fn build_package_as_recorded(
    sources: &[PackSource],
    recorded: &[ManifestEntry],
    zip_path: &Path,
    manifest_json: Option<&Path>,
    manifest_csv: Option<&Path>,
) -> Result<PackageSummary> {
    let mut recorded: Vec<&ManifestEntry> = recorded.iter().collect();
    recorded.sort_by(|a, b| a.path.cmp(&b.path));
    build(
        sources,
        Some(&recorded),
        zip_path,
        manifest_json,
        manifest_csv,
    )
}

/// The entries of a dir source whose files were checked against their record (`manifest`):
/// each file under `<as_path>/`, named as the package names it, so a name no package can hold
/// is refused here, before anything is packed.
pub fn dir_entries(
    as_path: &str,
    dir: &Beneath,
    manifest: DirManifest,
) -> Result<Vec<ManifestEntry>> {
    manifest
        .files
        .into_iter()
        .map(|f| {
            Ok(ManifestEntry {
                path: entry_name(as_path, &f.rel, || {
                    dir.join(&f.rel).path().display().to_string()
                })?,
                bytes: f.bytes,
                sha256: f.sha256,
            })
        })
        .collect()
}

fn build(
    sources: &[PackSource],
    recorded: Option<&[&ManifestEntry]>,
    zip_path: &Path,
    manifest_json: Option<&Path>,
    manifest_csv: Option<&Path>,
) -> Result<PackageSummary> {
    let planned = plan(sources)?;
    if let Some(recorded) = recorded {
        planned_as_recorded(sources, &planned, recorded)?;
    }
    refuse_output_inside_sources(sources, zip_path)?;
    let (files, zip_bytes, zip_sha256) = write_zip(sources, planned, recorded, zip_path)?;
    let summary = PackageSummary {
        files,
        zip_bytes,
        zip_sha256,
    };
    // Streamed to their files: each holds every path again (a JSON or CSV escape doubles some).
    if let Some(path) = manifest_json {
        crate::atomic::write_atomic_with(path, true, |w| {
            let package = PackageRef {
                file: &zip_file_name(zip_path),
                bytes: summary.zip_bytes,
                sha256: &summary.zip_sha256,
            };
            write_manifest_json(w, &summary.files, package)
        })?;
    }
    if let Some(path) = manifest_csv {
        crate::atomic::write_atomic_with(path, true, |w| write_manifest_csv(w, &summary.files))?;
    }
    Ok(summary)
}

/// Expands the sources into a sorted list of files, refusing anything that would make the
/// package ambiguous or depend on where it was built.
fn plan(sources: &[PackSource]) -> Result<Vec<Planned>> {
    let mut planned = Vec::new();
    for (origin, src) in sources.iter().enumerate() {
        let at = || src.source.path().display().to_string();
        validate_as_path(&src.as_path).map_err(|e| e.at(at()))?;
        let meta = src.source.metadata().map_err(|r| refused(&r))?;
        match meta.kind {
            Kind::File => {
                src.source.check_file(meta).map_err(|r| refused(&r))?;
                planned.push(Planned {
                    name: src.as_path.clone(),
                    size: meta.bytes,
                    origin,
                });
            }
            Kind::Folder => expand_dir(src, origin, &mut planned)?,
            other => {
                return Err(refused(&Refused {
                    path: src.source.path(),
                    reason: Reason::NotAFile(other),
                }))
            }
        }
    }
    // str's Ord is the byte order of the UTF-8 names, which is what the format promises.
    planned.sort_by(|a, b| a.name.cmp(&b.name));
    refuse_collisions(sources, &planned)?;
    Ok(planned)
}

fn expand_dir(src: &PackSource, origin: usize, planned: &mut Vec<Planned>) -> Result<()> {
    for file in src.source.list_files().map_err(|r| refused(&r))? {
        let shown = || src.source.join(&file.rel).path().display().to_string();
        planned.push(Planned {
            name: entry_name(&src.as_path, &file.rel, shown)?,
            size: file.bytes,
            origin,
        });
    }
    Ok(())
}

/// The entry name of the file at `rel` below a dir source stored at `as_path`: its
/// components, each valid UTF-8 and passing the `as_path` rules, joined by `/`. `shown` names
/// the file in an error.
fn entry_name(as_path: &str, rel: &Path, shown: impl Fn() -> String) -> Result<String> {
    let mut name = as_path.to_string();
    for part in rel.components() {
        let part = part.as_os_str().to_str().ok_or_else(|| {
            Error::input(format!(
                "{}: file name is not valid UTF-8, so it cannot be a ZIP entry name",
                shown()
            ))
            .help("rename the file")
        })?;
        check_component(part).map_err(|why| {
            Error::input(format!("{}: file name {why}", shown())).help("rename the file")
        })?;
        name.push('/');
        name.push_str(part);
    }
    Ok(name)
}

/// The files about to be packed are the recorded ones, by name and size (both lists sorted
/// by name); checked before anything is written. The digests are compared as each is read.
fn planned_as_recorded(
    sources: &[PackSource],
    planned: &[Planned],
    recorded: &[&ManifestEntry],
) -> Result<()> {
    let unrecorded = |what: String| {
        Error::failure(format!(
            "{what}; the files changed after they were checked against what their step recorded, so nothing was packaged"
        ))
        .help(CHANGED_HELP)
    };
    let mut recorded = recorded.iter();
    for p in planned {
        let shown = || p.source(sources).path().display().to_string();
        match recorded.next() {
            Some(r) if r.path == p.name && r.bytes == p.size => {}
            Some(r) if r.path == p.name => {
                return Err(unrecorded(format!(
                    "{} holds {} bytes; its step recorded {}",
                    shown(),
                    p.size,
                    r.bytes
                )))
            }
            Some(r) if r.path < p.name => {
                return Err(unrecorded(format!(
                    "'{}', which its step recorded, is no longer there",
                    r.path.escape_debug()
                )))
            }
            _ => return Err(unrecorded(format!("{} was recorded by no step", shown()))),
        }
    }
    match recorded.next() {
        Some(r) => Err(unrecorded(format!(
            "'{}', which its step recorded, is no longer there",
            r.path.escape_debug()
        ))),
        None => Ok(()),
    }
}

/// What to do about a source that is not what its step recorded.
const CHANGED_HELP: &str =
    "restore the recorded files (or start a new run with `platform rerun`), then run the step again";

/// Two files at one name, or a name that is both a file and a directory, could not be
/// extracted faithfully; the error names both sources so the work order can be fixed.
fn refuse_collisions(sources: &[PackSource], planned: &[Planned]) -> Result<()> {
    let describe = |p: &Planned| {
        let src = &sources[p.origin];
        format!(
            "{} (as_path '{}')",
            p.source(sources).path().display(),
            src.as_path.escape_debug()
        )
    };
    for pair in planned.windows(2) {
        if pair[0].name == pair[1].name {
            return Err(Error::input(format!(
                "two files would be stored as '{}': {} and {}",
                pair[0].name.escape_debug(),
                describe(&pair[0]),
                describe(&pair[1])
            ))
            .help("give one of the sources a different as_path"));
        }
    }
    let names: HashSet<&str> = planned.iter().map(|p| p.name.as_str()).collect();
    for p in planned {
        let mut end = p.name.len();
        while let Some(slash) = p.name[..end].rfind('/') {
            let parent = &p.name[..slash];
            if names.contains(parent) {
                if let Some(file) = planned.iter().find(|q| q.name == parent) {
                    return Err(Error::input(format!(
                        "'{}' would be both a file, from {}, and a directory holding '{}', from {}",
                        parent.escape_debug(),
                        describe(file),
                        p.name.escape_debug(),
                        describe(p)
                    ))
                    .help("give one of the sources a different as_path"));
                }
            }
            end = slash;
        }
    }
    Ok(())
}

/// A package written inside one of its own source trees would pick up earlier packages or
/// its own temporary file on the next build.
fn refuse_output_inside_sources(sources: &[PackSource], zip_path: &Path) -> Result<()> {
    let out_dir = parent_dir(zip_path);
    let Ok(out_dir) = std::fs::canonicalize(out_dir) else {
        // Missing output folder: the write below reports it.
        return Ok(());
    };
    let out_zip = out_dir.join(zip_path.file_name().unwrap_or_default());
    for src in sources {
        let Ok(canon) = std::fs::canonicalize(src.source.path()) else {
            continue;
        };
        let inside = canon.is_dir() && out_dir.starts_with(&canon);
        if inside || canon == out_zip {
            return Err(Error::input(format!(
                "the package {} would be written inside its own source {}",
                zip_path.display(),
                src.source.path().display()
            ))
            .help("write the package to a folder outside the sources"));
        }
    }
    Ok(())
}

/// A source that cannot be read as it is: a link anywhere, a special file, a hard link.
fn refused(r: &Refused) -> Error {
    let at = r.path.display().to_string();
    let err = match &r.reason {
        Reason::Symlink => Error::input(format!(
            "{at} is a symbolic link or is reached through one; packages never follow links"
        ))
        .help("replace the link with the file it points to, or leave it out of the output"),
        Reason::NotAFile(_) | Reason::HardLinked(_) => {
            Error::input(r.to_string()).help("packages hold regular files with a single link only")
        }
        _ => Error::input(r.to_string()),
    };
    err.at(at)
}

/// Stored for empty files (deflate would add bytes) and for already-compressed formats;
/// Deflate at the pinned level for everything else. A function of name and size only, so
/// the same inputs always get the same method.
fn method_for(name: &str, size: u64) -> (CompressionMethod, Option<i64>) {
    let ext = name
        .rsplit('/')
        .next()
        .and_then(|base| base.rsplit_once('.'))
        .map(|(stem, ext)| (stem, ext.to_ascii_lowercase()));
    let compressed_format = matches!(&ext, Some((stem, ext))
        if !stem.is_empty() && STORED_EXTENSIONS.contains(&ext.as_str()));
    if size == 0 || compressed_format {
        (CompressionMethod::Stored, None)
    } else {
        (CompressionMethod::Deflated, Some(DEFLATE_LEVEL))
    }
}

/// ZIP64 headers are needed once either size reaches 4 GiB; deflate can grow data by a
/// little, so the bound keeps a margin for that ([`worst_deflated`]).
fn needs_zip64(size: u64) -> bool {
    worst_deflated(size) >= zip::ZIP64_BYTES_THR
}

/// The most bytes `size` bytes can take deflated: incompressible data grows by a little
/// (stored blocks: 5 bytes per 64 KiB); the bound keeps a margin over that.
fn worst_deflated(size: u64) -> u64 {
    size.saturating_add(size >> 11).saturating_add(1024)
}

/// The most bytes the entry `name` of `size` bytes can take in the ZIP, by its method.
fn worst_size(name: &str, size: u64) -> u64 {
    match method_for(name, size).0 {
        CompressionMethod::Stored => size,
        _ => worst_deflated(size),
    }
}

/// A ZIP being written, beside the path it is renamed to (`publish` removes those a killed
/// run left in its dist directory).
pub const ZIP_TEMP: crate::leftovers::Leftover<'static> =
    crate::leftovers::Leftover::file(".package-", ".tmp");

/// Each planned name moves into its manifest entry once the ZIP writer has its own copy.
fn write_zip(
    sources: &[PackSource],
    planned: Vec<Planned>,
    recorded: Option<&[&ManifestEntry]>,
    zip_path: &Path,
) -> Result<(Vec<ManifestEntry>, u64, String)> {
    let dir = parent_dir(zip_path);
    let tmp = tempfile::Builder::new()
        .prefix(ZIP_TEMP.prefix)
        .suffix(ZIP_TEMP.suffix)
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, &e))?;
    let zip_err = |e: &dyn std::fmt::Display| {
        Error::failure(format!("writing {}: {e}", zip_path.display()))
            .at(zip_path.display().to_string())
    };
    let mut zip = ZipWriter::new(BufWriter::with_capacity(IO_BUFFER, tmp.as_file()));
    let mut files = Vec::with_capacity(planned.len());
    for (i, p) in planned.into_iter().enumerate() {
        let (method, level) = method_for(&p.name, p.size);
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .compression_level(level)
            .last_modified_time(DateTime::default())
            .system(System::Unix)
            .unix_permissions(0o644)
            .large_file(needs_zip64(p.size));
        zip.start_file(p.name.as_str(), options)
            .map_err(|e| zip_err(&e))?;
        let source = p.source(sources);
        let file = source.open_file().map_err(|r| refused(&r))?;
        let mut reader = BufReader::with_capacity(IO_BUFFER, HashingReader::new(file));
        io::copy(&mut reader, &mut zip).map_err(|e| {
            Error::failure(format!(
                "packing {} as '{}': {e}",
                source.path().display(),
                p.name.escape_debug()
            ))
        })?;
        let (sha256, bytes) = reader.into_inner().finish();
        // The entry's method and ZIP64 choice came from the size seen when planning.
        if bytes != p.size {
            return Err(Error::failure(format!(
                "{} changed while it was being packaged ({} bytes, then {bytes})",
                source.path().display(),
                p.size
            ))
            .help("run the step again once whatever writes that file has finished"));
        }
        // Hashed as it was packed: these bytes are in the ZIP, so they must be the recorded
        // ones (name and size were compared before anything was written).
        if let Some(r) = recorded
            .and_then(|r| r.get(i))
            .filter(|r| r.sha256 != sha256)
        {
            return Err(Error::failure(format!(
                "{} changed after it was checked against what its step recorded: packed {bytes} bytes, sha256 {}; recorded {} bytes, sha256 {}; no step produced these bytes, so nothing was packaged",
                source.path().display(),
                crate::digest::short(&sha256),
                r.bytes,
                crate::digest::short(&r.sha256)
            ))
            .help(CHANGED_HELP));
        }
        files.push(ManifestEntry {
            path: p.name,
            bytes,
            sha256,
        });
    }
    let writer = zip.finish().map_err(|e| zip_err(&e))?;
    writer.into_inner().map_err(|e| zip_err(e.error()))?;
    tmp.as_file().sync_all().map_err(|e| zip_err(&e))?;
    // The writer seeks back to patch local headers, so the digest is taken from the
    // finished file rather than from the stream.
    let (zip_sha256, zip_bytes) = sha256_file(tmp.path())?;
    crate::atomic::persist(tmp, zip_path)?;
    Ok((files, zip_bytes, zip_sha256))
}

fn write_manifest_json(
    w: &mut dyn io::Write,
    files: &[ManifestEntry],
    package: PackageRef,
) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, &ManifestJson { files, package })?;
    w.write_all(b"\n")
}

/// The name manifest.json gives the ZIP at `zip_path`.
fn zip_file_name(zip_path: &Path) -> String {
    zip_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Counts what is written to it (the size of a manifest, without keeping it).
#[derive(Default)]
struct Counted(u64);

impl io::Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len() as u64);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The most bytes [`build_package`] can write for `entries` (the files it will pack, as the
/// manifests list them) into a ZIP at `zip_path`, with both manifests, whatever the files
/// compress to: each file stored or deflated at its worst ([`worst_size`]), its local and
/// central headers with both ZIP64 fields and a data descriptor, its name twice, the end
/// records, and the manifests as they would be written for a ZIP of the largest size. Known
/// before anything is read: package_std compares it with the cap on a step's outputs before
/// its step is charged.
pub fn max_package_bytes(entries: &[ManifestEntry], zip_path: &Path) -> u64 {
    // Local header 30 + ZIP64 extra 20, central header 46 + ZIP64 extra 28, descriptor 24.
    const PER_ENTRY: u64 = 30 + 20 + 46 + 28 + 24;
    // End of central directory 22, ZIP64 end record 56 and its locator 20.
    const END: u64 = 22 + 56 + 20;
    let zip = entries.iter().fold(END, |sum, e| {
        let name = e.path.len() as u64;
        sum.saturating_add(worst_size(&e.path, e.bytes))
            .saturating_add(PER_ENTRY + 2 * name)
    });
    let mut manifests = Counted::default();
    let package = PackageRef {
        file: &zip_file_name(zip_path),
        bytes: u64::MAX,
        sha256: &"0".repeat(64),
    };
    // Written to a counter, which never fails.
    let _ = write_manifest_json(&mut manifests, entries, package);
    let _ = write_manifest_csv(&mut manifests, entries);
    zip.saturating_add(manifests.0)
}

/// `path,bytes,sha256`, LF line ends; a path is a text cell ([`crate::csv_cell::text`]):
/// quoted (RFC 4180) when it holds a comma, a quote or starts/ends with a space, so
/// spreadsheet tools read it back unchanged, and prefixed with `'` when it starts like a
/// formula (`=`, `+`, `-`, `@`), so they never run it.
fn write_manifest_csv(w: &mut dyn io::Write, files: &[ManifestEntry]) -> io::Result<()> {
    w.write_all(b"path,bytes,sha256\n")?;
    for f in files {
        writeln!(
            w,
            "{},{},{}",
            crate::csv_cell::text(&f.path),
            f.bytes,
            f.sha256
        )?;
    }
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Hashes and counts a source as the ZIP writer reads it, so each file is read once.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }
    fn finish(self) -> (String, u64) {
        (hex(&self.hasher.finalize()), self.bytes)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_path_rules() {
        assert!(validate_as_path("a/b.txt").is_ok());
        for bad in [
            "", "/a", "a//b", "a/", "./a", "a/../b", "..", "a\\b", "C:", "a/\n",
        ] {
            assert!(validate_as_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn method_depends_on_name_and_size_only() {
        assert_eq!(method_for("a/x.txt", 0).0, CompressionMethod::Stored);
        assert_eq!(method_for("a/x.txt", 10).0, CompressionMethod::Deflated);
        assert_eq!(method_for("a/x.ZIP", 10).0, CompressionMethod::Stored);
        assert_eq!(method_for("a/.zip", 10).0, CompressionMethod::Deflated);
        assert_eq!(method_for("a.zip/x", 10).0, CompressionMethod::Deflated);
    }

    #[test]
    fn zip64_only_near_four_gib() {
        assert!(!needs_zip64(0));
        assert!(!needs_zip64(4_000_000_000));
        assert!(needs_zip64(u64::from(u32::MAX)));
        assert!(needs_zip64(u64::from(u32::MAX) - 1024));
    }
}
