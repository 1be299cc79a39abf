//! A document's top-level object streamed in key order: one pass over the value learns its keys, then one pass per key renders that entry alone, straight to the writer.
//!
//! Struct fields come in declaration order and `Value` printed them sorted; buffering every
//! entry to sort them would hold the largest one (a pass's runs) whole. Serializing the
//! value once per key costs a walk over the fields, not a rendering of each.
use super::value::{version_entry, Ser};
use super::{close, next_item, put, start_entry, Error};
use serde::ser::{self, Error as _, Impossible, Serialize};
use std::borrow::Cow;
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
    fn entry<T: Serialize + ?Sized>(
        &mut self,
        name: Cow<'static, str>,
        v: &T,
    ) -> Result<(), Error> {
        match &mut self.pass {
            Pass::Keys(keys) => keys.push(name.into_owned()),
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

impl<'a> ser::Serializer for Pass<'a> {
    type Ok = ();
    type Error = Error;
    crate::serde_shapes::compounds!(list: Impossible<(), Error>, object: Entries<'a>, variant: Impossible<(), Error>);

    crate::serde_shapes::only_objects!(not_an_object);
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
}

crate::serde_shapes::object!(Entries: SerializeStruct);
