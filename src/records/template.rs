//! A record's canonical encoding with some top-level members left to fill in: a writer encodes a record once, outside its lock, and adds the chain fields (seq, prev_hash, recorded_at) under it without encoding it again.
use super::canonical_ser::{encode_str, Members};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The members a writer fills in when it chains a record: a prepared record's holes.
pub const CHAIN_FIELDS: [&str; 3] = ["prev_hash", "recorded_at", "seq"];

/// The canonical encoding of an object, its members to fill in left out.
#[derive(Debug, Clone)]
pub struct Template {
    /// The encoded members (`"key":value`) in key order, without separators.
    body: Vec<u8>,
    /// Every member in key order: where its bytes end in `body`, or one to fill in.
    members: Vec<Member>,
}

#[derive(Debug, Clone, Copy)]
enum Member {
    /// `payload`: false for a `null` the payload leaves out (`records::NULL_AS_ABSENT`).
    Encoded {
        end: usize,
        payload: bool,
    },
    Hole(&'static str),
}

impl Template {
    /// Encode `map` with the members named in `holes` left to fill in (a value `map` has
    /// under one of those keys is left out: the filled-in value replaces it).
    pub fn new(map: &Map<String, Value>, holes: &[&'static str]) -> Result<Template, String> {
        Ok(Template::of_members(&Members::of(map)?, holes))
    }

    /// The template of members already encoded ([`Members`]: a record serialized straight
    /// to its canonical encoding), with the members named in `holes` left to fill in.
    pub fn of_members(members: &Members, holes: &[&'static str]) -> Template {
        let mut keys: Vec<(&str, Result<&[u8], &'static str>)> = members
            .sorted()
            .into_iter()
            .filter(|(k, _)| !holes.contains(k))
            .map(|(k, v)| (k, Ok(v)))
            .chain(holes.iter().map(|h| (*h, Err(*h))))
            .collect();
        keys.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut body = Vec::with_capacity(members.encoded_len() + 16 * keys.len());
        let mut out = Vec::with_capacity(keys.len());
        for (key, value) in keys {
            match value {
                Ok(value) => {
                    encode_str(&mut body, key);
                    body.push(b':');
                    body.extend_from_slice(value);
                    let payload = !super::absent_from_payload(key.as_bytes(), value);
                    out.push(Member::Encoded {
                        end: body.len(),
                        payload,
                    });
                }
                Err(hole) => out.push(Member::Hole(hole)),
            }
        }
        Template { body, members: out }
    }

    /// The canonical encoding of the payload: the members that are not holes, less a `null`
    /// the payload leaves out (`records::NULL_AS_ABSENT`), in pieces.
    fn without_holes(&self, mut out: impl FnMut(&[u8])) {
        out(b"{");
        let (mut start, mut first) = (0, true);
        for m in &self.members {
            if let Member::Encoded { end, payload } = *m {
                if payload {
                    if !first {
                        out(b",");
                    }
                    out(&self.body[start..end]);
                    first = false;
                }
                start = end;
            }
        }
        out(b"}");
    }

    /// SHA-256 of the canonical encoding of the members that are not holes: a record's
    /// payload digest when its holes are the fields a payload leaves out.
    pub fn digest_without_holes(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        self.without_holes(|piece| h.update(piece));
        h.finalize().into()
    }

    /// The members that are not holes, as an object (read back for the rare caller that
    /// needs fields: a conflict's message, an audit record).
    pub fn object_without_holes(&self) -> Map<String, Value> {
        let mut bytes = Vec::with_capacity(self.body.len() + self.members.len() + 2);
        self.without_holes(|piece| bytes.extend_from_slice(piece));
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    /// The canonical encoding with every hole filled: `value` writes the encoded value of
    /// the hole it is given.
    pub fn fill(&self, mut value: impl FnMut(&str, &mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 32 * self.members.len() + 2);
        out.push(b'{');
        let mut start = 0;
        for (i, m) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match *m {
                Member::Encoded { end, .. } => {
                    out.extend_from_slice(&self.body[start..end]);
                    start = end;
                }
                Member::Hole(key) => {
                    encode_str(&mut out, key);
                    out.push(b':');
                    value(key, &mut out);
                }
            }
        }
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::records::canonical::{encode, encode_object};
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    /// What a filled template must equal: the values inserted, then the whole encoded.
    fn inserted(map: &Map<String, Value>, fills: &[(&'static str, Value)]) -> Vec<u8> {
        let mut m = map.clone();
        for (k, v) in fills {
            m.insert((*k).to_string(), v.clone());
        }
        encode_object(&m).unwrap()
    }

    #[test]
    fn a_filled_template_is_the_encoding_with_the_values_inserted() {
        let fills = [
            ("prev_hash", json!("ab".repeat(32))),
            ("recorded_at", json!("2026-12-02T04:05:06.789Z")),
            ("seq", json!(42)),
        ];
        let holes: Vec<&'static str> = fills.iter().map(|(k, _)| *k).collect();
        for v in [
            json!({}),
            json!({"a": 1}),
            json!({"z": 1}),
            json!({"q": "x"}),
            json!({"seq": 7, "type": "SPEND", "a": {"seq": 1, "b": [1, "é\n"]}}),
            json!({"amount_credits": -5, "idempotency_key": "k", "run_id": "r", "tenant_id": "t", "v": 1}),
            json!({"prev_hash": "old", "recorded_at": "old", "r": null}),
        ] {
            let map = object(v);
            let t = Template::new(&map, &holes).unwrap();
            let filled = t.fill(|k, out| {
                let v = &fills.iter().find(|(h, _)| *h == k).unwrap().1;
                out.extend_from_slice(&encode(v).unwrap());
            });
            assert_eq!(
                String::from_utf8(filled).unwrap(),
                String::from_utf8(inserted(&map, &fills)).unwrap()
            );
        }
    }

    #[test]
    fn the_digest_leaves_the_holes_out() {
        let map = object(json!({"b": 2, "a": {"y": 1, "x": 0}, "seq": 9, "z": "end"}));
        let t = Template::new(&map, &["recorded_at", "seq"]).unwrap();
        let mut payload = map.clone();
        payload.remove("seq");
        let want: [u8; 32] = Sha256::digest(encode_object(&payload).unwrap()).into();
        assert_eq!(t.digest_without_holes(), want);
        let only_holes = Template::new(&Map::new(), &["seq"]).unwrap();
        assert_eq!(
            only_holes.digest_without_holes(),
            <[u8; 32]>::from(Sha256::digest(b"{}"))
        );
    }

    /// A record written before `period` existed and its replay with `"period":null` are one
    /// payload; a period with a value is not.
    #[test]
    fn a_null_period_is_left_out_of_the_digest_but_written() {
        let with = object(json!({"a": 1, "period": null, "seq": 2}));
        let without = object(json!({"a": 1, "seq": 2}));
        let digest =
            |m: &Map<String, Value>| Template::new(m, &["seq"]).unwrap().digest_without_holes();
        assert_eq!(digest(&with), digest(&without));
        let dated = object(json!({"a": 1, "period": "2026-12-01", "seq": 2}));
        assert_ne!(digest(&dated), digest(&without));
        let filled = Template::new(&with, &["seq"])
            .unwrap()
            .fill(|_, out| out.push(b'2'));
        assert_eq!(filled, br#"{"a":1,"period":null,"seq":2}"#);
    }

    #[test]
    fn the_object_without_holes_is_the_map_less_its_holes() {
        let map = object(json!({"b": "x\n", "a": {"y": [1, 2]}, "seq": 9}));
        let t = Template::new(&map, &["recorded_at", "seq"]).unwrap();
        let mut want = map.clone();
        want.remove("seq");
        assert_eq!(t.object_without_holes(), want);
    }

    #[test]
    fn a_fraction_is_refused_with_its_path() {
        let err = Template::new(&object(json!({"values": {"r": 0.5}})), &["seq"]).unwrap_err();
        assert!(err.starts_with("values.r: 0.5 is not an integer"), "{err}");
    }
}
