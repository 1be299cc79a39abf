//! The serializer that prints any value as a pretty `Value` would: lists written element by element, an object's entries rendered as they come and printed sorted when it ends.
use super::{close, next_item, put, start_entry, Error};
use serde::ser::{self, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;

/// Where a variant's wrapper object puts `schema_version` (a versioned document's top
/// level only): its two keys sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    None,
    Before,
    After,
}

pub(super) fn version_entry(out: &mut dyn Write) -> Result<(), Error> {
    put(out, b"\"schema_version\": ")?;
    put(
        out,
        crate::output::JSON_SCHEMA_VERSION.to_string().as_bytes(),
    )
}

/// An enum variant with content is `{"Variant": content}`: open it before the content.
fn open_variant(
    out: &mut dyn Write,
    depth: usize,
    variant: &str,
    versioned: bool,
) -> Result<Version, Error> {
    let version = match versioned && variant != "schema_version" {
        false => Version::None,
        true if "schema_version" < variant => Version::Before,
        true => Version::After,
    };
    put(out, b"{")?;
    if version == Version::Before {
        next_item(out, true, depth + 1)?;
        version_entry(out)?;
    }
    start_entry(out, version != Version::Before, depth + 1, variant)?;
    Ok(version)
}

fn close_variant(out: &mut dyn Write, depth: usize, version: Version) -> Result<(), Error> {
    if version == Version::After {
        next_item(out, false, depth + 1)?;
        version_entry(out)?;
    }
    close(out, true, depth, b"}")
}

/// Renders one value at `depth` into `out`.
pub(super) struct Ser<'a> {
    pub out: &'a mut dyn Write,
    pub depth: usize,
    /// The document's top level: an object there gets `schema_version`.
    pub versioned: bool,
}

impl<'a> Ser<'a> {
    /// Scalars print the same compact or pretty.
    fn scalar<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.out, v)
    }
    pub fn nested(out: &mut dyn Write, depth: usize) -> Ser<'_> {
        Ser {
            out,
            depth,
            versioned: false,
        }
    }
    fn seq(self, variant: Option<Version>) -> Result<Seq<'a>, Error> {
        put(self.out, b"[")?;
        Ok(Seq {
            out: self.out,
            depth: self.depth + usize::from(variant.is_some()),
            first: true,
            variant,
        })
    }
    fn object(self, variant: Option<Version>) -> Object<'a> {
        Object {
            out: self.out,
            depth: self.depth + usize::from(variant.is_some()),
            entries: BTreeMap::new(),
            key: None,
            versioned: self.versioned && variant.is_none(),
            variant,
        }
    }
}

/// A list being written: elements go out as they come.
pub(super) struct Seq<'a> {
    out: &'a mut dyn Write,
    depth: usize,
    first: bool,
    /// Inside `{"Variant": ...}`, closed after the list.
    variant: Option<Version>,
}

impl Seq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        next_item(self.out, self.first, self.depth + 1)?;
        self.first = false;
        v.serialize(Ser::nested(self.out, self.depth + 1))
    }
    fn finish(self) -> Result<(), Error> {
        close(self.out, !self.first, self.depth, b"]")?;
        match self.variant {
            Some(version) => close_variant(self.out, self.depth - 1, version),
            None => Ok(()),
        }
    }
}

/// An object being written: entries rendered as they come, printed sorted by key at the end
/// (a later entry with the same key replaces an earlier one, as in a `Value`'s map).
pub(super) struct Object<'a> {
    out: &'a mut dyn Write,
    depth: usize,
    entries: BTreeMap<String, Vec<u8>>,
    key: Option<String>,
    /// Inside `{"Variant": ...}`, closed after the object.
    variant: Option<Version>,
    versioned: bool,
}

impl Object<'_> {
    fn entry<T: Serialize + ?Sized>(&mut self, key: Cow<'static, str>, v: &T) -> Result<(), Error> {
        let mut rendered = Vec::new();
        v.serialize(Ser::nested(&mut rendered, self.depth + 1))?;
        self.entries.insert(key.into_owned(), rendered);
        Ok(())
    }
    fn finish(mut self) -> Result<(), Error> {
        if self.versioned {
            self.entries
                .entry("schema_version".to_string())
                .or_insert_with(|| crate::output::JSON_SCHEMA_VERSION.to_string().into_bytes());
        }
        put(self.out, b"{")?;
        for (i, (key, value)) in self.entries.iter().enumerate() {
            start_entry(self.out, i == 0, self.depth + 1, key)?;
            put(self.out, value)?;
        }
        close(self.out, !self.entries.is_empty(), self.depth, b"}")?;
        match self.variant {
            Some(version) => close_variant(self.out, self.depth - 1, version),
            None => Ok(()),
        }
    }
}

impl<'a> ser::Serializer for Ser<'a> {
    type Ok = ();
    type Error = Error;
    crate::serde_shapes::compounds!(list: Seq<'a>, object: Object<'a>, variant: Object<'a>);

    crate::serde_shapes::integers!(forward! { scalar;
        serialize_bool(bool);
        serialize_i128(i128);
        serialize_u128(u128);
    });
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        // As a `Value` holds it (non-finite numbers become null).
        self.scalar(&serde_json::Value::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.scalar(&serde_json::Value::from(v))
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.scalar(&v)
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.scalar(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        // A `Value` holds bytes as a list of numbers.
        let mut seq = self.seq(None)?;
        for b in v {
            seq.element(b)?;
        }
        seq.finish()
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.scalar(&())
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.scalar(&())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.scalar(&())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.scalar(variant)
    }
    crate::serde_shapes::transparent!();
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        let version = open_variant(self.out, self.depth, variant, self.versioned)?;
        v.serialize(Ser::nested(self.out, self.depth + 1))?;
        close_variant(self.out, self.depth, version)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a>, Error> {
        self.seq(None)
    }
    fn serialize_tuple(self, _: usize) -> Result<Seq<'a>, Error> {
        self.seq(None)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Seq<'a>, Error> {
        self.seq(None)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Seq<'a>, Error> {
        let version = open_variant(self.out, self.depth, variant, self.versioned)?;
        self.seq(Some(version))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object<'a>, Error> {
        Ok(self.object(None))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Object<'a>, Error> {
        Ok(self.object(None))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Object<'a>, Error> {
        let version = open_variant(self.out, self.depth, variant, self.versioned)?;
        Ok(self.object(Some(version)))
    }
}

crate::serde_shapes::list!(Seq);
crate::serde_shapes::object!(Object: SerializeStruct, SerializeStructVariant);
