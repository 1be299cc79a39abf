//! Opens the operator's own files by path (config/, runtime profiles, ledger files): links followed, yet never blocked on a FIFO nor read from a device.
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
    let st = rustix::fs::fstat(&fd).map_err(|e| refused(io(e)))?;
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
}
