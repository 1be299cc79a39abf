//! Opening a billing-state directory for writing: scan the three files, refuse damage, then repair what a crash can leave (a torn tail, a privileged record without its audit record) and report it.
use super::accounts::Damage;
use super::cross::PrivilegedRef;
use super::file::{open_existing, read_object, sync_dir, write_batch, FileState};
use super::mark::ctime_ns;
use super::prepare::prepare_one;
use super::scan::{self, check_across, Mode, Scan};
use super::{Repair, RepairKind, Stream};
use crate::error::{Error, Result};
use crate::records::{Audit, Payload};
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A file as scanned before anything is created or changed.
struct Scanned {
    scan: Scan,
    torn: Option<scan::Torn>,
    /// Its change time before the scan (None: it did not exist).
    changed: Option<i128>,
}

/// Open and index the three files; the caller holds the directory lock. Every file and the
/// rules between them are checked before anything is created or repaired, so a writer that
/// stops on damage leaves every file as it was (and no repair goes unreported). Then torn
/// tails are removed and missing audit records added, each reported as a `Repair`.
pub(crate) fn load_locked(dir: &Path) -> Result<(Vec<FileState>, Vec<Repair>)> {
    let (files, repairs, _) = load_locked_with(dir, false)?;
    Ok((files, repairs))
}

/// [`load_locked`] for a merge into `dir`: the runs billing.jsonl holds less of than their
/// `run_ended` states (`Damage::shortfall`: what a merge interrupted between its renames
/// leaves) are returned instead of refused, for the merge to check its result.
pub(crate) fn load_locked_for_merge(
    dir: &Path,
) -> Result<(Vec<FileState>, Vec<Repair>, Vec<Damage>)> {
    load_locked_with(dir, true)
}

fn load_locked_with(
    dir: &Path,
    shortfalls: bool,
) -> Result<(Vec<FileState>, Vec<Repair>, Vec<Damage>)> {
    // An interrupted `state pull` is finished before anything is read: its files are the
    // verified release, and appending to half of them would strand both.
    let finished = super::install::finish_as_repair(dir)?;
    let mut scanned = Vec::new();
    for s in Stream::ALL {
        scanned.push(scan_as_is(dir, s)?);
    }
    let paths = Stream::ALL.map(|s| dir.join(s.file_name()));
    let found = check_across(
        [&scanned[0].scan, &scanned[1].scan, &scanned[2].scan],
        [&paths[0], &paths[1], &paths[2]],
    );
    let (tolerated, refused): (Vec<Damage>, Vec<Damage>) = found
        .damage
        .into_iter()
        .partition(|d| shortfalls && d.shortfall);
    if let Some(d) = refused.first() {
        return Err(damage(&paths[d.stream.index()], d.line, &d.message));
    }
    let mut created = false;
    let mut files = Vec::new();
    let mut repairs: Vec<Repair> = finished.into_iter().collect();
    for (stream, s) in Stream::ALL.into_iter().zip(scanned) {
        created |= !dir.join(stream.file_name()).exists();
        let mut f = open_for_append(dir, stream, s.scan, s.changed)?;
        if let Some(t) = s.torn {
            repairs.push(remove_torn_tail(&mut f, t)?);
        }
        // Appends are checked as they are made: references are collected only at open.
        f.scan.refs = None;
        files.push(f);
    }
    if created {
        sync_dir(dir)?;
    }
    for u in &found.unaudited {
        repairs.push(add_audit(&mut files, u)?);
    }
    Ok((files, repairs, tolerated))
}

/// Re-open one file that was replaced (a merge renamed a new one over it).
pub(crate) fn load_file(dir: &Path, stream: Stream) -> Result<(FileState, Option<Repair>)> {
    let s = scan_as_is(dir, stream)?;
    let mut f = open_for_append(dir, stream, s.scan, s.changed)?;
    let repair = match s.torn {
        Some(t) => Some(remove_torn_tail(&mut f, t)?),
        None => None,
    };
    f.scan.refs = None;
    Ok((f, repair))
}

/// Scan a file as it is on disk (a missing file is empty): its torn tail, or an error for any
/// other problem.
fn scan_as_is(dir: &Path, stream: Stream) -> Result<Scanned> {
    let path = dir.join(stream.file_name());
    let mut scan = Scan::new(stream, Mode::Write);
    let Some(file) = open_existing(&path)? else {
        return Ok(Scanned {
            scan,
            torn: None,
            changed: None,
        });
    };
    let changed = Some(ctime_ns(
        &file.metadata().map_err(|e| Error::io(&path, &e))?,
    ));
    let torn = scan_to_end(&file, &path, &mut scan, 0)?;
    Ok(Scanned {
        scan,
        torn,
        changed,
    })
}

/// Feed `file` from `start` to its end: its torn tail, or an error for any other problem.
pub(crate) fn scan_to_end(
    file: &File,
    path: &Path,
    scan: &mut Scan,
    start: u64,
) -> Result<Option<scan::Torn>> {
    scan::feed_file::<std::io::Error>(file, (start, u64::MAX), scan, &mut |_| Ok(()))
        .map_err(|e| Error::io(path, &e))?;
    let torn = scan.finish();
    match scan.problems.first() {
        Some(p) => Err(damage(path, p.line, &p.message)),
        None => Ok(torn),
    }
}

/// A writer's refusal: damage is never repaired, whatever line it is on.
pub(crate) fn damage(path: &Path, line: u64, message: &str) -> Error {
    Error::failure(format!(
        "{} is damaged at line {line}: {message}",
        path.display()
    )).topic(crate::error::Topic::LedgerDamaged)
    .at(format!("{}:{line}", path.display()))
    .help("a complete line that fails its checks is damage, not an interrupted write, and no writer continues on it: run `platform integrity-validate` for every problem, then restore the file from a good copy (e.g. `platform state pull`)")
}

/// `changed`: its change time before it was scanned (None: it did not exist, and is
/// created here).
fn open_for_append(
    dir: &Path,
    stream: Stream,
    scan: Scan,
    changed: Option<i128>,
) -> Result<FileState> {
    let path = dir.join(stream.file_name());
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(&path)
        .map_err(|e| Error::io(&path, &e))?;
    let meta = file.metadata().map_err(|e| Error::io(&path, &e))?;
    Ok(FileState {
        path,
        file,
        id: (meta.dev(), meta.ino()),
        scan,
        changed: changed.or(Some(ctime_ns(&meta))),
    })
}

pub(crate) fn remove_torn_tail(f: &mut FileState, t: scan::Torn) -> Result<Repair> {
    f.file
        .set_len(t.offset)
        .and_then(|()| f.file.sync_all())
        .map_err(|e| Error::io(&f.path, &e))?;
    f.note_written();
    Ok(Repair {
        kind: RepairKind::TornTail,
        file: f.path.display().to_string(),
        stream: f.scan.stream,
        from_line: t.from_line,
        lines_removed: t.lines,
        bytes_removed: t.bytes,
        reason: t.message,
    })
}

/// Append the audit record a privileged record lacks, rebuilt from the record itself.
fn add_audit(files: &mut [FileState], u: &PrivilegedRef) -> Result<Repair> {
    let source = &files[u.stream.index()];
    let record = read_object(source, u.offset)?;
    let text = |k: &str| record.get(k).and_then(Value::as_str);
    let Some(actor) = text("actor") else {
        return Err(damage(
            &source.path,
            u.line,
            &format!(
                "{} {} names no actor, so its missing audit record cannot be rebuilt",
                u.rule.record.name(),
                u.key
            ),
        ));
    };
    let audit = Audit::for_privileged(u.rule, actor, text("tenant_id"), &u.key);
    let origin = format!(
        "{} {} at {}:{} (a crash between the two writes)",
        u.rule.record.name(),
        u.key,
        source.path.display(),
        u.line
    );
    let prepared = prepare_one(Stream::Audit, &Payload::new(audit))?;
    let f = &mut files[Stream::Audit.index()];
    let posted = write_batch(f, &[prepared])?;
    Ok(Repair {
        kind: RepairKind::AuditAdded,
        file: f.path.display().to_string(),
        stream: Stream::Audit,
        from_line: posted.first().map_or(0, |p| p.seq),
        lines_removed: 0,
        bytes_removed: 0,
        reason: origin,
    })
}
