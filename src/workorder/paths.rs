//! Path rules for anything a work order or module names: relative, no `..`, inside its root.
use std::path::{Component, Path, PathBuf};

/// `./a//b/` → `a/b`: a relative path as the folder holding it sees it, for comparing two.
pub fn normalise(p: &str) -> String {
    p.split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `inner` lies strictly inside folder `outer`.
pub fn nested(outer: &str, inner: &str) -> bool {
    inner.len() > outer.len()
        && inner.starts_with(outer)
        && inner.as_bytes().get(outer.len()) == Some(&b'/')
}

/// Why `p` is not an acceptable relative path, or None when it is.
pub fn check_relative(p: &str) -> Option<String> {
    if p.is_empty() {
        return Some("path is empty".into());
    }
    if p.contains('\0') {
        return Some(format!("path '{p}' contains a NUL byte"));
    }
    if p.starts_with('/')
        || p.starts_with('\\')
        || Path::new(p).is_absolute()
        || p.get(1..2) == Some(":")
    {
        return Some(format!(
            "path '{p}' is absolute; use a path relative to its folder"
        ));
    }
    for c in p.split(['/', '\\']) {
        if c == ".." {
            return Some(format!(
                "path '{p}' contains '..'; paths must stay inside their folder"
            ));
        }
    }
    None
}

/// Join a checked relative path under `root` and make sure that, after following symlinks,
/// it is still inside `root` (which must exist). Returns the canonical path.
pub fn resolve_inside(root: &Path, rel: &str) -> Result<PathBuf, String> {
    if let Some(why) = check_relative(rel) {
        return Err(why);
    }
    let root_c = root
        .canonicalize()
        .map_err(|e| format!("{} cannot be opened: {e}", root.display()))?;
    let mut joined = root_c.clone();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(x) => joined.push(x),
            Component::CurDir => {}
            _ => return Err(format!("path '{rel}' is not a plain relative path")),
        }
    }
    let real = joined
        .canonicalize()
        .map_err(|_| format!("'{rel}' does not exist under {}", root.display()))?;
    if !real.starts_with(&root_c) {
        return Err(format!(
            "'{rel}' resolves outside {} (through a symlink); refused",
            root.display()
        ));
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_rules() {
        assert!(check_relative("a/b.txt").is_none());
        assert!(check_relative("./a").is_none());
        assert!(check_relative("../a").is_some());
        assert!(check_relative("a/../../b").is_some());
        assert!(check_relative("/etc/passwd").is_some());
        assert!(check_relative("").is_some());
    }

    #[test]
    fn symlink_escape_refused() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("assets");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(t.path().join("secret.txt"), "x").unwrap();
        std::fs::write(root.join("ok.txt"), "y").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(t.path().join("secret.txt"), root.join("link.txt")).unwrap();
        assert!(resolve_inside(&root, "ok.txt").is_ok());
        #[cfg(unix)]
        assert!(resolve_inside(&root, "link.txt")
            .unwrap_err()
            .contains("outside"));
    }
}
