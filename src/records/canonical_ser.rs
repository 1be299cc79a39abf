//! The canonical encoding written straight from any `Serialize` value, with no `serde_json::Value` in between: a record's members sorted at every depth as `canonical` defines them.
//!
//! A worker prepared each record by building a `Value` map, encoding it and freeing it: a
//! sixth of a worker's CPU in a pass (docs/performance.md). The output is byte for byte what
//! [`super::canonical`] specifies for the value `serde_json::to_value` would make: the same
//! key order, escaping and integers, a later member of an object replacing an earlier one of
//! the same key, non-finite floats as `null` and any other float refused with its path.
use serde::ser::{self, Impossible, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// Why a value has no canonical encoding (a message naming its path).
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// The canonical encoding of `value`, appended to `out`.
pub fn encode_value<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), String> {
    let mut path = String::new();
    value
        .serialize(Canon {
            out,
            path: &mut path,
        })
        .map_err(|e| e.0)
}

/// The members of an object, each encoded, in the order given (a later one of a key replaces
/// an earlier one when they are sorted: [`Members::sorted`]).
#[derive(Debug, Default)]
pub struct Members {
    buf: Vec<u8>,
    entries: Vec<(Cow<'static, str>, Range<usize>)>,
}

impl Members {
    /// The members of `value`, which must serialize as an object (a struct or a map).
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Result<Members, String> {
        let mut members = Members::default();
        let mut path = String::new();
        value
            .serialize(Top {
                members: &mut members,
                path: &mut path,
            })
            .map_err(|e| e.0)?;
        Ok(members)
    }

    /// Add a member whose value is `value`, encoded.
    pub fn push<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), String> {
        let start = self.buf.len();
        let mut path = String::from(key);
        value
            .serialize(Canon {
                out: &mut self.buf,
                path: &mut path,
            })
            .map_err(|e| e.0)?;
        self.entries
            .push((Cow::Borrowed(key), start..self.buf.len()));
        Ok(())
    }

    /// The encoded value of `key` (the last given), if any.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, r)| &self.buf[r.clone()])
    }

    /// The text of a string member, if `key` holds one.
    pub fn get_str(&self, key: &str) -> Option<String> {
        serde_json::from_slice::<String>(self.get(key)?).ok()
    }

    /// Bytes of the encoded values.
    pub fn encoded_len(&self) -> usize {
        self.buf.len()
    }

    /// Each key once (its last value) with its encoded value, in byte order of the keys.
    pub fn sorted(&self) -> Vec<(&str, &[u8])> {
        sorted_entries(&self.entries, &self.buf)
    }
}

/// Entries in byte order of their keys, each key once: the last given wins, as a map's insert.
fn sorted_entries<'a>(
    entries: &'a [(Cow<'static, str>, Range<usize>)],
    buf: &'a [u8],
) -> Vec<(&'a str, &'a [u8])> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    // Stable: of equal keys, the last given ends up last, and is the one kept.
    order.sort_by(|&a, &b| entries[a].0.as_bytes().cmp(entries[b].0.as_bytes()));
    let mut out: Vec<(&str, &[u8])> = Vec::with_capacity(order.len());
    for i in order {
        let (key, range) = &entries[i];
        let member = (key.as_ref(), &buf[range.clone()]);
        match out.last_mut() {
            Some(last) if last.0 == member.0 => *last = member,
            _ => out.push(member),
        }
    }
    out
}

/// Write `{"k":v,...}` for entries already encoded.
fn write_object(out: &mut Vec<u8>, entries: &[(Cow<'static, str>, Range<usize>)], buf: &[u8]) {
    out.push(b'{');
    for (i, (key, value)) in sorted_entries(entries, buf).into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        encode_str(out, key);
        out.push(b':');
        out.extend_from_slice(value);
    }
    out.push(b'}');
}

/// serde_json's escaping: `"`, `\` and control characters only; `/` and non-ASCII as is.
pub(crate) fn encode_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most strings (ids, hashes, times) need no escape: one pass the compiler vectorizes
    // finds that, instead of a branch per byte (the encoder's largest cost).
    let plain = bytes
        .iter()
        .fold(true, |ok, &b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if plain {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Where in the value a refused number is, for its message.
fn at(path: &str) -> &str {
    if path.is_empty() {
        "(top)"
    } else {
        path
    }
}

fn refuse_float(path: &str, v: f64) -> Error {
    let shown = serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string());
    Error(format!(
        "{}: {shown} is not an integer; the ledger's canonical encoding holds integers only (post it as a string)",
        at(path)
    ))
}

fn out_of_range(path: &str) -> Error {
    Error(format!("{}: number out of range", at(path)))
}

/// Writes one value's canonical encoding to `out`.
struct Canon<'a> {
    out: &'a mut Vec<u8>,
    path: &'a mut String,
}

impl Canon<'_> {
    fn integer(self, v: &impl fmt::Display) -> Result<(), Error> {
        // In place: a string per number was ~18 allocations a step of a pass.
        let _ = std::io::Write::write_fmt(self.out, format_args!("{v}"));
        Ok(())
    }
}

/// Where an object's members go when it ends.
enum Sink<'a> {
    /// Written, sorted, as the object's encoding.
    Write(&'a mut Vec<u8>),
    /// Kept as members (the top of a record: [`Members::of`]).
    Keep(&'a mut Members),
}

/// An object being serialized: its members encoded into a buffer of their own, then sorted.
struct Object<'a> {
    sink: Sink<'a>,
    path: &'a mut String,
    buf: Vec<u8>,
    entries: Vec<(Cow<'static, str>, Range<usize>)>,
    key: Option<String>,
    /// Set for a variant's object (`{"Variant":{...}}`), closed around it at the end.
    variant: Option<&'static str>,
}

impl<'a> Object<'a> {
    fn new(sink: Sink<'a>, path: &'a mut String) -> Object<'a> {
        Object {
            sink,
            path,
            buf: Vec::with_capacity(256),
            entries: Vec::with_capacity(16),
            key: None,
            variant: None,
        }
    }

    fn entry<T: Serialize + ?Sized>(
        &mut self,
        key: Cow<'static, str>,
        value: &T,
    ) -> Result<(), Error> {
        let len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(&key);
        let start = self.buf.len();
        let done = value.serialize(Canon {
            out: &mut self.buf,
            path: &mut *self.path,
        });
        self.path.truncate(len);
        done?;
        self.entries.push((key, start..self.buf.len()));
        Ok(())
    }

    fn finish(self) -> Result<(), Error> {
        match self.sink {
            Sink::Write(out) => {
                if let Some(v) = self.variant {
                    out.push(b'{');
                    encode_str(out, v);
                    out.push(b':');
                }
                write_object(out, &self.entries, &self.buf);
                if self.variant.is_some() {
                    out.push(b'}');
                }
            }
            Sink::Keep(members) => {
                members.buf = self.buf;
                members.entries = self.entries;
            }
        }
        Ok(())
    }
}

/// An array being serialized, written as it goes.
struct Array<'a> {
    out: &'a mut Vec<u8>,
    path: &'a mut String,
    n: usize,
    /// Set for a tuple variant (`{"Variant":[...]}`).
    variant: bool,
}

impl Array<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if self.n > 0 {
            self.out.push(b',');
        }
        let len = self.path.len();
        let _ = fmt::Write::write_fmt(self.path, format_args!("[{}]", self.n));
        let done = value.serialize(Canon {
            out: &mut *self.out,
            path: &mut *self.path,
        });
        self.path.truncate(len);
        self.n += 1;
        done
    }

    fn finish(self) -> Result<(), Error> {
        self.out.push(b']');
        if self.variant {
            self.out.push(b'}');
        }
        Ok(())
    }
}

impl<'a> ser::Serializer for Canon<'a> {
    type Ok = ();
    type Error = Error;
    crate::serde_shapes::compounds!(list: Array<'a>, object: Object<'a>, variant: Object<'a>);

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    crate::serde_shapes::integers!(forward! { integer; });
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        if i64::try_from(v).is_ok() || u64::try_from(v).is_ok() {
            self.integer(&v)
        } else {
            Err(out_of_range(self.path))
        }
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        if u64::try_from(v).is_ok() {
            self.integer(&v)
        } else {
            Err(out_of_range(self.path))
        }
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        // serde_json makes a non-finite float `null`; any other is not an integer.
        if v.is_finite() {
            Err(refuse_float(self.path, v))
        } else {
            self.serialize_unit()
        }
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        encode_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        encode_str(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        let mut seq = ser::Serializer::serialize_seq(self, Some(v.len()))?;
        for b in v {
            seq.element(b)?;
        }
        seq.finish()
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    crate::serde_shapes::transparent!();
    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let mut object = Object::new(Sink::Write(self.out), self.path);
        object.entry(Cow::Borrowed(variant), value)?;
        object.finish()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Array<'a>, Error> {
        self.out.push(b'[');
        Ok(Array {
            out: self.out,
            path: self.path,
            n: 0,
            variant: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Array<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Array<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Array<'a>, Error> {
        self.out.push(b'{');
        encode_str(self.out, variant);
        self.out.extend_from_slice(b":[");
        Ok(Array {
            out: self.out,
            path: self.path,
            n: 0,
            variant: true,
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object<'a>, Error> {
        Ok(Object::new(Sink::Write(self.out), self.path))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Object<'a>, Error> {
        Ok(Object::new(Sink::Write(self.out), self.path))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Object<'a>, Error> {
        let mut object = Object::new(Sink::Write(self.out), self.path);
        object.variant = Some(variant);
        Ok(object)
    }
}

crate::serde_shapes::list!(Array);
crate::serde_shapes::object!(Object: SerializeStruct, SerializeStructVariant);

/// The top of a value whose members are kept ([`Members::of`]): an object, or refused.
struct Top<'a> {
    members: &'a mut Members,
    path: &'a mut String,
}

fn not_an_object() -> Error {
    Error("a record must serialize to a JSON object".into())
}

impl<'a> ser::Serializer for Top<'a> {
    type Ok = ();
    type Error = Error;
    crate::serde_shapes::compounds!(list: Impossible<(), Error>, object: Object<'a>, variant: Impossible<(), Error>);

    fn serialize_map(self, _: Option<usize>) -> Result<Object<'a>, Error> {
        Ok(Object::new(Sink::Keep(self.members), self.path))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Object<'a>, Error> {
        Ok(Object::new(Sink::Keep(self.members), self.path))
    }
    crate::serde_shapes::only_objects!(not_an_object);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;
    use serde::Serialize;
    use serde_json::{json, Value};
    use std::collections::BTreeMap;

    /// What the canonical encoding of a `Value` must be, built another way: keys sorted as
    /// strings (byte order), every scalar as serde_json writes it; a fraction refused.
    fn oracle(v: &Value) -> Option<String> {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let parts: Option<Vec<String>> = keys
                    .into_iter()
                    .map(|k| {
                        Some(format!(
                            "{}:{}",
                            serde_json::to_string(k).ok()?,
                            oracle(&m[k])?
                        ))
                    })
                    .collect();
                Some(format!("{{{}}}", parts?.join(",")))
            }
            Value::Array(a) => {
                let parts: Option<Vec<String>> = a.iter().map(oracle).collect();
                Some(format!("[{}]", parts?.join(",")))
            }
            Value::Number(n) if n.is_f64() => None,
            other => serde_json::to_string(other).ok(),
        }
    }

    fn ours<T: Serialize>(v: &T) -> Result<String, String> {
        let mut out = Vec::new();
        encode_value(&mut out, v)?;
        Ok(String::from_utf8(out).unwrap())
    }

    /// Ours equals the oracle on what `serde_json::to_value` makes of `v`, or both refuse.
    fn agrees<T: Serialize>(v: &T) {
        let value = serde_json::to_value(v).unwrap();
        match (ours(v), oracle(&value)) {
            (Ok(a), Some(b)) => assert_eq!(a, b),
            (Err(e), None) => assert!(e.contains(" is not an integer;"), "{e}"),
            (a, b) => panic!("ours {a:?}, oracle {b:?} for {value}"),
        }
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            "[a-z\"\\\\/\u{0}-\u{1f}\u{7f}é😀 ]{0,8}".prop_map(Value::from),
            (-1e6f64..1e6)
                .prop_filter("a fraction", |f| f.fract() != 0.0)
                .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z_é\"\u{1}]{0,4}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_value_encodes_as_the_oracle_says(v in any_value()) {
            agrees(&v);
        }
    }

    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Shape {
        Unit,
        Newtype(u8),
        Tuple(i32, String),
        Fields { z: u16, a: Option<char> },
    }

    #[derive(Serialize)]
    struct Inner {
        y: Vec<u8>,
        #[serde(with = "serde_bytes_as_seq")]
        raw: Vec<u8>,
    }

    /// Bytes through `serialize_bytes` (serde_json writes them as an array of numbers).
    mod serde_bytes_as_seq {
        pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
    }

    #[derive(Serialize)]
    #[serde(tag = "type")]
    struct Record {
        zeta: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        alpha: i128,
        big: u128,
        shapes: Vec<Shape>,
        #[serde(flatten)]
        inner: Inner,
        map: BTreeMap<u32, bool>,
        text: String,
        unit: (),
    }

    fn record() -> Record {
        Record {
            zeta: None,
            skipped: None,
            alpha: -5,
            big: u128::from(u64::MAX),
            shapes: vec![
                Shape::Unit,
                Shape::Newtype(7),
                Shape::Tuple(-1, "t\n".into()),
                Shape::Fields {
                    z: 2, a: Some('é')
                },
            ],
            inner: Inner {
                y: vec![3, 1],
                raw: vec![0, 255],
            },
            map: [(10, true), (9, false)].into_iter().collect(),
            text: "quote\" back\\ ctl\u{1}".into(),
            unit: (),
        }
    }

    #[test]
    fn every_serde_shape_encodes_as_the_value_serde_json_makes_of_it() {
        agrees(&record());
        // Keys sorted by bytes at every depth, integers keys as text ("10" before "9").
        let text = ours(&record()).unwrap();
        assert!(text.starts_with(r#"{"alpha":-5,"big":18446744073709551615,"map":{"10":true,"9":false},"raw":[0,255]"#), "{text}");
        assert!(text.contains(r#"{"fields":{"a":"é","z":2}}"#), "{text}");
        assert!(
            text.ends_with(r#""type":"Record","unit":null,"y":[3,1],"zeta":null}"#),
            "{text}"
        );
    }

    #[test]
    fn a_fraction_is_refused_with_its_path_and_a_non_finite_float_is_null() {
        let err = ours(&json!({"values": {"r": [1, 0.5]}})).unwrap_err();
        assert!(
            err.starts_with("values.r[1]: 0.5 is not an integer"),
            "{err}"
        );
        let err = ours(&0.25f32).unwrap_err();
        assert!(err.starts_with("(top): 0.25 is not an integer"), "{err}");
        assert_eq!(ours(&[f64::NAN, f64::INFINITY]).unwrap(), "[null,null]");
        assert_eq!(
            serde_json::to_value([f64::NAN]).unwrap(),
            json!([null]),
            "as serde_json makes it"
        );
        assert!(ours(&u128::MAX).unwrap_err().contains("out of range"));
        assert!(ours(&i128::MIN).unwrap_err().contains("out of range"));
    }

    #[test]
    fn members_keep_the_last_value_of_a_key_and_refuse_what_is_not_an_object() {
        let mut m = Members::of(&json!({"b": 1, "a": "x"})).unwrap();
        m.push("a", "y").unwrap();
        m.push("c", &3u8).unwrap();
        assert_eq!(m.get_str("a").as_deref(), Some("y"));
        let sorted: Vec<(&str, String)> = m
            .sorted()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v.to_vec()).unwrap()))
            .collect();
        assert_eq!(
            sorted,
            [("a", "\"y\"".into()), ("b", "1".into()), ("c", "3".into())]
        );
        for not_an_object in [json!([1]), json!("s"), json!(null), json!(1)] {
            let err = Members::of(&not_an_object).unwrap_err();
            assert!(err.contains("must serialize to a JSON object"), "{err}");
        }
        assert!(Members::of(&record()).is_ok());
        assert!(Members::of(&json!({"f": 1.5}))
            .unwrap_err()
            .starts_with("f: 1.5"));
    }
}
