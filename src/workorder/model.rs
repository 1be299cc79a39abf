//! Work-order types: steps, and input values that are literals or bindings to earlier steps.
use super::json_path::JsonPath;
use crate::contract::Kind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Mode {
    #[default]
    #[serde(rename = "PARTIAL_ALLOWED")]
    PartialAllowed,
    #[serde(rename = "FAIL_FAST")]
    FailFast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    Text,
    Lines,
    Json,
    JsonlFirst,
}

/// How a step input gets its value.
#[derive(Debug, Clone, PartialEq)]
pub enum InputValue {
    Literal(serde_json::Value),
    /// `{from_step, output_id}`
    Output {
        from_step: String,
        output_id: String,
    },
    /// `{from_step, from_file, selector, take, json_path}`
    File {
        from_step: String,
        from_file: String,
        selector: Selector,
        take: Option<u64>,
        /// Boxed: an input map is a B-tree whose nodes hold 11 values each, so every byte of
        /// this variant costs 11 per step (a 48-byte path inline made a 10,000-work-order
        /// repository 7 MB larger).
        json_path: Option<Box<JsonPath>>,
    },
    /// `{asset: path}` under the tenant's assets/
    Asset(String),
}

/// One problem of a malformed binding: why, and which of its keys is at fault (None: the
/// binding as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingError {
    pub key: Option<String>,
    pub message: String,
}

impl BindingError {
    /// The field a finding names, below the input's own field (`steps[1].inputs.x`).
    pub fn field(&self, input_field: &str) -> String {
        match &self.key {
            Some(k) => format!("{input_field}.{k}"),
            None => input_field.to_string(),
        }
    }

    /// A problem of key `key`.
    fn at(key: &str, message: impl Into<String>) -> Self {
        BindingError {
            key: Some(key.to_string()),
            message: message.into(),
        }
    }
}

impl From<&str> for BindingError {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

impl From<String> for BindingError {
    fn from(message: String) -> Self {
        BindingError { key: None, message }
    }
}

impl std::fmt::Display for BindingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A binding that did not parse: every problem it has (never empty), and what it refers to
/// when that much is readable (its step and the output or file it reads), so that the checks
/// of those references still run and one bad key does not hide the binding's other problems.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed {
    pub errors: Vec<BindingError>,
    /// An `Output` or `File` binding of the references only (a `File`'s selector, take and
    /// json_path are left at their defaults: never run, never type-checked).
    pub refs: Option<InputValue>,
}

/// The keys a `from_step` binding may have.
const BINDING_KEYS: [&str; 6] = [
    "from_step",
    "output_id",
    "from_file",
    "selector",
    "take",
    "json_path",
];

impl InputValue {
    /// Classify a raw YAML value: a mapping with `from_step` or a lone `asset` key is a binding.
    pub fn parse(v: &serde_json::Value) -> Result<InputValue, Malformed> {
        let Some(map) = v.as_object() else {
            return Ok(InputValue::Literal(v.clone()));
        };
        if map.contains_key("asset") && map.len() == 1 {
            return match map.get("asset").and_then(|a| a.as_str()) {
                Some(p) => Ok(InputValue::Asset(p.to_string())),
                None => Err(Malformed {
                    errors: vec![
                        "asset must be a path string (relative to the tenant's assets/ folder)"
                            .into(),
                    ],
                    refs: None,
                }),
            };
        }
        if !map.contains_key("from_step") {
            return Ok(InputValue::Literal(v.clone()));
        }
        let mut errors = Vec::new();
        let s = |k: &str| map.get(k).and_then(|x| x.as_str()).map(String::from);
        let from_step = s("from_step");
        if from_step.is_none() {
            errors.push(BindingError::at(
                "from_step",
                "from_step must be a step id string; name an earlier step",
            ));
        }
        for bad in map.keys().filter(|k| !BINDING_KEYS.contains(&k.as_str())) {
            errors.push(BindingError::at(
                bad,
                format!(
                    "unknown binding key '{bad}'; the keys allowed in a binding are: {}; remove it or correct its name",
                    BINDING_KEYS.join(", ")
                ),
            ));
        }
        for k in ["output_id", "from_file"] {
            if map.get(k).is_some_and(|x| !x.is_string()) {
                errors.push(BindingError::at(k, format!("{k} must be a string")));
            }
        }
        let (output_id, from_file) = (s("output_id"), s("from_file"));
        match (&output_id, &from_file) {
            (Some(_), Some(_)) => {
                errors.push(
                    "a binding has either output_id or from_file, not both; keep the one you mean"
                        .into(),
                );
            }
            (Some(_), None) => {
                let extra: Vec<&str> = ["selector", "take", "json_path"]
                    .into_iter()
                    .filter(|k| map.contains_key(*k))
                    .collect();
                if !extra.is_empty() {
                    errors.push(
                        format!(
                            "an output binding has only from_step and output_id; remove {} (they apply to from_file)",
                            extra.join(", ")
                        )
                        .into(),
                    );
                }
            }
            (None, Some(_)) => {}
            (None, None) if map.contains_key("output_id") || map.contains_key("from_file") => {}
            (None, None) => {
                errors.push("a binding with from_step needs output_id or from_file; add the output or the file of that step to read".into());
            }
        }
        let reading = match from_file {
            Some(_) => file_binding(map, &mut errors),
            None => None,
        };
        // With a readable step and output or file, the references are checked like those
        // of a well-formed binding (validate::bindings), whatever else is wrong.
        let value = match (from_step, output_id, from_file) {
            (Some(from_step), Some(output_id), _) => Some(InputValue::Output {
                from_step,
                output_id,
            }),
            (Some(from_step), None, Some(from_file)) => {
                let (selector, take, json_path) = reading.unwrap_or((Selector::Text, None, None));
                Some(InputValue::File {
                    from_step,
                    from_file,
                    selector,
                    take,
                    json_path,
                })
            }
            _ => None,
        };
        match value {
            Some(v) if errors.is_empty() => Ok(v),
            refs => Err(Malformed { errors, refs }),
        }
    }

    pub fn from_step(&self) -> Option<&str> {
        match self {
            InputValue::Output { from_step, .. } | InputValue::File { from_step, .. } => {
                Some(from_step)
            }
            _ => None,
        }
    }
}

/// The reading of a `from_file` binding: selector, take, json_path.
type Reading = (Selector, Option<u64>, Option<Box<JsonPath>>);

/// `selector`, `take` and `json_path` of a `from_file` binding, each checked on its own (one
/// finding per key): `take` only with `lines`, `json_path` only with the JSON selectors.
/// None when any is wrong, its problems added to `errors`.
fn file_binding(
    map: &serde_json::Map<String, serde_json::Value>,
    errors: &mut Vec<BindingError>,
) -> Option<Reading> {
    let before = errors.len();
    // None: an unknown selector, so whether take or json_path fit it is unknown too.
    let selector = match map.get("selector") {
        None => Some(Selector::Text),
        Some(sel) => {
            let parsed = serde_json::from_value(sel.clone()).ok();
            if parsed.is_none() {
                errors.push(BindingError::at(
                    "selector",
                    "selector must be one of text, lines, json, jsonl_first; use one of them",
                ));
            }
            parsed
        }
    };
    let take = match map.get("take") {
        None => None,
        Some(_) if selector.is_some_and(|s| s != Selector::Lines) => {
            errors.push(
                "take applies only to selector: lines; remove take or set selector: lines".into(),
            );
            None
        }
        Some(t) => {
            let n = t.as_u64();
            if n.is_none() {
                errors.push(BindingError::at(
                    "take",
                    format!("take must be a non-negative integer, the number of lines to keep (found {t}); write a count such as take: 10, or remove take to keep every line"),
                ));
            }
            n
        }
    };
    let json_path = match map.get("json_path") {
        None => None,
        Some(p) => json_path_of(p, selector, errors).map(Box::new),
    };
    if errors.len() > before {
        return None;
    }
    Some((selector.unwrap_or(Selector::Text), take, json_path))
}

/// A `json_path` key: a string, for a JSON selector (when the selector is known), that parses.
fn json_path_of(
    p: &serde_json::Value,
    selector: Option<Selector>,
    errors: &mut Vec<BindingError>,
) -> Option<JsonPath> {
    if selector.is_some_and(|s| !matches!(s, Selector::Json | Selector::JsonlFirst)) {
        errors.push(
            "json_path applies only to selectors json and jsonl_first; remove json_path or set selector: json"
                .into(),
        );
        return None;
    }
    let Some(text) = p.as_str() else {
        errors.push(BindingError::at("json_path", "json_path must be a string"));
        return None;
    };
    match JsonPath::parse(text) {
        Ok(path) => Some(path),
        Err(message) => {
            errors.push(BindingError::at("json_path", message));
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub step_id: String,
    pub module_id: String,
    pub kind: Kind,
    pub inputs: BTreeMap<String, InputValue>,
    /// Raw input values as written (for records and package_std's bound_outputs).
    pub raw_inputs: serde_json::Map<String, serde_json::Value>,
    /// Whether the step has an `inputs` key at all (for where a finding points).
    pub inputs_given: bool,
    /// The references of inputs whose binding did not parse (`Malformed::refs`; their
    /// problems are findings already): checked by `validate::bindings`, never run.
    pub malformed: BTreeMap<String, InputValue>,
    pub deliverables: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkOrder {
    pub work_order_id: String,
    pub enabled: bool,
    pub artifacts_requested: bool,
    pub mode: Mode,
    /// `schedule.every`: one run per UTC calendar period (None: once per file version).
    pub schedule: Option<super::schedule::Every>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub steps: Vec<Step>,
}

impl WorkOrder {
    pub fn step(&self, id: &str) -> Option<(usize, &Step)> {
        self.steps.iter().enumerate().find(|(_, s)| s.step_id == id)
    }
}

/// One entry of package_std's `bound_outputs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundOutput {
    pub from_step: String,
    pub output_id: String,
    pub as_path: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_value_stays_small() {
        // Every step's input map holds B-tree nodes of 11 values: a larger variant costs 11
        // times its growth per step (see `InputValue::File::json_path`).
        assert!(std::mem::size_of::<InputValue>() <= 80);
    }

    #[test]
    fn a_malformed_json_path_names_its_key() {
        let v = serde_json::json!({"from_step": "a", "from_file": "f", "selector": "json", "json_path": "a..b"});
        let err = InputValue::parse(&v).unwrap_err();
        assert_eq!(err.errors.len(), 1, "{err:?}");
        assert_eq!(
            err.errors[0].field("steps[1].inputs.x"),
            "steps[1].inputs.x.json_path"
        );
        assert!(
            err.errors[0].message.contains("has an empty key"),
            "{err:?}"
        );
        let v = serde_json::json!({"from_step": "a", "from_file": "f", "json_path": "a..b"});
        let err = InputValue::parse(&v).unwrap_err();
        assert_eq!(
            err.errors[0].key, None,
            "the selector is the problem, not the path: {err:?}"
        );
    }

    #[test]
    fn every_problem_of_a_binding_is_reported_with_its_references() {
        let v = serde_json::json!({"from_step": "ghost", "from_file": "a.txt", "selector": "lines", "take": -1, "colour": 1});
        let err = InputValue::parse(&v).unwrap_err();
        let keys: Vec<Option<&str>> = err.errors.iter().map(|e| e.key.as_deref()).collect();
        assert_eq!(keys, [Some("colour"), Some("take")], "{err:?}");
        assert_eq!(
            err.refs.as_ref().and_then(InputValue::from_step),
            Some("ghost")
        );
        let v = serde_json::json!({"from_step": 3, "output_id": "o"});
        let err = InputValue::parse(&v).unwrap_err();
        assert_eq!(err.refs, None, "no step to check: {err:?}");
    }
}
