//! Temp files and folders a killed command left in a folder it writes: its next run removes its own kind (by name), under the lock that guards that folder, never through a link, and says what it removed.
use std::path::Path;

/// One kind of temp entry a command makes: `prefix` + random characters + `suffix`.
#[derive(Debug, Clone, Copy)]
pub struct Leftover<'a> {
    pub prefix: &'a str,
    pub suffix: &'a str,
    /// How many random characters, when fixed (a prefix shared with other names).
    pub random_len: Option<usize>,
    /// A folder (removed with everything in it), else a regular file.
    pub folder: bool,
}

impl<'a> Leftover<'a> {
    pub const fn file(prefix: &'a str, suffix: &'a str) -> Self {
        Leftover {
            prefix,
            suffix,
            random_len: None,
            folder: false,
        }
    }

    fn matches(&self, name: &str) -> bool {
        let Some(random) = name
            .strip_prefix(self.prefix)
            .and_then(|rest| rest.strip_suffix(self.suffix))
        else {
            return false;
        };
        !random.is_empty()
            && self.random_len.is_none_or(|n| {
                random.len() == n && random.chars().all(|c| c.is_ascii_alphanumeric())
            })
    }
}

/// Remove the entries of `dir` (not below) that are one of `kinds` and of its type (a link
/// or anything else of that name is left alone); the caller holds the lock under which every
/// such entry is made, so none is in use. The note for the command's report, if any were
/// removed (or could not be): `by` names the command that left them.
pub fn remove(dir: &Path, kinds: &[Leftover<'_>], by: &str) -> Option<String> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(kind) = kinds.iter().find(|k| k.matches(&name)) else {
            continue;
        };
        // The entry's own type: a link is never followed.
        let Ok(ty) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        let result = match (kind.folder, ty.is_dir(), ty.is_file()) {
            (true, true, _) => crate::beneath::remove_tree(&path),
            (false, _, true) => std::fs::remove_file(&path),
            _ => continue,
        };
        match result {
            Ok(()) => removed.push(name),
            Err(e) => failed.push(format!("{name} ({e})")),
        }
    }
    if removed.is_empty() && failed.is_empty() {
        return None;
    }
    removed.sort();
    let mut note = format!(
        "note: removed what an interrupted `{by}` left in {}: {}",
        dir.display(),
        removed.join(", ")
    );
    if !failed.is_empty() {
        failed.sort();
        note.push_str(&format!(
            "; could not remove (delete by hand): {}",
            failed.join(", ")
        ));
    }
    Some(note)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let merge = Leftover::file(".merge-", "");
        assert!(merge.matches(".merge-Ab12xZ"));
        assert!(!merge.matches(".merge-"));
        assert!(!merge.matches("merge-Ab12xZ"));
        let zip = Leftover::file(".package-", ".tmp");
        assert!(zip.matches(".package-Ab12xZ.tmp"));
        assert!(!zip.matches(".package-Ab12xZ"));
        let legacy = Leftover {
            random_len: Some(6),
            ..Leftover::file(".tmp", "")
        };
        assert!(legacy.matches(".tmpAb12xZ"));
        assert!(!legacy.matches(".tmp-Ab12xZ"));
        assert!(!legacy.matches(".tmpAb12xZ7"));
    }
}
