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

/// A malformed binding: why, and which of its keys is at fault (None: the binding as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingError {
    pub key: Option<&'static str>,
    pub message: String,
}

impl BindingError {
    /// The field a finding names, below the input's own field (`steps[1].inputs.x`).
    pub fn field(&self, input_field: &str) -> String {
        match self.key {
            Some(k) => format!("{input_field}.{k}"),
            None => input_field.to_string(),
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

impl InputValue {
    /// Classify a raw YAML value: a mapping with `from_step` or a lone `asset` key is a binding.
    pub fn parse(v: &serde_json::Value) -> Result<InputValue, BindingError> {
        let Some(map) = v.as_object() else {
            return Ok(InputValue::Literal(v.clone()));
        };
        if map.contains_key("asset") && map.len() == 1 {
            return match map.get("asset").and_then(|a| a.as_str()) {
                Some(p) => Ok(InputValue::Asset(p.to_string())),
                None => Err("asset must be a path string".into()),
            };
        }
        if !map.contains_key("from_step") {
            return Ok(InputValue::Literal(v.clone()));
        }
        let s = |k: &str| map.get(k).and_then(|x| x.as_str()).map(String::from);
        let from_step = s("from_step").ok_or("from_step must be a step id string")?;
        let allowed = [
            "from_step",
            "output_id",
            "from_file",
            "selector",
            "take",
            "json_path",
        ];
        if let Some(bad) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!(
                "unknown binding key '{bad}' (allowed: {})",
                allowed.join(", ")
            )
            .into());
        }
        match (s("output_id"), s("from_file")) {
            (Some(_), Some(_)) => {
                Err("a binding has either output_id or from_file, not both".into())
            }
            (Some(output_id), None) => {
                if map.len() != 2 {
                    return Err("an output binding has only from_step and output_id".into());
                }
                Ok(InputValue::Output {
                    from_step,
                    output_id,
                })
            }
            (None, Some(from_file)) => file_binding(map, from_step, from_file),
            (None, None) => Err("a binding with from_step needs output_id or from_file".into()),
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

/// `{from_step, from_file, selector, take, json_path}`: `take` only with `lines`, `json_path`
/// only with the JSON selectors.
fn file_binding(
    map: &serde_json::Map<String, serde_json::Value>,
    from_step: String,
    from_file: String,
) -> Result<InputValue, BindingError> {
    let selector = match map.get("selector") {
        None => Selector::Text,
        Some(sel) => serde_json::from_value(sel.clone())
            .map_err(|_| "selector must be one of text, lines, json, jsonl_first")?,
    };
    let take = match map.get("take") {
        None => None,
        Some(t) => Some(t.as_u64().ok_or("take must be a non-negative integer")?),
    };
    if take.is_some() && selector != Selector::Lines {
        return Err("take applies only to selector: lines".into());
    }
    let json_path = match map.get("json_path") {
        None => None,
        Some(p) => Some(Box::new(json_path_of(p, selector)?)),
    };
    Ok(InputValue::File {
        from_step,
        from_file,
        selector,
        take,
        json_path,
    })
}

/// A `json_path` key: a string, for a JSON selector, that parses.
fn json_path_of(p: &serde_json::Value, selector: Selector) -> Result<JsonPath, BindingError> {
    let text = p.as_str().ok_or("json_path must be a string")?;
    if !matches!(selector, Selector::Json | Selector::JsonlFirst) {
        return Err("json_path applies only to selectors json and jsonl_first".into());
    }
    JsonPath::parse(text).map_err(|message| BindingError {
        key: Some("json_path"),
        message,
    })
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
        assert_eq!(
            err.field("steps[1].inputs.x"),
            "steps[1].inputs.x.json_path"
        );
        assert!(err.message.contains("has an empty key"), "{err}");
        let v = serde_json::json!({"from_step": "a", "from_file": "f", "json_path": "a..b"});
        let err = InputValue::parse(&v).unwrap_err();
        assert_eq!(
            err.key, None,
            "the selector is the problem, not the path: {err}"
        );
    }
}
