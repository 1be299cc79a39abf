//! Where each ledger file of a directory stands against signed heads: at its head, records past it (not yet pushed), or diverged (rewritten or truncated).
use super::signed::{FileHead, Heads};
use crate::error::{Error, Result};
use crate::ledger::{FileReport, VerifyReport};
use crate::records::{canonical, Stream, GENESIS_HASH};
use serde::Serialize;
use std::io::BufRead;
use std::path::Path;

/// One file against its signed head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "standing", rename_all = "snake_case")]
pub enum Standing {
    /// The file ends exactly at its signed head.
    AtHead,
    /// The signed head is a record of the file, followed by `records` more (not yet pushed).
    Ahead { records: u64 },
    /// The file does not contain its signed head: why.
    Diverged { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileStanding {
    pub file: &'static str,
    pub signed: FileHead,
    pub local: FileHead,
    #[serde(flatten)]
    pub standing: Standing,
}

/// Every file of `dir` (already verified into `report`) against `heads`.
pub fn standings(dir: &Path, report: &VerifyReport, heads: &Heads) -> Result<Vec<FileStanding>> {
    let mut out = Vec::new();
    for stream in Stream::ALL {
        let file = stream.file_name();
        let signed = heads.file(stream).cloned().unwrap_or(FileHead {
            seq: 0,
            hash: GENESIS_HASH.to_string(),
        });
        let local = match report.files.iter().find(|f| f.stream == stream) {
            Some(f) => head_of(f),
            None => FileHead {
                seq: 0,
                hash: GENESIS_HASH.to_string(),
            },
        };
        let standing = standing_of(&dir.join(file), &signed, &local)?;
        out.push(FileStanding {
            file,
            signed,
            local,
            standing,
        });
    }
    Ok(out)
}

fn head_of(f: &FileReport) -> FileHead {
    FileHead {
        seq: f.head_seq,
        hash: f.head_hash.clone(),
    }
}

fn standing_of(path: &Path, signed: &FileHead, local: &FileHead) -> Result<Standing> {
    if local == signed {
        return Ok(Standing::AtHead);
    }
    if local.seq < signed.seq {
        return Ok(Standing::Diverged {
            reason: format!(
                "ends at seq {}, before its signed head seq {}: records were removed",
                local.seq, signed.seq
            ),
        });
    }
    if local.seq == signed.seq {
        return Ok(Standing::Diverged {
            reason: format!(
                "its record seq {} is not the signed one (hash {}, signed {})",
                local.seq,
                short(&local.hash),
                short(&signed.hash)
            ),
        });
    }
    let found = hash_at(path, signed.seq)?;
    if found.as_deref() == Some(signed.hash.as_str()) {
        return Ok(Standing::Ahead {
            records: local.seq - signed.seq,
        });
    }
    Ok(Standing::Diverged {
        reason: format!(
            "its record seq {} has hash {}, the signed head says {}: the file was rewritten",
            signed.seq,
            found.as_deref().map_or("(none)", short),
            short(&signed.hash)
        ),
    })
}

/// The `hash` of record `seq` of a verified file (line `seq`; seq 0 is the genesis hash).
/// Reads raw lines up to that one: the chain itself was checked by `ledger::verify`.
pub fn hash_at(path: &Path, seq: u64) -> Result<Option<String>> {
    if seq == 0 {
        return Ok(Some(GENESIS_HASH.to_string()));
    }
    let Some(file) = crate::ledger::open_existing(path)? else {
        return Ok(None);
    };
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    for _ in 0..seq {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io(path, &e))?;
        if n == 0 {
            return Ok(None);
        }
    }
    let body = line.strip_suffix(b"\n").unwrap_or(&line);
    Ok(canonical::split_sealed(body).map(|(_, hash)| String::from_utf8_lossy(hash).into_owned()))
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{self, Ledger};
    use crate::records::{Payload, Topup};

    fn topup(l: &mut Ledger, reference: &str) {
        let t = Topup::new("acme", 5, "bank", reference, None, "ops");
        l.append(Stream::Billing, vec![Payload::new(t)]).unwrap();
    }

    #[test]
    fn at_head_ahead_and_diverged() {
        let dir = tempfile::tempdir().unwrap();
        let (mut l, _) = Ledger::open(dir.path()).unwrap();
        topup(&mut l, "A");
        topup(&mut l, "B");
        let report = ledger::verify(dir.path()).unwrap();
        let heads = Heads::of_report(&report, "acme/state", "tag", "k");
        let s = standings(dir.path(), &report, &heads).unwrap();
        assert!(s.iter().all(|f| f.standing == Standing::AtHead), "{s:?}");

        topup(&mut l, "C");
        let report = ledger::verify(dir.path()).unwrap();
        let s = standings(dir.path(), &report, &heads).unwrap();
        assert_eq!(s[0].standing, Standing::Ahead { records: 1 });
        assert_eq!(s[1].standing, Standing::AtHead);

        let mut other = heads.clone();
        other.files.get_mut("billing.jsonl").unwrap().hash = "ab".repeat(32);
        let s = standings(dir.path(), &report, &other).unwrap();
        assert!(
            matches!(&s[0].standing, Standing::Diverged { reason } if reason.contains("rewritten")),
            "{s:?}"
        );
        other.files.get_mut("billing.jsonl").unwrap().seq = 9;
        let s = standings(dir.path(), &report, &other).unwrap();
        assert!(
            matches!(&s[0].standing, Standing::Diverged { reason } if reason.contains("removed")),
            "{s:?}"
        );
        assert_eq!(hash_at(&dir.path().join("billing.jsonl"), 4).unwrap(), None);
    }
}
