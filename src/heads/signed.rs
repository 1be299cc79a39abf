//! The `heads.json` document: per ledger file its last `seq` and `hash`, who signed it for which release, and the Ed25519 signature over the canonical encoding of the rest.
use super::keys::{self, Signer, TrustedKey, SIGNATURE_BYTES};
use crate::ledger::VerifyReport;
use crate::records::canonical;
use crate::records::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The file name, in the billing-state directory and on the state release.
pub const HEADS_FILE: &str = "heads.json";
/// `v` of heads.json; a new layout is a new version.
pub const HEADS_VERSION: u64 = 1;
/// heads.json is a few hundred bytes; anything much larger is not one (and is not read).
pub const MAX_HEADS_BYTES: u64 = 64 * 1024;

/// The head of one ledger file: its last record's `seq` and `hash` (0 and the genesis hash
/// when it has no record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHead {
    pub seq: u64,
    pub hash: String,
}

/// Everything heads.json holds except `signature`: the signed message is its canonical
/// encoding (records/canonical.rs, equal to RFC 8785 for these values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heads {
    pub v: u64,
    pub repository: String,
    pub state_tag: String,
    pub signed_at: String,
    pub key_id: String,
    /// By file name (`billing.jsonl`, `evidence.jsonl`, `audit.jsonl`): all three, always.
    pub files: BTreeMap<String, FileHead>,
}

impl Heads {
    /// The heads of a verified billing-state directory, to be signed by `key_id` now.
    pub fn of_report(
        report: &VerifyReport,
        repository: &str,
        state_tag: &str,
        key_id: &str,
    ) -> Heads {
        let files = report
            .files
            .iter()
            .map(|f| {
                let head = FileHead {
                    seq: f.head_seq,
                    hash: f.head_hash.clone(),
                };
                (f.stream.file_name().to_string(), head)
            })
            .collect();
        Heads {
            v: HEADS_VERSION,
            repository: repository.to_string(),
            state_tag: state_tag.to_string(),
            signed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            key_id: key_id.to_string(),
            files,
        }
    }

    /// The head signed for one file.
    pub fn file(&self, stream: Stream) -> Option<&FileHead> {
        self.files.get(stream.file_name())
    }

    /// Same files, repository and release (not the same time or key): nothing to re-sign.
    pub fn same_state(&self, other: &Heads) -> bool {
        self.files == other.files
            && self.repository == other.repository
            && self.state_tag == other.state_tag
    }

    /// The signed message: the canonical encoding of these fields.
    pub fn message(&self) -> Result<Vec<u8>, String> {
        let value = serde_json::to_value(self).map_err(|e| e.to_string())?;
        canonical::encode(&value)
    }

    fn check_shape(&self) -> Result<(), String> {
        if self.v != HEADS_VERSION {
            return Err(format!(
                "v is {}, this build reads version {HEADS_VERSION}",
                self.v
            ));
        }
        for stream in Stream::ALL {
            let name = stream.file_name();
            let Some(head) = self.files.get(name) else {
                return Err(format!("files.{name} is missing"));
            };
            let hex = head.hash.len() == 64
                && head
                    .hash
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex {
                return Err(format!(
                    "files.{name}.hash is not 64 lower-case hex characters"
                ));
            }
        }
        if self.files.len() != Stream::ALL.len() {
            return Err("files names a file that is not a ledger file".into());
        }
        Ok(())
    }
}

/// heads.json: the heads and their signature (base64 of 64 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeads {
    pub heads: Heads,
    pub signature: String,
}

impl SignedHeads {
    pub fn sign(heads: Heads, signer: &Signer) -> Result<SignedHeads, String> {
        let signature = keys::encode(&signer.sign(&heads.message()?));
        Ok(SignedHeads { heads, signature })
    }

    /// The file's bytes: the canonical encoding of every field, then a newline.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let mut value = serde_json::to_value(&self.heads).map_err(|e| e.to_string())?;
        if let Value::Object(map) = &mut value {
            map.insert("signature".into(), Value::String(self.signature.clone()));
        }
        let mut bytes = canonical::encode(&value)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Parse heads.json; the error says which field is wrong. Says nothing of the signature.
    pub fn parse(bytes: &[u8]) -> Result<SignedHeads, String> {
        if bytes.len() as u64 > MAX_HEADS_BYTES {
            return Err(format!(
                "{} bytes; heads.json is at most {MAX_HEADS_BYTES}",
                bytes.len()
            ));
        }
        let mut map: Map<String, Value> =
            serde_json::from_slice(bytes).map_err(|e| format!("not a JSON object: {e}"))?;
        let signature = match map.remove("signature") {
            Some(Value::String(s)) => s,
            Some(_) => return Err("signature is not a string".into()),
            None => return Err("signature is missing".into()),
        };
        let heads: Heads = serde_json::from_value(Value::Object(map)).map_err(|e| e.to_string())?;
        heads.check_shape()?;
        Ok(SignedHeads { heads, signature })
    }

    /// The listed key that signed these heads; the error says why not.
    pub fn verify<'k>(&self, keys: &'k [TrustedKey]) -> Result<&'k TrustedKey, Unverified> {
        let id = &self.heads.key_id;
        let Some(key) = keys.iter().find(|k| &k.key_id == id) else {
            return Err(Unverified::UnknownKey {
                key_id: id.clone(),
                listed: keys.iter().map(|k| k.key_id.clone()).collect(),
            });
        };
        let bad = |why: String| Unverified::BadSignature {
            key_id: id.clone(),
            why,
        };
        let signature =
            keys::decode_exact(&self.signature, SIGNATURE_BYTES, "an Ed25519 signature")
                .map_err(|e| bad(format!("its signature {e}")))?;
        if !key.verifies(&self.heads.message().map_err(bad)?, &signature) {
            return Err(bad(
                "heads.json was altered, or not signed by that key".to_string()
            ));
        }
        Ok(key)
    }
}

/// Why signed heads do not verify: each reads as a sentence after "heads.json".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    /// Signed by a key config/ledger.yml does not list: a stranger's key, or one a key
    /// rotation removed (the caller says which way out applies).
    UnknownKey { key_id: String, listed: Vec<String> },
    /// The listed key `key_id` does not verify the signature: `why`.
    BadSignature { key_id: String, why: String },
}

impl std::fmt::Display for Unverified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unverified::UnknownKey { key_id, listed } => {
                let listed = match listed.is_empty() {
                    true => "none".to_string(),
                    false => listed.join(", "),
                };
                write!(
                    f,
                    "is signed by key {key_id}, which config/ledger.yml does not list (listed: {listed})"
                )
            }
            Unverified::BadSignature { key_id, why } => {
                write!(f, "does not verify with key {key_id}: {why}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::keys::{decode_exact, generate, KEY_BYTES, PUBLIC_KEY};

    fn sample() -> Heads {
        let files = Stream::ALL
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let head = FileHead {
                    seq: i as u64,
                    hash: format!("{i}").repeat(64),
                };
                (s.file_name().to_string(), head)
            })
            .collect();
        Heads {
            v: 1,
            repository: "acme/state".into(),
            state_tag: "billing-state-v1".into(),
            signed_at: "2026-01-02T03:04:05.678Z".into(),
            key_id: String::new(),
            files,
        }
    }

    fn keypair() -> (Signer, TrustedKey) {
        let g = generate().unwrap();
        let signer = Signer::from_secret(&g.private_key).unwrap();
        let trusted = TrustedKey {
            key_id: g.key_id,
            public_key: decode_exact(&g.public_key, KEY_BYTES, PUBLIC_KEY).unwrap(),
        };
        (signer, trusted)
    }

    #[test]
    fn signed_heads_round_trip_and_any_field_change_breaks_the_signature() {
        let (signer, trusted) = keypair();
        let mut heads = sample();
        heads.key_id = signer.key_id().to_string();
        let signed = SignedHeads::sign(heads, &signer).unwrap();
        let bytes = signed.to_bytes().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("{\"files\":{\"audit.jsonl\":{\"hash\":"),
            "{text}"
        );
        assert!(text.ends_with("\"v\":1}\n"), "{text}");
        let back = SignedHeads::parse(&bytes).unwrap();
        assert_eq!(back, signed);
        assert_eq!(
            back.verify(std::slice::from_ref(&trusted)).unwrap(),
            &trusted
        );

        let forged = text.replace("\"seq\":2", "\"seq\":3");
        let err = SignedHeads::parse(forged.as_bytes())
            .unwrap()
            .verify(std::slice::from_ref(&trusted))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "does not verify with key {}: heads.json was altered, or not signed by that key",
                trusted.key_id
            )
        );
        let (_, other) = keypair();
        let err = back.verify(std::slice::from_ref(&other)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "is signed by key {}, which config/ledger.yml does not list (listed: {})",
                trusted.key_id, other.key_id
            )
        );
        let mut short = back.clone();
        short.signature = "c2hvcnQ=".into();
        let err = short.verify(std::slice::from_ref(&trusted)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "does not verify with key {}: its signature decodes to 5 bytes; an Ed25519 signature is 64 bytes",
                trusted.key_id
            )
        );
    }

    #[test]
    fn malformed_heads_name_the_field() {
        let (signer, _) = keypair();
        let signed = SignedHeads::sign(sample(), &signer).unwrap();
        let text = String::from_utf8(signed.to_bytes().unwrap()).unwrap();
        for (from, to, want) in [
            ("\"v\":1", "\"v\":2", "v is 2"),
            (
                "\"files\":{\"audit.jsonl\"",
                "\"files\":{\"other.jsonl\"",
                "audit.jsonl is missing",
            ),
            ("\"signature\":", "\"sig\":", "signature is missing"),
            ("\"v\":1", "\"v\":1,\"extra\":1", "unknown field"),
        ] {
            let err = SignedHeads::parse(text.replacen(from, to, 1).as_bytes()).unwrap_err();
            assert!(err.contains(want), "{from} -> {to}: {err}");
        }
        assert!(SignedHeads::parse(b"[]")
            .unwrap_err()
            .contains("not a JSON object"));
        let big = vec![b' '; MAX_HEADS_BYTES as usize + 1];
        assert!(SignedHeads::parse(&big).unwrap_err().contains("at most"));
    }
}
