//! The frozen v1 line format: canonical JSON encoding, the record hash and where it sits on a line.
//!
//! A record is encoded as a JSON object whose keys are sorted by byte order at every depth,
//! without whitespace, with integers only and serde_json's string escaping. The line on disk
//! is that encoding of the record without `hash`, with `,"hash":"<64 hex>"` inserted before
//! the final `}`, then `\n`. `hash` = SHA-256("platform-ledger/v1\n" ‖ record without
//! `hash`); the record includes `prev_hash`, so the hashes chain. Key order is sorted here
//! explicitly: serde_json's map order changes when any crate enables `preserve_order`.
//! [`super::canonical_ser`] writes the encoding straight from any `Serialize` value.
use super::canonical_ser::encode_value;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Prefix of every hashed message: a domain separator that also names the format version.
pub const HASH_DOMAIN: &[u8] = b"platform-ledger/v1\n";

const HASH_FIELD: &[u8] = b",\"hash\":\"";

/// Bytes of `,"hash":"<64 hex>"}` at the end of a line (without `\n`).
pub const SEAL_LEN: usize = HASH_FIELD.len() + 64 + 2;

/// The canonical encoding of a JSON value; the error names the path of a non-integer number.
pub fn encode(value: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(256);
    encode_value(&mut out, value)?;
    Ok(out)
}

/// The canonical encoding of a JSON object.
pub fn encode_object(map: &Map<String, Value>) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(256);
    encode_value(&mut out, map)?;
    Ok(out)
}

/// SHA-256 of the domain and the canonical record without `hash`, given in parts so a
/// reader can hash a line in place (`line[..len - SEAL_LEN]` then `}`).
pub fn record_hash(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(HASH_DOMAIN);
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// The line (with `\n`) for a canonical record without `hash`, and its hash as hex.
pub fn seal(canonical_without_hash: &[u8]) -> Result<(Vec<u8>, String), String> {
    let Some((&b'}', body)) = canonical_without_hash.split_last() else {
        return Err("a record must be a JSON object".into());
    };
    if body.len() < 2 {
        return Err("a record must not be empty".into());
    }
    let hash = hex::encode(record_hash(&[canonical_without_hash]));
    let mut line = Vec::with_capacity(canonical_without_hash.len() + SEAL_LEN + 1);
    line.extend_from_slice(body);
    line.extend_from_slice(HASH_FIELD);
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(b"\"}\n");
    Ok((line, hash))
}

/// Split a line (without `\n`) into the record without its final `}` and `hash`, and the hash
/// hex; None when the line does not end in `,"hash":"<64 lower-case hex>"}`.
pub fn split_sealed(line: &[u8]) -> Option<(&[u8], &[u8])> {
    if line.len() < SEAL_LEN + 2 || line[0] != b'{' {
        return None;
    }
    let cut = line.len() - SEAL_LEN;
    let (body, seal) = line.split_at(cut);
    if !seal.starts_with(HASH_FIELD) || !seal.ends_with(b"\"}") {
        return None;
    }
    let hash = &seal[HASH_FIELD.len()..HASH_FIELD.len() + 64];
    if !hash
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return None;
    }
    Some((body, hash))
}

/// Check a line's hash; returns the hash hex on success, else a message.
pub fn check_line_hash(line: &[u8]) -> Result<String, String> {
    let Some((body, hash)) = split_sealed(line) else {
        return Err("the line does not end in ,\"hash\":\"<64 hex>\"}".into());
    };
    let computed = hex::encode(record_hash(&[body, b"}"]));
    if computed.as_bytes() != hash {
        return Err(format!(
            "hash mismatch: the line says {}, its content hashes to {computed}",
            String::from_utf8_lossy(hash)
        ));
    }
    Ok(computed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_sorted_by_bytes_at_every_depth() {
        let v = json!({"b": 1, "a": {"z": [1, {"y": 2, "x": "é/\n\u{1}"}], "Z": null}, "_": true});
        let s = String::from_utf8(encode(&v).unwrap()).unwrap();
        assert_eq!(
            s,
            r#"{"_":true,"a":{"Z":null,"z":[1,{"x":"é/\n\u0001","y":2}]},"b":1}"#
        );
    }

    #[test]
    fn string_escaping_matches_serde_json() {
        for s in [
            "plain",
            "quote\"back\\slash",
            "tab\tnl\ncr\r\u{8}\u{c}\u{1f}\u{7f}",
            "ünï/códe",
        ] {
            let ours = encode(&serde_json::Value::from(s)).unwrap();
            assert_eq!(ours, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn fractions_are_refused_with_their_path() {
        let err = encode(&json!({"values": {"ratio": 0.5}})).unwrap_err();
        assert!(
            err.starts_with("values.ratio: 0.5 is not an integer"),
            "{err}"
        );
        assert!(encode(&json!({"n": -9_223_372_036_854_775_808i64, "u": u64::MAX})).is_ok());
    }

    #[test]
    fn seal_puts_hash_last_and_verifies() {
        let body = encode(&json!({"v": 1, "seq": 1})).unwrap();
        let (line, hash) = seal(&body).unwrap();
        let text = String::from_utf8(line.clone()).unwrap();
        assert_eq!(text, format!("{{\"seq\":1,\"v\":1,\"hash\":\"{hash}\"}}\n"));
        let l = &line[..line.len() - 1];
        assert_eq!(check_line_hash(l).unwrap(), hash);
        let mut bad = l.to_vec();
        bad[7] = b'2';
        assert!(check_line_hash(&bad)
            .unwrap_err()
            .starts_with("hash mismatch"));
    }
}
