//! Helpers for the library's unit tests (compiled only under `cfg(test)`).
use std::path::PathBuf;

/// A fresh temporary folder and the path of `name` inside it (not created): keep the
/// folder alive as long as the path is used.
pub fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

/// Each of `all` is the JSON string `name` gives it on the wire, reads back as itself, and is
/// what `parse` finds by that name.
pub fn assert_wire_names<T>(
    all: impl IntoIterator<Item = T>,
    name: impl Fn(&T) -> &str,
    parse: impl Fn(&str) -> Option<T>,
) where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    for value in all {
        let wire = serde_json::to_value(&value).unwrap();
        assert_eq!(wire, serde_json::json!(name(&value)));
        assert_eq!(serde_json::from_value::<T>(wire).unwrap(), value);
        assert_eq!(parse(name(&value)), Some(value));
    }
}

/// A fresh temporary folder holding these folders and these files (with their parents).
pub fn tree(dirs: &[&str], files: &[(&str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for d in dirs {
        std::fs::create_dir_all(root.path().join(d)).unwrap();
    }
    for (name, text) in files {
        let path = root.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    root
}
