//! Ed25519 keys of signed heads: key generation, the private key from its secret, trusted public keys and key ids.
use crate::digest::sha256_hex;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::Serialize;

/// Raw Ed25519 public keys and private seeds are 32 bytes; signatures 64.
pub const KEY_BYTES: usize = 32;
pub const SIGNATURE_BYTES: usize = 64;

/// `key_id`: the first 16 hex characters of SHA-256 of the raw public key.
pub fn key_id_of(public_key: &[u8]) -> String {
    let mut id = sha256_hex(public_key);
    id.truncate(16);
    id
}

/// Decode standard base64 (with padding) into exactly `len` bytes; `what` names the value in
/// the error ("an Ed25519 public key", "an Ed25519 signature").
pub fn decode_exact(text: &str, len: usize, what: &str) -> Result<Vec<u8>, String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    if bytes.len() != len {
        return Err(format!(
            "decodes to {} bytes; {what} is {len} bytes",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// What a raw public key is, for [`decode_exact`].
pub const PUBLIC_KEY: &str = "an Ed25519 public key";

pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A public key listed in config/ledger.yml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pub key_id: String,
    pub public_key: Vec<u8>,
}

impl TrustedKey {
    /// Whether `signature` is this key's Ed25519 signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(message, signature)
            .is_ok()
    }
}

/// The private key of `PLATFORM_LEDGER_SIGNING_KEY`: signs heads. Never printed or logged.
pub struct Signer {
    pair: Ed25519KeyPair,
    key_id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.key_id)
    }
}

impl Signer {
    /// From the secret's text: the base64 of the 32-byte seed. The message never quotes it.
    pub fn from_secret(text: &str) -> Result<Signer, String> {
        let seed = decode_exact(text, KEY_BYTES, "an Ed25519 private key")?;
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| "not a valid Ed25519 private key".to_string())?;
        let key_id = key_id_of(pair.public_key().as_ref());
        Ok(Signer { pair, key_id })
    }
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// A fresh key pair, as `platform ledger keygen` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratedKey {
    pub key_id: String,
    pub public_key: String,
    pub private_key: String,
}

/// Generate a key pair from the operating system's random source.
pub fn generate() -> Result<GeneratedKey, String> {
    let mut seed = [0u8; KEY_BYTES];
    SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| "the operating system's random source failed".to_string())?;
    let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|_| "could not derive an Ed25519 key pair".to_string())?;
    let public = pair.public_key().as_ref();
    Ok(GeneratedKey {
        key_id: key_id_of(public),
        public_key: encode(public),
        private_key: encode(&seed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_verify_and_ids_derive_from_the_public_key() {
        let g = generate().unwrap();
        let signer = Signer::from_secret(&format!("{}\n", g.private_key)).unwrap();
        assert_eq!(signer.key_id(), g.key_id);
        assert_eq!(encode(signer.public_key()), g.public_key);
        assert_eq!(g.key_id.len(), 16);
        let trusted = TrustedKey {
            key_id: g.key_id.clone(),
            public_key: decode_exact(&g.public_key, KEY_BYTES, PUBLIC_KEY).unwrap(),
        };
        let sig = signer.sign(b"heads");
        assert_eq!(sig.len(), SIGNATURE_BYTES);
        assert!(trusted.verifies(b"heads", &sig));
        assert!(!trusted.verifies(b"heads!", &sig));
        assert_ne!(generate().unwrap().private_key, g.private_key);
    }

    #[test]
    fn bad_secrets_are_refused_without_quoting_them() {
        let err = Signer::from_secret("c2hvcnQ=").unwrap_err();
        assert_eq!(
            err,
            "decodes to 5 bytes; an Ed25519 private key is 32 bytes"
        );
        assert!(!err.contains("c2hvcnQ"));
        assert!(Signer::from_secret("not base64 at all!").is_err());
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 §7.1 TEST 1: the empty message.
        let seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&seed[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let signer = Signer::from_secret(&encode(&bytes)).unwrap();
        assert_eq!(
            crate::digest::hex(signer.public_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert!(crate::digest::hex(&signer.sign(b"")).starts_with("e5564300c360ac72"));
    }
}
