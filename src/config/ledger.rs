//! config/ledger.yml: the Ed25519 public keys trusted to sign heads.json. A missing file (or an empty list) means unsigned state; a key whose key_id does not match it is an error.
use crate::error::{Error, Result};
use crate::findings::Finding;
use crate::heads::keys::{decode_exact, key_id_of, Signer, TrustedKey, KEY_BYTES, PUBLIC_KEY};
use crate::schema::SchemaKind;
use std::path::Path;

pub const LEDGER_FILE: &str = "config/ledger.yml";

#[derive(Debug, Clone, Default)]
pub struct LedgerConfig {
    pub signing_keys: Vec<TrustedKey>,
}

impl LedgerConfig {
    /// Whether state must be signed (some key is listed).
    pub fn signed(&self) -> bool {
        !self.signing_keys.is_empty()
    }

    /// Parse and check config/ledger.yml; problems come back as findings (file, field, line).
    pub fn load(root: &Path) -> (LedgerConfig, Vec<Finding>) {
        // An empty file (every key commented out) is unsigned state, as no file is.
        let doc = match super::load_checked(root, LEDGER_FILE, SchemaKind::Ledger, true) {
            Ok(None) => return (LedgerConfig::default(), Vec::new()),
            Ok(Some(doc)) => doc,
            Err(findings) => return (LedgerConfig::default(), findings),
        };
        let mut config = LedgerConfig::default();
        let mut out = Vec::new();
        let listed = doc.value.get("signing_keys").and_then(|v| v.as_array());
        for (i, entry) in listed.into_iter().flatten().enumerate() {
            let text = |f: &str| entry.get(f).and_then(|v| v.as_str()).unwrap_or_default();
            let (key_id, public) = (text("key_id"), text("public_key"));
            let field = format!("signing_keys[{i}]");
            let public_key = match decode_exact(public, KEY_BYTES, PUBLIC_KEY) {
                Ok(k) => k,
                Err(e) => {
                    out.push(
                        doc.finding(&format!("{field}.public_key"), format!("public_key {e}")),
                    );
                    continue;
                }
            };
            let derived = key_id_of(&public_key);
            if derived != key_id {
                out.push(doc.finding(
                    &format!("{field}.key_id"),
                    format!("key_id '{key_id}' does not match its public_key, whose key_id is '{derived}'; copy both from `platform ledger keygen`"),
                ));
                continue;
            }
            if config.signing_keys.iter().any(|k| k.key_id == key_id) {
                out.push(doc.finding(
                    &format!("{field}.key_id"),
                    format!("key {key_id} is listed twice"),
                ));
                continue;
            }
            config.signing_keys.push(TrustedKey {
                key_id: derived,
                public_key,
            });
        }
        if !out.is_empty() {
            return (LedgerConfig::default(), out);
        }
        (config, out)
    }

    /// Load, failing closed (exit 2) on any problem in the file.
    pub fn load_strict(root: &Path) -> Result<LedgerConfig> {
        let help = "fix config/ledger.yml (see `platform schema ledger`; `platform ledger keygen` prints a key_id and public_key that belong together)";
        crate::findings::fail_closed(LedgerConfig::load(root), help)
    }
}

/// The private key from `PLATFORM_LEDGER_SIGNING_KEY`, when set. A malformed one is an
/// input error that never quotes the value.
pub fn signer_from_env() -> Result<Option<Signer>> {
    let Some(text) = crate::secrets::ledger_signing_key() else {
        return Ok(None);
    };
    let env = crate::secrets::LEDGER_SIGNING_KEY_ENV;
    Signer::from_secret(&text).map(Some).map_err(|e| {
        Error::input(format!("{env} is not an Ed25519 private key: {e}"))
            .help(format!("set {env} to the private_key that `platform ledger keygen` printed (base64 of 32 bytes)"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::generate;

    fn load(text: &str) -> (LedgerConfig, Vec<Finding>) {
        let dir = crate::testing::tree(&[], &[(LEDGER_FILE, text)]);
        LedgerConfig::load(dir.path())
    }

    #[test]
    fn keys_load_and_mismatched_ids_are_findings_with_lines() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        let ok = format!(
            "signing_keys:\n  - key_id: \"{}\"\n    public_key: {}\n",
            a.key_id, a.public_key
        );
        let (config, findings) = load(&ok);
        assert!(findings.is_empty(), "{findings:?}");
        assert!(config.signed());
        assert_eq!(config.signing_keys[0].key_id, a.key_id);

        let bad = format!(
            "signing_keys:\n  - key_id: \"{}\"\n    public_key: {}\n  - key_id: \"{}\"\n    public_key: {}\n",
            a.key_id, a.public_key, a.key_id, b.public_key
        );
        let (config, findings) = load(&bad);
        assert!(!config.signed(), "a bad file trusts nothing");
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].field, "signing_keys[1].key_id");
        assert_eq!(findings[0].line, Some(4));
        assert!(
            findings[0].message.contains(&b.key_id),
            "{}",
            findings[0].message
        );

        let (_, findings) = load("signing_keys:\n  - key_id: XYZ\n    public_key: abc\n");
        assert!(!findings.is_empty());
        let (config, findings) = load("signing_keys: []\n");
        assert!(findings.is_empty() && !config.signed());
    }
}
