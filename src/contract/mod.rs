//! module.yml: the typed contract of a module (inputs, outputs, deliverables, price, runner).
pub mod builtin;
pub mod reason;

pub use builtin::Builtin;
pub use reason::{Failure, Skip};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Transform,
    Packaging,
    Delivery,
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Transform => "transform",
            Kind::Packaging => "packaging",
            Kind::Delivery => "delivery",
            Kind::Other => "other",
        }
    }
}

/// How a module runs: `{builtin: <name>}` in-process, or `{command: [argv...]}` as a
/// supervised process tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runner {
    Builtin(Builtin),
    Command(Vec<String>),
}

impl Runner {
    pub fn builtin(&self) -> Option<Builtin> {
        match self {
            Runner::Builtin(b) => Some(*b),
            Runner::Command(_) => None,
        }
    }
    pub fn command(&self) -> Option<&[String]> {
        match self {
            Runner::Command(argv) => Some(argv),
            Runner::Builtin(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    String,
    Integer,
    Number,
    Boolean,
    Object,
    Array,
    File,
    Files,
}

impl InputType {
    pub fn as_str(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Integer => "integer",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::Object => "object",
            InputType::Array => "array",
            InputType::File => "file",
            InputType::Files => "files",
        }
    }
    /// File inputs are paths the platform resolves; the rest are JSON values.
    pub fn is_path(self) -> bool {
        matches!(self, InputType::File | InputType::Files)
    }
    /// Whether a JSON value is of this (value) type.
    pub fn accepts(self, v: &serde_json::Value) -> bool {
        match self {
            InputType::String => v.is_string(),
            InputType::Integer => v.is_i64() || v.is_u64(),
            InputType::Number => v.is_number(),
            InputType::Boolean => v.is_boolean(),
            InputType::Object => v.is_object(),
            InputType::Array => v.is_array(),
            InputType::File | InputType::Files => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub id: String,
    #[serde(rename = "type")]
    pub ty: InputType,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputType {
    File,
    Dir,
    Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub id: String,
    #[serde(rename = "type")]
    pub ty: OutputType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deliverable {
    pub deliverable_id: String,
    pub outputs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    #[serde(default)]
    pub run_credits: u64,
    #[serde(default)]
    pub deliverables: BTreeMap<String, u64>,
    /// Metered usage by unit (SPEC §10): charged by what a completed step reports.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub usage: BTreeMap<String, UsagePrice>,
}

/// The price of one usage unit and the most a step may report of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsagePrice {
    pub credits: u64,
    pub max_units: u64,
}

impl UsagePrice {
    /// What the credits gate reserves for this unit: the most it can cost (checked: prices
    /// and maxima are capped by the schema, so this fits).
    pub fn reserve(&self) -> i64 {
        i64::try_from(self.credits.saturating_mul(self.max_units)).unwrap_or(i64::MAX)
    }
}

impl Pricing {
    /// The credits reserved for a step's metered usage before it runs.
    pub fn usage_reserve(&self) -> i64 {
        self.usage
            .values()
            .fold(0i64, |sum, u| sum.saturating_add(u.reserve()))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfTestExpect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_slug: Option<String>,
    #[serde(default)]
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfTest {
    #[serde(default)]
    pub inputs: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub expect: SelfTestExpect,
}

fn default_timeout() -> u64 {
    600
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleContract {
    pub module_id: String,
    pub version: String,
    pub kind: Kind,
    pub runner: Runner,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub inputs: Vec<InputSpec>,
    #[serde(default)]
    pub outputs: Vec<OutputSpec>,
    #[serde(default)]
    pub deliverables: Vec<Deliverable>,
    #[serde(default)]
    pub pricing: Pricing,
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_test: Option<SelfTest>,
}

impl ModuleContract {
    pub fn input(&self, id: &str) -> Option<&InputSpec> {
        self.inputs.iter().find(|i| i.id == id)
    }
    pub fn output(&self, id: &str) -> Option<&OutputSpec> {
        self.outputs.iter().find(|o| o.id == id)
    }
    pub fn deliverable(&self, id: &str) -> Option<&Deliverable> {
        self.deliverables.iter().find(|d| d.deliverable_id == id)
    }
    /// Price of a purchased deliverable (0 when the pricing table does not list it).
    pub fn deliverable_price(&self, id: &str) -> u64 {
        self.pricing.deliverables.get(id).copied().unwrap_or(0)
    }
    /// The declared path of a file/dir output: its `path`, else its id.
    pub fn output_path(&self, id: &str) -> Option<String> {
        self.output(id)
            .map(|o| o.path.clone().unwrap_or_else(|| o.id.clone()))
    }
}
