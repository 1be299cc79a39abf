//! Resolves a relative path beneath a folder's fd without following any link, check and open in
//! one operation: `openat2` (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) on
//! Linux, else — or where the kernel lacks it — an `openat(O_NOFOLLOW)` walk, one component at
//! a time from the folder's fd, which is just as race-free.
use super::Reason;
use rustix::fs::{openat, statat, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// How a path is resolved. Both are race-free; tests run each explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resolver {
    /// One `openat2` call; falls back to the walk where the kernel lacks the call.
    #[cfg(target_os = "linux")]
    Openat2,
    /// `openat(O_NOFOLLOW)` one component at a time.
    Walk,
}

impl Resolver {
    pub(super) fn best() -> Resolver {
        #[cfg(target_os = "linux")]
        {
            if openat2::available() {
                return Resolver::Openat2;
            }
        }
        Resolver::Walk
    }
}

/// Flags of every open: no controlling terminal, no fd leaked to modules, and O_NONBLOCK so a
/// FIFO put where a file was expected cannot block the run (it is refused after the open).
pub(super) fn base_flags() -> OFlags {
    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK
}

/// Open `comps` beneath `dir`; the last as a folder when `want_dir`, else as whatever it is.
pub(super) fn open(
    dir: BorrowedFd<'_>,
    comps: &[&OsStr],
    want_dir: bool,
    how: Resolver,
) -> Result<OwnedFd, Reason> {
    let mut flags = base_flags();
    if want_dir {
        flags |= OFlags::DIRECTORY;
    }
    if comps.is_empty() {
        return openat(dir, c".", flags, Mode::empty()).map_err(|e| from_errno(e, None));
    }
    match how {
        #[cfg(target_os = "linux")]
        Resolver::Openat2 => match openat2::open(dir, comps, flags) {
            Some(result) => result,
            None => walk(dir, comps, flags),
        },
        Resolver::Walk => walk(dir, comps, flags),
    }
}

/// Each component from the fd of the one before, never following a link: a component swapped
/// for a link at any moment fails that open, and an fd already held cannot be swapped.
fn walk(dir: BorrowedFd<'_>, comps: &[&OsStr], last: OFlags) -> Result<OwnedFd, Reason> {
    let mut held: Option<OwnedFd> = None;
    for (i, name) in comps.iter().enumerate() {
        let at = held.as_ref().map_or(dir, |fd| fd.as_fd());
        let flags = if i + 1 == comps.len() {
            last
        } else {
            base_flags() | OFlags::DIRECTORY
        };
        let fd = openat(at, *name, flags | OFlags::NOFOLLOW, Mode::empty())
            .map_err(|e| from_errno(e, Some((at, name))))?;
        held = Some(fd);
    }
    held.ok_or(Reason::NotPlain)
}

/// What an errno means here. With `name`, a failure is told apart by looking at the entry
/// itself (not following it): Linux reports ENOTDIR, not ELOOP, for `O_DIRECTORY|O_NOFOLLOW`
/// on a link, and BSDs use EMLINK.
fn from_errno(e: Errno, name: Option<(BorrowedFd<'_>, &&OsStr)>) -> Reason {
    if e == Errno::NOENT {
        return Reason::Missing;
    }
    if let Some((at, name)) = name {
        if let Ok(st) = statat(at, *name, AtFlags::SYMLINK_NOFOLLOW) {
            #[allow(clippy::useless_conversion)]
            if FileType::from_raw_mode(st.st_mode.into()) == FileType::Symlink {
                return Reason::Symlink;
            }
        }
    }
    match e {
        Errno::LOOP | Errno::MLINK => Reason::Symlink,
        Errno::XDEV => Reason::NotPlain,
        Errno::NOTDIR => Reason::NotAFolder,
        other => Reason::Io(std::io::Error::from(other).to_string()),
    }
}

/// `a/b/c` from its components (each without `/`).
fn joined(comps: &[&OsStr]) -> OsString {
    let mut out = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(c.as_bytes());
    }
    OsStr::from_bytes(&out).to_os_string()
}

#[cfg(target_os = "linux")]
mod openat2 {
    use super::{from_errno, joined, Reason};
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;
    use std::ffi::OsStr;
    use std::os::fd::{BorrowedFd, OwnedFd};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Cleared the first time the kernel says it has no openat2 (before Linux 5.6).
    static AVAILABLE: AtomicBool = AtomicBool::new(true);

    pub(super) fn available() -> bool {
        AVAILABLE.load(Ordering::Relaxed)
    }

    /// None: the call is not available here (ENOSYS; EPERM from a seccomp filter that does
    /// not know it), so the caller walks instead.
    pub(super) fn open(
        dir: BorrowedFd<'_>,
        comps: &[&OsStr],
        flags: OFlags,
    ) -> Option<Result<OwnedFd, Reason>> {
        let path = joined(comps);
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        // EAGAIN: a rename elsewhere raced the kernel's check of the resolution; it asks for a
        // retry. Bounded, so a storm of renames ends in an error rather than a spin.
        for _ in 0..16 {
            match rustix::fs::openat2(dir, path.as_os_str(), flags, Mode::empty(), resolve) {
                Err(Errno::AGAIN) => continue,
                Err(Errno::NOSYS) => {
                    AVAILABLE.store(false, Ordering::Relaxed);
                    return None;
                }
                Err(Errno::PERM) => return None,
                Ok(fd) => return Some(Ok(fd)),
                Err(e) => return Some(Err(from_errno(e, None))),
            }
        }
        Some(Err(Reason::Io(
            "the path kept changing while it was opened".into(),
        )))
    }
}
