//! Lists folders beneath a trusted folder without following links: one folder's entries (and
//! removes one of them by name), every regular file of a tree (a `dir` output), refusing links
//! and special files in it, or every entry of a tree as it is (the survey of a step's outputs).
use super::resolve::Resolver;
use super::{meta_from, Beneath, Kind, Meta, Reason, Refused};
use rustix::fs::{statat, AtFlags, Dir};
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One entry of a folder, as it is (a link is reported as a link, not followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: OsString,
    pub meta: Meta,
}

/// A regular file of a tree: its path below the tree's root, and its size when listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    pub rel: PathBuf,
    pub bytes: u64,
}

impl Beneath {
    /// This folder's entries (without `.` and `..`), sorted by name.
    pub fn list_dir(&self) -> Result<Vec<Entry>, Refused> {
        let fd = self.open(true, Resolver::best())?;
        entries(&fd).map_err(|r| self.refused(r))
    }

    /// This folder's entries (without `.` and `..`), sorted by name, as `dir` (this folder,
    /// opened with [`Beneath::open_folder`]) reads them: whatever is swapped in for the folder
    /// since, the listing is of the folder that was opened.
    pub fn list_opened(&self, dir: &OwnedFd) -> Result<Vec<Entry>, Refused> {
        entries(dir).map_err(|r| self.refused(r))
    }

    /// Remove the entry `name` of this folder, opened as `dir`: the name only, so a link is
    /// removed, never what it points to; a folder is refused (not emptied).
    pub fn remove_opened(&self, dir: &OwnedFd, name: &OsStr) -> Result<(), Refused> {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())
            .map_err(|e| self.join(name).refused(io_reason(e)))
    }

    /// Every regular file under this folder, sorted by path. A link, a special file or a file
    /// with several hard links anywhere in the tree refuses the whole tree, naming it. Each
    /// folder is opened afresh from the trusted base, so a folder swapped for a link while the
    /// tree is listed is refused too.
    pub fn list_files(&self) -> Result<Vec<TreeFile>, Refused> {
        let mut out = Vec::new();
        let mut pending = vec![PathBuf::new()];
        while let Some(sub) = pending.pop() {
            for e in self.join(&sub).list_dir()? {
                let rel = sub.join(&e.name);
                let at = self.join(&rel);
                match e.meta.kind {
                    Kind::Folder => pending.push(rel),
                    Kind::File => {
                        at.check_file(e.meta)?;
                        out.push(TreeFile {
                            rel,
                            bytes: e.meta.bytes,
                        });
                    }
                    Kind::Symlink => return Err(at.refused(Reason::Symlink)),
                    other => return Err(at.refused(Reason::NotAFile(other))),
                }
            }
        }
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }
}

impl Beneath {
    /// Every entry of the tree under this folder (the folder itself reached through no
    /// link), depth first, each as it is: a link is reported as a link and never followed,
    /// a folder is read from an fd opened beneath this one with no link, so nothing swapped
    /// in while the tree is walked leads out of it. `visit` gets each entry's path below
    /// this folder and its kind and size, and ends the walk with its error (a cap: the walk
    /// is bounded by what it visits, not by the tree).
    pub fn walk<E: From<Refused>>(
        &self,
        mut visit: impl FnMut(&Path, Meta) -> Result<(), E>,
    ) -> Result<(), E> {
        let root = self.open(true, Resolver::best())?;
        let mut pending = vec![PathBuf::new()];
        while let Some(sub) = pending.pop() {
            let at = self.join(&sub);
            let fd = if sub.as_os_str().is_empty() {
                // Its own fd for reading: `root` stays where the folders below are opened.
                root.try_clone().map_err(|e| Reason::Io(e.to_string()))
            } else {
                let comps: Vec<&OsStr> = sub.iter().collect();
                super::resolve::open(root.as_fd(), &comps, true, Resolver::best())
            }
            .map_err(|r| at.refused(r))?;
            let mut dir = Dir::new(fd).map_err(|e| at.refused(io_reason(e)))?;
            while let Some(e) = dir.read() {
                let e = e.map_err(|e| at.refused(io_reason(e)))?;
                let name = e.file_name();
                if matches!(name.to_bytes(), b"." | b"..") {
                    continue;
                }
                let rel = sub.join(OsStr::from_bytes(name.to_bytes()));
                let dir_fd = dir.fd().map_err(|e| at.refused(io_reason(e)))?;
                let st = statat(dir_fd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| self.join(&rel).refused(io_reason(e)))?;
                let meta = meta_from(&st);
                visit(&rel, meta)?;
                if meta.kind == Kind::Folder {
                    pending.push(rel);
                }
            }
        }
        Ok(())
    }
}

fn io_reason(e: rustix::io::Errno) -> Reason {
    Reason::Io(std::io::Error::from(e).to_string())
}

fn entries(fd: &OwnedFd) -> Result<Vec<Entry>, Reason> {
    let dir = Dir::read_from(fd).map_err(io_reason)?;
    let mut out = Vec::new();
    for e in dir {
        let e = e.map_err(io_reason)?;
        let name = e.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        let st = statat(fd, name, AtFlags::SYMLINK_NOFOLLOW).map_err(io_reason)?;
        out.push(Entry {
            name: OsStr::from_bytes(name.to_bytes()).to_os_string(),
            meta: meta_from(&st),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
