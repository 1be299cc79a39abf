//! Reads one YAML file into a JSON value with its text and digest; syntax and schema errors are findings with file:line:column. Knows no platform file's meaning.
pub mod locate;

use crate::beneath::{Beneath, Reason};
use crate::digest::sha256_hex;
use crate::findings::Finding;
use crate::schema::{self, SchemaKind};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Larger files are refused: no platform file needs more, and it bounds memory on hostile input.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A parsed YAML document and where it came from.
#[derive(Debug, Clone)]
pub struct Doc {
    /// Path relative to the repository root, `/`-separated (used in findings).
    pub rel: String,
    pub abs: PathBuf,
    pub text: String,
    pub value: serde_json::Value,
    /// SHA-256 of the file's bytes (a work order's version).
    pub sha256: String,
}

impl Doc {
    /// The line of a field path (`steps[1].inputs.x` or a JSON pointer) in this document.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        locate::line_of(&self.text, &locate::parse_path(path))
    }
    /// An error finding at `field`, with its line.
    pub fn finding(&self, field: &str, message: impl Into<String>) -> Finding {
        Finding::error(&self.rel, field, message).line(self.line_of(field))
    }

    /// The document checked against the JSON Schema of `kind`: one finding per violation,
    /// as [`Doc::schema_finding`] writes it.
    pub fn schema_findings(&self, kind: SchemaKind) -> Vec<Finding> {
        schema::validate(kind, &self.value)
            .into_iter()
            .map(|v| self.schema_finding(v))
            .collect()
    }

    /// A schema violation of this document as a finding: its field the offending key written
    /// as `steps[1].wat`, with the key's line (for a missing key, the line of the object that
    /// lacks it; line 1 for the document's own).
    pub fn schema_finding(&self, v: schema::Violation) -> Finding {
        let field = locate::render_path(&locate::parse_path(&v.pointer));
        let line = if v.at.is_empty() {
            Some(1)
        } else {
            self.line_of(&v.at)
        };
        Finding::error(&self.rel, field, v.message).line(line)
    }
}

/// The strings of the list at `key` of a mapping (others skipped; the schema reports them).
pub fn strings(v: &serde_json::Value, key: &str) -> Vec<String> {
    let list = v.get(key).and_then(|x| x.as_array());
    list.into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

/// `rel` rendered with `/` separators whatever the platform.
pub fn rel_string(root: &Path, abs: &Path) -> String {
    let rel = abs.strip_prefix(root).unwrap_or(abs);
    let joined = rel
        .components()
        .filter(|c| !matches!(c, std::path::Component::RootDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    // The root is a component of its own: joined, `/proc/self` read `//proc/self`.
    if rel.has_root() {
        format!("/{joined}")
    } else {
        joined
    }
}

/// Load and parse `abs`, a file of the operator's (config/, a runtime profile, a module's
/// contract): a link is followed, but a FIFO, folder or device is refused without blocking or
/// being read (`beneath::open_trusted`). Every failure is a finding naming the file (and
/// line:column).
pub fn load(root: &Path, abs: &Path) -> Result<Doc, Finding> {
    let rel = rel_string(root, abs);
    let file = crate::beneath::open_trusted(abs).map_err(|r| match unresolved_link(abs) {
        Some(why) => Finding::error(&rel, "", why),
        None => refusal(&rel, r.reason),
    })?;
    from_file(rel, abs, file)
}

/// Whether `path` names a directory entry at all (a link counts, whether or not it leads
/// anywhere): only "no such entry" is absence. `Path::exists` follows links and says false
/// for a dangling link, a loop or a denied folder, so a config file that cannot be read
/// would pass for one that was never written (a catalog that opens every module).
pub fn entry_exists(path: &Path) -> std::io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Why `path`, when it is a symbolic link that leads to no file (dangling, or a loop), was
/// not opened: the open's own error would say "does not exist" of a link the operator sees.
fn unresolved_link(path: &Path) -> Option<String> {
    let target = std::fs::read_link(path).ok()?;
    let why = match std::fs::metadata(path) {
        Ok(_) => return None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "which does not exist".to_string(),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            "which leads back to itself (a loop of links)".to_string()
        }
        Err(e) => format!("which cannot be followed: {e}"),
    };
    Some(format!(
        "refused: it is a symbolic link to '{}', {why}; point the link at the file, or replace it with the file itself",
        target.display()
    ))
}

/// Load and parse `rel` beneath `root`, reached through no link at any component (a tenant's
/// files: a link could point at another tenant's). A refusal is a finding saying why.
pub fn load_beneath(root: &Path, rel: &Path) -> Result<Doc, Finding> {
    read_beneath(root, rel)?.parse()
}

/// A file's text and digest, not parsed yet (a cache may know what it holds).
#[derive(Debug, Clone)]
pub struct Raw {
    pub rel: String,
    pub abs: PathBuf,
    pub text: String,
    pub sha256: String,
}

impl Raw {
    /// The document.
    pub fn parse(self) -> Result<Doc, Finding> {
        let value = parse(&self.rel, &self.text)?;
        Ok(Doc {
            rel: self.rel,
            abs: self.abs,
            text: self.text,
            value,
            sha256: self.sha256,
        })
    }
}

/// Read `rel` beneath `root` through no link (as [`load_beneath`]) without parsing it.
pub fn read_beneath(root: &Path, rel: &Path) -> Result<Raw, Finding> {
    read_at(&Beneath::new(root, rel))
}

/// [`read_beneath`] of `b`, a file beneath the repository root (its base, which may be open
/// already: [`Beneath::opened_by`]).
pub fn read_at(b: &Beneath) -> Result<Raw, Finding> {
    let shown = rel_string(&b.base, &b.path());
    let file = b.open_file().map_err(|r| refusal(&shown, r.reason))?;
    read_file(shown, &b.path(), file)
}

/// Why a file was not opened, as a finding on it that says what to do.
fn refusal(shown: &str, reason: Reason) -> Finding {
    let what = match reason {
        Reason::Missing => "does not exist".to_string(),
        Reason::NotAFile(_) => {
            format!("refused: it {reason}; replace it with the YAML file itself (or remove it)")
        }
        other => format!("refused: it {other}"),
    };
    Finding::error(shown, "", what)
}

/// Read an opened file (at most MAX_FILE_BYTES) and parse it.
fn from_file(rel: String, abs: &Path, file: std::fs::File) -> Result<Doc, Finding> {
    read_file(rel, abs, file)?.parse()
}

/// Read an opened file (at most MAX_FILE_BYTES) as UTF-8 text, with its digest.
fn read_file(rel: String, abs: &Path, file: std::fs::File) -> Result<Raw, Finding> {
    let len = file
        .metadata()
        .map_err(|e| Finding::error(&rel, "", format!("cannot read: {e}")))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(Finding::error(
            &rel,
            "",
            format!("file is {len} bytes; the limit is {MAX_FILE_BYTES}"),
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Finding::error(&rel, "", format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Finding::error(
            &rel,
            "",
            format!("file grew past the limit of {MAX_FILE_BYTES} bytes while it was read"),
        ));
    }
    let sha256 = sha256_hex(&bytes);
    let text = String::from_utf8(bytes).map_err(|e| {
        Finding::error(
            &rel,
            "",
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })?;
    Ok(Raw {
        rel,
        abs: abs.to_path_buf(),
        text,
        sha256,
    })
}

/// Parse YAML text; an empty document is an empty mapping's absence (null).
pub fn parse(rel: &str, text: &str) -> Result<serde_json::Value, Finding> {
    // YAML 1.2 booleans only: with 1.1's `y`/`n`/`yes`/`no`/`on`/`off`, an id such as `n` or
    // a country code `NO` would silently become a boolean.
    let options = serde_saphyr::options! { strict_booleans: true };
    match serde_saphyr::from_str_with_options::<serde_json::Value>(text, options) {
        Ok(v) => Ok(v),
        Err(e) => {
            let (line, col) = match e.location() {
                Some(l) => (Some(l.line() as usize), Some(l.column() as usize)),
                None => (None, None),
            };
            let msg = e.to_string();
            let first = strip_location(msg.lines().next().unwrap_or("invalid YAML"));
            if let Some(said) = in_our_words(&first) {
                return Err(Finding::error(rel, "", said).line(line).column(col));
            }
            if let Some(value) = non_finite(&first) {
                let said = format!(
                    "{value} is not a number the platform can hold (infinite, not a number, or \
                     beyond the largest one); write a whole number in range, or quote it if it is text"
                );
                let field = line.and_then(|l| key_at(text, l)).unwrap_or_default();
                return Err(Finding::error(rel, field, said).line(line).column(col));
            }
            // The parser's budgets stop alias bombs and huge documents; say so in words.
            // And what to do (SPEC §3): the common mistakes first, else where to look.
            let hint = if first.contains("budget breached") {
                " (the document expands beyond the parser's limits: too many nodes, aliases or \
                 nesting levels; write it out without anchors/aliases, or split it)"
            } else if first.contains("tab character") || first.contains("tabs") {
                "; indent with spaces: YAML does not allow tabs for indentation (the tab may be \
                 on the next line)"
            } else {
                "; check the indentation and quoting at this line and the one before it (quote a \
                 value holding ': ' or ' #', close every bracket and quote)"
            };
            Err(
                Finding::error(rel, "", format!("YAML syntax error: {first}{hint}"))
                    .line(line)
                    .column(col),
            )
        }
    }
}

/// The parser's message repeats "error: line N column M:", which the finding already
/// carries as its location: keep only what went wrong.
/// The parser's messages that name its own API (`DuplicateKeyPolicy`, `from_str_multiple`,
/// `Option<String>`) instead of the fix, said in the words of someone editing the file.
fn in_our_words(first: &str) -> Option<String> {
    if let Some(rest) = first.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return Some(format!(
            "the key '{key}' appears twice in one mapping; keep one of them (YAML gives a key one value)"
        ));
    }
    if first.starts_with("multiple YAML documents detected") {
        return Some(
            "a second YAML document starts here (after `---`): a platform file holds one document; remove the `---` and what follows, or move it to a file of its own".into(),
        );
    }
    if first.starts_with("cannot deserialize null into string") {
        return Some(
            "a null (`~`, `null` or nothing) where text is expected, e.g. as a key; write the text, quoted if it is `null` or `~`".into(),
        );
    }
    if first.starts_with("recursive references require") {
        return Some(
            "an alias refers to its own anchor (as in `a: &x [*x]`), so the value never ends; write the value out without the alias".into(),
        );
    }
    None
}

/// The value of the parser's "non-finite float `1e400` rejected" (`.inf`, `.nan`, a number
/// past f64's range): a scalar, not a syntax error, so it is said as what it is.
fn non_finite(first: &str) -> Option<&str> {
    let rest = first.strip_prefix("non-finite float ")?;
    let quote = rest.chars().next().filter(|c| matches!(c, '`' | '\''))?;
    rest[1..].split(quote).next()
}

/// The key written on line `line` of `text` (`  top_n: 1e400` or `- port: .inf`), the field
/// a value error at that line is in; None when the line holds no plain key.
fn key_at(text: &str, line: usize) -> Option<String> {
    let written = text.lines().nth(line.checked_sub(1)?)?.trim_start();
    let written = written.trim_start_matches("- ").trim_start_matches('{');
    let (key, _) = written.split_once(':')?;
    let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    plain.then(|| key.to_string())
}

fn strip_location(first: &str) -> String {
    let s = first.strip_prefix("error: ").unwrap_or(first);
    if let Some(rest) = s.strip_prefix("line ") {
        if let Some((head, tail)) = rest.split_once(": ") {
            if head
                .split(' ')
                .all(|w| w == "column" || w.bytes().all(|b| b.is_ascii_digit()))
            {
                return tail.to_string();
            }
        }
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_has_line_and_column() {
        let err = parse("x.yml", "a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(err.line.is_some(), "{err:?}");
        assert!(err.message.starts_with("YAML syntax error"));
    }

    #[test]
    fn syntax_message_does_not_repeat_the_location() {
        assert_eq!(
            strip_location("error: line 4 column 3: unclosed bracket '{'"),
            "unclosed bracket '{'"
        );
        assert_eq!(strip_location("something else: x"), "something else: x");
    }

    #[test]
    fn non_finite_numbers_are_named_at_their_key() {
        for v in ["1e400", ".inf", "-.inf", ".nan"] {
            let err = parse("x.yml", &format!("a: 1\nsmtp:\n  top_n: {v}\n")).unwrap_err();
            assert_eq!(err.field, "top_n", "{v}: {err:?}");
            assert_eq!(err.line, Some(3), "{v}: {err:?}");
            assert!(
                err.message.contains("not a number the platform can hold")
                    && !err.message.contains("syntax"),
                "{v}: {err:?}"
            );
        }
    }

    #[test]
    fn only_yaml_1_2_booleans() {
        let v = parse("x.yml", "a: n\nb: yes\nc: on\nd: true\ne: False\n");
        let want = serde_json::json!({"a": "n", "b": "yes", "c": "on", "d": true, "e": false});
        assert_eq!(v.ok(), Some(want));
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse("bomb.yml", &text).is_err());
    }
}
