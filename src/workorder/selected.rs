//! What the values a step's selectors select may cost the orchestrator: estimated before they are built, so no module's file can make them large (SPEC §6: memory ≤ 200 MB).
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::fmt;
use std::io::Write;

/// All the values one step's selectors select, together, may take at most this much of the
/// orchestrator's memory: their estimated size in memory plus the bytes they add to
/// inputs.json. A 16 MiB file read as `lines` or `json` builds a tree 40–80 times its size.
pub const MAX_SELECTED_BYTES: u64 = 48 * 1024 * 1024;

/// One JSON value held in memory: its 32-byte slot, counted twice for the slack an array
/// leaves as it grows.
const SLOT: u64 = 64;
/// An object's first B-tree node (eleven keys and values), allocated whole.
const OBJECT: u64 = 640;
/// Each key of an object: its share of the tree's nodes (a node is at least half full).
const ENTRY: u64 = 128;

/// What is left of a step's allowance for selected values.
#[derive(Debug)]
pub struct Allowance {
    left: u64,
}

impl Default for Allowance {
    fn default() -> Self {
        Allowance {
            left: MAX_SELECTED_BYTES,
        }
    }
}

impl Allowance {
    /// `lines`: each line, up to `limit`, as a string; its estimated size, counted before
    /// one is built.
    pub fn lines(&self, text: &str, limit: usize) -> Result<u64, String> {
        let mut cost = SLOT;
        for l in text.lines().take(limit) {
            cost += SLOT + l.len() as u64;
            if cost > self.left {
                return Err(over("lines", self.left));
            }
        }
        Ok(cost)
    }

    /// `json`/`jsonl_first`: the estimated size of the document `text` as a tree, read once
    /// without building anything. Err is the JSON's own error or the allowance's.
    pub fn document(&self, text: &str) -> Result<u64, String> {
        let used = Cell::new(0);
        let seed = Estimate {
            used: &used,
            limit: self.left,
        };
        let mut de = serde_json::Deserializer::from_str(text);
        match seed.deserialize(&mut de).and_then(|()| de.end()) {
            Err(_) if used.get() > self.left => Err(over("json", self.left)),
            Err(e) => Err(format!("not valid JSON: {e}")),
            Ok(()) => Ok(used.get()),
        }
    }

    /// Charge a built value: its estimate (`held`, what [`Allowance::lines`] or
    /// [`Allowance::document`] counted) plus what it adds to inputs.json, as written there.
    /// Nothing is taken when it does not fit.
    pub fn charge(&mut self, held: u64, v: &serde_json::Value) -> Result<(), String> {
        if held > self.left {
            return Err(over("value", self.left));
        }
        let mut w = Counter {
            bytes: 0,
            newlines: 0,
            limit: self.left - held,
        };
        // An Err here is only the counter stopping at its limit.
        let _ = serde_json::to_writer_pretty(&mut w, v);
        let cost = held.saturating_add(w.written());
        if cost > self.left {
            return Err(over("value", self.left));
        }
        self.left -= cost;
        Ok(())
    }
}

fn over(what: &str, left: u64) -> String {
    format!(
        "the {what} selected would take more than the {left} bytes of the orchestrator's memory left of the {MAX_SELECTED_BYTES} a step's selected values may take (their tree plus inputs.json); select less (take, json_path) or bind the file as a file input"
    )
}

/// Counts what would be written, and stops once past `limit`.
struct Counter {
    bytes: u64,
    newlines: u64,
    limit: u64,
}

impl Counter {
    /// inputs.json nests the value one level deep: two more spaces on each of its lines.
    fn written(&self) -> u64 {
        self.bytes.saturating_add(2 * self.newlines)
    }
}

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len() as u64;
        self.newlines += buf.iter().filter(|b| **b == b'\n').count() as u64;
        if self.written() > self.limit {
            return Err(std::io::Error::other("over the allowance"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads a JSON value, adding its estimated size to `used`; stops once past `limit`.
#[derive(Clone, Copy)]
struct Estimate<'a> {
    used: &'a Cell<u64>,
    limit: u64,
}

impl Estimate<'_> {
    fn add<E: de::Error>(&self, cost: u64) -> Result<(), E> {
        self.used.set(self.used.get().saturating_add(cost));
        if self.used.get() > self.limit {
            return Err(E::custom("over the allowance"));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Estimate<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Estimate<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.add(SLOT)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.add(SLOT)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.add(SLOT)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.add(SLOT)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.add(SLOT)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.add(SLOT + s.len() as u64)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.add(SLOT)?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.add(SLOT + OBJECT)?;
        while let Some(len) = map.next_key_seed(KeyLen)? {
            self.add(ENTRY + len)?;
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

/// An object key's length in bytes.
struct KeyLen;

impl<'de> DeserializeSeed<'de> for KeyLen {
    type Value = u64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyLen {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<u64, E> {
        Ok(s.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sixteen_mib_file_of_newlines_or_zeros_is_refused_before_it_is_built() {
        let a = Allowance::default();
        let newlines = "\n".repeat(16 << 20);
        assert!(a
            .lines(&newlines, usize::MAX)
            .unwrap_err()
            .contains("lines selected"));
        let zeros = format!("[{}0]", "0,".repeat((8 << 20) - 1));
        assert!(a.document(&zeros).unwrap_err().contains("json selected"));
        let objects = format!("[{}{{}}]", "{\"a\":0},".repeat(1 << 20));
        assert!(a.document(&objects).is_err());
    }

    #[test]
    fn ordinary_values_fit_and_bad_json_says_so() {
        let mut a = Allowance::default();
        let text = "a\nb\n".repeat(1000);
        a.lines(&text, usize::MAX).unwrap();
        let doc = r#"{"a":[1,2,{"b":"c"}]}"#;
        let held = a.document(doc).unwrap();
        let v: serde_json::Value = serde_json::from_str(doc).unwrap();
        a.charge(held, &v).unwrap();
        assert!(a.left < MAX_SELECTED_BYTES);
        assert!(a.document("{").unwrap_err().starts_with("not valid JSON"));
        assert!(a
            .document("[1] x")
            .unwrap_err()
            .starts_with("not valid JSON"));
    }

    #[test]
    fn deep_nesting_is_charged_for_the_indentation_inputs_json_writes() {
        let mut a = Allowance::default();
        // 100 levels, then 200,000 zeros: small in memory, 40 MB as pretty-printed JSON.
        let doc = format!(
            "{}{}0{}",
            "[".repeat(100),
            "0,".repeat(200_000),
            "]".repeat(100)
        );
        let held = a.document(&doc).unwrap();
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert!(a.charge(held, &v).is_err());
        assert_eq!(a.left, MAX_SELECTED_BYTES, "nothing taken on refusal");
    }
}
