//! GitHub's older workflow-command form `##[command]data`, which the runner obeys anywhere in a line: never printed whole.
use std::borrow::Cow;
use std::io::Write;

/// The runner looks for `##[` anywhere in a log line (not only at its start, as for `::`)
/// and obeys `##[error]`, `##[add-mask]`, `##[stop-commands]` and the rest; a module's
/// message or a tenant's value must not carry it into the log (SPEC §6).
const LEGACY: &str = "##[";

/// `text` with every `##[` shown as `##\[`: what people read, never what the runner obeys.
pub fn escape_text(text: &str) -> Cow<'_, str> {
    match text.contains(LEGACY) {
        true => Cow::Owned(text.replace(LEGACY, "##\\[")),
        false => Cow::Borrowed(text),
    }
}

/// A writer of JSON that writes the `[` of every `##[` as `\u005b`. JSON's own syntax has no
/// `#`, so a `##[` can only be inside a string, where the escape is the same value: a script
/// reads what it always did, and a log that shows the document runs nothing.
pub struct JsonGuard<W: Write> {
    inner: W,
    /// `#` bytes just written (across calls): a `[` after two of them is escaped.
    hashes: usize,
}

impl<W: Write> JsonGuard<W> {
    pub fn new(inner: W) -> Self {
        JsonGuard { inner, hashes: 0 }
    }
}

impl<W: Write> Write for JsonGuard<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut from = 0;
        for (i, b) in buf.iter().enumerate() {
            match b {
                b'#' => self.hashes += 1,
                b'[' if self.hashes >= 2 => {
                    self.inner.write_all(&buf[from..i])?;
                    self.inner.write_all(b"\\u005b")?;
                    from = i + 1;
                    self.hashes = 0;
                }
                _ => self.hashes = 0,
            }
        }
        self.inner.write_all(&buf[from..])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn text_shows_the_command_without_its_form() {
        assert_eq!(escape_text("x ##[error]fake"), "x ##\\[error]fake");
        assert_eq!(escape_text("###[a ##[b"), "###\\[a ##\\[b");
        assert_eq!(escape_text("# [x] #[y]"), "# [x] #[y]");
    }

    #[test]
    fn json_keeps_its_values_and_loses_the_form_even_split_across_writes() {
        let doc = serde_json::json!({"m": "x ##[error]fake ###[y", "##[k": ["#", "[", "##"]});
        let bytes = serde_json::to_vec_pretty(&doc).unwrap();
        for split in 0..bytes.len() {
            let mut out = JsonGuard::new(Vec::new());
            out.write_all(&bytes[..split]).unwrap();
            out.write_all(&bytes[split..]).unwrap();
            let written = out.inner;
            assert!(!String::from_utf8_lossy(&written).contains(LEGACY));
            let back: serde_json::Value = serde_json::from_slice(&written).unwrap();
            assert_eq!(back, doc);
        }
    }
}
