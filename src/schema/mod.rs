//! The JSON Schemas shipped in the binary (`platform schema <name>`) and validation against them.
use crate::contract::Builtin;
use std::sync::OnceLock;

/// The files the platform reads, each with a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaKind {
    Module,
    Workorder,
    Tenant,
    Registry,
    Iam,
    RuntimeProfile,
    Ledger,
}

impl SchemaKind {
    pub const ALL: [SchemaKind; 7] = [
        SchemaKind::Module,
        SchemaKind::Workorder,
        SchemaKind::Tenant,
        SchemaKind::Registry,
        SchemaKind::Iam,
        SchemaKind::RuntimeProfile,
        SchemaKind::Ledger,
    ];

    /// The schema document's text, as printed by `platform schema`.
    pub fn text(self) -> &'static str {
        match self {
            SchemaKind::Module => module_text(),
            SchemaKind::Workorder => include_str!("workorder.schema.json"),
            SchemaKind::Tenant => include_str!("tenant.schema.json"),
            SchemaKind::Registry => include_str!("registry.schema.json"),
            SchemaKind::Iam => include_str!("iam.schema.json"),
            SchemaKind::RuntimeProfile => include_str!("runtime-profile.schema.json"),
            SchemaKind::Ledger => include_str!("ledger.schema.json"),
        }
    }

    fn index(self) -> usize {
        match self {
            SchemaKind::Module => 0,
            SchemaKind::Workorder => 1,
            SchemaKind::Tenant => 2,
            SchemaKind::Registry => 3,
            SchemaKind::Iam => 4,
            SchemaKind::RuntimeProfile => 5,
            SchemaKind::Ledger => 6,
        }
    }
}

/// The module schema's list of built-ins is empty in the file (the marker below) and
/// filled from `contract::Builtin`, the one list of them.
const BUILTIN_MARKER: &str = r#""enum": []"#;

fn module_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let names: Vec<&str> = Builtin::ALL.iter().map(|b| b.name()).collect();
        let list = serde_json::to_string(&names)
            .unwrap_or_default()
            .replace(',', ", ");
        include_str!("module.schema.json").replacen(
            BUILTIN_MARKER,
            &format!(r#""enum": {list}"#),
            1,
        )
    })
}

/// One schema violation: a JSON pointer into the instance and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub pointer: String,
    pub message: String,
}

type Compiled = Result<jsonschema::Validator, String>;

fn validators() -> &'static [Compiled; 7] {
    static CELL: OnceLock<[Compiled; 7]> = OnceLock::new();
    CELL.get_or_init(|| {
        SchemaKind::ALL.map(|k| {
            let schema: serde_json::Value =
                serde_json::from_str(k.text()).map_err(|e| format!("built-in schema: {e}"))?;
            jsonschema::validator_for(&schema).map_err(|e| format!("built-in schema: {e}"))
        })
    })
}

/// Every violation of `kind`'s schema in `instance` (empty when valid).
pub fn validate(kind: SchemaKind, instance: &serde_json::Value) -> Vec<Violation> {
    match &validators()[kind.index()] {
        Ok(v) => v
            .iter_errors(instance)
            .map(|e| Violation {
                pointer: e.instance_path().to_string(),
                message: e.to_string(),
            })
            .collect(),
        Err(msg) => vec![Violation {
            pointer: String::new(),
            message: msg.clone(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_schema_compiles() {
        for k in SchemaKind::ALL {
            let v = validate(k, &serde_json::json!({}));
            assert!(
                v.iter().all(|v| !v.message.starts_with("built-in schema")),
                "{k:?}: {v:?}"
            );
        }
    }

    #[test]
    fn the_module_schema_accepts_exactly_the_builtins() {
        assert_eq!(
            include_str!("module.schema.json")
                .matches(BUILTIN_MARKER)
                .count(),
            1
        );
        let module = |b: &str| serde_json::json!({"module_id": "m", "version": "1", "kind": "delivery", "runner": {"builtin": b}});
        for b in Builtin::ALL {
            assert_eq!(
                validate(SchemaKind::Module, &module(b.name())),
                vec![],
                "{b}"
            );
        }
        let v = validate(SchemaKind::Module, &module("deliver_ftp"));
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].pointer, "/runner");
    }

    #[test]
    fn reports_pointer() {
        let v = validate(
            SchemaKind::Workorder,
            &serde_json::json!({"work_order_id": "w", "steps": [{"step_id": "a", "module_id": "m", "kind": "bogus"}]}),
        );
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].pointer, "/steps/0/kind");
    }
}
