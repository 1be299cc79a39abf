//! SHA256SUMS files in the format `sha256sum -c` reads: `<hex>  <name>` lines, sorted by name, LF endings.
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file name, in the dist directory and as a release asset.
pub const FILE_NAME: &str = "SHA256SUMS";

/// The text of a SHA256SUMS file over `(name, sha256)` pairs. Two spaces mean "binary and text
/// are the same" to coreutils; names are sorted by bytes so the same set gives the same file.
pub fn render<N: AsRef<str>, S: AsRef<str>>(entries: &[(N, S)]) -> String {
    let mut lines: Vec<(&str, &str)> = entries
        .iter()
        .map(|(n, s)| (n.as_ref(), s.as_ref()))
        .collect();
    lines.sort();
    let mut out = String::new();
    for (name, sha) in lines {
        out.push_str(sha);
        out.push_str("  ");
        out.push_str(name);
        out.push('\n');
    }
    out
}

/// SHA256SUMS before its rename into place.
pub const SUMS_TEMP: crate::leftovers::Leftover<'static> =
    crate::leftovers::Leftover::file(".SHA256SUMS-", "");

/// Write `content` to `<dir>/SHA256SUMS` through a temporary file and a rename, so a reader
/// never sees half a file.
pub fn write(dir: &Path, content: &str) -> Result<PathBuf> {
    let path = dir.join(FILE_NAME);
    let mut tmp = tempfile::Builder::new()
        .prefix(SUMS_TEMP.prefix)
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, &e))?;
    tmp.write_all(content.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io(tmp.path(), &e))?;
    tmp.persist(&path).map_err(|e| Error::io(&path, &e.error))?;
    // NamedTempFile creates 0600; a checksum file is meant to be read by anyone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(&path, &e))?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sorted_two_spaces_lf() {
        let text = super::render(&[("b.zip", "22"), ("a.zip", "11"), ("r1/a.zip", "33")]);
        assert_eq!(text, "11  a.zip\n22  b.zip\n33  r1/a.zip\n");
        assert_eq!(super::render::<&str, &str>(&[]), "");
    }
}
