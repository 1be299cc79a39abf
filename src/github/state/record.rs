//! What a billing-state directory remembers of the state release (`.state-pulled.json`) and the content heads (length, SHA-256) compared against it, including the byte-for-byte prefix check of `state push`.
use crate::digest::hex;
use crate::error::{Error, Result};
use crate::github::GithubClient;
use crate::leftovers::Leftover;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Written into the billing-state directory by `pull` and `push`: what the remote held.
pub const PULLED_FILE: &str = ".state-pulled.json";

/// The pull record before its rename into place.
pub(super) const RECORD_TEMP: Leftover<'static> = Leftover::file(".state-record-", "");

/// What the record's temp file was called until 2026-12-04 (`.tmp` and 6 random characters).
pub(super) const OLD_RECORD_TEMP: Leftover<'static> = Leftover {
    random_len: Some(6),
    ..Leftover::file(".tmp", "")
};

/// The "head" of a ledger file: enough to tell whether anyone appended since.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Head {
    Absent,
    Present {
        bytes: u64,
        sha256: String,
        /// SHA-256 of the last line without its newline: which record the file ends with.
        last_line_sha256: String,
    },
}

impl Head {
    /// Length and SHA-256, or None when absent: what "same content" compares.
    pub(super) fn content(&self) -> Option<(u64, &str)> {
        match self {
            Head::Absent => None,
            Head::Present { bytes, sha256, .. } => Some((*bytes, sha256.as_str())),
        }
    }
    pub(super) fn same_content(&self, other: &Head) -> bool {
        self.content() == other.content()
    }
    pub(super) fn describe(&self) -> String {
        match self {
            Head::Absent => "absent".to_string(),
            Head::Present { bytes, sha256, .. } => {
                format!("{bytes} bytes, sha256 {}", short(sha256))
            }
        }
    }
}

/// `.state-pulled.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PulledState {
    pub repository: String,
    pub tag: String,
    /// None when the state release did not exist at pull time.
    pub release_id: Option<u64>,
    /// SHA-256 of each asset that was on the release.
    pub assets: BTreeMap<String, String>,
    /// The head of each state file as the remote held it (absent included).
    pub heads: BTreeMap<String, Head>,
    /// Heads of a push that started and has not been confirmed: a retry after a failed push
    /// accepts the remote holding these (our own half-finished upload) as well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_push: Option<BTreeMap<String, Head>>,
    /// With listed keys, the pull accepted a release without heads.json (an empty one, or
    /// unsigned state adopted with an audit record), so the next push may sign it; a plain
    /// push onto any other release without a valid heads.json is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accepted_without_heads: bool,
}

pub(super) fn asset_digests(heads: &BTreeMap<String, Head>) -> BTreeMap<String, String> {
    heads
        .iter()
        .filter_map(|(n, h)| match h {
            Head::Present { sha256, .. } => Some((n.clone(), sha256.clone())),
            Head::Absent => None,
        })
        .collect()
}

/// Length, SHA-256 and last-line SHA-256 of a file, streamed; `Absent` when it does not exist.
pub fn head_of_file(path: &Path) -> Result<Head> {
    let Some(mut file) = crate::ledger::open_existing(path)? else {
        return Ok(Head::Absent);
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    // Lines are kept only until the next newline, so memory is bounded by the longest line.
    let mut current: Vec<u8> = Vec::new();
    let mut last_complete: Vec<u8> = Vec::new();
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, &e))?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        hasher.update(chunk);
        bytes += n as u64;
        let mut parts = chunk.split(|b| *b == b'\n').peekable();
        while let Some(part) = parts.next() {
            current.extend_from_slice(part);
            if parts.peek().is_some() {
                last_complete = std::mem::take(&mut current);
            }
        }
    }
    // A file whose last line lacks its newline (a torn write) ends with that fragment.
    let last = if current.is_empty() {
        last_complete
    } else {
        current
    };
    Ok(Head::Present {
        bytes,
        sha256: hex(&hasher.finalize()),
        last_line_sha256: hex(&Sha256::digest(&last)),
    })
}

/// SHA-256 of the first `len` bytes of a file; None when the file is shorter (or absent).
pub fn prefix_sha256(path: &Path, len: u64) -> Result<Option<String>> {
    let Some(file) = crate::ledger::open_existing(path)? else {
        return Ok(None);
    };
    let mut hasher = Sha256::new();
    let mut reader = file.take(len);
    let copied =
        std::io::copy(&mut reader, &mut HashSink(&mut hasher)).map_err(|e| Error::io(path, &e))?;
    Ok((copied == len).then(|| hex(&hasher.finalize())))
}

struct HashSink<'a>(&'a mut Sha256);

impl std::io::Write for HashSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether `path` starts, byte for byte, with the content `pulled` describes (an absent
/// head is a prefix of anything): the file only gained records since.
pub fn extends(path: &Path, pulled: &Head) -> Result<bool> {
    match pulled {
        Head::Absent => Ok(true),
        Head::Present { bytes, sha256, .. } => {
            Ok(prefix_sha256(path, *bytes)?.as_deref() == Some(sha256.as_str()))
        }
    }
}

pub(super) fn read_pulled(dir: &Path, client: &GithubClient) -> Result<Option<PulledState>> {
    let path = dir.join(PULLED_FILE);
    let Some(file) = crate::ledger::open_existing(&path)? else {
        return Ok(None);
    };
    // A pull record is a few hundred bytes: one past the YAML cap is not one, whatever follows.
    let mut text = String::new();
    file.take(crate::yaml::MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| Error::io(&path, &e))?;
    let state: PulledState = serde_json::from_str(&text).map_err(|e| {
        Error::input(format!(
            "{} is not a valid pull record: {e}",
            path.display()
        ))
        .at(path.display().to_string())
        .help("delete it and run `platform state pull` into an empty directory")
    })?;
    let tag = &client.settings().state_tag;
    if state.repository != client.repository() || &state.tag != tag {
        return Err(Error::input(format!(
            "{} records a pull from {} release '{}', but the profile names {} release '{tag}'",
            path.display(),
            state.repository,
            state.tag,
            client.repository()
        ))
        .at(path.display().to_string())
        .help("use a billing-state directory pulled with this profile"));
    }
    Ok(Some(state))
}

pub(super) fn write_pulled(dir: &Path, state: &PulledState) -> Result<()> {
    let path = dir.join(PULLED_FILE);
    let mut text = serde_json::to_string_pretty(state)
        .map_err(|e| Error::failure(format!("cannot encode {}: {e}", path.display())))?;
    text.push('\n');
    // Written beside and renamed, so a crash never leaves a half-written record.
    let mut tmp = tempfile::Builder::new()
        .prefix(RECORD_TEMP.prefix)
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, &e))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(|e| Error::io(&path, &e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(&path, &e))?;
    tmp.persist(&path).map_err(|e| Error::io(&path, &e.error))?;
    Ok(())
}

pub(super) fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::digest::sha256_hex;

    #[test]
    fn heads() {
        let (_dir, p) = crate::testing::scratch("f.jsonl");
        assert_eq!(head_of_file(&p).unwrap(), Head::Absent);
        std::fs::write(&p, b"{\"a\":1}\n{\"b\":2}\n").unwrap();
        match head_of_file(&p).unwrap() {
            Head::Present {
                bytes,
                sha256,
                last_line_sha256,
            } => {
                assert_eq!(bytes, 16);
                assert_eq!(sha256, sha256_hex(b"{\"a\":1}\n{\"b\":2}\n"));
                assert_eq!(last_line_sha256, sha256_hex(b"{\"b\":2}"));
            }
            Head::Absent => panic!("present"),
        }
        std::fs::write(&p, b"x\ntorn").unwrap();
        match head_of_file(&p).unwrap() {
            Head::Present {
                last_line_sha256, ..
            } => assert_eq!(last_line_sha256, sha256_hex(b"torn")),
            Head::Absent => panic!("present"),
        }
        let json = serde_json::to_string(&Head::Absent).unwrap();
        assert_eq!(json, r#"{"state":"absent"}"#);
    }

    #[test]
    fn prefixes() {
        let (dir, p) = crate::testing::scratch("f.jsonl");
        std::fs::write(&p, b"abc\n").unwrap();
        let pulled = head_of_file(&p).unwrap();
        assert!(extends(&p, &pulled).unwrap());
        std::fs::write(&p, b"abc\ndef\n").unwrap();
        assert!(extends(&p, &pulled).unwrap());
        assert_eq!(prefix_sha256(&p, 3).unwrap(), Some(sha256_hex(b"abc")));
        std::fs::write(&p, b"abd\ndef\n").unwrap();
        assert!(!extends(&p, &pulled).unwrap());
        std::fs::write(&p, b"ab").unwrap();
        assert!(!extends(&p, &pulled).unwrap());
        assert!(extends(&p, &Head::Absent).unwrap());
        assert_eq!(prefix_sha256(&dir.path().join("none"), 0).unwrap(), None);
    }
}
