//! Opens tenant files and module outputs beneath a trusted folder with no symlink at any
//! component, the check and the open being one operation (SPEC §2 rule 4, §6), and the
//! operator's own files by path (`open_trusted`); knows nothing of tenants, steps or assets.
mod remove;
mod resolve;
mod tree;
mod trusted;

use resolve::Resolver;
use rustix::fs::{FileType, Mode, OFlags, Stat};
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

pub use remove::remove_tree;
pub use tree::{Entry, TreeFile};
pub use trusted::{open_lock, open_trusted};

/// A path under a trusted folder: links in `base` are the operator's and are followed;
/// nothing of `rel` may be a link, and `rel` never leaves `base`.
#[derive(Debug, Clone)]
pub struct Beneath {
    pub base: PathBuf,
    pub rel: PathBuf,
    /// `base` opened once for many reads ([`Beneath::opened_by`]), else opened by path
    /// at each.
    opened: Option<Arc<OwnedFd>>,
}

/// The same path, however its base is reached.
impl PartialEq for Beneath {
    fn eq(&self, other: &Beneath) -> bool {
        (&self.base, &self.rel) == (&other.base, &other.rel)
    }
}

impl Eq for Beneath {}

/// What a path turned out to be, as read without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Folder,
    Symlink,
    Fifo,
    Socket,
    Device,
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::File => "a regular file",
            Kind::Folder => "a folder",
            Kind::Symlink => "a symbolic link",
            Kind::Fifo => "a FIFO",
            Kind::Socket => "a socket",
            Kind::Device => "a device",
        }
    }
}

/// Kind, size and link count of an opened path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub bytes: u64,
    pub links: u64,
}

/// Why a path beneath a folder was not opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Missing,
    /// Some component is a symbolic link (which one is not known with openat2).
    Symlink,
    /// Absolute, or with `..`: not a path beneath the folder.
    NotPlain,
    NotAFile(Kind),
    NotAFolder,
    /// A regular file with more than one name: one of them may be another tenant's file.
    HardLinked(u64),
    Io(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Missing => write!(f, "does not exist"),
            Reason::Symlink => write!(
                f,
                "is reached through a symbolic link; links are never followed in tenant files or module outputs"
            ),
            Reason::NotPlain => write!(f, "is not a plain relative path (absolute, or with '..')"),
            Reason::NotAFile(kind) => write!(f, "is {}, not a regular file", kind.describe()),
            Reason::NotAFolder => write!(f, "is not a folder (or a part of it is not)"),
            Reason::HardLinked(n) => write!(
                f,
                "is a file with {n} hard links; only a file with a single link is read, since another link may be another tenant's file"
            ),
            Reason::Io(e) => write!(f, "cannot be opened: {e}"),
        }
    }
}

/// A refusal, naming the full path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub path: PathBuf,
    pub reason: Reason,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for Refused {}

impl Beneath {
    pub fn new(base: impl Into<PathBuf>, rel: impl Into<PathBuf>) -> Beneath {
        Beneath {
            base: base.into(),
            rel: rel.into(),
            opened: None,
        }
    }

    /// `path` beneath its own parent: only its last component is checked. For callers whose
    /// folder is their own (tests, the publisher's dist folder), not for tenant data.
    pub fn in_parent(path: &Path) -> Beneath {
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let rel = path.file_name().map(PathBuf::from).unwrap_or_default();
        Beneath::new(base, rel)
    }

    /// The same path, each open starting from `opened` when given (its base opened once with
    /// [`open_base`]) instead of opening the base by its path again: an `open` and a `close`
    /// less per read; a base renamed or replaced meanwhile is not followed.
    pub fn opened_by(self, opened: Option<Arc<OwnedFd>>) -> Beneath {
        Beneath { opened, ..self }
    }

    /// A path further down.
    pub fn join(&self, more: impl AsRef<Path>) -> Beneath {
        Beneath {
            base: self.base.clone(),
            rel: self.rel.join(more),
            opened: self.opened.clone(),
        }
    }

    /// The path as a string for a module or a message (it is not opened through this).
    pub fn path(&self) -> PathBuf {
        self.base.join(&self.rel)
    }

    /// The last component's name.
    pub fn file_name(&self) -> Option<&OsStr> {
        self.rel.file_name()
    }

    /// Open a regular file with a single link, reached through no link.
    pub fn open_file(&self) -> Result<File, Refused> {
        let file = File::from(self.open(false, Resolver::best())?);
        let meta = self.meta_of(&file)?;
        self.check_file(meta)?;
        Ok(file)
    }

    /// This folder, reached through no link (the last component included), opened: what is
    /// done through the fd stays in it, whatever is swapped for a link afterwards.
    pub fn open_folder(&self) -> Result<OwnedFd, Refused> {
        self.open(true, Resolver::best())
    }

    /// A path to what is inside this folder, opened as `dir` ([`Beneath::open_folder`]), that
    /// resolves through the fd itself (Linux: `/proc/self/fd/N`): what is read, written or
    /// removed through it stays in the folder that was opened, whatever is swapped for a
    /// link afterwards. Without `/proc` (elsewhere, or not mounted), the folder's own path:
    /// never a path that reads as missing.
    pub fn via(&self, dir: &OwnedFd) -> PathBuf {
        #[cfg(target_os = "linux")]
        {
            static PROC_FDS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
            if *PROC_FDS.get_or_init(|| Path::new("/proc/self/fd").is_dir()) {
                use std::os::fd::AsRawFd;
                return PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
            }
        }
        let _ = dir;
        self.path()
    }

    /// Kind, size and link count, reached through no link (the last component included).
    pub fn metadata(&self) -> Result<Meta, Refused> {
        let fd = self.open(false, Resolver::best())?;
        self.meta_of(&fd)
    }

    /// Refuse anything but a regular file with a single link.
    pub fn check_file(&self, meta: Meta) -> Result<(), Refused> {
        match meta.kind {
            Kind::File if meta.links == 1 => Ok(()),
            Kind::File => Err(self.refused(Reason::HardLinked(meta.links))),
            other => Err(self.refused(Reason::NotAFile(other))),
        }
    }

    fn refused(&self, reason: Reason) -> Refused {
        Refused {
            path: self.path(),
            reason,
        }
    }

    fn open(&self, want_dir: bool, how: Resolver) -> Result<OwnedFd, Refused> {
        let comps = components(&self.rel).map_err(|r| self.refused(r))?;
        let held;
        let base = match &self.opened {
            Some(fd) => fd.as_fd(),
            None => {
                held = open_base(&self.base)?;
                held.as_fd()
            }
        };
        resolve::open(base, &comps, want_dir, how).map_err(|r| self.refused(r))
    }

    fn meta_of(&self, fd: impl AsFd) -> Result<Meta, Refused> {
        rustix::fs::fstat(fd)
            .map(|st| meta_from(&st))
            .map_err(|e| self.refused(Reason::Io(std::io::Error::from(e).to_string())))
    }
}

/// Copy an opened file to `dest`, a new file (its folder is created). The copy is what a module
/// or an uploader gets, so nothing can swap the source for a link afterwards. A source larger
/// than the space left where `dest` is (`StorageFull`) is refused before a byte is written, and
/// a copy that fails is removed: a partial copy would keep the disk full for every tenant.
pub fn copy_opened(src: &mut File, dest: &Path) -> std::io::Result<u64> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = File::create_new(dest)?;
    let copied = fits(src, &out).and_then(|()| std::io::copy(src, &mut out));
    if copied.is_err() {
        drop(out);
        // Best effort: the copy's own error is the one to report.
        let _ = std::fs::remove_file(dest);
    }
    copied
}

/// Whether `src` fits in the space its copy `out`'s file system has left for this user.
fn fits(src: &File, out: &File) -> std::io::Result<()> {
    let need = src.metadata()?.len();
    let Ok(fs) = rustix::fs::fstatvfs(out) else {
        // A file system that cannot say: the copy itself finds out.
        return Ok(());
    };
    let free = fs.f_bavail.saturating_mul(fs.f_frsize);
    if need > free {
        return Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!("it is {need} bytes and the disk has {free} bytes free"),
        ));
    }
    Ok(())
}

/// The trusted folder itself; links in its path are the operator's choice and are followed
/// (to keep for [`Beneath::opened_by`]).
pub fn open_base(base: &Path) -> Result<OwnedFd, Refused> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::open(base, flags, Mode::empty()).map_err(|e| Refused {
        path: base.to_path_buf(),
        reason: if e == rustix::io::Errno::NOENT {
            Reason::Missing
        } else {
            Reason::Io(std::io::Error::from(e).to_string())
        },
    })
}

/// The normal components of `rel`; `.` is skipped, anything that could leave is refused.
fn components(rel: &Path) -> Result<Vec<&OsStr>, Reason> {
    rel.components()
        .filter(|c| *c != Component::CurDir)
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(Reason::NotPlain),
        })
        .collect()
}

// The field types of `struct stat` differ between systems; the conversions are identities on
// some of them.
#[allow(clippy::useless_conversion)]
fn meta_from(st: &Stat) -> Meta {
    let kind = match FileType::from_raw_mode(st.st_mode.into()) {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Folder,
        FileType::Symlink => Kind::Symlink,
        FileType::Fifo => Kind::Fifo,
        FileType::Socket => Kind::Socket,
        _ => Kind::Device,
    };
    Meta {
        kind,
        bytes: u64::try_from(st.st_size).unwrap_or(0),
        links: u64::from(st.st_nlink),
    }
}

#[cfg(test)]
mod tests;
