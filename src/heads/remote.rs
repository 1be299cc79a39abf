//! Judging a copy of the state release (downloaded into a staging directory) before it may replace local files: its chains verify, and heads.json is signed by a listed key, for this repository and release, with each file ending at (or, for the caller to allow, past) its signed head.
use super::keys::TrustedKey;
use super::signed::{SignedHeads, Unverified};
use super::standing::{standings, FileStanding, Standing};
use crate::error::{Error, Result};
use crate::ledger::{self, VerifyReport};
use std::collections::BTreeMap;
use std::path::Path;

/// The repository and release a copy came from: its heads must name them.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub repository: &'a str,
    pub state_tag: &'a str,
}

/// What a verified copy of the state release is.
#[derive(Debug, Clone)]
pub enum RemoteState {
    /// No ledger file and no heads.json: a release nobody pushed to yet.
    Empty,
    /// Ledger files without heads.json (unsigned state: adopted only on request).
    Unsigned,
    /// Signed heads that verify; every file at or past its head (never diverged).
    Signed {
        heads: SignedHeads,
        standings: Vec<FileStanding>,
    },
}

/// Records past the signed heads, by file, for the files that have any.
pub fn past_head(standings: &[FileStanding]) -> BTreeMap<String, u64> {
    standings
        .iter()
        .filter_map(|f| match f.standing {
            Standing::Ahead { records } => Some((f.file.to_string(), records)),
            _ => None,
        })
        .collect()
}

/// `ledger::verify` of `dir`, as a refusal (exit 1) naming the first problems.
pub fn verify_chains(dir: &Path, what: &str) -> Result<VerifyReport> {
    let report = ledger::verify(dir)?;
    if report.ok() {
        return Ok(report);
    }
    let shown: Vec<String> = report
        .problems
        .iter()
        .take(3)
        .map(|p| {
            let name = Path::new(&p.file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.file.clone());
            format!("{name}:{}: {}", p.line, p.message)
        })
        .collect();
    let more = report.problems.len().saturating_sub(shown.len());
    let tail = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    Err(Error::failure(format!(
        "{what} fails verification: {}{tail}",
        shown.join("; ")
    ))
    .topic(crate::error::Topic::StateRefused))
}

/// Judge the copy in `dir` with its heads.json bytes (None: the release has none); also
/// returns the copy's verify report.
pub fn judge(
    keys: &[TrustedKey],
    dir: &Path,
    heads_json: Option<&[u8]>,
    expected: Expected<'_>,
) -> Result<(RemoteState, VerifyReport)> {
    let report = verify_chains(dir, "the state release")?;
    let Some(bytes) = heads_json else {
        let any = report.files.iter().any(|f| f.exists);
        let state = if any {
            RemoteState::Unsigned
        } else {
            RemoteState::Empty
        };
        return Ok((state, report));
    };
    let heads = check_signed(keys, bytes, expected)?;
    let h = &heads.heads;
    let standings = standings(dir, &report, h)?;
    let diverged: Vec<String> = standings
        .iter()
        .filter_map(|f| match &f.standing {
            Standing::Diverged { reason } => Some(format!("{} {reason}", f.file)),
            _ => None,
        })
        .collect();
    if !diverged.is_empty() {
        return Err(Error::failure(format!(
            "the state release does not match its signed heads (signed at {} by key {}): {}",
            h.signed_at,
            h.key_id,
            diverged.join("; ")
        ))
        .topic(crate::error::Topic::StateRefused));
    }
    Ok((RemoteState::Signed { heads, standings }, report))
}

/// heads.json's bytes, parsed and checked: signed by a listed key, for this repository and
/// release (a refusal, exit 1, otherwise). Says nothing of the files.
pub fn check_signed(
    keys: &[TrustedKey],
    bytes: &[u8],
    expected: Expected<'_>,
) -> Result<SignedHeads> {
    let heads = SignedHeads::parse(bytes)
        .map_err(|e| Error::failure(format!("the state release's heads.json is not valid: {e}")))?;
    heads.verify(keys).map_err(|e| {
        let err = Error::failure(format!("the state release's heads.json {e}"))
            .topic(crate::error::Topic::StateRefused);
        match &e {
            Unverified::UnknownKey { key_id, .. } => err.help(format!(
                "{}; otherwise find out who wrote the release (its assets' upload times on GitHub) and restore it from a copy that holds all of its records with `platform state push --restore` (audited)",
                relist_hint(key_id)
            )),
            Unverified::BadSignature { .. } => err,
        }
    })?;
    let h = &heads.heads;
    if h.repository != expected.repository || h.state_tag != expected.state_tag {
        return Err(Error::failure(format!(
            "the state release's heads.json was signed for {} release '{}', not {} release '{}': another repository's state",
            h.repository, h.state_tag, expected.repository, expected.state_tag
        )).topic(crate::error::Topic::StateRefused));
    }
    Ok(heads)
}

/// The key of heads.json `bytes` when config/ledger.yml does not list it: a stranger's, or
/// one a key rotation removed before a push re-signed the release.
pub fn unlisted_key(keys: &[TrustedKey], bytes: &[u8]) -> Option<String> {
    match SignedHeads::parse(bytes).ok()?.verify(keys) {
        Err(Unverified::UnknownKey { key_id, .. }) => Some(key_id),
        _ => None,
    }
}

/// The way out of a key rotation done out of order (the old key removed before a push
/// re-signed the release): list that key again.
pub fn relist_hint(key_id: &str) -> String {
    format!(
        "if key {key_id} was removed from config/ledger.yml before a push re-signed the release with the new key (rotation: list both keys, switch the secret, push once, then remove the old key), list {key_id} again until `platform state push` has re-signed it"
    )
}
