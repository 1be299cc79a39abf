//! Idempotency keys as the ledger indexes them: a 16-byte digest per key and a map keyed by it.
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// First 16 bytes of SHA-256(idempotency key): enough to never collide, a quarter the memory.
pub(crate) type KeyId = [u8; 16];

pub(crate) fn key_id(key: &str) -> KeyId {
    let d = Sha256::digest(key.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    id
}

/// Key ids are already uniformly random: use their first 8 bytes as the hash.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(b);
        }
    }
}

/// A map keyed by key ids, hashed by their own (uniform) bytes.
pub(crate) type IdMap<V, K = KeyId> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A digest prefix used as a key: uniform bytes, ordered, the first 8 picking a bucket.
pub(crate) trait Id: Copy + Ord + std::hash::Hash + Default + std::fmt::Debug {
    /// The first 8 bytes, big-endian.
    fn lead(&self) -> u64;
}

impl Id for KeyId {
    fn lead(&self) -> u64 {
        let mut lead = [0u8; 8];
        lead.copy_from_slice(&self[..8]);
        u64::from_be_bytes(lead)
    }
}

/// An 8-byte digest prefix: for sets of a few per run rather than one per record, where
/// 2^-64 per pair is small enough (a collision merges two runs' sums, and is reported).
pub(crate) type ShortId = [u8; 8];

impl Id for ShortId {
    fn lead(&self) -> u64 {
        u64::from_be_bytes(*self)
    }
}
