//! Removes a folder tree a module may have left, however deep, with a few descriptors open and no link followed (`std::fs::remove_dir_all` holds one per level).
use rustix::fs::{fstat, openat, statat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// One folder on the way down: its name in its parent, who it is, and the folders in it
/// still to remove (its other entries are removed as it is listed).
struct Level {
    name: OsString,
    id: (u64, u64),
    subfolders: Option<Vec<OsString>>,
}

/// Remove `path` and all under it; a link (at `path` or anywhere below) is removed, never
/// followed; nothing there is fine. Three descriptors at most whatever the depth: the walk
/// goes down one folder at a time and back up through `..`, which must be the folder it came
/// down from (device and inode), so a folder moved meanwhile stops the removal with an error
/// instead of leading it out of the tree. Memory: a name per folder still to remove.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match statat(CWD, path, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
        Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::Directory => {
            return std::fs::remove_file(path)
        }
        Ok(_) => {}
    }
    let mut cur = open_folder(CWD, path.as_os_str())?;
    let mut stack = vec![Level {
        name: OsString::new(),
        id: id_of(&cur)?,
        subfolders: None,
    }];
    loop {
        let Some(top) = stack.last_mut() else {
            return Ok(());
        };
        if top.subfolders.is_none() {
            top.subfolders = Some(empty_but_folders(&cur)?);
        }
        if let Some(name) = top.subfolders.as_mut().and_then(Vec::pop) {
            let child = open_folder(&cur, &name)?;
            stack.push(Level {
                id: id_of(&child)?,
                name,
                subfolders: None,
            });
            cur = child;
            continue;
        }
        // `cur` is empty: remove it from its parent, which becomes `cur`.
        let done = stack.pop();
        let (Some(done), Some(parent)) = (done, stack.last()) else {
            drop(cur);
            return std::fs::remove_dir(path);
        };
        let up = open_folder(&cur, OsStr::new(".."))?;
        if id_of(&up)? != parent.id {
            return Err(io::Error::other(format!(
                "{} was moved while it was being removed",
                path.display()
            )));
        }
        unlinkat(&up, done.name.as_os_str(), AtFlags::REMOVEDIR)?;
        cur = up;
    }
}

fn open_folder<Fd: std::os::fd::AsFd>(dir: Fd, name: &OsStr) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(openat(dir, name, flags, Mode::empty())?)
}

fn id_of(fd: &OwnedFd) -> io::Result<(u64, u64)> {
    let st = fstat(fd)?;
    #[allow(clippy::useless_conversion)]
    Ok((u64::from(st.st_dev), u64::from(st.st_ino)))
}

/// Remove every entry of the folder `dir` but its folders, which it returns by name.
fn empty_but_folders(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let mut folders = Vec::new();
    let mut listing = Dir::read_from(dir)?;
    while let Some(e) = listing.read() {
        let e = e?;
        let name = OsStr::from_bytes(e.file_name().to_bytes());
        if matches!(name.as_bytes(), b"." | b"..") {
            continue;
        }
        let st = statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            folders.push(name.to_os_string());
        } else {
            unlinkat(dir, name, AtFlags::empty())?;
        }
    }
    Ok(folders)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain of `depth` folders under `root`, made one level at a time (past 372 levels its
    /// path is longer than PATH_MAX), with a file and a link to `kept` at each level.
    fn chain(root: &Path, depth: usize, kept: &Path) {
        let mut dir = open_folder(CWD, root.as_os_str()).unwrap();
        for _ in 0..depth {
            rustix::fs::mkdirat(&dir, "ten-chars!", Mode::RWXU).unwrap();
            let f = openat(&dir, "f", OFlags::CREATE | OFlags::WRONLY, Mode::RUSR).unwrap();
            drop(f);
            rustix::fs::symlinkat(kept, &dir, "l").unwrap();
            dir = open_folder(&dir, OsStr::new("ten-chars!")).unwrap();
        }
    }

    #[test]
    fn a_tree_deeper_than_path_max_is_removed_and_its_links_are_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let kept = d.path().join("kept");
        std::fs::create_dir(&kept).unwrap();
        std::fs::write(kept.join("file"), "x").unwrap();
        let top = d.path().join("work");
        std::fs::create_dir(&top).unwrap();
        chain(&top, 500, &kept);
        std::fs::create_dir_all(top.join("wide/a/b")).unwrap();
        for i in 0..50 {
            std::fs::create_dir(top.join(format!("wide/{i}"))).unwrap();
        }
        remove_tree(&top).unwrap();
        assert!(!top.exists());
        assert!(
            kept.join("file").exists(),
            "links are removed, not followed"
        );
    }

    #[test]
    fn a_file_or_a_link_is_removed_itself_and_nothing_there_is_fine() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("kept"), "x").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        remove_tree(&link).unwrap();
        assert!(target.join("kept").exists());
        let file = d.path().join("file");
        std::fs::write(&file, "x").unwrap();
        remove_tree(&file).unwrap();
        assert!(!file.exists());
        remove_tree(&d.path().join("missing")).unwrap();
    }
}
