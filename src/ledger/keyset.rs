//! A compact map from key ids to a small value (the ledger's index of keys): a sorted bulk of 16-byte ids and their values, a directory into it, and a small hash map of recent inserts merged into the bulk as it grows.
//!
//! A hash map of key ids costs 45–60 bytes a key (slots at 44–88 % load, doubling); this costs
//! the 16-byte id, the value and about 3 bytes more. Key ids are uniform (SHA-256 prefixes),
//! so a directory of one `u32` per 4–8 keys finds the few ids sharing a key's leading bits:
//! a lookup touches the directory and one or two cache lines of ids, about what a hash map
//! touches. The bulk grows by `reserve_exact` and a merge in place from the back, so no
//! doubling slack is ever allocated.
use super::key::{Id, IdMap, KeyId};

/// Recent inserts are merged into the bulk when they outnumber a sixteenth of it (and this):
/// the map stays a few bytes a key, and each key is moved about 17 times in all.
const MIN_RECENT: usize = 1024;

#[derive(Clone)]
pub(crate) struct KeySet<V: Copy + Default, K: Id = KeyId> {
    /// Sorted, no two equal.
    keys: Vec<K>,
    vals: Vec<V>,
    /// `dir[b]..dir[b + 1]` are the bulk's keys whose leading bits are `b`; empty when the
    /// bulk is too large for `u32` indexes (then a lookup bisects the whole bulk).
    dir: Vec<u32>,
    /// Leading bits of a key that pick its directory bucket.
    bits: u32,
    /// Keys not in the bulk.
    recent: IdMap<V, K>,
}

impl<V: Copy + Default, K: Id> Default for KeySet<V, K> {
    fn default() -> Self {
        KeySet {
            keys: Vec::new(),
            vals: Vec::new(),
            dir: Vec::new(),
            bits: 0,
            recent: IdMap::default(),
        }
    }
}

impl<V: Copy + Default, K: Id> std::fmt::Debug for KeySet<V, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySet({} keys)", self.len())
    }
}

impl<V: Copy + Default, K: Id> KeySet<V, K> {
    /// A set of `keys` (sorted here if they are not), each with `value`.
    pub fn from_keys(mut keys: Vec<K>, value: V) -> KeySet<V, K> {
        if !keys.windows(2).all(|w| w[0] < w[1]) {
            keys.sort_unstable();
            keys.dedup();
        }
        let mut set = KeySet {
            vals: vec![value; keys.len()],
            keys,
            ..KeySet::default()
        };
        set.build_dir();
        set
    }

    pub fn len(&self) -> usize {
        self.keys.len() + self.recent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, key: &K) -> Option<V> {
        if let Some(v) = self.recent.get(key) {
            return Some(*v);
        }
        self.find(key).map(|i| self.vals[i])
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Insert or replace the value of `key`.
    pub fn insert(&mut self, key: K, value: V) {
        if let Some(i) = self.find(&key) {
            self.vals[i] = value;
            return;
        }
        self.recent.insert(key, value);
        if self.recent.len() > MIN_RECENT.max(self.keys.len() / 16) {
            self.merge();
        }
    }

    /// Insert `key` unless it is there (its value is kept).
    pub fn insert_new(&mut self, key: K, value: V) {
        if !self.contains_key(&key) {
            self.insert(key, value);
        }
    }

    /// Keep only the keys `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, V) -> bool) {
        self.recent.retain(|k, v| keep(k, *v));
        let mut w = 0;
        for r in 0..self.keys.len() {
            if keep(&self.keys[r], self.vals[r]) {
                self.keys[w] = self.keys[r];
                self.vals[w] = self.vals[r];
                w += 1;
            }
        }
        self.keys.truncate(w);
        self.vals.truncate(w);
        self.build_dir();
    }

    /// Every key and its value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, V)> + '_ {
        let bulk = self.keys.iter().zip(self.vals.iter().copied());
        bulk.chain(self.recent.iter().map(|(k, v)| (k, *v)))
    }

    /// The keys, sorted; the values are dropped (no copy of the keys is made).
    pub fn into_sorted_keys(mut self) -> Vec<K> {
        self.merge();
        self.keys
    }

    /// Room for `additional` more keys in the bulk, so it never moves while they arrive: the
    /// capacity not yet filled costs address space, not memory, and a bulk grown step by
    /// step (its keys and values alternately) would leave the allocator holes the size of
    /// the bulk.
    pub fn reserve(&mut self, additional: usize) {
        self.keys.reserve_exact(additional);
        self.vals.reserve_exact(additional);
    }

    /// Where `key` is in the bulk.
    fn find(&self, key: &K) -> Option<usize> {
        let (lo, hi) = match self.dir.is_empty() {
            true => (0, self.keys.len()),
            false => {
                let b = bucket(key, self.bits);
                (self.dir[b] as usize, self.dir[b + 1] as usize)
            }
        };
        self.keys[lo..hi].binary_search(key).ok().map(|i| lo + i)
    }

    /// Move the recent keys into the bulk: sorted, then merged from the back into the bulk
    /// grown to its exact new size.
    fn merge(&mut self) {
        if self.recent.is_empty() {
            return;
        }
        let mut fresh: Vec<(K, V)> = self.recent.drain().collect();
        fresh.sort_unstable_by_key(|e| e.0);
        let old = self.keys.len();
        let total = old + fresh.len();
        self.keys.reserve_exact(fresh.len());
        self.vals.reserve_exact(fresh.len());
        self.keys.resize(total, K::default());
        self.vals.resize(total, V::default());
        let (mut i, mut j) = (old, fresh.len());
        for w in (0..total).rev() {
            // Recent keys are never in the bulk: no two are equal.
            if j == 0 {
                break;
            }
            if i > 0 && self.keys[i - 1] > fresh[j - 1].0 {
                i -= 1;
                self.keys[w] = self.keys[i];
                self.vals[w] = self.vals[i];
            } else {
                j -= 1;
                (self.keys[w], self.vals[w]) = fresh[j];
            }
        }
        self.build_dir();
    }

    /// One bucket per 4–8 keys of the bulk, each the index of its first key.
    fn build_dir(&mut self) {
        let n = self.keys.len();
        self.dir.clear();
        if n < 16 || u32::try_from(n).is_err() {
            self.dir.shrink_to_fit();
            return;
        }
        let buckets = (n / 8).next_power_of_two();
        self.bits = buckets.trailing_zeros();
        self.dir.reserve_exact(buckets + 1);
        let mut i = 0;
        for b in 0..buckets {
            while i < n && bucket(&self.keys[i], self.bits) < b {
                i += 1;
            }
            self.dir.push(i as u32);
        }
        self.dir.push(n as u32);
    }
}

/// The leading `bits` bits of a key id.
fn bucket<K: Id>(key: &K, bits: u32) -> usize {
    key.lead().checked_shr(64 - bits).unwrap_or(0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::key::key_id;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn two_hundred_thousand_keys_are_found_and_absent_ones_are_not() {
        let mut set = KeySet::default();
        for i in 0..200_000u64 {
            set.insert(key_id(&format!("k{i}")), i);
        }
        assert_eq!(set.len(), 200_000);
        for i in (0..200_000u64).step_by(7) {
            assert_eq!(set.get(&key_id(&format!("k{i}"))), Some(i));
            assert_eq!(set.get(&key_id(&format!("absent{i}"))), None);
        }
        // The bulk holds all but the recent ones, exactly sized.
        assert!(set.recent.len() <= set.keys.len() / 16 + 1);
        assert_eq!(set.keys.capacity(), set.keys.len());
        let keys = set.into_sorted_keys();
        assert_eq!(keys.len(), 200_000);
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn from_keys_sorts_and_dedups_what_it_is_given() {
        let ids: Vec<KeyId> = (0..100).map(|i| key_id(&format!("{}", i % 40))).collect();
        let set = KeySet::from_keys(ids, 7u64);
        assert_eq!(set.len(), 40);
        assert_eq!(set.get(&key_id("39")), Some(7));
        assert_eq!(set.get(&key_id("40")), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u64),
        InsertNew(u16, u64),
        Retain(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (any::<u16>(), any::<u64>()).prop_map(|(k, v)| Op::Insert(k, v)),
            2 => (any::<u16>(), any::<u64>()).prop_map(|(k, v)| Op::InsertNew(k, v)),
            1 => any::<u64>().prop_map(Op::Retain),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any sequence of inserts and retains leaves what a HashMap would hold.
        #[test]
        fn behaves_as_a_hash_map(ops in proptest::collection::vec(op(), 0..6000)) {
            let mut set = KeySet::default();
            let mut model: HashMap<KeyId, u64> = HashMap::new();
            for op in &ops {
                match *op {
                    Op::Insert(k, v) => {
                        set.insert(key_id(&k.to_string()), v);
                        model.insert(key_id(&k.to_string()), v);
                    }
                    Op::InsertNew(k, v) => {
                        set.insert_new(key_id(&k.to_string()), v);
                        model.entry(key_id(&k.to_string())).or_insert(v);
                    }
                    Op::Retain(m) => {
                        set.retain(|_, v| v % 3 != m % 3);
                        model.retain(|_, v| *v % 3 != m % 3);
                    }
                }
            }
            prop_assert_eq!(set.len(), model.len());
            for k in 0..=u16::MAX {
                let id = key_id(&k.to_string());
                prop_assert_eq!(set.get(&id), model.get(&id).copied());
            }
            let mut listed: Vec<(KeyId, u64)> = set.iter().map(|(k, v)| (*k, v)).collect();
            let mut want: Vec<(KeyId, u64)> = model.into_iter().collect();
            listed.sort_unstable();
            want.sort_unstable();
            prop_assert_eq!(listed, want);
        }
    }
}
