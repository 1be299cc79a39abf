//! Advisory directory locks (flock on `<dir>/<name>`), polled until a timeout, naming who holds them.
//!
//! The lock file is never deleted: deleting it would let two processes lock two different
//! inodes under one name. Its content is only a note for waiters (pid, command, since when).
use crate::error::{Error, Result};
use std::fs::{File, TryLockError};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The writers' lock of a billing-state directory.
pub const LEDGER_LOCK: &str = ".ledger.lock";

/// How long writers wait for each other by default: the ledger lock is held for one
/// check-then-append, so a long wait means something is stuck.
pub const DEFAULT_LEDGER_LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// The holder note is padded with spaces to this many bytes (a longer one is kept whole).
const NOTE_WIDTH: usize = 256;

/// Told to the caller while it waits (first when contention is seen, then every 5 s).
#[derive(Debug, Clone)]
pub struct LockWait<'a> {
    pub path: &'a Path,
    /// What the holder wrote into the lock file (pid, command, since), possibly empty.
    pub holder: &'a str,
    pub waited: Duration,
}

/// An exclusive lock held until dropped.
#[derive(Debug)]
pub struct DirLock {
    lock: LockFile,
}

impl DirLock {
    /// Take `<dir>/<name>`, polling until `timeout` (zero: try once). The directory must exist.
    pub fn acquire(
        dir: &Path,
        name: &str,
        timeout: Duration,
        on_wait: impl FnMut(&LockWait<'_>),
    ) -> Result<DirLock> {
        let lock = LockFile::open(dir, name)?;
        lock.take(timeout, on_wait)?;
        Ok(DirLock { lock })
    }

    pub fn path(&self) -> &Path {
        &self.lock.path
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        release(&self.lock.file);
    }
}

/// A lock file kept open and taken many times (a ledger writer takes it once per group: an
/// open, a `statx` and a close less each time than [`DirLock::acquire`]).
#[derive(Debug)]
pub struct LockFile {
    file: File,
    path: PathBuf,
}

/// The lock of a [`LockFile`], released when dropped.
#[derive(Debug)]
pub struct Held<'a>(&'a File);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        release(self.0);
    }
}

/// The lock files (device, inode) this process holds now, once per hold: a reader's shared
/// lock on one of them ([`SharedHold`]) would wait for this very process, maybe forever.
static HELD: std::sync::Mutex<Vec<(u64, u64)>> = std::sync::Mutex::new(Vec::new());

fn file_id(file: &File) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

fn held() -> std::sync::MutexGuard<'static, Vec<(u64, u64)>> {
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn release(file: &File) {
    if let Some(id) = file_id(file) {
        let mut held = held();
        if let Some(i) = held.iter().position(|h| *h == id) {
            held.swap_remove(i);
        }
    }
    let _ = file.unlock();
}

/// A shared hold of a directory's lock file, taken by a reader that takes no writer lock so
/// that what it measures of the directory's files is what a writer left between two holds
/// (`ledger::cut`). None when it need not or cannot be taken: this process holds the lock
/// itself (no other writer can be in the middle of anything), there is no lock file (no
/// writer has written there yet) or it cannot be read, or a writer kept it past `timeout`.
pub struct SharedHold(File);

impl SharedHold {
    pub fn take(dir: &Path, name: &str, timeout: Duration) -> Option<SharedHold> {
        // Read-only and never created: a reader leaves nothing behind (and a directory no
        // writer has locked yet has nobody to wait for, but its very first writer).
        let path = dir.join(name);
        let file = crate::beneath::open_trusted(&path).ok()?;
        let id = file_id(&file)?;
        if held().contains(&id) {
            return None;
        }
        // A command that reads twice (integrity-validate: the ledger, then the runs for the
        // runtime check) waits once: until 2026-12-04 it waited the whole timeout each time.
        let timeout = match given_up().contains(&id) {
            true => Duration::ZERO,
            false => timeout,
        };
        let start = Instant::now();
        let mut sleep = Duration::from_millis(1);
        loop {
            match file.try_lock_shared() {
                Ok(()) => return Some(SharedHold(file)),
                Err(TryLockError::WouldBlock) if start.elapsed() < timeout => {}
                Err(TryLockError::WouldBlock) if !timeout.is_zero() => {
                    given_up().push(id);
                    crate::output::progress(&format!(
                        "note: {} has been held by {} for over {} s: reading the ledger without waiting for it",
                        path.display(),
                        match read_holder(&file) {
                            h if h.is_empty() => "another process".to_string(),
                            h => h,
                        },
                        timeout.as_secs()
                    ));
                    return None;
                }
                Err(_) => return None,
            }
            std::thread::sleep(sleep);
            sleep = (sleep * 2).min(Duration::from_millis(25));
        }
    }
}

/// The lock files (device, inode) a reader of this process stopped waiting for: the next
/// reader does not wait for them again.
static GIVEN_UP: std::sync::Mutex<Vec<(u64, u64)>> = std::sync::Mutex::new(Vec::new());

fn given_up() -> std::sync::MutexGuard<'static, Vec<(u64, u64)>> {
    GIVEN_UP
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for SharedHold {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl LockFile {
    /// Open (creating) `<dir>/<name>`; the directory must exist.
    pub fn open(dir: &Path, name: &str) -> Result<LockFile> {
        let path = dir.join(name);
        let file = crate::beneath::open_lock(&path).map_err(|refused| {
            let error = Error::input(refused.to_string()).at(path.display().to_string());
            match refused.reason {
                crate::beneath::Reason::NotAFile(_) => error.help(format!(
                    "a lock file only holds a note naming its holder: remove {} and run the command again",
                    path.display()
                )),
                _ => error,
            }
        })?;
        Ok(LockFile { file, path })
    }

    /// Take the lock, polling until `timeout` (zero: try once), until the answer is dropped.
    pub fn hold(&self, timeout: Duration, on_wait: impl FnMut(&LockWait<'_>)) -> Result<Held<'_>> {
        self.take(timeout, on_wait)?;
        Ok(Held(&self.file))
    }

    /// Lock the file (the caller unlocks it).
    fn take(&self, timeout: Duration, mut on_wait: impl FnMut(&LockWait<'_>)) -> Result<()> {
        let (file, path) = (&self.file, &self.path);
        let start = Instant::now();
        let mut sleep = Duration::from_millis(1);
        let mut next_note = Duration::ZERO;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    return Err(
                        Error::failure(format!("cannot lock {}: {e}", path.display()))
                            .at(path.display().to_string()),
                    )
                }
            }
            let waited = start.elapsed();
            let holder = read_holder(file);
            if waited >= timeout {
                let who = if holder.is_empty() {
                    "another process".to_string()
                } else {
                    holder
                };
                return Err(Error::failure(format!(
                    "timed out after {:.1} s waiting for the lock {} held by {who}",
                    waited.as_secs_f64(),
                    path.display()
                ))
                .topic(crate::error::Topic::LockTimeout)
                .at(path.display().to_string())
                .help("wait for that process to finish (or stop it), then run the command again"));
            }
            if waited >= next_note {
                on_wait(&LockWait {
                    path,
                    holder: &holder,
                    waited,
                });
                next_note = waited + Duration::from_secs(5);
            }
            std::thread::sleep(sleep.min(timeout.saturating_sub(waited)));
            sleep = (sleep * 2).min(Duration::from_millis(25));
        }
        if let Some(id) = file_id(file) {
            held().push(id);
        }
        write_note(file);
        Ok(())
    }
}

/// Who holds the lock, for waiters to name. Best effort: the note only helps waiters explain
/// themselves. It is padded to a fixed width and overwritten in place: truncating and
/// rewriting the file on every acquire cost a block free + allocation (about 1 ms on ext4)
/// per ledger append. A longer note another holder left is not cut: waiters read the first
/// line only.
fn write_note(file: &File) {
    // Who this process is does not change: said once (a writer takes the lock per group).
    static WHO: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let who = WHO.get_or_init(|| format!("pid {} ({})", std::process::id(), command_line()));
    let mut note = format!(
        "{who} since {}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );
    let width = NOTE_WIDTH.max(note.len() + 1);
    note.extend(std::iter::repeat_n(' ', width - 1 - note.len()));
    note.push('\n');
    let _ = file.write_all_at(note.as_bytes(), 0);
}

/// The holder's note: the lock file's first line.
fn read_holder(file: &File) -> String {
    let mut buf = [0u8; 512];
    let n = file.read_at(&mut buf, 0).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    text.lines().next().unwrap_or("").trim().to_string()
}

/// The holder note's command: shown only, so an argument that is not UTF-8 (a Latin-1 folder
/// name is a valid path) is written lossily; `std::env::args` would panic on it.
fn command_line() -> String {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let name = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut line = name;
    for a in args.iter().skip(1).take(3) {
        line.push(' ');
        line.push_str(a);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_times_out_naming_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path(), "x.lock", Duration::ZERO, |_| {}).unwrap();
        let mut waits = 0;
        let err = DirLock::acquire(dir.path(), "x.lock", Duration::from_millis(50), |_| {
            waits += 1
        })
        .unwrap_err();
        assert!(waits >= 1);
        assert!(err.message.contains("x.lock"), "{}", err.message);
        assert!(
            err.message.contains(&format!("pid {}", std::process::id())),
            "{}",
            err.message
        );
        drop(first);
        DirLock::acquire(dir.path(), "x.lock", Duration::ZERO, |_| {}).unwrap();
    }

    #[test]
    fn a_lock_file_kept_open_is_taken_and_released_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let lock = LockFile::open(dir.path(), "x.lock").unwrap();
        for _ in 0..3 {
            let held = lock.hold(Duration::ZERO, |_| {}).unwrap();
            let err = DirLock::acquire(dir.path(), "x.lock", Duration::ZERO, |_| {}).unwrap_err();
            assert!(
                err.message.contains(&format!("pid {}", std::process::id())),
                "{}",
                err.message
            );
            drop(held);
            drop(DirLock::acquire(dir.path(), "x.lock", Duration::ZERO, |_| {}).unwrap());
        }
    }

    #[test]
    fn waiters_name_the_holder_from_the_first_line_of_a_longer_note() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        // Another holder's longer note, which this one's overwrites only in part.
        std::fs::write(&path, format!("{}\nleft over\n", "o".repeat(400))).unwrap();
        let _held = DirLock::acquire(dir.path(), "x.lock", Duration::ZERO, |_| {}).unwrap();
        let err = DirLock::acquire(dir.path(), "x.lock", Duration::ZERO, |_| {}).unwrap_err();
        let who = format!("held by pid {} (", std::process::id());
        assert!(err.message.contains(&who), "{}", err.message);
        assert!(!err.message.contains("oooo"), "{}", err.message);
        assert!(!err.message.contains("left over"), "{}", err.message);
    }
}
