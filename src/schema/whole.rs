//! The `x-whole-number` keyword added beside every `"type": "integer"` of the built-in schemas: JSON Schema counts `60.0` as an integer, the platform's readers (serde's `u64`, `as_i64`) do not, so a value written so passed validation and was then dropped or failed at run time.
use jsonschema::{Keyword, ValidationError};
use serde_json::Value;

pub(super) const KEYWORD: &str = "x-whole-number";

/// Add the keyword to every schema object of `schema` whose `type` is (or lists) `integer`.
/// `const`, `enum`, `default` and `examples` hold values, not schemas, and are left alone.
pub(super) fn mark(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let integer = match map.get("type") {
                Some(Value::String(t)) => t == "integer",
                Some(Value::Array(types)) => types.iter().any(|t| t == "integer"),
                _ => false,
            };
            for (key, value) in map.iter_mut() {
                if !matches!(key.as_str(), "const" | "enum" | "default" | "examples") {
                    mark(value);
                }
            }
            if integer {
                map.insert(KEYWORD.into(), Value::Bool(true));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mark),
        _ => {}
    }
}

/// Register the keyword on `options`.
pub(super) fn register(
    options: jsonschema::ValidationOptions<'_>,
) -> jsonschema::ValidationOptions<'_> {
    options.with_keyword(KEYWORD, |_, _, _| Ok(Box::new(Whole)))
}

struct Whole;

impl<'i> Keyword<'i> for Whole {
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        match decimal(instance) {
            Some(message) => Err(ValidationError::custom(message)),
            None => Ok(()),
        }
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        decimal(instance).is_none()
    }
}

/// What is wrong with a number written with a decimal point or an exponent whose value is
/// whole (`60.0`, `1e3`): None for anything else (`1.5` fails `type`, which says so).
fn decimal(v: &Value) -> Option<String> {
    let n = v.as_number()?;
    if n.is_i64() || n.is_u64() {
        return None;
    }
    let f = n.as_f64()?;
    if f.fract() != 0.0 {
        return None;
    }
    // Both bounds are exact in f64 (-2^63, 2^64): a whole f64 between them converts exactly.
    if (-9_223_372_036_854_775_808.0..18_446_744_073_709_551_616.0).contains(&f) {
        let whole = if f < 0.0 {
            (f as i64).to_string()
        } else {
            (f as u64).to_string()
        };
        return Some(format!(
            "{n} is written as a decimal number; write a whole number here: {whole}"
        ));
    }
    Some(format!(
        "{n} is out of range: write a whole number here, of at most 19 digits"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_numbers_written_as_decimals_are_refused_others_left_to_type() {
        assert_eq!(decimal(&json!(60)), None);
        assert_eq!(decimal(&json!(1.5)), None);
        assert_eq!(decimal(&json!("60.0")), None);
        let m = decimal(&json!(60.0)).unwrap_or_default();
        assert!(m.contains("a whole number") && m.ends_with(": 60"), "{m}");
        let m = decimal(&json!(1e300)).unwrap_or_default();
        assert!(m.contains("out of range"), "{m}");
    }

    #[test]
    fn every_integer_type_is_marked_but_values_are_not() {
        let mut s = json!({"properties": {"a": {"type": "integer"}, "b": {"type": ["integer", "null"]},
            "c": {"type": "number"}, "d": {"const": {"type": "integer"}}}});
        mark(&mut s);
        assert_eq!(s["properties"]["a"][KEYWORD], true);
        assert_eq!(s["properties"]["b"][KEYWORD], true);
        assert!(s["properties"]["c"].get(KEYWORD).is_none());
        assert!(s["properties"]["d"]["const"].get(KEYWORD).is_none());
    }
}
