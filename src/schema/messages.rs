//! A schema violation in the product's words: the offending key as its field, where it is written, what was expected and what to do (read from the jsonschema error's kind, never from its text).
use super::{SchemaKind, Violation};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{JsonType, ValidationError};
use serde_json::Value;

/// The violations one jsonschema error stands for: one per unexpected key, since each key
/// is written on a line of its own.
pub(super) fn violations(
    kind: SchemaKind,
    schema: &Value,
    e: &ValidationError<'_>,
) -> Vec<Violation> {
    let at = e.instance_path().as_str();
    match e.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            let allowed = allowed_keys(schema, e);
            unexpected
                .iter()
                .map(|key| {
                    let pointer = child(at, key);
                    Violation {
                        message: unknown_key(key, &allowed),
                        at: pointer.clone(),
                        pointer,
                        unknown_key: true,
                    }
                })
                .collect()
        }
        // The key is missing, so it has no line: the object that lacks it has.
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), String::from);
            let about = keyword_parent(schema, e)
                .and_then(|node| node.pointer(&child("/properties", &name)))
                .and_then(description)
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            vec![Violation {
                pointer: child(at, &name),
                at: at.to_string(),
                message: format!("'{name}' is required; add it{about}"),
                unknown_key: false,
            }]
        }
        // The name of a key is wrong, not its value: point at the key.
        ValidationErrorKind::PropertyNames { error } => {
            let key = error.instance().as_str().unwrap_or_default().to_string();
            let pointer = child(at, &key);
            vec![Violation {
                message: format!(
                    "key '{key}' is not a valid name here: {}",
                    message(kind, schema, error)
                ),
                at: pointer.clone(),
                pointer,
                unknown_key: false,
            }]
        }
        _ => vec![Violation {
            pointer: at.to_string(),
            at: at.to_string(),
            message: message(kind, schema, e),
            unknown_key: false,
        }],
    }
}

/// What is wrong with the value at the error's location, what was expected, what to do.
fn message(kind: SchemaKind, schema: &Value, e: &ValidationError<'_>) -> String {
    let v = e.instance();
    let shown = short(v);
    match e.kind() {
        ValidationErrorKind::Type { kind: t } => {
            let want = match t {
                TypeKind::Single(one) => type_name(*one).to_string(),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(type_name)
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            format!("expected {want}, found {}; write {want} here", found(v))
        }
        ValidationErrorKind::Enum { options } => {
            let names: Vec<String> = options
                .as_array()
                .map(|a| a.iter().map(bare).collect())
                .unwrap_or_default();
            let hint = v
                .as_str()
                .and_then(|s| crate::suggest::did_you_mean(s, names.iter().map(String::as_str)))
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            format!(
                "{shown} is not allowed here{hint}; use one of: {}",
                names.join(", ")
            )
        }
        ValidationErrorKind::Constant { expected_value } => {
            format!("{shown} is not allowed here; the only value allowed is {expected_value}")
        }
        ValidationErrorKind::Pattern { pattern } => {
            let about = keyword_parent(schema, e)
                .and_then(description)
                .map(|d| format!("; expected {d}"))
                .unwrap_or_else(|| "; change it to match".to_string());
            format!("{shown} does not match {pattern}{about}")
        }
        ValidationErrorKind::Minimum { limit } => {
            format!("{shown} is below the minimum of {limit}; use {limit} or more")
        }
        ValidationErrorKind::Maximum { limit } => {
            format!("{shown} is above the maximum of {limit}; use {limit} or less")
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            format!("{shown} must be greater than {limit}; use a larger number")
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            format!("{shown} must be less than {limit}; use a smaller number")
        }
        ValidationErrorKind::MinLength { limit } => {
            format!("must be at least {limit} character(s) long; write a longer value")
        }
        ValidationErrorKind::MaxLength { limit } => {
            format!("must be at most {limit} characters long; shorten it")
        }
        ValidationErrorKind::MinItems { limit } => {
            format!("must list at least {limit} item(s); add items")
        }
        ValidationErrorKind::MaxItems { limit } => {
            format!("must list at most {limit} item(s); remove some")
        }
        ValidationErrorKind::MinProperties { limit } => {
            format!("must have at least {limit} key(s); add keys")
        }
        ValidationErrorKind::MaxProperties { limit } => {
            format!("must have at most {limit} key(s); remove some")
        }
        ValidationErrorKind::UniqueItems => {
            "lists the same item more than once; list each item once".to_string()
        }
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::AnyOf { .. } => format!(
            "is none of the forms allowed here; see `platform schema {}` for them",
            kind.name()
        ),
        ValidationErrorKind::OneOfMultipleValid { .. } => format!(
            "matches more than one of the forms allowed here; keep the keys of one (see `platform schema {}`)",
            kind.name()
        ),
        // The platform's own keywords (`x-whole-number`) say it in full.
        ValidationErrorKind::Custom { message, .. } => message.clone(),
        // Kinds the platform's schemas do not use: jsonschema's own words, and where to look.
        _ => format!("{e}; see `platform schema {}`", kind.name()),
    }
}

/// `unknown key 'x'; the keys allowed here are: ...` with a close match when there is one.
fn unknown_key(key: &str, allowed: &[String]) -> String {
    if allowed.is_empty() {
        return format!("unknown key '{key}'; no keys are allowed here: remove it");
    }
    let hint = crate::suggest::did_you_mean(key, allowed.iter().map(String::as_str))
        .map(|h| format!(" ({h})"))
        .unwrap_or_default();
    format!(
        "unknown key '{key}'{hint}; the keys allowed here are: {}; remove it or correct its name",
        allowed.join(", ")
    )
}

/// The keys the schema object holding the failed `additionalProperties` declares.
fn allowed_keys(schema: &Value, e: &ValidationError<'_>) -> Vec<String> {
    keyword_parent(schema, e)
        .and_then(|node| node.get("properties"))
        .and_then(Value::as_object)
        .map(|props| props.keys().cloned().collect())
        .unwrap_or_default()
}

/// The schema object whose keyword failed: `schema_path` is the keyword's canonical location
/// (a JSON pointer into the schema document, `$ref`s resolved), so its parent is that object.
fn keyword_parent<'s>(schema: &'s Value, e: &ValidationError<'_>) -> Option<&'s Value> {
    let path = e.schema_path().as_str();
    let (parent, _) = path.rsplit_once('/')?;
    schema.pointer(parent)
}

/// A schema node's `description` to follow a colon: its first letter in lower case (unless
/// the first word is an acronym such as `ID`) and without its final period.
fn description(node: &Value) -> Option<String> {
    let d = node.get("description")?.as_str()?.trim_end_matches('.');
    let first_word = d.split_whitespace().next().unwrap_or_default();
    if first_word.chars().filter(char::is_ascii_uppercase).count() > 1 {
        return Some(d.to_string());
    }
    let mut chars = d.chars();
    Some(match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    })
}

/// `ptr` extended by `key`, escaped as JSON pointers require.
fn child(ptr: &str, key: &str) -> String {
    format!("{ptr}/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn type_name(t: JsonType) -> &'static str {
    match t {
        JsonType::Null => "null",
        JsonType::Boolean => "true or false",
        JsonType::Integer => "an integer",
        JsonType::Number => "a number",
        JsonType::String => "a string",
        JsonType::Array => "a list",
        JsonType::Object => "a mapping (key: value)",
    }
}

/// What a value is, for "found ...".
fn found(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".to_string(),
        Value::Object(_) => "a mapping".to_string(),
        Value::Array(_) => "a list".to_string(),
        Value::String(_) => format!("the string {}", short(v)),
        Value::Bool(_) | Value::Number(_) => short(v),
    }
}

/// A value as written in YAML, shortened: strings in quotes, others as JSON.
fn short(v: &Value) -> String {
    let text = match v {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    };
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        text
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}...")
    }
}

/// An allowed value as a list item: strings bare.
fn bare(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
