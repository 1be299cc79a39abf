//! serde `Serializer` plumbing shared by the serializers that write JSON straight from a value (the `--json` printer, the ledger's canonical encoder): serde's many compound shapes mapped onto one list and one object.
use serde::ser::{Error, Serialize};

/// `Some(x)` and a newtype struct serialize as `x` does, as in a `serde_json::Value`.
macro_rules! transparent {
    () => {
        fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Self::Ok, Self::Error> {
            v.serialize(self)
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            v: &T,
        ) -> Result<Self::Ok, Self::Error> {
            v.serialize(self)
        }
    };
}
pub(crate) use transparent;

/// serde's object-shaped compounds for a type with a pending `key: Option<String>`,
/// `entry(key: Cow<'static, str>, value)` and `finish()`: a map's keys come one call before
/// their values (as text, [`key_text`]), a struct's with them (borrowed, never copied).
macro_rules! object {
    ($ty:ident: $($compound:ident),*) => {
        impl ser::SerializeMap for $ty<'_> {
            type Ok = ();
            type Error = Error;
            fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
                self.key = Some($crate::serde_shapes::key_text(key)?);
                Ok(())
            }
            fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                let key = self.key.take().ok_or_else(|| {
                    <Error as ser::Error>::custom("a map value came without its key")
                })?;
                self.entry(std::borrow::Cow::Owned(key), v)
            }
            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        }
        $(impl ser::$compound for $ty<'_> {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), Error> {
                self.entry(std::borrow::Cow::Borrowed(key), v)
            }
            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        })*
    };
}
pub(crate) use object;

/// serde's four list-shaped compounds as one list: a type with `element(v)` and `finish()`.
macro_rules! list {
    ($ty:ident) => {
        $crate::serde_shapes::list!($ty: SerializeSeq::serialize_element,
            SerializeTuple::serialize_element,
            SerializeTupleStruct::serialize_field,
            SerializeTupleVariant::serialize_field);
    };
    ($ty:ident: $($compound:ident::$method:ident),*) => {
        $(impl ser::$compound for $ty<'_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                self.element(v)
            }
            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        })*
    };
}
pub(crate) use list;

/// Serializer methods of scalars that all go to one method, given the value by reference:
/// `forward!(scalar; serialize_i8(i8); ...)`.
macro_rules! forward {
    ($to:ident; $($method:ident($ty:ty);)*) => {
        $(fn $method(self, v: $ty) -> Result<Self::Ok, Self::Error> {
            self.$to(&v)
        })*
    };
}
pub(crate) use forward;

/// Hands serde's methods for the integers that fit 64 bits (`serialize_i8` … `serialize_u64`)
/// to another of these macros after what it is given, so each serializer lists them once:
/// `integers!(forward! { scalar; serialize_bool(bool); })`.
macro_rules! integers {
    ($callback:ident! { $($given:tt)* }) => {
        $crate::serde_shapes::$callback! { $($given)*
            serialize_i8(i8);
            serialize_i16(i16);
            serialize_i32(i32);
            serialize_i64(i64);
            serialize_u8(u8);
            serialize_u16(u16);
            serialize_u32(u32);
            serialize_u64(u64);
        }
    };
}
pub(crate) use integers;

/// The associated types of a serializer: its lists, its objects and its variants' objects.
macro_rules! compounds {
    (list: $list:ty, object: $object:ty, variant: $variant:ty) => {
        type SerializeSeq = $list;
        type SerializeTuple = $list;
        type SerializeTupleStruct = $list;
        type SerializeTupleVariant = $list;
        type SerializeMap = $object;
        type SerializeStruct = $object;
        type SerializeStructVariant = $variant;
    };
}
pub(crate) use compounds;

/// Every method of a serializer that takes objects alone (maps and structs, which it defines
/// itself): `Some(x)` and newtypes are `x`, everything else is refused with `$why()`.
macro_rules! only_objects {
    ($why:ident) => {
        $crate::serde_shapes::integers!(only_objects! { $why;
            serialize_bool(bool);
            serialize_i128(i128);
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
        });
        $crate::serde_shapes::transparent!();
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<Self::Ok, Self::Error> {
            Err($why())
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Self::Error> {
            Err($why())
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Self::Error> {
            Err($why())
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, Self::Error> {
            Err($why())
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Self::Error> {
            Err($why())
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Self::Error> {
            Err($why())
        }
    };
    ($why:ident; $($method:ident($($arg:ty),*);)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Self::Ok, Self::Error> {
            Err($why())
        })*
    };
}
pub(crate) use only_objects;

/// A map key as a `Value`'s map holds it: strings as they are, numbers and booleans as text.
pub(crate) fn key_text<T: Serialize + ?Sized, E: Error>(key: &T) -> Result<String, E> {
    match serde_json::to_value(key).map_err(E::custom)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        _ => Err(E::custom("a JSON object key must be a string")),
    }
}
