//! A document's top-level object streamed in key order: one pass over the value learns its keys, then one pass per key renders that entry alone, straight to the writer.
//!
//! Struct fields come in declaration order and `Value` printed them sorted; buffering every
//! entry to sort them would hold the largest one (a pass's runs) whole. Serializing the
//! value once per key costs a walk over the fields, not a rendering of each.
use super::value::{version_entry, Ser};
use super::{close, next_item, put, start_entry, Error};
use serde::ser::{self, Error as _, Impossible, Serialize};
use std::collections::BTreeMap;
use std::io::Write;

/// The keys of `value`'s top-level object in the order they come, or None when it is not
/// an object with text keys (it is then printed whole).
pub fn keys<T: Serialize + ?Sized>(value: &T) -> Option<Vec<String>> {
    let mut keys = Vec::new();
    value.serialize(Pass::Keys(&mut keys)).ok()?;
    Some(keys)
}

/// Write `value`, an object with `keys`, sorted by key; a key that came twice has its last
/// entry (as a `Value`'s map keeps it); `schema_version` added when it has none.
pub fn write_object<T: Serialize + ?Sized>(
    out: &mut dyn Write,
    value: &T,
    keys: &[String],
) -> Result<(), Error> {
    // Each key and which of its entries is printed; `None` is the added schema_version.
    let mut order: BTreeMap<&str, Option<usize>> = BTreeMap::new();
    for key in keys {
        order
            .entry(key.as_str())
            .and_modify(|nth| *nth = nth.map(|n| n + 1))
            .or_insert(Some(0));
    }
    order.entry("schema_version").or_insert(None);
    put(out, b"{")?;
    for (i, (key, nth)) in order.iter().enumerate() {
        match nth {
            None => {
                next_item(out, i == 0, 1)?;
                version_entry(out)?;
            }
            Some(nth) => {
                start_entry(out, i == 0, 1, key)?;
                value.serialize(Pass::Emit {
                    key,
                    nth: *nth,
                    out: &mut *out,
                })?;
            }
        }
    }
    close(out, true, 0, b"}")
}

/// One pass over the top-level object.
enum Pass<'a> {
    /// Collect its keys.
    Keys(&'a mut Vec<String>),
    /// Render the `nth` entry named `key` (counting from 0) at depth 1.
    Emit {
        key: &'a str,
        nth: usize,
        out: &'a mut dyn Write,
    },
}

fn not_an_object() -> Error {
    Error::custom("not an object")
}

/// The entries of the top-level object, as they come.
struct Entries<'a> {
    pass: Pass<'a>,
    /// Entries named like the one to render, seen so far.
    seen: usize,
    key: Option<String>,
}

impl Entries<'_> {
    fn entry<T: Serialize + ?Sized>(&mut self, name: &str, v: &T) -> Result<(), Error> {
        match &mut self.pass {
            Pass::Keys(keys) => keys.push(name.to_string()),
            Pass::Emit { key, nth, out } if name == *key => {
                if self.seen == *nth {
                    v.serialize(Ser::nested(&mut **out, 1))?;
                }
                self.seen += 1;
            }
            Pass::Emit { .. } => {}
        }
        Ok(())
    }
    /// Nothing to close: [`write_object`] writes the braces.
    fn finish(self) -> Result<(), Error> {
        Ok(())
    }
}

/// What is not an object at the top level (a list, a scalar, an enum variant).
macro_rules! not_an_object {
    ($($method:ident($($arg:ty),*);)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<(), Error> {
            Err(not_an_object())
        })*
    };
}

impl<'a> ser::Serializer for Pass<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Entries<'a>;
    type SerializeStruct = Entries<'a>;
    type SerializeStructVariant = Impossible<(), Error>;

    not_an_object! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_i128(i128);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_u128(u128);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }
    super::transparent!();
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(not_an_object())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(not_an_object())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(not_an_object())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(not_an_object())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(not_an_object())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Entries<'a>, Error> {
        Ok(Entries {
            pass: self,
            seen: 0,
            key: None,
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Entries<'a>, Error> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(not_an_object())
    }
}

super::object!(Entries: SerializeStruct);
