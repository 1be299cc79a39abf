//! Small checks on what a command printed: text that must contain a needle, lookups in
//! the JSON arrays of its documents (runs, steps, findings, manifests), digests as the
//! records and caches write them, and the entries of a ZIP it wrote.
use serde_json::Value;
use std::fmt::Debug;

/// `text` contains `needle`; a failure shows both.
pub fn assert_has(text: &str, needle: &str) {
    assert!(text.contains(needle), "{needle:?} is not in:\n{text}");
}

/// The element of a JSON array whose `key` equals `value`.
pub fn find<'a, T>(array: &'a Value, key: &str, value: T) -> &'a Value
where
    Value: PartialEq<T>,
    T: Debug + Copy,
{
    array
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {array}"))
        .iter()
        .find(|e| e[key] == value)
        .unwrap_or_else(|| panic!("no element with {key} = {value:?} in {array}"))
}

/// The string `key` of every element of a JSON array.
pub fn strs<'a>(array: &'a Value, key: &str) -> Vec<&'a str> {
    array
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {array}"))
        .iter()
        .map(|e| {
            e[key]
                .as_str()
                .unwrap_or_else(|| panic!("no string {key} in {e}"))
        })
        .collect()
}

/// SHA-256 of `data` in lowercase hex, as records, manifests and caches write digests.
pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The entries of a ZIP, in its order: (name, bytes).
pub fn zip_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut out = Vec::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).unwrap();
        out.push((f.name().map(|n| n.to_string()).unwrap(), buf));
    }
    out
}
