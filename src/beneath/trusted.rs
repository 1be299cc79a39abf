//! Opens the operator's own files by path (config/, runtime profiles, ledger files, lock files): never blocked on a FIFO nor read from a device.
use super::resolve::base_flags;
use super::{meta_from, Kind, Reason, Refused};
use std::fs::File;
use std::path::Path;

/// Open `path` for reading, a file the operator trusts: a link is followed (a config file or a
/// ledger file linked elsewhere is the operator's choice), but the open cannot block on a FIFO
/// (`O_NONBLOCK`) and what was opened (`fstat`) must be a regular file, so no FIFO hangs a
/// command and no device (`/dev/zero`) is read without end. Hard links are allowed: these are
/// not a tenant's files. `Reason::Missing` when nothing is there.
pub fn open_trusted(path: &Path) -> Result<File, Refused> {
    let refused = |reason| Refused {
        path: path.to_path_buf(),
        reason,
    };
    let io = |e: rustix::io::Errno| Reason::Io(std::io::Error::from(e).to_string());
    let fd = rustix::fs::open(path, base_flags(), rustix::fs::Mode::empty()).map_err(|e| {
        refused(if e == rustix::io::Errno::NOENT {
            Reason::Missing
        } else {
            io(e)
        })
    })?;
    regular(fd, path)
}

/// Open (creating) a lock file for reading and writing. Unlike [`open_trusted`] the last
/// component is never followed: the holder's note is written into the file, and through a
/// link it would overwrite the start of whatever file the link names (a ledger file, a
/// config file). A FIFO or a device there is refused as well: a lock file only ever holds
/// that note, so removing what is there is always safe, and the refusal says so.
pub fn open_lock(path: &Path) -> Result<File, Refused> {
    use rustix::fs::OFlags;
    let refused = |reason| Refused {
        path: path.to_path_buf(),
        reason,
    };
    let io = |e: rustix::io::Errno| Reason::Io(std::io::Error::from(e).to_string());
    let flags = OFlags::RDWR
        | OFlags::CREATE
        | OFlags::NOFOLLOW
        | OFlags::CLOEXEC
        | OFlags::NOCTTY
        | OFlags::NONBLOCK;
    let fd =
        rustix::fs::open(path, flags, rustix::fs::Mode::from_raw_mode(0o666)).map_err(|e| {
            refused(if e == rustix::io::Errno::LOOP {
                Reason::NotAFile(Kind::Symlink)
            } else {
                io(e)
            })
        })?;
    regular(fd, path)
}

/// The opened file if `fstat` shows a regular file; else the refusal naming `path`.
fn regular(fd: rustix::fd::OwnedFd, path: &Path) -> Result<File, Refused> {
    let refused = |reason| Refused {
        path: path.to_path_buf(),
        reason,
    };
    let st = rustix::fs::fstat(&fd)
        .map_err(|e| refused(Reason::Io(std::io::Error::from(e).to_string())))?;
    match meta_from(&st).kind {
        Kind::File => Ok(File::from(fd)),
        other => Err(refused(Reason::NotAFile(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_links_to_files_open_fifos_folders_and_devices_do_not() {
        let t = tempfile::tempdir().unwrap();
        let p = |n: &str| t.path().join(n);
        std::fs::write(p("a.yml"), "a: 1\n").unwrap();
        std::os::unix::fs::symlink(p("a.yml"), p("link.yml")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", p("zero.yml")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            p("pipe.yml"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(open_trusted(&p("a.yml")).is_ok());
        assert!(open_trusted(&p("link.yml")).is_ok());
        let reason = |n: &str| open_trusted(&p(n)).map(drop).unwrap_err().reason;
        assert_eq!(reason("pipe.yml"), Reason::NotAFile(Kind::Fifo));
        assert_eq!(reason("zero.yml"), Reason::NotAFile(Kind::Device));
        assert_eq!(reason(""), Reason::NotAFile(Kind::Folder));
        assert_eq!(reason("none.yml"), Reason::Missing);
    }

    #[test]
    fn a_lock_file_is_created_or_reused_never_followed_nor_a_fifo() {
        let t = tempfile::tempdir().unwrap();
        let p = |n: &str| t.path().join(n);
        assert!(open_lock(&p("new.lock")).is_ok());
        assert!(open_lock(&p("new.lock")).is_ok());
        std::fs::write(p("ledger.jsonl"), "keep\n").unwrap();
        std::os::unix::fs::symlink(p("ledger.jsonl"), p("link.lock")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            p("pipe.lock"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let reason = |n: &str| open_lock(&p(n)).map(drop).unwrap_err().reason;
        assert_eq!(reason("link.lock"), Reason::NotAFile(Kind::Symlink));
        assert_eq!(reason("pipe.lock"), Reason::NotAFile(Kind::Fifo));
        assert_eq!(std::fs::read(p("ledger.jsonl")).unwrap(), b"keep\n");
    }
}
