//! `--json` documents byte for byte as `serde_json` prints a `Value` (pretty, every object's keys sorted), written straight from the outcome without building that `Value` tree.
//!
//! A `Value` of a large outcome (an orchestrator pass over 10,000 work orders) is several
//! times the size of the text it prints: a B-tree node and a string allocation per key.
//! Here lists are written element by element, an object's entries are rendered to bytes and
//! printed sorted when it ends, and the document's own top-level object is streamed key by
//! key ([`top`]), so a pass's list of runs goes to stdout without ever being held whole.
use serde::Serialize;
use std::io::Write;

mod top;
mod value;

#[cfg(test)]
mod tests;

type Error = serde_json::Error;

/// The pretty document of `value`, its top-level object given `schema_version` when it has
/// none (as [`crate::output::versioned`] does to a `Value`).
pub fn versioned_pretty<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    value.serialize(value::Ser {
        out: &mut out,
        depth: 0,
        versioned: true,
    })?;
    Ok(out)
}

/// [`versioned_pretty`] written to `out` as it is made: the top-level object's entries one
/// after the other in key order, none of them buffered whole.
pub fn to_writer<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> Result<(), Error> {
    match top::keys(value) {
        Some(keys) => top::write_object(out, value, &keys),
        None => put(out, &versioned_pretty(value)?),
    }
}

fn put(out: &mut dyn Write, bytes: &[u8]) -> Result<(), Error> {
    out.write_all(bytes).map_err(Error::io)
}

/// Two spaces per level, as `serde_json`'s pretty printer.
fn indent(out: &mut dyn Write, depth: usize) -> Result<(), Error> {
    for _ in 0..depth {
        put(out, b"  ")?;
    }
    Ok(())
}

/// Where the next item of a list or object starts: a line of its own, one level in.
fn next_item(out: &mut dyn Write, first: bool, depth: usize) -> Result<(), Error> {
    put(out, if first { b"\n" } else { b",\n" })?;
    indent(out, depth)
}

/// An object's entry up to its value: `"key": ` on a line of its own, one level in.
fn start_entry(out: &mut dyn Write, first: bool, depth: usize, key: &str) -> Result<(), Error> {
    next_item(out, first, depth)?;
    serde_json::to_writer(&mut *out, key)?;
    put(out, b": ")
}

/// A list's or object's closing bracket: on a line of its own when it has items.
fn close(out: &mut dyn Write, items: bool, depth: usize, bracket: &[u8]) -> Result<(), Error> {
    if items {
        put(out, b"\n")?;
        indent(out, depth)?;
    }
    put(out, bracket)
}
