//! Finding the repository a command works on: `--repo` when given, else the nearest folder
//! upwards from the current one that is a platform repository (as cargo, git and just do).
use crate::error::Error;
use std::path::{Path, PathBuf};

/// What makes a folder a platform repository (SPEC §2): either of these folders.
pub const MARKERS: [&str; 2] = ["modules", "tenants"];

/// Where the repository came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// `--repo DIR`, taken as given.
    Given(PathBuf),
    /// Found upwards from the current folder: `.` when it is the current folder itself (so
    /// paths in messages stay as short as before), else the absolute path of the ancestor.
    Found(PathBuf),
    /// None found from `start` up to `/`: commands that do not need one run against `.`.
    NotFound { start: PathBuf },
}

impl Root {
    /// `--repo` when given, else the search from the current directory.
    pub fn resolve(flag: Option<&Path>) -> Root {
        match flag {
            Some(dir) => Root::Given(dir.to_path_buf()),
            None => {
                let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                match search(&cwd) {
                    Some(dir) if dir == cwd => Root::Found(PathBuf::from(".")),
                    Some(dir) => Root::Found(dir),
                    None => Root::NotFound { start: cwd },
                }
            }
        }
    }

    /// The folder commands read: the one found, or `.` when none was.
    pub fn path(&self) -> PathBuf {
        match self {
            Root::Given(p) | Root::Found(p) => p.clone(),
            Root::NotFound { .. } => PathBuf::from("."),
        }
    }

    /// For a command that needs a repository: an error naming what was looked for, and where.
    pub fn require(&self) -> crate::Result<()> {
        match self {
            Root::NotFound { start } => Err(Error::input(format!(
                "no platform repository found: looked for a folder with {}/ or {}/ in {} and every folder above it",
                MARKERS[0],
                MARKERS[1],
                start.display()
            ))
            .help("run the command inside a platform repository, pass --repo DIR, or create one with `platform init DIR`")),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Root::Given(p) => write!(f, "{} (--repo)", p.display()),
            Root::Found(p) if p == Path::new(".") => write!(f, ". (the current folder)"),
            Root::Found(p) => write!(f, "{} (found upwards from the current folder)", p.display()),
            Root::NotFound { start } => {
                write!(f, "none found from {} upwards; using .", start.display())
            }
        }
    }
}

/// Whether `dir` is a platform repository (has modules/ or tenants/).
pub fn is_repository(dir: &Path) -> bool {
    MARKERS.iter().any(|m| dir.join(m).is_dir())
}

/// The nearest of `start` and its ancestors that is a platform repository and not inside
/// the tenants/ of one: a tenant's folder is untrusted (SPEC §6), so a `modules/` or
/// `config/` a tenant commits under it never becomes the repository an operator works on.
pub fn search(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| is_repository(d) && !inside_tenants(d))
        .map(Path::to_path_buf)
}

/// Whether `dir` is, or is below, the tenants/ folder of a platform repository.
fn inside_tenants(dir: &Path) -> bool {
    dir.ancestors().any(|a| {
        a.file_name().is_some_and(|n| n == "tenants") && a.parent().is_some_and(is_repository)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_repository_upwards() {
        let (_t, root) = crate::testing::scratch("repo");
        let deep = root.join("tenants/acme/workorders");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(search(&deep), Some(root.clone()));
        assert_eq!(search(&root), Some(root.clone()));
        // A tenant's own modules/ (or a tenant named `modules`) is not a repository.
        std::fs::create_dir_all(root.join("tenants/acme/modules/evil")).unwrap();
        std::fs::create_dir_all(root.join("tenants/modules")).unwrap();
        assert_eq!(search(&deep), Some(root.clone()));
        assert_eq!(search(&root.join("tenants")), Some(root.clone()));
        let none = Root::NotFound { start: deep };
        assert_eq!(none.path(), PathBuf::from("."));
        let err = none.require().unwrap_err();
        assert!(
            err.message.contains("modules/ or tenants/"),
            "{}",
            err.message
        );
    }
}
