//! Parsing one ledger line in place: checks the hash, the canonical form and the envelope, and borrows the few fields the ledger needs.
//!
//! This is the hot path of open and verify, so it never builds a `serde_json::Value`: it walks
//! the top-level members once, skips (and validates) nested values, and decodes only the
//! envelope and billing fields.
use crate::records::canonical::{record_hash, split_sealed};
use crate::records::RecordType;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// What the ledger needs from a line; strings are borrowed unless they hold escapes.
#[derive(Debug)]
pub(crate) struct Facts<'a> {
    pub hash: [u8; 64],
    pub hash_ok: bool,
    pub v: u64,
    pub seq: u64,
    pub prev_hash: [u8; 64],
    pub key: Cow<'a, str>,
    pub type_name: Cow<'a, str>,
    /// The type `type_name` names; None for one this build does not know.
    pub record: Option<RecordType>,
    pub batch: Option<Cow<'a, str>>,
    pub batch_len: Option<u64>,
    pub tenant_id: Option<Cow<'a, str>>,
    pub amount: Option<i64>,
    pub refunds: Option<Cow<'a, str>>,
    /// The run a run's record belongs to (cross-file rule: its `run_started` must exist).
    pub run_id: Option<Cow<'a, str>>,
    /// The run's work order, number and step, and the step's attempt (a run's account:
    /// cross.rs). Read when they have the type their records give them, else None.
    pub work_order_id: Option<Cow<'a, str>>,
    pub run: Option<u64>,
    pub step_id: Option<Cow<'a, str>>,
    pub attempt: Option<u64>,
    /// A `run_ended`'s credits (positive totals of the run's SPENDs and REFUNDs).
    pub charged: Option<i64>,
    pub refunded: Option<i64>,
    /// Whether the record names an actor (a non-empty string): a legacy privileged record
    /// without one needs no audit record (`Privileged::legacy_without_actor`).
    pub has_actor: bool,
    /// SHA-256 of the canonical payload (the record without seq, recorded_at, prev_hash, hash).
    pub payload_digest: Option<[u8; 32]>,
}

/// A line that could not be read as a record; `stated_hash` is its hash field when the seal
/// is intact, so the next line's chain check need not fail as well.
#[derive(Debug)]
pub(crate) struct Unreadable {
    pub message: String,
    pub stated_hash: Option<[u8; 64]>,
}

const MAX_DEPTH: usize = 64;

/// Parse and check one line (without its `\n`).
pub(crate) fn parse(line: &[u8], want_payload_digest: bool) -> Result<Facts<'_>, Unreadable> {
    let Some((body, hash_hex)) = split_sealed(line) else {
        return Err(Unreadable {
            message: if line.is_empty() {
                "empty line".into()
            } else {
                "not a sealed record: the line must end in ,\"hash\":\"<64 lower-case hex>\"}"
                    .into()
            },
            stated_hash: None,
        });
    };
    let mut hash = [0u8; 64];
    hash.copy_from_slice(hash_hex);
    let fail = |message: String| Unreadable {
        message,
        stated_hash: Some(hash),
    };
    if std::str::from_utf8(body).is_err() {
        return Err(fail("the line is not valid UTF-8".into()));
    }
    let mut p = Members::new(body, want_payload_digest);
    let mut found = Found::default();
    while let Some((name, value)) = p.next().map_err(fail)? {
        found.take(name, value).map_err(fail)?;
    }
    let payload_digest = p.finish_digest();
    let hash_ok = hex_eq(&record_hash(&[body, b"}"]), &hash);
    found.facts(hash, hash_ok, payload_digest).map_err(fail)
}

/// The top-level fields the ledger reads, as found so far in one line.
#[derive(Default)]
struct Found<'a> {
    v: Option<u64>,
    seq: Option<u64>,
    prev_hash: Option<[u8; 64]>,
    recorded_at: bool,
    key: Option<Cow<'a, str>>,
    type_name: Option<Cow<'a, str>>,
    batch: Option<Cow<'a, str>>,
    batch_len: Option<u64>,
    tenant_id: Option<Cow<'a, str>>,
    amount: Option<i64>,
    refunds: Option<Cow<'a, str>>,
    run_id: Option<Cow<'a, str>>,
    work_order_id: Option<Cow<'a, str>>,
    run: Option<u64>,
    step_id: Option<Cow<'a, str>>,
    attempt: Option<u64>,
    charged: Option<i64>,
    refunded: Option<i64>,
    has_actor: bool,
}

impl<'a> Found<'a> {
    /// Take one top-level member; an error says what the field must hold.
    fn take(&mut self, name: &[u8], value: &'a [u8]) -> Result<(), String> {
        let field =
            |what: &str| format!("field {}: expected {what}", String::from_utf8_lossy(name));
        let uint = |v| uint(v).ok_or_else(|| field("an unsigned integer"));
        let text = |v| string(v).ok_or_else(|| field("a string"));
        match name {
            b"v" => self.v = Some(uint(value)?),
            b"seq" => self.seq = Some(uint(value)?),
            b"batch_len" => self.batch_len = Some(uint(value)?),
            b"amount_credits" => self.amount = Some(int(value).ok_or_else(|| field("an integer"))?),
            b"prev_hash" => {
                let h = hex64(&text(value)?).ok_or_else(|| field("64 lower-case hex digits"))?;
                self.prev_hash = Some(h);
            }
            b"recorded_at" => {
                if !is_timestamp(&text(value)?) {
                    return Err(field("an RFC 3339 UTC time like 2026-01-31T12:00:00.000Z"));
                }
                self.recorded_at = true;
            }
            b"idempotency_key" => {
                let s = text(value)?;
                if s.is_empty() {
                    return Err(field("a non-empty string"));
                }
                self.key = Some(s);
            }
            b"type" => self.type_name = Some(text(value)?),
            b"batch" => self.batch = Some(text(value)?),
            b"tenant_id" if value != b"null" => self.tenant_id = Some(text(value)?),
            b"refunds" => self.refunds = Some(text(value)?),
            b"run_id" => self.run_id = Some(text(value)?),
            // Fields of a run's account: required (and named) by the rules that use them,
            // never a reason to refuse a record of another type.
            b"work_order_id" => self.work_order_id = string(value),
            b"run" => self.run = uint(value).ok(),
            b"step_id" => self.step_id = string(value),
            b"attempt" => self.attempt = uint(value).ok(),
            b"charged_credits" => self.charged = int(value),
            b"refunded_credits" => self.refunded = int(value),
            b"actor" => self.has_actor = string(value).is_some_and(|a| !a.is_empty()),
            b"hash" => return Err("field hash appears twice".into()),
            _ => {}
        }
        Ok(())
    }

    /// The line's facts, once every member was taken; an error names a missing field.
    fn facts(
        self,
        hash: [u8; 64],
        hash_ok: bool,
        payload_digest: Option<[u8; 32]>,
    ) -> Result<Facts<'a>, String> {
        let missing = |name: &str| format!("missing field {name}");
        let v = self.v.ok_or_else(|| missing("v"))?;
        let seq = self.seq.ok_or_else(|| missing("seq"))?;
        let prev_hash = self.prev_hash.ok_or_else(|| missing("prev_hash"))?;
        if !self.recorded_at {
            return Err(missing("recorded_at"));
        }
        let key = self.key.ok_or_else(|| missing("idempotency_key"))?;
        let type_name = self.type_name.ok_or_else(|| missing("type"))?;
        if self.batch.is_some() != self.batch_len.is_some() {
            return Err("batch and batch_len must appear together".into());
        }
        Ok(Facts {
            hash,
            hash_ok,
            v,
            seq,
            prev_hash,
            key,
            record: RecordType::from_name(&type_name),
            type_name,
            batch: self.batch,
            batch_len: self.batch_len,
            tenant_id: self.tenant_id,
            amount: self.amount,
            refunds: self.refunds,
            run_id: self.run_id,
            work_order_id: self.work_order_id,
            run: self.run,
            step_id: self.step_id,
            attempt: self.attempt,
            charged: self.charged,
            refunded: self.refunded,
            has_actor: self.has_actor,
            payload_digest,
        })
    }
}

/// 64 lower-case hex digits, as bytes.
fn hex64(s: &str) -> Option<[u8; 64]> {
    let ok = s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let mut h = [0u8; 64];
    h.copy_from_slice(s.as_bytes().get(..64).filter(|_| ok)?);
    Some(h)
}

fn hex_eq(bytes: &[u8; 32], hex: &[u8; 64]) -> bool {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().enumerate().all(|(i, b)| {
        hex[2 * i] == DIGITS[(b >> 4) as usize] && hex[2 * i + 1] == DIGITS[(b & 15) as usize]
    })
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`: the one form writers produce, so string order is time order.
pub(crate) fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 24 {
        return false;
    }
    let shape = b"dddd-dd-ddTdd:dd:dd.dddZ";
    let shaped = b.iter().zip(shape).all(|(c, t)| {
        if *t == b'd' {
            c.is_ascii_digit()
        } else {
            c == t
        }
    });
    shaped && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

fn uint(v: &[u8]) -> Option<u64> {
    if v.first() == Some(&b'-') {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn int(v: &[u8]) -> Option<i64> {
    if !matches!(v.first(), Some(b'-' | b'0'..=b'9')) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// A JSON string value, borrowed when it has no escapes.
fn string(v: &[u8]) -> Option<Cow<'_, str>> {
    if v.len() < 2 || v[0] != b'"' {
        return None;
    }
    let inner = &v[1..v.len() - 1];
    if inner.contains(&b'\\') {
        serde_json::from_slice::<String>(v).ok().map(Cow::Owned)
    } else {
        std::str::from_utf8(inner).ok().map(Cow::Borrowed)
    }
}

/// A top-level member: field name and raw value bytes.
type Member<'a> = (&'a [u8], &'a [u8]);

/// Walks the top-level members of a sealed record body (`{` ... without the final `}`),
/// validating canonical form as it goes and feeding the payload digest.
struct Members<'a> {
    b: &'a [u8],
    i: usize,
    prev_key: &'a [u8],
    first: bool,
    digest: Option<Sha256>,
    digest_first: bool,
}

impl<'a> Members<'a> {
    fn new(b: &'a [u8], want_digest: bool) -> Self {
        let digest = want_digest.then(|| {
            let mut h = Sha256::new();
            h.update(b"{");
            h
        });
        Members {
            b,
            i: 1,
            prev_key: b"",
            first: true,
            digest,
            digest_first: true,
        }
    }

    fn next(&mut self) -> Result<Option<Member<'a>>, String> {
        let b = self.b;
        if self.i >= b.len() {
            if self.first {
                return Err("a record needs at least one field besides hash".into());
            }
            return Ok(None);
        }
        if !self.first {
            if b[self.i] != b',' {
                return Err(format!("expected ',' at byte {}", self.i));
            }
            self.i += 1;
        }
        let start = self.i;
        let (key_end, escaped) = scan_string(b, self.i)?;
        let key = &b[start + 1..key_end - 1];
        if escaped {
            return Err("a top-level field name holds an escape".into());
        }
        if !self.first && key <= self.prev_key {
            return Err(format!(
                "not canonical: field {} is out of order or repeated",
                String::from_utf8_lossy(key)
            ));
        }
        if b.get(key_end) != Some(&b':') {
            return Err(format!("expected ':' at byte {key_end}"));
        }
        let value_start = key_end + 1;
        let value_end = skip_value(b, value_start, 0)?;
        self.i = value_end;
        self.prev_key = key;
        self.first = false;
        if let Some(h) = &mut self.digest {
            let value = &b[value_start..value_end];
            if !matches!(key, b"seq" | b"recorded_at" | b"prev_hash")
                && !crate::records::absent_from_payload(key, value)
            {
                if !self.digest_first {
                    h.update(b",");
                }
                h.update(&b[start..value_end]);
                self.digest_first = false;
            }
        }
        Ok(Some((key, &b[value_start..value_end])))
    }

    fn finish_digest(&mut self) -> Option<[u8; 32]> {
        self.digest.take().map(|mut h| {
            h.update(b"}");
            h.finalize().into()
        })
    }
}

/// End of the string starting at `b[i] == '"'`, and whether it holds escapes. Only the
/// escapes serde_json writes are canonical.
fn scan_string(b: &[u8], i: usize) -> Result<(usize, bool), String> {
    if b.get(i) != Some(&b'"') {
        return Err(format!("expected a string at byte {i}"));
    }
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        let Some(&c) = b.get(j) else {
            return Err("unterminated string".into());
        };
        match c {
            b'"' => return Ok((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                match b.get(j + 1) {
                    Some(b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f') => j += 2,
                    Some(b'u') => {
                        let hex = b.get(j + 2..j + 6).ok_or("truncated \\u escape")?;
                        let ok = hex[0] == b'0'
                            && hex[1] == b'0'
                            && matches!(hex[2], b'0' | b'1')
                            && (hex[3].is_ascii_digit() || (b'a'..=b'f').contains(&hex[3]));
                        let short = matches!(&hex[2..4], b"08" | b"09" | b"0a" | b"0c" | b"0d");
                        if !ok || short {
                            return Err(format!(
                                "not canonical: escape \\u{} at byte {j}",
                                String::from_utf8_lossy(hex)
                            ));
                        }
                        j += 6;
                    }
                    _ => return Err(format!("not canonical: escape at byte {j}")),
                }
            }
            0..=0x1f => return Err(format!("raw control character in a string at byte {j}")),
            _ => j += 1,
        }
    }
}

/// End of the JSON value starting at `b[i]`.
fn skip_value(b: &[u8], i: usize, depth: usize) -> Result<usize, String> {
    if depth > MAX_DEPTH {
        return Err("nested too deeply".into());
    }
    match b.get(i) {
        Some(b'"') => Ok(scan_string(b, i)?.0),
        Some(b'{') => skip_object(b, i, depth),
        Some(b'[') => skip_array(b, i, depth),
        Some(b't') if b[i..].starts_with(b"true") => Ok(i + 4),
        Some(b'f') if b[i..].starts_with(b"false") => Ok(i + 5),
        Some(b'n') if b[i..].starts_with(b"null") => Ok(i + 4),
        Some(b'-' | b'0'..=b'9') => skip_integer(b, i),
        _ => Err(format!("expected a JSON value at byte {i}")),
    }
}

/// End of the object at `b[i] == '{'`; its keys must be in canonical (sorted) order.
fn skip_object(b: &[u8], i: usize, depth: usize) -> Result<usize, String> {
    let mut j = i + 1;
    if b.get(j) == Some(&b'}') {
        return Ok(j + 1);
    }
    let mut prev: Option<Cow<'_, [u8]>> = None;
    loop {
        let (key_end, escaped) = scan_string(b, j)?;
        let key: Cow<'_, [u8]> = if escaped {
            let s: String = serde_json::from_slice(&b[j..key_end])
                .map_err(|e| format!("bad field name: {e}"))?;
            Cow::Owned(s.into_bytes())
        } else {
            Cow::Borrowed(&b[j + 1..key_end - 1])
        };
        if prev.as_ref().is_some_and(|p| key.as_ref() <= p.as_ref()) {
            return Err(format!(
                "not canonical: nested field {} is out of order or repeated",
                String::from_utf8_lossy(&key)
            ));
        }
        prev = Some(key);
        if b.get(key_end) != Some(&b':') {
            return Err(format!("expected ':' at byte {key_end}"));
        }
        j = skip_value(b, key_end + 1, depth + 1)?;
        match b.get(j) {
            Some(b',') => j += 1,
            Some(b'}') => return Ok(j + 1),
            _ => return Err(format!("expected ',' or '}}' at byte {j}")),
        }
    }
}

/// End of the array at `b[i] == '['`.
fn skip_array(b: &[u8], i: usize, depth: usize) -> Result<usize, String> {
    let mut j = i + 1;
    if b.get(j) == Some(&b']') {
        return Ok(j + 1);
    }
    loop {
        j = skip_value(b, j, depth + 1)?;
        match b.get(j) {
            Some(b',') => j += 1,
            Some(b']') => return Ok(j + 1),
            _ => return Err(format!("expected ',' or ']' at byte {j}")),
        }
    }
}

/// End of the integer at `b[i]`, written canonically (no leading zero, no `-0`); a fraction or
/// exponent is refused.
fn skip_integer(b: &[u8], i: usize) -> Result<usize, String> {
    let mut j = i;
    if b[j] == b'-' {
        j += 1;
    }
    let digits = j;
    while b.get(j).is_some_and(u8::is_ascii_digit) {
        j += 1;
    }
    let n = j - digits;
    if n == 0 || (n > 1 && b[digits] == b'0') || (b[i] == b'-' && &b[digits..j] == b"0") {
        return Err(format!("not canonical: number at byte {i}"));
    }
    if matches!(b.get(j), Some(b'.' | b'e' | b'E')) {
        return Err(format!("number at byte {i} is not an integer"));
    }
    Ok(j)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::canonical::{encode, seal};
    use serde_json::json;

    fn line(v: serde_json::Value) -> Vec<u8> {
        let (mut l, _) = seal(&encode(&v).unwrap()).unwrap();
        l.pop();
        l
    }

    fn base() -> serde_json::Value {
        json!({"v": 1, "seq": 3, "prev_hash": "0".repeat(64), "recorded_at": "2026-01-02T03:04:05.678Z",
               "idempotency_key": "topup/acme/INV \"1\"", "type": "TOPUP", "tenant_id": "acme",
               "amount_credits": 25, "nested": {"b": [1, -2, {"x": null}], "a": "\u{1}é"}})
    }

    #[test]
    fn reads_envelope_and_billing_fields() {
        let l = line(base());
        let f = parse(&l, true).unwrap();
        assert!(f.hash_ok);
        assert_eq!((f.v, f.seq, f.amount), (1, 3, Some(25)));
        assert_eq!(f.key, "topup/acme/INV \"1\"");
        assert_eq!(f.tenant_id.as_deref(), Some("acme"));
        let mut payload = base();
        let obj = payload.as_object_mut().unwrap();
        for k in ["seq", "recorded_at", "prev_hash"] {
            obj.remove(k);
        }
        let want: [u8; 32] = Sha256::digest(encode(&payload).unwrap()).into();
        assert_eq!(f.payload_digest, Some(want));
    }

    #[test]
    fn every_single_byte_edit_is_caught() {
        let l = line(base());
        for i in 0..l.len() {
            for new in [b'0', b'a', b'"', b'}', b' ', b'\\', 0xff] {
                if l[i] == new {
                    continue;
                }
                let mut m = l.clone();
                m[i] = new;
                if let Ok(f) = parse(&m, false) {
                    assert!(!f.hash_ok, "edit at {i} to {new} passed");
                }
            }
        }
    }

    #[test]
    fn non_canonical_lines_are_refused() {
        let good = String::from_utf8(line(base())).unwrap();
        for (from, to) in [
            ("\"v\":1", "\"v\":1.0"),
            ("\"seq\":3", "\"seq\": 3"),
            ("\\u0001", "\\u0001\\/"),
        ] {
            let bad = good.replacen(from, to, 1);
            assert_ne!(bad, good);
            assert!(parse(bad.as_bytes(), false).is_err(), "{to}");
        }
        let swapped = line(json!({"v": 1}));
        assert!(parse(&swapped, false).is_err(), "missing fields");
    }

    #[test]
    fn timestamps() {
        assert!(is_timestamp("2026-01-02T03:04:05.678Z"));
        assert!(!is_timestamp("2026-01-02T03:04:05Z"));
        assert!(!is_timestamp("2026-13-02T03:04:05.678Z"));
    }
}
