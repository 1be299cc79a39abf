//! heads.json in a billing-state directory (written by pull and push): checked by `integrity-validate`, with records past it reported as not yet pushed.
use super::keys::TrustedKey;
use super::signed::{SignedHeads, Unverified, HEADS_FILE, MAX_HEADS_BYTES};
use super::standing::{standings, FileStanding, Standing};
use crate::error::{Error, Result};
use crate::ledger::{Problem, VerifyReport};
use serde::Serialize;
use std::io::Read;
use std::path::Path;

/// What the local heads.json says about the directory.
#[derive(Debug, Clone, Serialize)]
pub struct LocalHeads {
    pub key_id: String,
    pub signed_at: String,
    pub repository: String,
    pub state_tag: String,
    /// The signature verified with a key config/ledger.yml lists (false: no key is listed).
    pub signature_verified: bool,
    pub files: Vec<FileStanding>,
    /// Records past the signed heads, all files together: appended since the last pull or
    /// push, to be pushed (not an error).
    pub not_yet_pushed: u64,
}

/// Check `dir`'s heads.json, if any, against `keys` and the verified files; problems are
/// returned as `file:line` problems like the ledger's own.
pub fn check_local(
    dir: &Path,
    report: &VerifyReport,
    keys: &[TrustedKey],
) -> Result<(Option<LocalHeads>, Vec<Problem>)> {
    let path = dir.join(HEADS_FILE);
    let file_name = path.display().to_string();
    let problem = |message: String| Problem {
        file: file_name.clone(),
        line: 1,
        message,
        repair: None,
    };
    let bytes = match crate::ledger::open_existing(&path)? {
        Some(f) => {
            let mut bytes = Vec::new();
            f.take(MAX_HEADS_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io(&path, &e))?;
            bytes
        }
        None => return Ok((None, Vec::new())),
    };
    let signed = match SignedHeads::parse(&bytes) {
        Ok(s) => s,
        Err(e) => return Ok((None, vec![problem(format!("not valid signed heads: {e}"))])),
    };
    let mut problems = Vec::new();
    // Whether the signature is good is one question; whether the files still end where it
    // says is another (reported per file below): a rolled-back file under a good signature
    // is "verified, diverged", not "not verified".
    let verified = !keys.is_empty()
        && match signed.verify(keys) {
            Ok(_) => true,
            Err(e) => {
                problems.push(problem(local_unverified(&e)));
                false
            }
        };
    let files = standings(dir, report, &signed.heads)?;
    let mut not_yet_pushed = 0;
    for f in &files {
        match &f.standing {
            Standing::Ahead { records } => not_yet_pushed += records,
            Standing::Diverged { reason } => {
                problems.push(problem(format!("{} {reason}", f.file)));
            }
            Standing::AtHead => {}
        }
    }
    let h = signed.heads;
    let local = LocalHeads {
        key_id: h.key_id,
        signed_at: h.signed_at,
        repository: h.repository,
        state_tag: h.state_tag,
        signature_verified: verified,
        files,
        not_yet_pushed,
    };
    Ok((Some(local), problems))
}

/// A local heads.json that does not verify, and the way out when a key rotation retired its
/// key: every copy pulled before the rotation holds the old key's heads.json until a pull (or
/// its own next push) brings heads signed by a listed key.
fn local_unverified(e: &Unverified) -> String {
    match e {
        Unverified::UnknownKey { key_id, .. } => format!(
            "heads.json {e}: if a key rotation removed {key_id}, run `platform state pull` into this directory (or `platform state push` when it holds records not yet pushed) to get heads.json re-signed with a listed key; otherwise this heads.json was not written by a pull or push of this repository"
        ),
        Unverified::BadSignature { .. } => format!("heads.json {e}"),
    }
}

impl LocalHeads {
    /// One line for the text report.
    pub fn summary(&self) -> String {
        let ahead: Vec<String> = self
            .files
            .iter()
            .filter_map(|f| match f.standing {
                Standing::Ahead { records } => Some(format!("{} +{records}", f.file)),
                _ => None,
            })
            .collect();
        let trust = if self.signature_verified {
            "verified"
        } else {
            "NOT verified (config/ledger.yml lists no key, or it failed)"
        };
        let diverged: Vec<&str> = self
            .files
            .iter()
            .filter(|f| matches!(f.standing, Standing::Diverged { .. }))
            .map(|f| f.file)
            .collect();
        let pushed = match (diverged.is_empty(), ahead.is_empty()) {
            (false, _) => format!(
                "{} no longer end(s) where it is signed (see the problems below)",
                diverged.join(", ")
            ),
            (true, true) => "every record is pushed".to_string(),
            (true, false) => format!("not yet pushed: {}", ahead.join(", ")),
        };
        format!(
            "heads.json: signed at {} by key {} for {} release '{}', signature {trust}; {pushed}",
            self.signed_at, self.key_id, self.repository, self.state_tag
        )
    }
}
