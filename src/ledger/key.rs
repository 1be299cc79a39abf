//! Idempotency keys as the ledger indexes them: a 16-byte digest per key, a map keyed by it, and a compact set of them with their seq.
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
pub(crate) type IdMap<V> = HashMap<KeyId, V, BuildHasherDefault<IdHasher>>;

/// Key ids with the `seq` that recorded each, in about 24–31 bytes a key (a hash map of
/// key ids costs 40–60): a vector sorted by id, and a hash map of the newest keys that is
/// merged into it, in place, when it grows past an eighth of the vector.
#[derive(Debug, Default)]
pub(crate) struct KeySeqs {
    sorted: Vec<(KeyId, u64)>,
    recent: IdMap<u64>,
}

impl KeySeqs {
    pub fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    /// The seq a key was recorded with.
    pub fn get(&self, id: &KeyId) -> Option<u64> {
        if let Some(seq) = self.recent.get(id) {
            return Some(*seq);
        }
        self.find(id).ok().map(|i| self.sorted[i].1)
    }

    pub fn contains_key(&self, id: &KeyId) -> bool {
        self.get(id).is_some()
    }

    /// Record a key (a key recorded already takes the new seq, as a map's insert does).
    pub fn insert(&mut self, id: KeyId, seq: u64) {
        if let Ok(i) = self.find(&id) {
            self.sorted[i].1 = seq;
            return;
        }
        self.recent.insert(id, seq);
        if self.recent.len() > (self.sorted.len() / 8).max(1024) {
            self.merge();
        }
    }

    /// Keys known before a resumed read (their seq is not known: 0).
    pub fn seed(&mut self, ids: &[KeyId]) {
        let sorted = ids.windows(2).all(|w| w[0] < w[1]);
        if self.len() == 0 && sorted {
            self.sorted = ids.iter().map(|id| (*id, 0)).collect();
            return;
        }
        for id in ids {
            self.insert(*id, 0);
        }
    }

    /// Keep the keys recorded with a seq of at most `max`.
    pub fn retain_up_to(&mut self, max: u64) {
        self.sorted.retain(|(_, seq)| *seq <= max);
        self.recent.retain(|_, seq| *seq <= max);
    }

    /// Every key id, sorted.
    pub fn ids(&self) -> Vec<KeyId> {
        let mut ids: Vec<KeyId> = self.sorted.iter().map(|(k, _)| *k).collect();
        ids.extend(self.recent.keys().copied());
        ids.sort_unstable();
        ids
    }

    /// Bytes held (capacity, not length): what the per-key bound is about.
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(KeyId, u64)>();
        // hashbrown: one control byte per bucket, buckets a power of two ≥ capacity·8/7.
        let buckets = (self.recent.capacity() * 8 / 7 + 1).next_power_of_two();
        self.sorted.capacity() * entry + buckets * (entry + 1)
    }

    /// Where `id` is in the sorted vector. Key ids are uniform (SHA-256), so the search starts
    /// where the id's first bytes say it should be and widens from there.
    fn find(&self, id: &KeyId) -> Result<usize, usize> {
        let n = self.sorted.len();
        if n == 0 {
            return Err(0);
        }
        let mut top = [0u8; 8];
        top.copy_from_slice(&id[..8]);
        let guess = ((u128::from(u64::from_be_bytes(top)) * n as u128) >> 64) as usize;
        let (mut lo, mut hi) = (guess, guess + 1);
        let mut step = 1;
        while lo > 0 && self.sorted[lo].0 > *id {
            lo = lo.saturating_sub(step);
            step *= 2;
        }
        step = 1;
        while hi < n && self.sorted[hi - 1].0 < *id {
            hi = (hi + step).min(n);
            step *= 2;
        }
        self.sorted[lo..hi]
            .binary_search_by(|(k, _)| k.cmp(id))
            .map(|i| lo + i)
            .map_err(|i| lo + i)
    }

    /// Move the recent keys into the sorted vector: one merge from the back, no second copy.
    fn merge(&mut self) {
        let mut add: Vec<(KeyId, u64)> = self.recent.drain().collect();
        add.sort_unstable_by_key(|a| a.0);
        let (n, m) = (self.sorted.len(), add.len());
        self.sorted.reserve_exact(m);
        self.sorted.resize(n + m, ([0; 16], 0));
        let (mut i, mut j) = (n, m);
        for k in (0..n + m).rev() {
            if j == 0 {
                break;
            }
            if i > 0 && self.sorted[i - 1].0 > add[j - 1].0 {
                self.sorted[k] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[k] = add[j - 1];
                j -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_seqs_find_what_a_map_finds_in_under_32_bytes_a_key() {
        let mut set = KeySeqs::default();
        let mut map = IdMap::default();
        let n = 200_000u64;
        for i in 0..n {
            let id = key_id(&format!("k{i}"));
            set.insert(id, i + 1);
            map.insert(id, i + 1);
        }
        set.insert(key_id("k7"), 99); // again: the newer seq, as a map keeps
        map.insert(key_id("k7"), 99);
        assert_eq!(set.len(), map.len());
        for i in (0..n + 1000).step_by(7) {
            let id = key_id(&format!("k{i}"));
            assert_eq!(set.get(&id), map.get(&id).copied(), "k{i}");
        }
        let per_key = set.heap_bytes() as f64 / set.len() as f64;
        assert!(per_key <= 32.0, "{per_key:.1} bytes a key");
        set.retain_up_to(n / 2);
        assert_eq!(set.len() as u64, n / 2);
        assert_eq!(set.get(&key_id("k7")), Some(99));
        assert_eq!(set.get(&key_id(&format!("k{}", n - 1))), None);
    }
}
